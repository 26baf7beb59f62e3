#version 330
// The TV. It receives one field (240 lines) a frame and weaves it into the 480-line picture: with
// `interlace` the other field's lines still glow from the previous field, so motion combs as on a
// real set; without it the field's lines fill the gaps (240p). The deck's on-screen display is keyed
// in (its character generator is not taped); the lens separates R and B radially, red drawn larger
// and blue smaller about the centre, by `aberration` tape px at the side edge, none at the centre;
// `crt` bends the glass, draws the beam's 240 field lines and darkens the corners.
// Runs on a 960x720 raster so scanlines and curvature don't alias against the tape's 480 lines; its
// cost is fixed, not the output's. No texture fetch sits in a branch: llvmpipe pays dearly for those.
uniform sampler2D deck;         // this field, RGB, 640x240
uniform sampler2D deck_prev;    // the previous field (alpha 0 while there is none)
uniform sampler2D osd_layer;    // font pixels over the frame, 4 px by 3 lines each: 160x160
uniform int u_frame;
uniform int interlace;
uniform int osd;
uniform float aberration;       // tape px at the side edge
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
in vec2 uv;
out vec4 color;

const vec2 TAPE = vec2(640.0, 480.0);   // the frame the fields weave into, px and lines
int field;

// one channel of the woven picture at a tape position (px from the left, lines from the top)
float woven(vec2 at, int channel) {
    float u = at.x / TAPE.x;
    // each field holds every other line; sampled at its own line positions they interpolate
    vec4 fresh = texture(deck, vec2(u, 1.0 - (at.y + 0.5 - float(field)) / TAPE.y));
    vec4 old = texture(deck_prev, vec2(u, 1.0 - (at.y + 0.5 - float(1 - field)) / TAPE.y));
    int line = int(floor(at.y));
    bool stale = interlace != 0 && ((line ^ field) & 1) != 0 && old.a > 0.5;
    float inside = step(0.0, at.x) * step(at.x, TAPE.x) * step(0.0, at.y) * step(at.y, TAPE.y);
    return (stale ? old[channel] : fresh[channel]) * inside;
}

void main() {
    field = interlace != 0 ? (u_frame & 1) : 0;
    vec2 p = uv * 2.0 - 1.0;
    if (crt != 0)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);        // the glass bulges: corners fall off
    vec2 at = (vec2(p.x, -p.y) * 0.5 + 0.5) * TAPE;           // tape px and lines, from the top left
    vec2 centre = 0.5 * TAPE;
    float k = aberration / centre.x;
    vec3 c = vec3(woven(centre + (at - centre) / (1.0 + k), 0), woven(at, 1),
                  woven(centre + (at - centre) / (1.0 - min(k, 0.5)), 2));
    ivec2 cell = clamp(ivec2(at / vec2(4.0, 3.0)), ivec2(0), ivec2(159));
    vec4 text = texelFetch(osd_layer, ivec2(cell.x, 159 - cell.y), 0);
    c = mix(c, text.rgb, text.a * float(osd) * step(0.0, min(at.x, at.y)));
    if (crt != 0) {
        vec2 edge = min(at, TAPE - at);                     // a soft, rounded raster edge
        c *= smoothstep(0.0, 2.0, min(edge.x, edge.y));
        // the beam draws 240 lines a field; brighter spots make a wider beam that fills the gap
        float d = fract(at.y * 0.5) - 0.5;
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float beam = exp(-d * d / (2.0 * width * width));
        c *= mix(1.0, 1.3 * beam, scanlines);
        vec2 v = p * vec2(0.8, 1.0);
        float r2 = dot(v, v) * 0.6;
        c *= 1.0 - vignette * 0.5 * r2 * sqrt(r2);
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
