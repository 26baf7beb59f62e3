#version 330
// Colour-under: VHS records chroma as a narrow band around 629 kHz, so only a few hundred kHz of it
// survive (VHS.md: SP 320 kHz, LP 300, EP 280). A Gaussian FIR puts its -3 dB point there, counting
// the linear upsampling back to 640 px in the deck pass, and decimates to 160 samples per line, which
// carry 0.3 MHz with room to spare. FIR, not the row IIR of ntsc-rs: rows are not sequential here.
uniform sampler2D signal;       // YIQ at 640x480
uniform vec2 u_source_size;
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
in vec2 uv;
out vec4 color;

const float CHROMA_MHZ[3] = float[3](0.32, 0.30, 0.28);
const float ACTIVE_US = 52.6;   // active line time of NTSC
const float PI = 3.14159265;
const int PAIRS = 8;            // 8 bilinear fetches a side = 32 taps, +-16 px: 2.9 sigma at EP

void main() {
    float W = u_source_size.x;
    float f = CHROMA_MHZ[tape_speed] * ACTIVE_US / W;               // cycles per 640-px
    float up = 4.0 * f * PI;                                        // linear upsampling by 4 ...
    float lin = sin(up) / up;                                       // ... passes sinc^2(4f)
    float sigma = sqrt(0.5 * log(2.0) + 2.0 * log(lin)) / (sqrt(2.0) * PI * f);
    // Gaussian taps at +-0.5, 1.5, ... px from this output's centre (a texel boundary at 640),
    // by recurrence: g(o + 1) = g(o) * q^(2o + 1), q = exp(-1 / (2 sigma^2))
    float q = exp(-0.5 / (sigma * sigma));
    float g = pow(q, 0.25), r = q * q, q2 = q * q;
    float centre = gl_FragCoord.x * W / 160.0;
    vec2 sum = vec2(0.0);
    float wsum = 0.0;
    float o = 0.5;
    for (int i = 0; i < PAIRS; i++) {
        // two neighbouring taps in one bilinear fetch, placed between them by their weights
        float ga = g;  g *= r;  r *= q2;
        float gb = g;  g *= r;  r *= q2;
        float w = ga + gb;
        float at = o + gb / w;
        sum += w * (texture(signal, vec2((centre + at) / W, uv.y)).yz
                  + texture(signal, vec2((centre - at) / W, uv.y)).yz);
        wsum += 2.0 * w;
        o += 2.0;
    }
    color = vec4(sum / wsum, 0.0, 1.0);
}
