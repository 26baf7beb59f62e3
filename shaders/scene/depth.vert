#version 330
// Depth prepass: positions only, so the shading pass runs once per visible pixel.
invariant gl_Position;  // the prepass and the shading pass must rasterise identically
uniform mat4 u_vp;
in vec3 in_pos;
void main() {
    gl_Position = u_vp * vec4(in_pos, 1.0);
}
