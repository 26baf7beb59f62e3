#version 330
// Colour-under: VHS records chroma as a narrow band around 629 kHz, so only a few hundred kHz of it
// survive (CHROMA_MHZ, vhs/tape.glsl). A Gaussian FIR puts its -3 dB point there, counting
// the linear upsampling back to 640 px in the deck pass, and decimates to 160 samples per line,
// which carry 0.3 MHz with room to spare. FIR, not the row IIR of ntsc-rs: rows are not sequential
// in a fragment shader.
uniform sampler2D signal;       // Y, and IQ as 0.5 + 0.8 * value, at 640x480
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
in vec2 uv;
out vec4 color;

#include "vhs/tape.glsl"
const float PI = 3.14159265;
const int HALF = 16;            // 32 taps, +-16 px: 2.9 sigma at EP

void main() {
    ivec2 size = textureSize(signal, 0);
    float f = CHROMA_MHZ[tape_speed] * ACTIVE_US / float(size.x);    // cycles per 640-px
    float up = 4.0 * f * PI;                                        // linear upsampling by 4 ...
    float lin = sin(up) / up;                                       // ... passes sinc^2(4f)
    float sigma = sqrt(0.5 * log(2.0) + 2.0 * log(lin)) / (sqrt(2.0) * PI * f);
    // this output's centre is the edge between texels 4i+1 and 4i+2: taps at +-0.5, 1.5, ... px,
    // Gaussian weights by recurrence, g(o + 1) = g(o) * q^(2o + 1) with q = exp(-1 / (2 sigma^2))
    float q = exp(-0.5 / (sigma * sigma));
    float g = pow(q, 0.25), r = q * q, q2 = q * q;
    ivec2 p = ivec2(int(gl_FragCoord.x) * 4 + 2, int(gl_FragCoord.y));
    vec2 sum = vec2(0.0);
    float wsum = 0.0;
    for (int k = 0; k < HALF; k++) {
        sum += g * (texelFetch(signal, ivec2(min(p.x + k, size.x - 1), p.y), 0).yz
                  + texelFetch(signal, ivec2(max(p.x - 1 - k, 0), p.y), 0).yz);
        wsum += 2.0 * g;
        g *= r;
        r *= q2;
    }
    color = vec4(sum / wsum, 0.5, 1.0);   // still offset: the mean of offset values is offset
}
