#version 330
// The TV the tape plays on. The deck's on-screen display is keyed over the picture, then the lens/CRT
// separates R and B radially (`aberration` tape px at the side edge, none at the centre), and `crt`
// bends the glass, draws the beam's 240 field lines and darkens the corners. Runs on a 960x720
// raster so the scanlines and curvature don't alias against the tape's 480 lines; its cost is
// fixed, not the output's.
uniform sampler2D deck;         // the tape picture, 640x480 RGB
uniform sampler2D osd_layer;    // the deck's display: colour and coverage over the same frame
uniform int osd;
uniform float aberration;       // tape px at the side edge
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
in vec2 uv;
out vec4 color;

vec3 shown(vec2 t) {                // what the deck sends at tape coordinate t, OSD keyed in
    if (any(lessThan(t, vec2(0.0))) || any(greaterThan(t, vec2(1.0))))
        return vec3(0.0);
    vec3 c = texture(deck, t).rgb;
    if (osd != 0) {
        vec4 o = texture(osd_layer, t);
        c = mix(c, o.rgb, o.a);
    }
    return c;
}

void main() {
    vec2 tape = vec2(textureSize(deck, 0));
    vec2 p = uv * 2.0 - 1.0;
    if (crt != 0)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);        // the glass bulges: corners fall off
    vec2 q = p * 0.5 + 0.5;
    vec3 c;
    if (aberration > 0.0) {
        // red drawn larger, blue smaller, about the centre: a point at the side edge moves by
        // `aberration` tape px, a point halfway out by half that (radial in pixels), none at the centre
        float k = aberration / (0.5 * tape.x);
        vec2 d = q - 0.5;
        c = vec3(shown(0.5 + d / (1.0 + k)).r, shown(q).g, shown(0.5 + d / (1.0 - min(k, 0.5))).b);
    } else {
        c = shown(q);
    }
    if (crt != 0) {
        vec2 edge = min(q, 1.0 - q) * tape;                // soft, rounded raster edge
        c *= smoothstep(0.0, 2.0, min(edge.x, edge.y));
        // the beam draws 240 lines a field; brighter spots make a wider beam that fills the gap
        float d = fract(q.y * tape.y * 0.5) - 0.5;
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float beam = exp(-d * d / (2.0 * width * width));
        c *= mix(1.0, 1.3 * beam, scanlines);
        c *= 1.0 - vignette * 0.5 * pow(dot(p * vec2(0.8, 1.0), p * vec2(0.8, 1.0)) * 0.6, 1.5);
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
