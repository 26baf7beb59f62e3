// The reprojection ring's slots (render/reproject.py): two atlases, frames of even and odd numbers,
// each slot one frame's (m2.xy, depth, m1): m2 its motion composed with the frame before's (the
// surface at p was at p - m2 two frames ago), m1 its own (p - m1 a frame ago), packed into one
// float as two 12-bit fixed-point numbers (1/16 pixel, +-128 pixels): exact in a float's 24 bits.
const float ENC = 16.0;

float encoded(vec2 m) {
    vec2 e = floor(clamp(m * ENC + 2048.0, 0.0, 4095.0) + 0.5);
    return e.x * 4096.0 + e.y;
}

vec2 decoded(float w) {
    float x = floor(w / 4096.0);
    return (vec2(x, w - x * 4096.0) - 2048.0) / ENC;
}
