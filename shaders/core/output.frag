#version 330
// The only pass at output resolution: the screen the tape is watched on, the frame fitted to the
// output by output.vert. With `crt`, the glass bulges (corners fall off), the beam draws 240 field
// lines (brighter spots widen the beam) and the corners darken; then the master fade.
// One texture fetch, outside any branch (llvmpipe pays dearly for fetches in branches). Every term
// is a scalar gain, multiplied together before the one multiply of the colour: this pass shades
// 0.7 million pixels a frame at 720p, so each operation saved a pixel is worth having.
uniform sampler2D source;
uniform vec2 u_source_size;
uniform int u_fields;           // the frame holds its two fields one above the other (render/chain.py)
uniform float fade;
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
noperspective in vec2 face;
out vec4 color;

void main() {
    vec2 p = face;
    bool tube = crt != 0;
    if (tube)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);
    vec2 q = p * 0.5 + 0.5;
    // where a frame of fields keeps the line under q: GL row r = 2m + b of the frame is field
    // 1 - b's line, kept at row m of that field's half (the upper half for b = 0)
    float t = q.y * u_source_size.y * 0.5, m = floor(t), across = t - m;     // (across: fract(t))
    float stored = m / u_source_size.y + (0.5 / u_source_size.y + 0.5) - 0.5 * step(0.5, across);
    vec3 c = texture(source, vec2(q.x, u_fields != 0 ? stored : q.y)).rgb;
    vec2 edge = min(q, 1.0 - q) * u_source_size;                 // outside the raster is black
    float inside = min(edge.x, edge.y);
    float gain = tube ? smoothstep(0.0, 2.0, inside) : step(0.0, inside);
    if (tube) {
        float d = across - 0.5;                                  // from the nearest field line's centre
        float width = 0.2 + 0.16 * gain * dot(c, vec3(0.299, 0.587, 0.114));
        // a bell, cheaper than exp(): 1 / (1 + x / 2 + x^2 / 8) with x = (d / width)^2, one division
        float w2 = width * width, d2 = d * d;
        float beam = w2 * w2 / (w2 * w2 + d2 * (0.5 * w2 + 0.125 * d2));
        vec2 v = p * vec2(0.8, 1.0);
        float r2 = dot(v, v) * 0.6;
        gain *= (1.0 + (1.3 * beam - 1.0) * scanlines) * (1.0 - vignette * 0.5 * r2 * r2);
    }
    color = vec4(clamp(c * gain, 0.0, 1.0) * fade, 1.0);
}
