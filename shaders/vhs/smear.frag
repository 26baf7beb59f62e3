#version 330
// What the colour-under path does to chroma after the low-pass: `bleed` drags it to the right of
// edges (a one-sided exponential tail, as a real deck's causal filters do; 0 leaves the tape-speed
// bandwidth alone), the deck's 1H delay line averages each line with the one above it in the field
// (`chroma_blend`), the carrier's jitter shifts the hue of each line, and some lines lose their
// colour. Works on the 160-sample chroma of one field, so a tap here spans 4 tape pixels.
uniform sampler2D chroma;       // IQ as 0.5 + 0.8 * value, 160x240
uniform sampler2D lines;        // the second column: each line's hue jitter and loss (vhs/lines.frag)
uniform vec2 u_resolution;
uniform float chroma_blend;
flat in vec2 tail;              // the bleed tail's fall a tap and weights' sum (vhs/smear.vert)
out vec4 color;

const int TAIL = 8;             // taps of the bleed tail: up to 32 tape px to the left

void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    ivec2 above = ivec2(p.x, min(p.y + 1, int(u_resolution.y) - 1));
    float b = 0.5 * chroma_blend;
    float a = tail.x, w = 1.0;
    vec2 iq = vec2(0.0);
    for (int k = 0; k <= TAIL; k++) {
        int x = max(p.x - k, 0);
        iq += w * mix(texelFetch(chroma, ivec2(x, p.y), 0).xy,
                      texelFetch(chroma, ivec2(x, above.y), 0).xy, b);
        w *= a;
    }
    iq = iq / tail.y - 0.5;
    vec4 hue = texelFetch(lines, ivec2(1, p.y), 0);     // (cos, sin, kept): the line's jitter and loss
    iq = mat2(hue.x, hue.y, -hue.y, hue.x) * iq * hue.z;
    color = vec4(iq + 0.5, 0.5, 1.0);
}
