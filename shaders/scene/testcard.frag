#version 330
// SMPTE-style bars over a luma ramp, with a bar that sweeps across once every four seconds at 60 fps.
uniform int u_frame;
uniform vec2 u_resolution;
in vec2 uv;
out vec4 color;
const vec3 BARS[7] = vec3[7](vec3(.75,.75,.75), vec3(.75,.75,0), vec3(0,.75,.75), vec3(0,.75,0),
                             vec3(.75,0,.75), vec3(.75,0,0), vec3(0,0,.75));
void main() {
    float y = 1.0 - uv.y;
    vec3 c;
    if (y < 0.67) c = BARS[int(min(uv.x * 7.0, 6.0))];
    else if (y < 0.75) c = BARS[6 - int(min(uv.x * 7.0, 6.0))] * 0.5;
    else c = vec3(floor(uv.x * 16.0) / 15.0);
    float sweep = fract(float(u_frame) / 240.0);
    if (abs(uv.x - sweep) < 0.01) c = vec3(1.0);
    color = vec4(c, 1.0);
}
