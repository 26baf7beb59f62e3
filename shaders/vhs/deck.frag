#version 330
// The playback deck: luma low-passed to the tape speed's bandwidth (VHS.md: SP 2.4 MHz, LP 1.9,
// EP 1.4), with `ringing` steepening the filter at the same -3 dB point and `sharpen` the deck's
// peaking control; chroma brought back from 160 samples, late by the deck's chroma delay; YIQ back
// to RGB. One field, 640x240, like every tape pass before it.
uniform sampler2D signal;       // Y (and IQ) of this field, noise and damage included
uniform sampler2D smear;        // IQ as 0.5 + 0.8 * value, 160x240
uniform vec2 u_resolution;
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
uniform float sharpen;
uniform float ringing;
uniform float chroma_delay;
out vec4 color;

const mat3 YIQ2RGB = mat3(1.0, 1.0, 1.0, 0.956, -0.272, -1.106, 0.621, -0.647, 1.703);
const float LUMA_MHZ[3] = float[3](2.4, 1.9, 1.4);
const float DELAY_SAMPLES[3] = float[3](4.0, 5.0, 6.0);  // at 4 fsc, ntsc-rs
const float FSC4_MHZ = 4.0 * 3.579545;
const float ACTIVE_US = 52.6;
const float PI = 3.14159265;
const int R = 6;                // 13 taps: the sinc's first side lobes at EP

void main() {
    float W = u_resolution.x;
    ivec2 p = ivec2(gl_FragCoord.xy);

    float f = LUMA_MHZ[tape_speed] * ACTIVE_US / W;                 // cut in cycles per px
    float sigma = sqrt(0.5 * log(2.0)) / (sqrt(2.0) * PI * f);      // Gaussian -3 dB at f
    // three kernels over the same taps, weights by recurrence (no transcendental per tap):
    // Gaussian g (the tape), a wider Gaussian v (for the peaking), a sinc s cut at 1.1 f, which
    // truncated to +-6 taps puts its -3 dB point on f too but rings
    float qg = exp(-0.5 / (sigma * sigma)), rg = qg, qg2 = qg * qg, g = 1.0;
    float qv = sqrt(sqrt(qg)), rv = qv, qv2 = qv * qv, v = 1.0;
    float th = 2.0 * PI * 1.1 * f, c1 = cos(th), s1 = sin(th), ck = 1.0, sk = 0.0;
    float y0 = texelFetch(signal, p, 0).x;
    float sumg = 1.0, sumv = 1.0, sums = 2.0 * 1.1 * f;
    float yg = y0, yv = y0, ys = sums * y0;
    for (int k = 1; k <= R; k++) {
        g *= rg;  rg *= qg2;
        v *= rv;  rv *= qv2;
        float sn = sk * c1 + ck * s1;
        ck = ck * c1 - sk * s1;
        sk = sn;
        float s = sk / (PI * float(k));
        float pair = texelFetch(signal, ivec2(min(p.x + k, int(W) - 1), p.y), 0).x
                   + texelFetch(signal, ivec2(max(p.x - k, 0), p.y), 0).x;
        yg += g * pair;  sumg += 2.0 * g;
        yv += v * pair;  sumv += 2.0 * v;
        ys += s * pair;  sums += 2.0 * s;
    }
    yg /= sumg;
    float y = mix(yg, ys / sums, ringing) + sharpen * (yg - yv / sumv);

    float delay = chroma_delay * DELAY_SAMPLES[tape_speed] / FSC4_MHZ * W / ACTIVE_US;   // px
    vec2 iq = texture(smear, vec2(gl_FragCoord.x - delay, gl_FragCoord.y) / u_resolution).xy;
    color = vec4(clamp(YIQ2RGB * vec3(y, (iq - 0.5) / 0.8), 0.0, 1.0), 1.0);
}
