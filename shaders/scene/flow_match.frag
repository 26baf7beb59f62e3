#version 330
// Block matching, one level of the pyramid (scene/flow.py): each texel of this level's block grid
// is a block of u_block x u_block luma texels; it tries every whole-texel offset within `u_radius` of
// its coarser parent's vector (scaled up by `u_up`), and keeps the one whose 8x8 window of the
// previous frame best matches the current one (mean absolute luma difference, plus `u_lambda` per
// texel away from the guess, so a flat block, which matches anywhere, follows its neighbourhood
// instead of noise). A backward map, as the scenes give: the current frame's content at p was at
// p - d in the previous one. Ties keep the first offset tried, so the result is a function of the
// two frames. `u_final` adds a parabola through the squared differences either side of the best
// offset on each axis: sub-texel, for the finest level. Out: the vector in this level's texels.
uniform sampler2D current;   // luma pyramid level (R8)
uniform sampler2D previous;  // the same level of the previous frame
uniform sampler2D guess;     // the coarser level's block grid (RG32F, its texels), or one zero texel
uniform vec2 u_up;           // this level's texels per coarser level texel (about 2; 0: no guess)
uniform int u_radius;
uniform float u_lambda;
uniform bool u_final;
uniform int u_block;         // finest luma texels a block, every level (scene/flow.py's BLOCK)
out vec4 color;

float cur[64];
ivec2 last = ivec2(0);  // the level's last texel, set first thing in main

float luma(sampler2D s, ivec2 at) {
    return texelFetch(s, clamp(at, ivec2(0), last), 0).r;
}

float cost(ivec2 corner, ivec2 d) {
    float sum = 0.0;
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++)
            sum += abs(cur[j * 8 + i] - luma(previous, corner + ivec2(i, j) - d));
    return sum * (1.0 / 64.0);
}

// squared differences: near the match they grow as a parabola does (absolute ones as a V, whose
// parabola fit pulls the answer towards the whole texel), so the sub-texel part is fitted on these
float squared(ivec2 corner, ivec2 d) {
    float sum = 0.0;
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++) {
            float e = cur[j * 8 + i] - luma(previous, corner + ivec2(i, j) - d);
            sum += e * e;
        }
    return sum;
}

void main() {
    last = textureSize(current, 0) - 1;
    ivec2 block = ivec2(gl_FragCoord.xy);
    ivec2 corner = block * u_block + u_block / 2 - 4;  // the 8x8 window centred on the block
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++)
            cur[j * 8 + i] = luma(current, corner + ivec2(i, j));
    ivec2 parent = min(block / 2, textureSize(guess, 0) - 1);
    ivec2 start = ivec2(floor(texelFetch(guess, parent, 0).xy * u_up + 0.5));
    ivec2 best = start;
    float low = 1e9;
    for (int y = -u_radius; y <= u_radius; y++)
        for (int x = -u_radius; x <= u_radius; x++) {
            float c = cost(corner, start + ivec2(x, y)) + u_lambda * float(abs(x) + abs(y));
            if (c < low) { low = c; best = start + ivec2(x, y); }
        }
    vec2 sub = vec2(0.0);
    if (u_final) {
        float raw = squared(corner, best);
        float l = squared(corner, best - ivec2(1, 0)), r = squared(corner, best + ivec2(1, 0));
        float b = squared(corner, best - ivec2(0, 1)), t = squared(corner, best + ivec2(0, 1));
        float cx = l + r - 2.0 * raw, cy = b + t - 2.0 * raw;
        if (cx > 1e-6) sub.x = clamp(0.5 * (l - r) / cx, -0.5, 0.5);
        if (cy > 1e-6) sub.y = clamp(0.5 * (b - t) / cy, -0.5, 0.5);
    }
    color = vec4(vec2(best) + sub, low, 0.0);
}
