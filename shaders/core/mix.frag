#version 330
// The generated frame over the base scene, by `mix`. A dream made smaller than the scene (a patch's
// `dream_size`) gets back the scene's fine band, the detail it had no room for: the scene less the
// same scene at the dream's size (`low`, render/shrink.py), by `detail`. Where the dream is the
// scene, that is the scene exactly; where it dreamed, its own picture carries the scene's edges.
// With CARRY (render/compositor.py: scene, dream and the reprojection ring on one grid, no `low`)
// the dream is carried to this frame as it is mixed (core/carry.glsl): one pass, not a carrying
// pass and a mix, and the fill of what the dream never saw is the scene's own texel (the scene is
// on the dream's grid, so no sharper than the dream).
#ifdef CARRY
#include "core/ring.glsl"
#include "core/carry.glsl"
#endif
uniform sampler2D scene;
uniform sampler2D generated;
uniform sampler2D low;
uniform float mix;
uniform float detail;
in vec2 uv;
out vec4 color;
// With SAME_GRID (render/compositor.py: the dream and `low` at the scene's size) each texel is
// fetched as it is: llvmpipe filters a texture() even on a texel's centre, at three times the cost.
// With SCENE_GRID (a dream smaller than the scene) the scene alone is on this target's grid.
#ifdef SAME_GRID
#define AT(t) texelFetch(t, ivec2(gl_FragCoord.xy), 0)
#else
#define AT(t) texture(t, uv)
#endif
#if defined(SAME_GRID) || defined(SCENE_GRID)
#define SCENE_AT texelFetch(scene, ivec2(gl_FragCoord.xy), 0)
#else
#define SCENE_AT texture(scene, uv)
#endif

void main() {
    vec3 a = SCENE_AT.rgb;  // (the uniform `mix` hides GLSL's mix(): lerp by hand)
#ifdef CARRY
    vec3 dream = carried(generated, uv, a);
#else
    vec3 dream = AT(generated).rgb + detail * (a - AT(low).rgb);
#endif
    color = vec4(a + (dream - a) * mix, 1.0);
}
