#version 330
// Tape: chroma bleeds right of edges (YIQ), and a tracking band of displaced, noisy lines rolls
// down the picture. Noise is a hash of (seed, frame, line): the same inputs give the same bytes.
uniform sampler2D source;
uniform vec2 u_resolution;
uniform int u_frame;
uniform int seed;
uniform float bleed;
uniform float tracking;
in vec2 uv;
out vec4 color;

const mat3 RGB2YIQ = mat3(0.299, 0.5959, 0.2115, 0.587, -0.2746, -0.5227, 0.114, -0.3213, 0.3112);
const mat3 YIQ2RGB = mat3(1.0, 1.0, 1.0, 0.956, -0.272, -1.106, 0.621, -0.647, 1.703);

uint hash(uint x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    return x;
}
float rand(int a, int b, int c) {
    return float(hash(uint(a) ^ hash(uint(b) ^ hash(uint(c) + 0x9e3779b9u)))) / 4294967295.0;
}

void main() {
    float line = floor(uv.y * u_resolution.y);
    vec2 p = uv;
    float band = 0.0;
    if (tracking > 0.0) {
        // the band rolls down at a seed-chosen speed; its height and displacement grow with tracking
        float speed = 0.05 + 0.1 * rand(seed, 7, 11);
        float centre = 1.0 - fract(float(u_frame) / 60.0 * speed + rand(seed, 3, 5));
        float halfh = 0.02 + 0.12 * tracking;
        float d = abs(uv.y - centre);
        d = min(d, 1.0 - d);
        band = smoothstep(halfh, 0.0, d) * tracking;
        float jitter = rand(seed, u_frame, int(line)) - 0.5;
        p.x += band * (0.08 * jitter + 0.03);
    }
    vec3 yiq = RGB2YIQ * texture(source, p).rgb;
    // chroma smear: an exponential tail reaching `reach` pixels to the left of this one
    float reach = 1.0 + 23.0 * bleed;
    vec2 iq = yiq.yz;
    float wsum = 1.0;
    for (int k = 1; k <= 8; k++) {
        float off = reach * float(k) / 8.0;
        float w = exp(-3.0 * float(k) / 8.0);
        iq += w * (RGB2YIQ * texture(source, p - vec2(off / u_resolution.x, 0.0)).rgb).yz;
        wsum += w;
    }
    yiq.yz = iq / wsum;
    float n = rand(seed ^ 0x51ed, u_frame, int(line * u_resolution.x + floor(uv.x * u_resolution.x)));
    yiq.x = mix(yiq.x, n, band * 0.6);
    color = vec4(clamp(YIQ2RGB * yiq, 0.0, 1.0), 1.0);
}
