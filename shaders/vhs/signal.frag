#version 330
// The tape itself: the picture becomes a YIQ signal, and everything the heads get wrong happens here,
// before the deck's filters (tracking error, head switching, time-base wobble, dropouts, tape noise,
// snow), so that the later low-passes streak the damage horizontally the way tape does.
// All randomness is an integer hash of (seed, frame, line, pixel): the same inputs give the same bytes.
uniform sampler2D source;
uniform vec2 u_resolution;      // the tape's 640x480
uniform int u_frame;
uniform int seed;
uniform float tracking;         // 0 clean .. 1 unwatchable
uniform float tracking_jump;    // a decaying jolt, kicked by cmd/tracking/jump
uniform float head_switch;
uniform float edge_wave;        // px
uniform float dropouts;
uniform float luma_noise;
uniform float chroma_noise;
uniform float snow;
in vec2 uv;
out vec4 color;

const mat3 RGB2YIQ = mat3(0.299, 0.5959, 0.2115, 0.587, -0.2746, -0.5227, 0.114, -0.3213, 0.3112);

uint hash(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
// one independent stream per (seed, purpose), then per frame, line and column
uint h4(int stream, int frame, int line, int col) {
    uint h = hash(uint(seed) * 0x9e3779b9u + uint(stream));
    return hash(h ^ hash(uint(frame) ^ hash(uint(line) ^ hash(uint(col)))));
}
float u01(uint h) { return float(h >> 8) * (1.0 / 16777216.0); }
// four bytes summed: a cheap bell curve with unit variance (Irwin-Hall)
float gauss(uint h) {
    vec4 b = vec4(uvec4(h, h >> 8, h >> 16, h >> 24) & 255u) / 255.0;
    return (b.x + b.y + b.z + b.w - 2.0) * 1.732;
}
// smooth value noise along the lines, drifting over frames: -1..1
float wave(int stream, float line, int frame) {
    float l = line / 14.0, t = float(frame) / 5.0;
    float il = floor(l), it = floor(t), fl = smoothstep(0.0, 1.0, l - il), ft = smoothstep(0.0, 1.0, t - it);
    float a = u01(h4(stream, int(it), int(il), 0)), b = u01(h4(stream, int(it), int(il) + 1, 0));
    float c = u01(h4(stream, int(it) + 1, int(il), 0)), d = u01(h4(stream, int(it) + 1, int(il) + 1, 0));
    return mix(mix(a, b, fl), mix(c, d, fl), ft) * 2.0 - 1.0;
}

void main() {
    float W = u_resolution.x, H = u_resolution.y;
    int col = int(gl_FragCoord.x);
    int line = int(H) - 1 - int(gl_FragCoord.y);    // 0 at the top of the picture
    float dx = 0.0;       // sideways displacement of this line, px (positive: picture moves right)
    float dy = 0.0;       // vertical displacement of the picture, lines
    float torn = 0.0;     // 0..1: how much of this line the heads failed to read
    float lost = 0.0;     // 0..1: chroma gone

    // time-base error: the whole line wobbles a little, slowly
    if (edge_wave > 0.0)
        dx += edge_wave * wave(1, float(line), u_frame);

    // tracking: the heads leave the tracks; a band of torn, noisy lines rolls through the picture
    float t = clamp(tracking + tracking_jump, 0.0, 1.0);
    if (t > 0.0) {
        float speed = (0.6 + 0.8 * u01(h4(2, 0, 0, 0))) / 600.0 * (1.0 + 3.0 * t);  // heights/frame
        float period = 1.0 / speed;
        float centre = fract(u01(h4(3, 0, 0, 0)) + mod(float(u_frame), period) * speed);
        float y = (float(line) + 0.5) / H;
        float d = abs(y - centre);
        d = min(d, 1.0 - d);
        float half_h = 0.015 + 0.22 * t * sqrt(t);
        float band = smoothstep(half_h, half_h * 0.25, d) * (0.45 + 0.55 * t);
        if (t > 0.5) {   // a second, weaker band and unsteady lines everywhere
            float d2 = abs(fract(centre + 0.43) - y);
            d2 = min(d2, 1.0 - d2);
            band = max(band, smoothstep(half_h * 0.6, 0.0, d2) * (t - 0.5) * 1.6);
            dx += (t - 0.5) * 8.0 * gauss(h4(4, u_frame, line, 0));
        }
        float r = u01(h4(5, u_frame, line, 0));
        dx += band * (10.0 + 40.0 * r * r);
        torn = max(torn, band * (0.35 + 0.65 * u01(h4(6, u_frame, line, col / 7))));
        lost = max(lost, band);
        // the picture jolts when the servo loses lock, and rolls when it never finds it
        dy += tracking_jump * tracking_jump * 36.0 + smoothstep(0.8, 1.0, t) * mod(float(u_frame) * 7.0, H);
    }

    // head switching: the bottom few lines, just before vertical sync, come from the other head
    if (head_switch > 0.0) {
        float lines = 5.0 + 3.0 * head_switch * u01(h4(7, u_frame / 3, 0, 0));    // 5..8 of 480
        float below = H - float(line);                                            // 1 at the bottom
        if (below <= lines) {
            float k = 1.0 - (below - 1.0) / lines;                                 // 0 top .. 1 bottom
            dx += head_switch * (4.0 + 26.0 * k * k + 6.0 * u01(h4(8, u_frame, line, 0)));
            torn = max(torn, head_switch * (0.2 + 0.6 * k) * u01(h4(9, u_frame, line, col / 5)));
            lost = max(lost, head_switch * k);
        }
    }

    float sx = (gl_FragCoord.x - dx) / W;
    float sy = fract(uv.y + dy / H);
    vec3 yiq = (sx < 0.0 || sx > 1.0) ? vec3(0.0) : RGB2YIQ * texture(source, vec2(sx, sy)).rgb;

    if (torn > 0.0) {
        float n = u01(h4(10, u_frame, line, col));
        yiq.x = mix(yiq.x, n * n * 1.1, torn);
    }
    yiq.yz *= 1.0 - lost;

    // dropouts: a missing patch of oxide reads as a white (sometimes black) streak without colour
    if (dropouts > 0.0) {
        float p = dropouts * dropouts * 0.06;
        uint h = h4(11, u_frame, line, 0);
        if (u01(h) < p) {
            uint g = hash(h);
            float start = u01(g) * W, len = 6.0 + 160.0 * pow(u01(hash(g)), 2.0);
            float x = gl_FragCoord.x - start;
            float e = smoothstep(0.0, 2.0, x) * smoothstep(len, len - 6.0, x);
            float level = (g & 7u) == 0u ? 0.02 : 0.95;
            yiq = mix(yiq, vec3(level, 0.0, 0.0), e);
        }
    }

    // snow: the FM signal breaks up into short white dashes
    if (snow > 0.0) {
        int dash = (col + int(u01(h4(12, u_frame, line, 0)) * 4.0)) / 4;
        if (u01(h4(13, u_frame, line, dash)) < snow * snow * 0.03)
            yiq.x += 0.6 + 0.4 * u01(h4(14, u_frame, line, dash));
    }

    // tape noise, added before the deck's low-passes shape it into streaks
    if (luma_noise > 0.0)
        yiq.x += luma_noise * 0.25 * gauss(h4(15, u_frame, line, col));
    if (chroma_noise > 0.0) {
        uint h = h4(16, u_frame, line, col);
        yiq.yz += chroma_noise * 0.6 * vec2(gauss(h), gauss(hash(h)));
    }
    color = vec4(yiq, 1.0);
}
