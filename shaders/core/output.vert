#version 330
// The output pass's quad: fits the 4:3 frame to the output (pillarbox, crop or stretch) once a
// corner, not once a pixel; the fit is affine, so interpolating it across the quad is exact.
in vec2 in_pos;
uniform vec2 u_resolution;
uniform vec2 u_source_size;
uniform int fit;                // 0 fit (pillar/letterbox), 1 fill (crop), 2 stretch
noperspective out vec2 face;    // on the tube's face: -1..1 across the frame, beyond it outside
void main() {
    face = in_pos;
    if (fit != 2) {
        float r = (u_resolution.x / u_resolution.y) / (u_source_size.x / u_source_size.y);
        if ((fit == 0) == (r > 1.0)) face.x *= r; else face.y /= r;
    }
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
