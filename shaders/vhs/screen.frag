#version 330
// The TV the tape plays on: the lens/CRT separates R and B radially (`aberration` tape px at the
// side edge, none at the centre), and `crt` bends the glass, draws the beam's 240 field lines and
// darkens the corners. Runs on a 960x720 raster so the scanlines and curvature don't alias against
// the tape's 480 lines; its cost is fixed, not the output's. No texture fetch sits in a branch:
// llvmpipe pays dearly for those.
uniform sampler2D deck;         // the tape picture with the deck's OSD, 640x480 RGB
uniform float aberration;       // tape px at the side edge
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
in vec2 uv;
out vec4 color;

void main() {
    vec2 tape = vec2(textureSize(deck, 0));
    vec2 p = uv * 2.0 - 1.0;
    if (crt != 0)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);        // the glass bulges: corners fall off
    vec2 q = p * 0.5 + 0.5;
    // red drawn larger, blue smaller, about the centre: a point at the side edge moves by
    // `aberration` tape px, a point halfway out by half that (radial in pixels), none at the centre
    float k = aberration / (0.5 * tape.x);
    vec3 c = vec3(texture(deck, 0.5 + (q - 0.5) / (1.0 + k)).r, texture(deck, q).g,
                  texture(deck, 0.5 + (q - 0.5) / (1.0 - min(k, 0.5))).b);
    vec2 edge = min(q, 1.0 - q) * tape;                     // outside the raster is black
    c *= crt != 0 ? smoothstep(0.0, 2.0, min(edge.x, edge.y)) : step(0.0, min(edge.x, edge.y));
    if (crt != 0) {
        // the beam draws 240 lines a field; brighter spots make a wider beam that fills the gap
        float d = fract(q.y * tape.y * 0.5) - 0.5;
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float beam = exp(-d * d / (2.0 * width * width));
        c *= mix(1.0, 1.3 * beam, scanlines);
        vec2 v = p * vec2(0.8, 1.0);
        float r2 = dot(v, v) * 0.6;
        c *= 1.0 - vignette * 0.5 * r2 * sqrt(r2);
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
