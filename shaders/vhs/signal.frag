#version 330
// The tape itself: one field of the picture (240 of the 480 lines, every other one, as the heads
// read them) becomes a YIQ signal, and everything the heads get wrong happens here, before the
// deck's filters (tracking error, head switching, time-base wobble, dropouts, tape noise, snow), so
// the later low-passes streak the damage horizontally the way tape does.
// All randomness is an integer hash of (seed, frame, line, pixel): same inputs, same bytes.
uniform sampler2D source;
uniform vec2 u_resolution;      // one field: 640x240
uniform int u_frame;
uniform int seed;
uniform int interlace;          // fields alternate; off, every frame is field 0 (240p)
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

uint hash(uint x) {             // lowbias32: for keys, which everything downstream inherits
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
uint mix32(uint x) {            // one round: enough to split a good key into more values
    x ^= x >> 15; x *= 0x2c1b3c6du; x ^= x >> 12;
    return x;
}
float u01(uint h) { return float(h >> 8) * (1.0 / 16777216.0); }
float value(uint key, int stream) { return u01(mix32(key + uint(stream) * 0x9e3779b9u)); }
float bell(uint h) {            // four bytes summed: a cheap bell curve with unit variance
    vec4 b = vec4(uvec4(h, h >> 8, h >> 16, h >> 24) & 255u) / 255.0;
    return (b.x + b.y + b.z + b.w - 2.0) * 1.732;
}

void main() {
    float W = u_resolution.x, H = 2.0 * u_resolution.y;            // the frame has 480 lines
    int field = interlace != 0 ? (u_frame & 1) : 0;
    int col = int(gl_FragCoord.x);
    int line = 2 * (int(u_resolution.y) - 1 - int(gl_FragCoord.y)) + field;   // 0 at the top
    // keys chained (seed, frame) -> line -> pixel; hashes are most of this pass's cost
    uint seed_key = uint(seed) * 0x5bd1e995u;
    uint line_key = hash(seed_key ^ (uint(u_frame) * 0x9e3779b9u) ^ (uint(line) * 0x85ebca6bu));
    uint pixel_key = hash(line_key ^ (uint(col) * 0xc2b2ae35u));
    float dx = 0.0;       // sideways displacement of this line, px (positive: picture moves right)
    float dy = 0.0;       // vertical displacement of the picture, lines
    float torn = 0.0;     // 0..1: how much of this line the heads failed to read
    float lost = 0.0;     // 0..1: chroma gone

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
        float band = smoothstep(half_h, half_h * 0.25, d) * (0.45 + 0.55 * t);
        if (t > 0.5) {   // a second, weaker band and unsteady lines everywhere
            float d2 = abs(fract(centre + 0.43) - y);
            d2 = min(d2, 1.0 - d2);
            band = max(band, smoothstep(half_h * 0.6, 0.0, d2) * (t - 0.5) * 1.6);
            dx += (t - 0.5) * 8.0 * bell(mix32(line_key + 6u));
        }
        float r = value(line_key, 7);
        dx += band * (10.0 + 40.0 * r * r);
        torn = max(torn, band * (0.35 + 0.65 * value(line_key ^ uint(col / 7), 8)));
        lost = max(lost, band);
        // the picture jolts when the servo loses lock, and rolls when it never finds it
        dy += tracking_jump * tracking_jump * 36.0;
        dy += smoothstep(0.8, 1.0, t) * mod(float(u_frame) * 7.0, H);
    }

    // head switching: the bottom few lines, just before vertical sync, come from the other head
    if (head_switch > 0.0 && line >= int(H) - 8) {
        float lines = 5.0 + 3.0 * head_switch * value(seed_key ^ uint(u_frame / 3), 9);  // 5-8
        float below = H - float(line);                  // 1 at the bottom
        if (below <= lines) {
            float k = 1.0 - (below - 1.0) / lines;      // 0 at the band top, 1 at the bottom
            dx += head_switch * (4.0 + 26.0 * k * k + 6.0 * value(line_key, 10));
            torn = max(torn, head_switch * (0.2 + 0.6 * k) * value(line_key ^ uint(col / 5), 11));
            lost = max(lost, head_switch * k);
        }
    }

    float sx = (gl_FragCoord.x - dx) / W;
    float sy = fract(1.0 - (float(line) + 0.5 - dy) / H);
    vec3 yiq = RGB2YIQ * texture(source, vec2(sx, sy)).rgb;
    yiq *= step(0.0, sx) * step(sx, 1.0);                   // shifted in from the blanking: black

    if (torn > 0.0) {
        float n = u01(pixel_key);
        yiq.x = mix(yiq.x, n * n * 1.1, torn);
    }
    yiq.yz *= 1.0 - lost;

    // dropouts: a missing patch of oxide reads as a white (sometimes black) streak without colour
    if (dropouts > 0.0) {
        uint h = mix32(line_key + 13u);
        if (u01(h) < dropouts * dropouts * 0.06) {
            float start = value(h, 1) * W, len = 6.0 + 160.0 * pow(value(h, 2), 2.0);
            float x = gl_FragCoord.x - start;
            float e = smoothstep(0.0, 2.0, x) * smoothstep(len, len - 6.0, x);
            float level = (h & 7u) == 0u ? 0.02 : 0.95;
            yiq = mix(yiq, vec3(level, 0.0, 0.0), e);
        }
    }

    // snow: the FM signal breaks up into short white dashes
    if (snow > 0.0) {
        int dash = (col + int(line_key & 3u)) / 4;          // 4 px dashes, staggered per line
        uint h = mix32(line_key ^ (uint(dash) * 0x27d4eb2fu));
        if (u01(h) < snow * snow * 0.03)
            yiq.x += 0.6 + 0.4 / 255.0 * float(h & 255u);
    }

    // tape noise, added before the deck's low-passes shape it into streaks
    if (luma_noise > 0.0)
        yiq.x += luma_noise * 0.25 * bell(mix32(pixel_key + 20u));
    if (chroma_noise > 0.0) {   // flat, not bell-shaped: the colour-under low-pass averages 32
        uint h = mix32(pixel_key + 21u);
        yiq.yz += chroma_noise * 0.6 * 3.464 * (vec2(uvec2(h, h >> 16) & 65535u) / 65535.0 - 0.5);
    }
    color = vec4(yiq.x, yiq.yz * 0.8 + 0.5, 1.0);     // 8-bit target: IQ offset and scaled
}
