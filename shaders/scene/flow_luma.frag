#version 330
// One level of the flow's luma pyramid (scene/flow.py): each texel the mean luma of the source
// texels its footprint covers, from `u_taps` x `u_taps` bilinear taps spread evenly over it. With a
// whole even ratio every tap falls on the corner of four texels, so the mean is exact (4 taps for
// a quarter, one for a half); other ratios are near it. Cheaper than shrink.frag's per-texel box on
// llvmpipe (a tap averages four texels for the price of one fetch).
uniform sampler2D source;   // the picture (RGBA) or the finer luma level (R), linear filter
uniform vec2 u_ratio;       // source texels per target texel, per axis
uniform int u_taps;         // taps per axis
uniform bool u_rgb;         // the source is a picture: take its luma
out vec4 color;

const vec3 LUMA = vec3(0.299, 0.587, 0.114);

void main() {
    vec2 lo = floor(gl_FragCoord.xy) * u_ratio, step = u_ratio / float(u_taps);
    vec2 texel = 1.0 / vec2(textureSize(source, 0));
    float sum = 0.0;
    for (int j = 0; j < u_taps; j++)
        for (int i = 0; i < u_taps; i++) {
            vec4 c = texture(source, (lo + (vec2(i, j) + 0.5) * step) * texel);
            sum += u_rgb ? dot(c.rgb, LUMA) : c.r;
        }
    color = vec4(sum / float(u_taps * u_taps));
}
