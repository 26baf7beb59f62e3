#version 330
// The deck's on-screen display, drawn the way a deck's character generator does it: a 5x7 bitmap
// font on a coarse grid (one font pixel is 4 tape px by 3 lines), white with a dark drop shadow:
// PLAY or REC, the tape speed, a counter, TRACKING while the servo hunts. A small pass of its own,
// so the font's tables cost 160x160 lookups a frame, not one per screen pixel.
uniform float u_time;           // the counter shows show time (frame / fps offline)
uniform int tape_speed;
uniform int osd;
uniform int recording;
uniform float tracking_jump;
uniform vec2 u_resolution;      // the font grid, 160x160
in vec2 uv;
out vec4 color;

// glyphs 5x7, rows top first, 5 bits a row: x holds rows 0-3, y rows 4-6.
// codes: " 0123456789:PLAYRECSTKING>*-" (> is the play triangle, * the record dot)
ivec2 glyph_bits(int code) {
    switch (code) {
        case  0: return ivec2(      0,     0);  //  
        case  1: return ivec2( 476789, 26158);  // 0
        case  2: return ivec2( 143492,  4238);  // 1
        case  3: return ivec2( 476194,  4383);  // 2
        case  4: return ivec2(1017986,  1582);  // 3
        case  5: return ivec2(  72018, 31810);  // 4
        case  6: return ivec2(1033153,  1582);  // 5
        case  7: return ivec2( 205342, 17966);  // 6
        case  8: return ivec2(1016900,  8456);  // 7
        case  9: return ivec2( 476718, 17966);  // 8
        case 10: return ivec2( 476719,  1100);  // 9
        case 11: return ivec2(  12672, 12672);  // :
        case 12: return ivec2(1001022, 16912);  // P
        case 13: return ivec2( 541200, 16927);  // L
        case 14: return ivec2( 476735, 17969);  // A
        case 15: return ivec2( 574788,  4228);  // Y
        case 16: return ivec2(1001022, 21073);  // R
        case 17: return ivec2(1032734, 16927);  // E
        case 18: return ivec2( 476688, 16942);  // C
        case 19: return ivec2( 508430,  1086);  // S
        case 20: return ivec2(1020036,  4228);  // T
        case 21: return ivec2( 576152, 21073);  // K
        case 22: return ivec2( 462980,  4238);  // I
        case 23: return ivec2( 583347, 17969);  // N
        case 24: return ivec2( 476695, 17967);  // G
        case 25: return ivec2( 549790, 29456);  // >
        case 26: return ivec2(  15359, 32192);  // *
        case 27: return ivec2(     31,     0);  // -
    }
    return ivec2(0);
}
bool lit(ivec2 g, ivec2 f) {        // font px f (column 0-4, row 0-6) of a glyph
    if (f.x < 0 || f.x > 4 || f.y < 0 || f.y > 6)
        return false;
    int shift = (f.y < 4 ? (3 - f.y) : (6 - f.y)) * 5 + 4 - f.x;
    return (((f.y < 4 ? g.x : g.y) >> shift) & 1) != 0;
}

const int PLAY[6] = int[6](12, 13, 14, 15, 0, 25);
const int REC[5] = int[5](16, 17, 18, 0, 26);
const int SPEED[6] = int[6](19, 12, 13, 12, 17, 12);
const int TRACKING[8] = int[8](20, 16, 14, 18, 21, 22, 23, 24);

int code_at(int label, int i) {     // character i of a label, -1 past its end
    if (label == 0)
        return recording != 0 ? (i < 5 ? REC[i] : -1) : (i < 6 ? PLAY[i] : -1);
    if (label == 1)
        return i < 2 ? SPEED[tape_speed * 2 + i] : -1;
    if (label == 2) {               // H:MM:SS
        int s = max(int(u_time), 0);
        int digit = i == 0 ? s / 3600 % 10 : i == 2 ? s / 600 % 6 : i == 3 ? s / 60 % 10
                  : i == 5 ? s / 10 % 6 : s % 10;
        return i > 6 ? -1 : (i == 1 || i == 4) ? 11 : 1 + digit;
    }
    return i < 8 ? TRACKING[i] : -1;
}

void main() {
    color = vec4(0.0);
    if (osd == 0)
        return;
    ivec2 pos = ivec2(int(gl_FragCoord.x), int(u_resolution.y) - 1 - int(gl_FragCoord.y));
    // the labels' corners on the 160x160 font grid: PLAY top left, speed top right, counter
    // bottom left, TRACKING below the middle; a pixel belongs to at most one
    int label = pos.y < 20 ? (pos.x < 80 ? 0 : 1) : pos.y > 130 ? 2 : 3;
    ivec2 at = label == 0 ? ivec2(11, 11) : label == 1 ? ivec2(138, 11)
             : label == 2 ? ivec2(11, 142) : ivec2(56, 100);
    if (label == 3 && tracking_jump < 0.05)
        return;
    ivec2 f = pos - at;
    if (f.x < 0 || f.y < 0 || f.y > 7)
        return;
    int code = code_at(label, f.x / 6);
    if (code < 0)
        return;
    ivec2 g = glyph_bits(code);
    ivec2 cell = ivec2(f.x % 6, f.y);
    if (lit(g, cell)) {
        bool dot = code == 26;      // the REC dot blinks, in red
        color = dot ? (fract(u_time) < 0.5 ? vec4(0.95, 0.12, 0.1, 1.0) : vec4(0.0))
                    : vec4(0.94, 0.94, 0.94, 1.0);
    } else if (lit(g, cell - ivec2(1))) {
        color = vec4(0.0, 0.0, 0.0, 0.8);                       // drop shadow
    }
}
