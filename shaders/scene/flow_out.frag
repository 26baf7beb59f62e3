#version 330
// The block grid's vectors (finest luma texels) → the scene's motion texture (RG32F, scene pixels,
// GL orientation, scene/flow.py): bilinear between block centres (the field's linear filter,
// clamped at the edges), so a pixel moves as the blocks around it do.
uniform sampler2D field;
uniform vec2 u_gain;   // scene pixels per finest luma texel
uniform vec2 u_cell;   // scene pixels per block
out vec4 color;

void main() {
    vec2 uv = gl_FragCoord.xy / u_cell / vec2(textureSize(field, 0));
    color = vec4(texture(field, uv).xy * u_gain, 0.0, 0.0);
}
