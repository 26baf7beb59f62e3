#version 330
// The tape itself: one field of the picture (240 of the 480 lines, every other one, as the heads
// read them) becomes a YIQ signal, and everything the heads get wrong happens here, before the
// deck's filters (tracking error, head switching, time-base wobble, dropouts, tape noise, snow), so
// the later low-passes streak the damage horizontally the way tape does.
// All randomness is an integer hash of (seed, frame, line, pixel): same inputs, same bytes.
uniform sampler2D original;      // the picture the chain was given
uniform int u_source_fields;    // ... as this frame's field alone (render/chain.py): its lines are ours
uniform sampler2D lines;        // per line: (dx px, tracking tear, chroma lost, head-switch tear): vhs/lines.frag
uniform vec2 u_resolution;      // one field: 640x240
uniform int u_frame;
uniform int seed;
uniform int interlace;          // fields alternate; off, every frame is field 0 (240p)
uniform float tracking;         // 0 clean .. 1 unwatchable
uniform float tracking_jump;    // a decaying jolt, kicked by cmd/tracking/jump
uniform float dropouts;
uniform float luma_noise;
uniform float chroma_noise;
uniform float snow;
in vec2 uv;
out vec4 color;

const mat3 RGB2YIQ = mat3(0.299, 0.5959, 0.2115, 0.587, -0.2746, -0.5227, 0.114, -0.3213, 0.3112);

#include "vhs/hash.glsl"

void main() {
    float W = u_resolution.x, H = 2.0 * u_resolution.y;            // the frame has 480 lines
    int field = interlace != 0 ? (u_frame & 1) : 0;
    int col = int(gl_FragCoord.x);
    int line = 2 * (int(u_resolution.y) - 1 - int(gl_FragCoord.y)) + field;   // 0 at the top
    // keys chained (seed, frame) -> line -> pixel; hashes are most of this pass's cost
    uint seed_key = uint(seed) * 0x5bd1e995u;
    uint line_key = hash(seed_key ^ (uint(u_frame) * 0x9e3779b9u) ^ (uint(line) * 0x85ebca6bu));
    uint pixel_key = hash(line_key ^ (uint(col) * 0xc2b2ae35u));
    vec4 along = texelFetch(lines, ivec2(0, int(gl_FragCoord.y)), 0);   // what the whole line suffers
    float dx = along.x;   // sideways displacement of this line, px (positive: picture moves right)
    float dy = 0.0;       // vertical displacement of the picture, lines
    float torn = 0.0;     // 0..1: how much of this line the heads failed to read
    float lost = along.z; // 0..1: chroma gone

    // tracking: the band of torn, noisy lines (vhs/lines.frag) tears in 7 px pieces
    float t = clamp(tracking + tracking_jump, 0.0, 1.0);
    if (t > 0.0) {
        torn = max(torn, along.y * (0.35 + 0.65 * value(line_key ^ uint(col / 7), 8)));
        // the picture jolts when the servo loses lock, and rolls when it never finds it
        dy += tracking_jump * tracking_jump * 36.0;
        dy += smoothstep(0.8, 1.0, t) * mod(float(u_frame) * 7.0, H);
    }
    // head switching: the bottom few lines come from the other head, torn in 5 px pieces
    if (along.w > 0.0)
        torn = max(torn, along.w * value(line_key ^ uint(col / 5), 11));

    float sx = (gl_FragCoord.x - dx) / W;
    // a whole frame is read at this line's place in it; a field (our lines alone) at its own row
    float sy = fract(1.0 - (float(line) + 0.5 + (0.5 - float(field)) * float(u_source_fields) - dy) / H);
    vec3 yiq = RGB2YIQ * texture(original, vec2(sx, sy)).rgb;
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
