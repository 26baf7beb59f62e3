#version 330
// The generated frame over the base scene, by `mix`.
uniform sampler2D scene;
uniform sampler2D generated;
uniform float mix;
in vec2 uv;
out vec4 color;
void main() {
    vec3 a = texture(scene, uv).rgb;  // (the uniform `mix` hides GLSL's mix(): lerp by hand)
    color = vec4(a + (texture(generated, uv).rgb - a) * mix, 1.0);
}
