#version 330
// What the colour-under path does to chroma after the low-pass: `bleed` drags it to the right of
// edges (a one-sided exponential tail, as a real deck's causal filters do; 0 leaves the tape-speed
// bandwidth alone), the colour-under carrier's jitter shifts the hue of each line, and some lines
// lose their colour. Works on the 160-sample chroma, so a tap here spans 4 tape pixels.
uniform sampler2D chroma;       // IQ as 0.5 + 0.8 * value, at 160x480
uniform vec2 u_resolution;
uniform int u_frame;
uniform int seed;
uniform float bleed;
uniform float chroma_noise;
uniform float chroma_loss;
in vec2 uv;
out vec4 color;

uint hash(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
uint h3(int stream, int frame, int line) {
    return hash(hash(uint(seed) * 0x9e3779b9u + uint(stream)) ^ hash(uint(frame) ^ hash(uint(line))));
}
float u01(uint h) { return float(h >> 8) * (1.0 / 16777216.0); }

const int TAIL = 8;             // taps of the bleed tail: up to 32 tape px to the left

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    int line = int(u_resolution.y) - 1 - p.y;
    vec2 iq = texelFetch(chroma, p, 0).xy - 0.5;
    if (bleed > 0.0) {
        float a = exp(-1.0 / (bleed * 3.5)), w = 1.0, wsum = 1.0;
        for (int k = 1; k <= TAIL; k++) {
            w *= a;
            iq += w * (texelFetch(chroma, ivec2(max(p.x - k, 0), p.y), 0).xy - 0.5);
            wsum += w;
        }
        iq /= wsum;
    }
    if (chroma_noise > 0.0) {
        uint h = h3(1, u_frame, line);
        float phase = chroma_noise * 0.35 * (u01(h) + u01(hash(h)) - 1.0);
        float c = cos(phase), s = sin(phase);
        iq = mat2(c, s, -s, c) * iq;
    }
    if (chroma_loss > 0.0 && u01(h3(2, u_frame, line / 2)) < chroma_loss * chroma_loss * 0.2)
        iq = vec2(0.0);
    color = vec4(iq + 0.5, 0.5, 1.0);
}
