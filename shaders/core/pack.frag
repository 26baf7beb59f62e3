#version 330
// One frame's motion and depth into its slot of the reprojection ring (render/reproject.py):
// drawn with the viewport on the slot, so gl_FragCoord less the slot's offset is the scene pixel.
uniform sampler2D motion;  // RG32F, pixels, GL orientation, n-1 -> n
uniform sampler2D depth;   // R32F, metres along the view axis (0: unknown)
uniform int u_offset;      // the slot's first column
out vec4 color;
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy) - ivec2(u_offset, 0);
    color = vec4(texelFetch(motion, p, 0).xy, texelFetch(depth, p, 0).x, 0.0);
}
