// The tape's integer hashes, written once for the passes that draw its randomness (an include line
// naming this file, expanded by render/gl.py): the same keys give the same bytes in every pass.
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
