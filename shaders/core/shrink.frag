#version 330
// The scene at the dream's working size (render/shrink.py): each texel the area mean of the source
// texels its footprint covers (a box filter, fractional texels weighted by their overlap), so a
// 640x240 field shrinks to 256x192 without aliasing. With MOTION the scene's motion is shrunk in the
// same pass into a second target, in the dream's pixels (`u_motion_gain`: dream px per scene px).
// NX and NY (#defined by render/shrink.py) are the most source texels a footprint spans on each
// axis at this ratio, so the loops have fixed bounds: no branch a pixel (llvmpipe pays for every
// lane of a loop whose count varies), a texel outside the footprint weighs 0.
#ifndef NX
#define NX 8    // (compiled without its ratio: up to 8 texels a footprint on each axis)
#endif
#ifndef NY
#define NY 8
#endif
uniform sampler2D source;
uniform vec2 u_ratio;   // source texels per target texel, per axis
layout(location = 0) out vec4 color;
#ifdef MOTION
uniform sampler2D motion;
uniform vec2 u_motion_gain;
layout(location = 1) out vec4 moved;
#endif
void main() {
    vec2 lo = floor(gl_FragCoord.xy) * u_ratio, hi = lo + u_ratio;
    ivec2 first = ivec2(floor(lo)), top = textureSize(source, 0) - 1;
    vec4 sum = vec4(0.0);
    vec2 shift = vec2(0.0);
    for (int j = 0; j < NY; j++) {
        int y = first.y + j;
        float wy = max(min(hi.y, float(y + 1)) - max(lo.y, float(y)), 0.0);
        for (int i = 0; i < NX; i++) {
            int x = first.x + i;
            float w = max(min(hi.x, float(x + 1)) - max(lo.x, float(x)), 0.0) * wy;
            ivec2 at = min(ivec2(x, y), top);
            sum += texelFetch(source, at, 0) * w;
#ifdef MOTION
            shift += texelFetch(motion, at, 0).xy * w;
#endif
        }
    }
    float area = u_ratio.x * u_ratio.y;
    color = sum / area;
#ifdef MOTION
    moved = vec4(shift * u_motion_gain / area, 0.0, 0.0);
#endif
}
