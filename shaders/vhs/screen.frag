#version 330
// The TV's glass and beam: `crt` bends the picture on a bulging screen, draws the beam's 240 field
// lines (brighter spots widen the beam) and darkens the corners; off, it is a flat panel. Runs on a
// 960x720 raster so the scanlines and the curvature don't alias against the tape's 480 lines; its
// cost is fixed, not the output's. No texture fetch sits in a branch: llvmpipe pays dearly for
// those.
uniform sampler2D frame;        // the woven picture with OSD and lens, 640x480 RGB
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
in vec2 uv;
out vec4 color;

void main() {
    vec2 tape = vec2(textureSize(frame, 0));
    vec2 p = uv * 2.0 - 1.0;
    if (crt != 0)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);        // the glass bulges: corners fall off
    vec2 q = p * 0.5 + 0.5;
    vec3 c = texture(frame, q).rgb;
    vec2 edge = min(q, 1.0 - q) * tape;                     // outside the raster is black
    c *= crt != 0 ? smoothstep(0.0, 2.0, min(edge.x, edge.y)) : step(0.0, min(edge.x, edge.y));
    if (crt != 0) {
        // the beam draws 240 lines a field; brighter spots make a wider beam that fills the gap
        float d = fract(q.y * tape.y * 0.5) - 0.5;          // from the nearest field line's centre
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float x = d * d / (width * width);
        float beam = 1.0 / (1.0 + x * (0.5 + x * 0.125));   // a bell, cheaper than exp()
        c *= mix(1.0, 1.3 * beam, scanlines);
        vec2 v = p * vec2(0.8, 1.0);
        float r2 = dot(v, v) * 0.6;
        c *= 1.0 - vignette * 0.5 * r2 * r2;
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
