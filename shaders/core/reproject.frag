#version 330
// The carrying pass (render/reproject.py): the newest dream carried to this frame (core/carry.glsl)
// into a texture of its own, for a mix whose scene and dream are not on the ring's grid (where they
// are, the mix carries as it mixes: core/mix.frag with CARRY). What the dream never saw is filled
// from the current scene softened to about the dream's own detail (four plain fetches a pixel of
// the coarser grid away, diagonally), so a revealed strip does not stand out as the one sharp thing
// in the picture. Plain fetches: a filtered one costs llvmpipe ~3.7, and it pays for the fill on
// every pixel (a branch around it saves nothing there).
#include "core/ring.glsl"
#include "core/carry.glsl"
uniform sampler2D generated;  // the dream of the base frame (any size: read by uv)
uniform sampler2D scene;      // this frame's scene colour: the fill
in vec2 uv;
out vec4 color;

void main() {
    ivec2 size = textureSize(scene, 0), top = size - 1;
    ivec2 d = max(ivec2(1), size / min(u_grid, size));
    ivec2 p = ivec2(uv * vec2(size));
    vec3 fill = 0.25 * (texelFetch(scene, clamp(p - d, ivec2(0), top), 0).rgb
                      + texelFetch(scene, clamp(p + ivec2(d.x, -d.y), ivec2(0), top), 0).rgb
                      + texelFetch(scene, clamp(p + ivec2(-d.x, d.y), ivec2(0), top), 0).rgb
                      + texelFetch(scene, clamp(p + d, ivec2(0), top), 0).rgb);
    color = vec4(carried(generated, uv, fill), 1.0);
}
