#version 330
// The bleed tail's decay a tap and its weights' sum, worked out once a frame (they depend on `bleed`
// only) and handed to every pixel of vhs/smear.frag as constants (flat), not once a pixel.
in vec2 in_pos;
uniform float bleed;
flat out vec2 tail;             // (the weight's fall a tap, the weights' sum)

const int TAIL = 8;             // taps of the bleed tail (vhs/smear.frag)

void main() {
    // the tail's weights fall by `a` a tap; bleed 0 is a tail of nothing
    float a = bleed > 0.0 ? exp(-1.0 / (bleed * 3.5)) : 0.0, w = 1.0, wsum = 0.0;
    for (int k = 0; k <= TAIL; k++) {
        wsum += w;
        w *= a;
    }
    tail = vec2(a, wsum);
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
