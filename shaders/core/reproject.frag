#version 330
// The newest dream carried to this frame along the scene's own motion (render/reproject.py).
// Each ring slot holds one frame's (motion.xy, depth): motion in pixels of the scene's grid, GL
// orientation, n-1 -> n (the surface at p was at p - motion a frame before). Walking back from
// this frame's slot, u_steps fetches find where each pixel's surface was in the dream's base
// frame; the dream is read there. A surface that was hidden in an earlier frame (its depth there
// is not the depth it has now: something stood in front) or off the screen was never dreamed: the
// current scene fills it, weighted softly so the join does not show as an edge.
uniform sampler2D generated;  // the dream of the base frame (any size: read by uv)
uniform sampler2D scene;      // this frame's scene colour: the fill
uniform sampler2D ring;       // slots tiled in rows, each u_grid: (motion.xy, depth, 0)
uniform ivec2 u_grid;         // the scene's size in pixels
uniform int u_newest;         // the slot of this frame
uniform int u_slots;          // slots in the ring
uniform vec2 u_texel;         // one ring pixel in atlas uv
uniform int u_cols;           // slots in a row of the atlas
uniform int u_steps;          // frames to carry back (the dream's age, capped)
in vec2 uv;
out vec4 color;

// nearest (the ring's filter), clamped into the slot. The slot's corner is worked out, not looked up
// in a uniform array: indexed per pixel, an array costs llvmpipe a gather (0.5 ms a pass at 256x192)
vec4 at(int slot, vec2 q) {
    vec2 c = clamp(q, vec2(0.5), vec2(u_grid) - 0.5);  // (texture() beat texelFetch on llvmpipe)
    float row = floor((float(slot) + 0.5) / float(u_cols));  // (no integer division: slow per lane)
    vec2 corner = vec2(float(slot) - row * float(u_cols), row) * vec2(u_grid);
    return texture(ring, (corner + c) * u_texel);
}

void main() {
    vec2 q = uv * vec2(u_grid);  // this pixel's centre, in scene pixels
    int slot = u_newest;
    vec4 here = at(slot, q);
    float seen = 1.0;
    for (int i = 0; i < u_steps; i++) {
        q -= here.xy;
        slot = slot == 0 ? u_slots - 1 : slot - 1;
        vec4 before = at(slot, q);
        // depth agrees within what a frame of walking and turning can change (10 % + 15 cm);
        // twice that is surely another surface. Unknown depth (0, a video source) always agrees.
        float tol = 0.1 * here.z + 0.15;
        seen *= 1.0 - smoothstep(tol, 2.0 * tol, abs(before.z - here.z));
        here = before;
    }
    // off the screen in the base frame: the dream never saw it (a pixel's width of blend)
    vec2 edge = min(q, vec2(u_grid) - q);
    seen *= clamp(min(edge.x, edge.y) + 0.5, 0.0, 1.0);
    vec3 dream = texture(generated, clamp(q / vec2(u_grid), 0.0, 1.0)).rgb;
    if (seen >= 1.0) {  // (most pixels: the fill's taps are paid only where it shows)
        color = vec4(dream, 1.0);
        return;
    }
    // the fill: the scene softened to about the dream's own detail (four taps, a pixel and a half
    // apart), so a revealed strip does not stand out as the one sharp thing in the picture
    vec2 d = 1.5 / vec2(min(u_grid, textureSize(scene, 0)));  // in the coarser of the two pixels
    vec2 lo = max(uv - d, d), hi = min(uv + d, 1.0 - d);  // inside: a scene texture may repeat
    vec3 fill = 0.25 * (texture(scene, lo).rgb + texture(scene, vec2(hi.x, lo.y)).rgb
                      + texture(scene, vec2(lo.x, hi.y)).rgb + texture(scene, hi).rgb);
    color = vec4(fill + (dream - fill) * seen, 1.0);
}
