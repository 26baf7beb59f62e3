#version 330
// The TV the tape plays on. The deck's on-screen display is keyed over the picture (a 5x7 bitmap
// font, the blocky kind decks draw: PLAY, speed, counter, REC), then the lens/CRT separates R and B
// radially (`aberration` tape px at the side edge, none at the centre), and `crt` bends the glass,
// draws the beam's 240 field lines and darkens the corners. Runs on a 960x720 raster so the
// scanlines and curvature don't alias against the tape's 480 lines; the cost is fixed, not output's.
uniform sampler2D deck;         // the tape picture, 640x480 RGB
uniform vec2 u_source_size;
uniform float u_time;           // the counter shows show time (frame / fps offline)
uniform int tape_speed;
uniform int osd;
uniform int recording;
uniform float tracking_jump;
uniform float aberration;       // tape px at the side edge
uniform int crt;
uniform float scanlines;
uniform float curvature;
uniform float vignette;
in vec2 uv;
out vec4 color;

// glyph rows, 5 bits each, top row first; codes: " 0123456789:PLAYRECSTKING>*-"
const int FONT[28 * 7] = int[28 * 7](
     0,  0,  0,  0,  0,  0,  0,  //
    14, 17, 19, 21, 25, 17, 14,  // 0
     4, 12,  4,  4,  4,  4, 14,  // 1
    14, 17,  1,  2,  4,  8, 31,  // 2
    31,  2,  4,  2,  1, 17, 14,  // 3
     2,  6, 10, 18, 31,  2,  2,  // 4
    31, 16, 30,  1,  1, 17, 14,  // 5
     6,  8, 16, 30, 17, 17, 14,  // 6
    31,  1,  2,  4,  8,  8,  8,  // 7
    14, 17, 17, 14, 17, 17, 14,  // 8
    14, 17, 17, 15,  1,  2, 12,  // 9
     0, 12, 12,  0, 12, 12,  0,  // :
    30, 17, 17, 30, 16, 16, 16,  // P
    16, 16, 16, 16, 16, 16, 31,  // L
    14, 17, 17, 31, 17, 17, 17,  // A
    17, 17, 10,  4,  4,  4,  4,  // Y
    30, 17, 17, 30, 20, 18, 17,  // R
    31, 16, 16, 30, 16, 16, 31,  // E
    14, 17, 16, 16, 16, 17, 14,  // C
    15, 16, 16, 14,  1,  1, 30,  // S
    31,  4,  4,  4,  4,  4,  4,  // T
    17, 18, 20, 24, 20, 18, 17,  // K
    14,  4,  4,  4,  4,  4, 14,  // I
    17, 25, 21, 19, 17, 17, 17,  // N
    14, 17, 16, 23, 17, 17, 15,  // G
    16, 24, 28, 30, 28, 24, 16,  // > (play)
     0, 14, 31, 31, 31, 14,  0,  // * (record dot)
     0,  0,  0, 31,  0,  0,  0   // -
);
const int PLAY[6] = int[6](12, 13, 14, 15, 0, 25);
const int REC[5] = int[5](16, 17, 18, 0, 26);
const int SPEED[6] = int[6](19, 12, 13, 12, 17, 12);
const int TRACKING[8] = int[8](20, 16, 14, 18, 21, 22, 23, 24);
const float PX = 3.0;           // tape px per font px: 21 lines tall, like a deck's character ROM
const float MARGIN = 44.0;

int code_at(int label, int i) {
    if (label == 0)
        return recording != 0 ? (i < 5 ? REC[i] : -1) : (i < 6 ? PLAY[i] : -1);
    if (label == 1)
        return i < 2 ? SPEED[tape_speed * 2 + i] : -1;
    if (label == 2) {
        int s = max(int(u_time), 0);
        int d[7] = int[7](s / 3600 % 10, -1, s / 600 % 6, s / 60 % 10, -1, s / 10 % 6, s % 10);
        return i < 7 ? (d[i] < 0 ? 11 : 1 + d[i]) : -1;
    }
    return i < 8 ? TRACKING[i] : -1;
}

int glyph(int label, ivec2 f) {     // the code whose lit pixel is at font px f, or -1
    if (f.x < 0 || f.y < 0 || f.y > 6 || f.x % 6 == 5)
        return -1;
    int code = code_at(label, f.x / 6);
    if (code < 0 || ((FONT[code * 7 + f.y] >> (4 - f.x % 6)) & 1) == 0)
        return -1;
    return code;
}

vec4 overlay(vec2 pos) {            // pos in tape px from the top left; rgb and coverage
    vec2 at[4] = vec2[4](vec2(MARGIN, 34.0), vec2(640.0 - MARGIN - 11.0 * PX, 34.0),
                         vec2(MARGIN, 480.0 - 34.0 - 7.0 * PX), vec2(320.0 - 23.5 * PX, 300.0));
    float shadow = 0.0;
    for (int label = 0; label < 4; label++) {
        if (label == 3 && tracking_jump < 0.05)
            break;
        ivec2 f = ivec2(floor((pos - at[label]) / PX));
        int code = glyph(label, f);
        if (code == 26)             // the REC dot blinks, in red
            return fract(u_time) < 0.5 ? vec4(0.95, 0.12, 0.1, 1.0) : vec4(0.0);
        if (code >= 0)
            return vec4(0.94, 0.94, 0.94, 1.0);
        if (glyph(label, f - ivec2(1)) >= 0)
            shadow = 0.8;
    }
    return vec4(0.0, 0.0, 0.0, shadow);
}

vec3 shown(vec2 t) {                // what the deck sends at tape coordinate t, OSD keyed in
    if (any(lessThan(t, vec2(0.0))) || any(greaterThan(t, vec2(1.0))))
        return vec3(0.0);
    vec3 c = texture(deck, t).rgb;
    if (osd != 0) {
        vec4 o = overlay(vec2(t.x, 1.0 - t.y) * u_source_size);
        c = mix(c, o.rgb, o.a);
    }
    return c;
}

void main() {
    vec2 p = uv * 2.0 - 1.0;
    if (crt != 0)
        p *= 1.0 + curvature * 0.12 * (p.yx * p.yx);        // the glass bulges: corners fall off
    vec2 q = p * 0.5 + 0.5;
    vec3 c;
    if (aberration > 0.0) {
        // radial in pixels: (q - 0.5) * 2 is 1 at the side edge, scaled to `aberration` tape px
        vec2 off = (q - 0.5) * (2.0 * aberration / u_source_size.x);
        c = vec3(shown(q - off).r, shown(q).g, shown(q + off).b);   // red outward, blue inward
    } else {
        c = shown(q);
    }
    if (crt != 0) {
        vec2 edge = min(q, 1.0 - q) * u_source_size;                // soft, rounded raster edge
        c *= smoothstep(0.0, 2.0, min(edge.x, edge.y));
        // the beam draws 240 lines a field; brighter spots make a wider beam that fills the gap
        float d = fract(q.y * u_source_size.y * 0.5) - 0.5;
        float width = 0.2 + 0.16 * dot(c, vec3(0.299, 0.587, 0.114));
        float beam = exp(-d * d / (2.0 * width * width));
        c *= mix(1.0, 1.3 * beam, scanlines);
        c *= 1.0 - vignette * 0.5 * pow(dot(p * vec2(0.8, 1.0), p * vec2(0.8, 1.0)) * 0.6, 1.5);
    }
    color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
