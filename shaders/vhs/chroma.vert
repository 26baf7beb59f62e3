#version 330
// The colour-under low-pass's Gaussian, designed once a frame (it depends on the tape speed only)
// and handed to every pixel as constants (flat), as vhs/deck.vert does for the luma filter: the
// sine, logarithms, exponential and power it takes cost every one of 38,400 pixels before.
in vec2 in_pos;
uniform sampler2D signal;       // (its size: 640 px a line)
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
flat out vec3 gauss;            // (q, the weight of the taps at +-0.5 px, the weights' sum)

#include "vhs/tape.glsl"
const float PI = 3.14159265;
const int HALF = 16;            // 32 taps, +-16 px: 2.9 sigma at EP (vhs/chroma.frag)

void main() {
    float f = CHROMA_MHZ[tape_speed] * ACTIVE_US / float(textureSize(signal, 0).x);  // cycles per 640-px
    float up = 4.0 * f * PI;                                        // linear upsampling by 4 ...
    float lin = sin(up) / up;                                       // ... passes sinc^2(4f)
    float sigma = sqrt(0.5 * log(2.0) + 2.0 * log(lin)) / (sqrt(2.0) * PI * f);
    float q = exp(-0.5 / (sigma * sigma));
    float g = pow(q, 0.25), r = q * q, q2 = q * q, wsum = 0.0;
    gauss.xy = vec2(q, g);
    for (int k = 0; k < HALF; k++) {
        wsum += 2.0 * g;
        g *= r;
        r *= q2;
    }
    gauss.z = wsum;
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
