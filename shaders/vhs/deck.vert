#version 330
// The deck's luma filter, designed once a frame: its taps depend only on the tape speed and the
// `ringing` and `sharpen` knobs, so they are worked out here, four times, and handed to every
// pixel as constants (flat), instead of once a pixel. Three kernels over the same 13 taps: a
// Gaussian g at the tape speed's -3 dB point (LUMA_MHZ, vhs/tape.glsl), a sinc s cut
// at 1.1 f, which truncated to +-6 taps puts its -3 dB point on f too but rings, and a Gaussian v
// twice as wide, whose difference from g is the deck's peaking (sharpness) control.
in vec2 in_pos;
uniform vec2 u_resolution;      // one field, 640x240
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
uniform float sharpen;
uniform float ringing;
flat out vec4 taps0;            // the weights of taps 0..3 (tap k serves the pixels k left and right)
flat out vec3 taps1;            // taps 4..6

#include "vhs/tape.glsl"
const float PI = 3.14159265;

void main() {
    float f = LUMA_MHZ[tape_speed] * ACTIVE_US / u_resolution.x;    // cut in cycles per px
    float sigma = sqrt(0.5 * log(2.0)) / (sqrt(2.0) * PI * f);      // Gaussian -3 dB at f
    float g[7], v[7], s[7];
    float sumg = 0.0, sumv = 0.0, sums = 0.0;
    for (int k = 0; k < 7; k++) {
        float x = float(k), both = k == 0 ? 1.0 : 2.0;
        g[k] = exp(-0.5 * x * x / (sigma * sigma));
        v[k] = exp(-0.125 * x * x / (sigma * sigma));
        s[k] = k == 0 ? 2.0 * 1.1 * f : sin(2.0 * PI * 1.1 * f * x) / (PI * x);
        sumg += both * g[k];
        sumv += both * v[k];
        sums += both * s[k];
    }
    float w[7];
    for (int k = 0; k < 7; k++)
        w[k] = mix(g[k] / sumg, s[k] / sums, ringing) + sharpen * (g[k] / sumg - v[k] / sumv);
    taps0 = vec4(w[0], w[1], w[2], w[3]);
    taps1 = vec3(w[4], w[5], w[6]);
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
