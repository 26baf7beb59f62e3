#version 330
// The tape's damage that is the same along a whole line, worked out once a line (240 pixels) rather
// than once a pixel (153,600) by vhs/signal.frag, which reads it here: the time-base wobble, the
// tracking error's band and the head-switching band. Each line's texel: (sideways displacement px,
// how much of the line the tracking band tears, how much of its chroma is lost, how much the
// head-switching band tears), and in the second column what vhs/smear.frag does to the line's
// chroma: (cos, sin of its hue's jitter, 1 or 0 where the line loses its colour). The same code
// those passes ran per pixel, so the same numbers.
uniform vec2 u_resolution;      // 2 x the field's lines (240)
uniform int u_frame;
uniform int seed;
uniform int interlace;          // fields alternate; off, every frame is field 0 (240p)
uniform float tracking;         // 0 clean .. 1 unwatchable
uniform float tracking_jump;    // a decaying jolt, kicked by cmd/tracking/jump
uniform float head_switch;
uniform float edge_wave;        // px
uniform float chroma_noise;
uniform float chroma_loss;
out vec4 color;

#include "vhs/hash.glsl"

void main() {
    float H = 2.0 * u_resolution.y;                                 // the frame has 480 lines
    int field = interlace != 0 ? (u_frame & 1) : 0;
    int line = 2 * (int(u_resolution.y) - 1 - int(gl_FragCoord.y)) + field;   // 0 at the top
    uint seed_key = uint(seed) * 0x5bd1e995u;
    uint line_key = hash(seed_key ^ (uint(u_frame) * 0x9e3779b9u) ^ (uint(line) * 0x85ebca6bu));
    float dx = 0.0;       // sideways displacement of this line, px (positive: picture moves right)
    float band = 0.0;     // the tracking band here: how much of the line it tears
    float lost = 0.0;     // 0..1: chroma gone
    float switched = 0.0; // the head-switching band here: how much of the line it tears
    // time-base error: the lines wobble sideways, slowly and smoothly; three drifting ripples
    // with seed-chosen phases, so no hash per pixel is needed
    if (edge_wave > 0.0) {
        float t = float(u_frame) / 60.0, l = float(line);
        uint h = hash(seed_key + 1u);
        vec3 phase = 6.2832 / 255.0 * vec3(uvec3(h, h >> 8, h >> 16) & 255u);
        dx += edge_wave * (0.55 * sin(l * 0.043 + t * 0.9 + phase.x)
                         + 0.3 * sin(l * 0.117 - t * 1.9 + phase.y)
                         + 0.15 * sin(l * 0.29 + t * 3.7 + phase.z));
    }

    // tracking: the heads leave the tracks; a band of torn, noisy lines rolls through the picture
    float t = clamp(tracking + tracking_jump, 0.0, 1.0);
    if (t > 0.0) {
        uint h = hash(seed_key + 2u);
        float speed = (0.6 + 0.8 * u01(h)) / 600.0 * (1.0 + 3.0 * t);   // picture heights a frame
        float period = 1.0 / speed;
        float centre = fract(value(h, 1) + mod(float(u_frame), period) * speed);
        float y = (float(line) + 0.5) / H;
        float d = abs(y - centre);
        d = min(d, 1.0 - d);
        float half_h = 0.015 + 0.22 * t * sqrt(t);
        band = smoothstep(half_h, half_h * 0.25, d) * (0.45 + 0.55 * t);
        if (t > 0.5) {   // a second, weaker band and unsteady lines everywhere
            float d2 = abs(fract(centre + 0.43) - y);
            d2 = min(d2, 1.0 - d2);
            band = max(band, smoothstep(half_h * 0.6, 0.0, d2) * (t - 0.5) * 1.6);
            dx += (t - 0.5) * 8.0 * bell(mix32(line_key + 6u));
        }
        float r = value(line_key, 7);
        dx += band * (10.0 + 40.0 * r * r);
        lost = max(lost, band);
    }

    // head switching: the bottom few lines, just before vertical sync, come from the other head
    if (head_switch > 0.0 && line >= int(H) - 8) {
        float lines = 5.0 + 3.0 * head_switch * value(seed_key ^ uint(u_frame / 3), 9);  // 5-8
        float below = H - float(line);                  // 1 at the bottom
        if (below <= lines) {
            float k = 1.0 - (below - 1.0) / lines;      // 0 at the band top, 1 at the bottom
            dx += head_switch * (4.0 + 26.0 * k * k + 6.0 * value(line_key, 10));
            switched = head_switch * (0.2 + 0.6 * k);
            lost = max(lost, head_switch * k);
        }
    }

    // the colour-under carrier's jitter shifts the hue of each line; some lines lose their colour
    float c = 1.0, s = 0.0, keep = 1.0;
    if (chroma_noise > 0.0) {
        float phase = chroma_noise * 0.35 * (u01(line_key) + u01(hash(line_key)) - 1.0);
        c = cos(phase);
        s = sin(phase);
    }
    if (chroma_loss > 0.0 && u01(hash(line_key + 0x632be5abu)) < chroma_loss * chroma_loss * 0.2)
        keep = 0.0;
    color = int(gl_FragCoord.x) == 0 ? vec4(dx, band, lost, switched) : vec4(c, s, keep, 0.0);
}
