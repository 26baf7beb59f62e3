#version 330
// The block grid's vectors, each replaced by the median of its 3x3 neighbourhood per component
// (scene/flow.py): one block matched to a repeat of its pattern, or a flat one that matched noise,
// does not pull the picture; an edge between two motions stays sharp at the block grid.
uniform sampler2D field;  // RG32F: vector (finest luma texels), cost
out vec4 color;

void main() {
    ivec2 at = ivec2(gl_FragCoord.xy), last = textureSize(field, 0) - 1;
    float xs[9], ys[9];
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            vec2 v = texelFetch(field, clamp(at + ivec2(i - 1, j - 1), ivec2(0), last), 0).xy;
            xs[j * 3 + i] = v.x; ys[j * 3 + i] = v.y;
        }
    for (int i = 1; i < 9; i++)   // insertion sort of 9: the fifth is the median
        for (int k = i; k > 0 && xs[k - 1] > xs[k]; k--) { float s = xs[k]; xs[k] = xs[k - 1]; xs[k - 1] = s; }
    for (int i = 1; i < 9; i++)
        for (int k = i; k > 0 && ys[k - 1] > ys[k]; k--) { float s = ys[k]; ys[k] = ys[k - 1]; ys[k - 1] = s; }
    color = vec4(xs[4], ys[4], 0.0, 0.0);
}
