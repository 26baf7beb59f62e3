#version 330
// The only pass at output resolution: fits the tape frame to the screen and applies the master fade.
uniform sampler2D source;
uniform vec2 u_resolution;
uniform vec2 u_source_size;
uniform float fade;
uniform int fit;  // 0 fit (pillar/letterbox), 1 fill (crop), 2 stretch
in vec2 uv;
out vec4 color;
void main() {
    float screen = u_resolution.x / u_resolution.y;
    float frame = u_source_size.x / u_source_size.y;
    vec2 p = uv - 0.5;
    if (fit != 2) {
        float r = screen / frame;
        bool wider = r > 1.0;
        if ((fit == 0) == wider) p.x *= r; else p.y /= r;
    }
    vec2 q = p + 0.5;
    vec3 c = texture(source, q).rgb;
    if (any(lessThan(q, vec2(0.0))) || any(greaterThan(q, vec2(1.0)))) c = vec3(0.0);
    color = vec4(c * fade, 1.0);
}
