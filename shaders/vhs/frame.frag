#version 330
// The picture as the TV receives it. The deck delivers one field (240 lines) a frame; here it is
// woven into the 480-line frame: with `interlace` the other field's lines still show the previous
// field, so motion combs as on a real set; without it each field line is shown twice (240p).
// The deck's on-screen display is keyed in at full resolution (its character generator is not
// taped), and the lens separates R and B radially: red drawn larger, blue smaller, about the
// centre, by `aberration` tape px at the side edge and none at the centre (the OSD, keyed after
// the tape, stays sharp: one fetch, not three). This runs at 640x480, so the TV's finer raster
// after it needs one fetch a pixel, not three. Its target holds the two fields one above the other
// (`fields` in vhs.toml: field 0's lines in the lower half), so the chain draws the half of the
// field that came and the other keeps what it showed, with nothing drawn or copied for it.
uniform sampler2D deck;         // this field, RGB, 640x240
uniform sampler2D osd_layer;    // font pixels over the frame, 4 px by 3 lines each: 160x160
uniform vec2 u_resolution;      // 640x480
uniform int u_frame;
uniform int interlace;
uniform int osd;
uniform float aberration;       // tape px at the side edge
out vec4 color;

int field;
ivec2 size;                     // the deck's texture: 640x240

// the deck texture's row that shows a tape line (lines from the top): the nearest of this field's
// lines (the other field's lines show the one above: line doubling)
int row(float y) {
    return size.y - 1 - clamp(int(floor((y - 0.5 - float(field)) * 0.5 + 0.25)), 0, size.y - 1);
}

// one channel of this field at a tape position (px, lines from the top), interpolated across the
// line by hand (two texel fetches are cheaper on llvmpipe than one filtered one), black beyond it;
// only the channel asked for is interpolated (this pass shades 300k pixels: every operation counts)
float shown(vec2 at, int channel) {
    int last = size.x - 1;
    float x = at.x - 0.5, fx = floor(x);
    int x0 = int(fx), y = row(at.y);
    float a = texelFetch(deck, ivec2(clamp(x0, 0, last), y), 0)[channel];
    float b = texelFetch(deck, ivec2(clamp(x0 + 1, 0, last), y), 0)[channel];
    return mix(a, b, x - fx) * step(0.0, at.x) * step(at.x, float(last + 1));
}

void main() {
    field = interlace != 0 ? (u_frame & 1) : 0;
    // the line this texel holds (0 at the top): half the target a field, top line first
    int half_rows = int(u_resolution.y) / 2, r = int(gl_FragCoord.y);
    int f = r >= half_rows ? 1 : 0;
    int line = 2 * (half_rows - 1 - (r - f * half_rows)) + f;
    int y = int(u_resolution.y) - 1 - line;                         // its row in the frame (GL)
    size = textureSize(deck, 0);
    vec2 at = vec2(gl_FragCoord.x, float(line) + 0.5);
    vec2 centre = 0.5 * u_resolution;
    float k = aberration / centre.x;
    float green = texelFetch(deck, ivec2(int(at.x), row(at.y)), 0).g;   // on a texel: one fetch
    vec3 rgb = vec3(shown(centre + (at - centre) / (1.0 + k), 0), green,
                    shown(centre + (at - centre) / (1.0 - min(k, 0.5)), 2));
    // the OSD, keyed in by the deck before the TV; one font pixel is 4 px by 3 lines
    vec4 text = texelFetch(osd_layer, ivec2(int(gl_FragCoord.x), y) / ivec2(4, 3), 0);
    color = vec4(mix(rgb, text.rgb, text.a * float(osd)), 1.0);
}
