#version 330
// A picture packed as UYVY (render/uyvy.py): 4:2:2 Y'CbCr, BT.709, video range (Y' 16-235, Cb/Cr
// 16-240), what NDI carries (the runtime decodes UYVY with BT.709 at every size; measured). Each
// texel of the target (half the picture's width) is one macro-pixel: (Cb, Y'0, Cr, Y'1) of the two
// pixels it covers, the chroma of their mean. The rows are drawn top row first (row 0 is the
// picture's top), so the read-back is the frame as sent, with no flip on the way out.
uniform sampler2D source;  // RGBA8, GL orientation (row 0 at the bottom), an even width
out vec4 color;
const vec3 LUMA = vec3(0.2126, 0.7152, 0.0722);
void main() {
    ivec2 p = ivec2(gl_FragCoord.xy);
    int row = textureSize(source, 0).y - 1 - p.y;
    vec3 a = texelFetch(source, ivec2(2 * p.x, row), 0).rgb;
    vec3 b = texelFetch(source, ivec2(2 * p.x + 1, row), 0).rgb;
    vec3 m = 0.5 * (a + b);
    float ym = dot(LUMA, m);
    float cb = (m.b - ym) / 1.8556, cr = (m.r - ym) / 1.5748;  // 2 (1 - Kb), 2 (1 - Kr)
    color = vec4(128.0 + 224.0 * cb, 16.0 + 219.0 * dot(LUMA, a), 128.0 + 224.0 * cr,
                 16.0 + 219.0 * dot(LUMA, b)) / 255.0;
}
