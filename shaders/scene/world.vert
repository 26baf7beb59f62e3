#version 330
// Chunk geometry: world-space position, face normal, (material kind, room hash). The previous
// frame's clip position goes down too, so each fragment knows exactly where its surface point
// was a frame ago (the scene is static; only the camera moves).
uniform mat4 u_vp;
uniform mat4 u_prev_vp;
in vec3 in_pos;
in vec3 in_normal;
in vec2 in_attr;
out vec3 v_pos;
flat out vec3 v_normal;
flat out vec2 v_attr;
out vec4 v_prev;
void main() {
    v_pos = in_pos;
    v_normal = in_normal;
    v_attr = in_attr;
    v_prev = u_prev_vp * vec4(in_pos, 1.0);
    gl_Position = u_vp * vec4(in_pos, 1.0);
}
