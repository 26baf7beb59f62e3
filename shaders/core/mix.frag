#version 330
// The generated frame over the base scene, by `mix`. A dream made smaller than the scene (a patch's
// `dream_size`) gets back the scene's fine band, the detail it had no room for: the scene less the
// same scene at the dream's size (`low`, render/shrink.py), by `detail`. Where the dream is the
// scene, that is the scene exactly; where it dreamed, its own picture carries the scene's edges.
uniform sampler2D scene;
uniform sampler2D generated;
uniform sampler2D low;
uniform float mix;
uniform float detail;
in vec2 uv;
out vec4 color;
void main() {
    vec3 a = texture(scene, uv).rgb;  // (the uniform `mix` hides GLSL's mix(): lerp by hand)
    vec3 dream = texture(generated, uv).rgb + detail * (a - texture(low, uv).rgb);
    color = vec4(a + (dream - a) * mix, 1.0);
}
