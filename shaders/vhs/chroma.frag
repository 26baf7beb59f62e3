#version 330
// Colour-under: VHS records chroma as a narrow band around 629 kHz, so only a few hundred kHz of it
// survive (the colour-under bandwidth of vhs/tape.glsl). A Gaussian FIR (its weights designed once a
// frame by vhs/chroma.vert) puts its -3 dB point there, counting
// the linear upsampling back to 640 px in the deck pass, and decimates to 160 samples per line,
// which carry 0.3 MHz with room to spare. FIR, not the row IIR of ntsc-rs: rows are not sequential
// in a fragment shader.
uniform sampler2D signal;       // Y, and IQ as 0.5 + 0.8 * value, at 640x480
flat in vec3 gauss;             // the Gaussian, designed once a frame by vhs/chroma.vert
const int HALF = 16;            // 32 taps, +-16 px: 2.9 sigma at EP
out vec4 color;

void main() {
    ivec2 size = textureSize(signal, 0);
    // this output's centre is the edge between texels 4i+1 and 4i+2: taps at +-0.5, 1.5, ... px,
    // Gaussian weights by recurrence, g(o + 1) = g(o) * q^(2o + 1) with q = exp(-1 / (2 sigma^2))
    float q = gauss.x, g = gauss.y, r = q * q, q2 = q * q;
    ivec2 p = ivec2(int(gl_FragCoord.x) * 4 + 2, int(gl_FragCoord.y));
    vec2 sum = vec2(0.0);
    for (int k = 0; k < HALF; k++) {
        sum += g * (texelFetch(signal, ivec2(min(p.x + k, size.x - 1), p.y), 0).yz
                  + texelFetch(signal, ivec2(max(p.x - 1 - k, 0), p.y), 0).yz);
        g *= r;
        r *= q2;
    }
    color = vec4(sum / gauss.z, 0.5, 1.0);   // still offset: the mean of offset values is offset
}
