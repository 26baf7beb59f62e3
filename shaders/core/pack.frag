#version 330
// One frame's motion and depth into its slot of the reprojection ring (render/reproject.py), at the
// ring's grid (the dream's size, often coarser than the scene's): drawn with the viewport on the
// slot, so gl_FragCoord less the slot's offset is the ring pixel; the scene pixel under its centre
// gives the motion (rescaled to ring pixels) and the depth.
uniform sampler2D motion;  // RG32F, scene pixels, GL orientation, n-1 -> n
uniform sampler2D depth;   // R32F, metres along the view axis (0: unknown)
uniform ivec2 u_offset;    // the slot's lower left corner in the atlas
uniform vec2 u_scale;      // scene pixels per ring pixel
out vec4 color;
void main() {
    vec2 p = gl_FragCoord.xy - vec2(u_offset);
    ivec2 s = ivec2(p * u_scale);
    color = vec4(texelFetch(motion, s, 0).xy / u_scale, texelFetch(depth, s, 0).x, 0.0);
}
