#version 330
// The only pass at output resolution: the screen the tape is watched on, the frame fitted to the
// output by output.vert. With `crt`, the glass bulges (corners fall off), the beam draws 240 field
// lines (brighter spots widen the beam) and the corners darken; then the master fade.
// One texture fetch, outside any branch (llvmpipe pays dearly for fetches in branches).
uniform sampler2D source;
uniform vec2 u_source_size;
uniform float fade;
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
noperspective in vec2 face;
out vec4 color;

void main() {
    vec2 p = face;
    float bend = crt != 0 ? curvature * 0.12 : 0.0;
    p *= 1.0 + bend * (p.yx * p.yx);
    vec2 q = p * 0.5 + 0.5;
    vec3 c = texture(source, q).rgb;
    vec2 edge = min(q, 1.0 - q) * u_source_size;                 // outside the raster is black
    c *= crt != 0 ? smoothstep(0.0, 2.0, min(edge.x, edge.y)) : step(0.0, min(edge.x, edge.y));
    if (crt != 0) {
        float d = fract(q.y * u_source_size.y * 0.5) - 0.5;      // from the nearest field line's centre
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float x = d * d / (width * width);
        float beam = 1.0 / (1.0 + x * (0.5 + x * 0.125));        // a bell, cheaper than exp()
        c *= 1.0 + (1.3 * beam - 1.0) * scanlines;
        vec2 v = p * vec2(0.8, 1.0);
        float r2 = dot(v, v) * 0.6;
        c *= 1.0 - vignette * 0.5 * r2 * r2;
    }
    color = vec4(clamp(c, 0.0, 1.0) * fade, 1.0);
}
