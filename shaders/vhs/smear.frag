#version 330
// What the colour-under path does to chroma after the low-pass: `bleed` drags it to the right of
// edges (a one-sided exponential tail, as a real deck's causal filters do; 0 leaves the tape-speed
// bandwidth alone), the deck's 1H delay line averages each line with the one above it in the field
// (`chroma_blend`), the carrier's jitter shifts the hue of each line, and some lines lose their
// colour. Works on the 160-sample chroma of one field, so a tap here spans 4 tape pixels.
uniform sampler2D chroma;       // IQ as 0.5 + 0.8 * value, 160x240
uniform vec2 u_resolution;
uniform int u_frame;
uniform int seed;
uniform int interlace;
uniform float bleed;
uniform float chroma_blend;
uniform float chroma_noise;
uniform float chroma_loss;
in vec2 uv;
out vec4 color;

uint hash(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
float u01(uint h) { return float(h >> 8) * (1.0 / 16777216.0); }

const int TAIL = 8;             // taps of the bleed tail: up to 32 tape px to the left

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 above = ivec2(p.x, min(p.y + 1, int(u_resolution.y) - 1));
    int line = 2 * (int(u_resolution.y) - 1 - p.y) + (interlace != 0 ? (u_frame & 1) : 0);
    float b = 0.5 * chroma_blend;
    // the tail's weights fall by `a` a tap; bleed 0 is a tail of nothing
    float a = bleed > 0.0 ? exp(-1.0 / (bleed * 3.5)) : 0.0, w = 1.0, wsum = 0.0;
    vec2 iq = vec2(0.0);
    for (int k = 0; k <= TAIL; k++) {
        int x = max(p.x - k, 0);
        iq += w * mix(texelFetch(chroma, ivec2(x, p.y), 0).xy,
                      texelFetch(chroma, ivec2(x, above.y), 0).xy, b);
        wsum += w;
        w *= a;
    }
    iq = iq / wsum - 0.5;
    uint key = hash(uint(seed) * 0x5bd1e995u ^ (uint(u_frame) * 0x9e3779b9u)
                    ^ (uint(line) * 0x85ebca6bu));
    if (chroma_noise > 0.0) {
        float phase = chroma_noise * 0.35 * (u01(key) + u01(hash(key)) - 1.0);
        float c = cos(phase), s = sin(phase);
        iq = mat2(c, s, -s, c) * iq;
    }
    if (chroma_loss > 0.0 && u01(hash(key + 0x632be5abu)) < chroma_loss * chroma_loss * 0.2)
        iq = vec2(0.0);
    color = vec4(iq + 0.5, 0.5, 1.0);
}
