#version 330
// The playback deck: luma through the filter deck.vert designed for this frame (the tape speed's
// bandwidth, `ringing`, `sharpen`); chroma brought back from 160 samples, late by the deck's
// chroma delay; YIQ back to RGB. One field, 640x240, like every tape pass before it.
uniform sampler2D signal;       // Y (and IQ) of this field, noise and damage included
uniform sampler2D smear;        // IQ as 0.5 + 0.8 * value, 160x240
uniform vec2 u_resolution;
uniform int tape_speed;         // 0 SP, 1 LP, 2 EP
uniform float chroma_delay;
flat in vec4 taps0;
flat in vec3 taps1;
out vec4 color;

const mat3 YIQ2RGB = mat3(1.0, 1.0, 1.0, 0.956, -0.272, -1.106, 0.621, -0.647, 1.703);
#include "vhs/tape.glsl"

void main() {
    int last = int(u_resolution.x) - 1;
    ivec2 p = ivec2(gl_FragCoord.xy);
    float w[7] = float[7](taps0.x, taps0.y, taps0.z, taps0.w, taps1.x, taps1.y, taps1.z);
    float y = w[0] * texelFetch(signal, p, 0).x;
    for (int k = 1; k < 7; k++)
        y += w[k] * (texelFetch(signal, ivec2(min(p.x + k, last), p.y), 0).x
                   + texelFetch(signal, ivec2(max(p.x - k, 0), p.y), 0).x);

    float delay = chroma_delay * DELAY_SAMPLES[tape_speed] / FSC4_MHZ * u_resolution.x / ACTIVE_US;  // px
    vec2 iq = texture(smear, vec2(gl_FragCoord.x - delay, gl_FragCoord.y) / u_resolution).xy;
    color = vec4(clamp(YIQ2RGB * vec3(y, (iq - 0.5) / 0.8), 0.0, 1.0), 1.0);
}
