// The newest dream carried to this frame along the scene's own motion (render/reproject.py), for the
// carrying pass (core/reproject.frag) and the mix that carries as it mixes (core/mix.frag with
// CARRY). Needs core/ring.glsl before it. Each ring slot holds one frame's two-frame motion, depth
// and one-frame motion, in pixels of the ring's grid, GL orientation. Walking back from this frame,
// two frames a fetch (and one single step first for an odd age, the ODD variant), finds where each
// pixel's surface was in the dream's base frame; the dream is read there. A surface that was hidden
// on the way (its depth there is not the depth it has now: something stood in front) or off the
// screen was never dreamed: the fill takes its place, weighted softly so the join does not show.
uniform sampler2D first;      // the atlas holding this frame
uniform sampler2D rest;       // the atlas the two-frame steps walk (this frame's parity or, ODD, the other)
uniform ivec2 u_grid;         // a slot's size in pixels
uniform vec2 u_texel;         // one ring pixel in atlas uv
uniform int u_cols;           // slots in a row of an atlas
uniform int u_half;           // slots in an atlas
uniform vec2 u_first;         // this frame's slot corner in `first`
uniform int u_start;          // the slot in `rest` the two-frame steps start from
uniform int u_pairs;          // two-frame steps to the base frame

// a slot's corner, worked out rather than looked up in a uniform array: indexed per pixel, an array
// costs llvmpipe a gather (0.5 ms a pass at 256x192); no integer division either (slow per lane)
vec2 corner(int slot) {
    float row = floor((float(slot) + 0.5) / float(u_cols));
    return vec2(float(slot) - row * float(u_cols), row) * vec2(u_grid);
}

// a slot's texel nearest q (ring pixels, clamped into the slot) in an atlas; its corner in pixels
vec4 at(sampler2D ring, vec2 corner, vec2 q) {
    vec2 c = clamp(q, vec2(0.5), vec2(u_grid) - 0.5);  // (texture() beat texelFetch on llvmpipe)
    return texture(ring, (corner + c) * u_texel);
}

// depth agrees within what `frames` of walking and turning can change (10 % + 15 cm a frame);
// twice that is surely another surface. Unknown depth (0, a video source) always agrees.
float agree(float now, float then, float frames) {
    float tol = frames * (0.1 * now + 0.15);
    return 1.0 - smoothstep(tol, 2.0 * tol, abs(then - now));
}

// the dream (of the base frame) at this pixel's surface (uv: this frame), over `fill` where it never saw it
vec3 carried(sampler2D dream, vec2 uv, vec3 fill) {
    vec2 q = uv * vec2(u_grid);  // this pixel's centre, in ring pixels
    vec4 here = at(first, u_first, q);
    float seen = 1.0;
#ifdef ODD
    q -= decoded(here.w);
    vec4 back = at(rest, corner(u_start), q);
    seen *= agree(here.z, back.z, 1.0);
    here = back;
#endif
    int slot = u_start;
    for (int i = 0; i < u_pairs; i++) {
        q -= here.xy;
        slot = slot == 0 ? u_half - 1 : slot - 1;
        vec4 before = at(rest, corner(slot), q);
        seen *= agree(here.z, before.z, 2.0);
        here = before;
    }
    // off the screen in the base frame: the dream never saw it (a pixel's width of blend)
    vec2 edge = min(q, vec2(u_grid) - q);
    seen *= clamp(min(edge.x, edge.y) + 0.5, 0.0, 1.0);
    vec3 seen_then = texture(dream, clamp(q / vec2(u_grid), 0.0, 1.0)).rgb;
    return fill + (seen_then - fill) * seen;
}
