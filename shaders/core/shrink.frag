#version 330
// The scene at the dream's working size (render/shrink.py): each texel the mean of a 4x4 grid of
// points spread over the footprint it covers in the source, so a 640x480 scene shrinks to 256x192
// without aliasing. `u_gain` scales the values: 1 for colour, dream px per scene px for motion.
uniform sampler2D source;
uniform vec2 u_ratio;   // source texels per target texel, per axis
uniform vec4 u_gain;
out vec4 color;
void main() {
    vec2 corner = floor(gl_FragCoord.xy) * u_ratio;
    ivec2 last = textureSize(source, 0) - 1;
    vec4 sum = vec4(0.0);
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
            vec2 p = corner + (vec2(i, j) + 0.5) * 0.25 * u_ratio;
            sum += texelFetch(source, clamp(ivec2(p), ivec2(0), last), 0);
        }
    }
    color = sum * (u_gain / 16.0);
}
