#version 330
// The scene at the dream's working size (render/shrink.py): each texel the area mean of the source
// texels its footprint covers (a box filter, fractional texels weighted by their overlap), so a
// 640x480 scene shrinks to 256x192 without aliasing. `u_gain` scales the values: 1 for colour,
// dream px per scene px for motion. Up to MAX source texels per axis (ratios up to MAX - 1).
#define MAX 8
uniform sampler2D source;
uniform vec2 u_ratio;   // source texels per target texel, per axis
uniform vec4 u_gain;
out vec4 color;
void main() {
    vec2 lo = floor(gl_FragCoord.xy) * u_ratio, hi = lo + u_ratio;
    ivec2 first = ivec2(floor(lo)), last = min(ivec2(ceil(hi)) - 1, textureSize(source, 0) - 1);
    vec4 sum = vec4(0.0);
    for (int j = 0; j < MAX; j++) {
        int y = first.y + j;
        if (y > last.y) break;
        float wy = min(hi.y, float(y + 1)) - max(lo.y, float(y));
        for (int i = 0; i < MAX; i++) {
            int x = first.x + i;
            if (x > last.x) break;
            float wx = min(hi.x, float(x + 1)) - max(lo.x, float(x));
            sum += texelFetch(source, ivec2(x, y), 0) * (wx * wy);
        }
    }
    color = sum * u_gain / (u_ratio.x * u_ratio.y);
}
