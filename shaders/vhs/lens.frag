#version 330
// Chromatic aberration: R and B pulled apart radially, `aberration` pixels at the frame's side edge,
// nothing at the centre. A lens/CRT effect, not a tape one, so it has its own pass.
uniform sampler2D source;
uniform vec2 u_resolution;
uniform float aberration;
in vec2 uv;
out vec4 color;
void main() {
    vec2 r = uv - 0.5;
    vec2 off = r * 2.0 * aberration / u_resolution.x;  // |r.x| = 0.5 at the edge -> aberration px
    float red = texture(source, uv + off).r;
    float green = texture(source, uv).g;
    float blue = texture(source, uv - off).b;
    color = vec4(red, green, blue, 1.0);
}
