#version 330
// One frame's motion and depth into its slot of the reprojection ring (render/reproject.py), at the
// ring's grid (the dream's size, often coarser than the scene's): drawn with the viewport on the
// slot, so gl_FragCoord less the slot's offset is the ring pixel; the scene pixel under its centre
// gives the motion (rescaled to ring pixels) and the depth. The frame before's motion, read in the
// other atlas where the surface was a frame ago, composes this frame's two-frame step: the carry
// then walks back two frames a fetch.
#include "core/ring.glsl"
uniform sampler2D motion;    // RG32F, scene pixels, GL orientation, n-1 -> n
uniform sampler2D depth;     // R32F, metres along the view axis (0: unknown)
uniform sampler2D previous;  // the other atlas, which holds frame n-1
uniform ivec2 u_offset;      // the slot's lower left corner in its atlas
uniform vec2 u_scale;        // scene pixels per ring pixel
uniform ivec2 u_grid;        // a slot's size (where a surface a frame ago is clamped into it)
uniform vec2 u_previous;     // frame n-1's slot corner in `previous`
uniform int u_chain;         // 1: frame n-1 is in the ring (0: a cut; the two-frame step is never used)
out vec4 color;
void main() {
    vec2 p = gl_FragCoord.xy - vec2(u_offset);
    ivec2 s = ivec2(p * u_scale);
    vec2 m = texelFetch(motion, s, 0).xy / u_scale;
    ivec2 c = ivec2(u_previous + clamp(p - m, vec2(0.5), vec2(u_grid) - 0.5));
    vec2 before = u_chain == 1 ? decoded(texelFetch(previous, c, 0).w) : vec2(0.0);
    color = vec4(m + before, texelFetch(depth, s, 0).x, encoded(m));
}
