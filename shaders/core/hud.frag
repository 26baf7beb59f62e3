#version 330
// The HUD's text layer, alpha-blended over the output on screen.
uniform sampler2D hud;
in vec2 uv;
out vec4 color;
void main() { color = texture(hud, uv); }
