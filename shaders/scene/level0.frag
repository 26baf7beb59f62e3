// Level 0, the Lobby: mono-yellow wallpaper with a faded half-drop diamond, damp brown-yellow
// carpet, a drop ceiling of 60 cm tiles with 120x60 fluorescent panels on a grid of tubes.
// Per room (v_attr.y): tint, water damage, stained and missing tiles.
const vec3 LAMP = vec3(1.0, 0.97, 0.82);

vec3 wallpaper(vec3 p, vec3 n, float room, float damage, float fp) {
    float u = abs(n.x) > 0.5 ? p.z : p.x;
    vec3 base = mix(vec3(0.80, 0.71, 0.38), vec3(0.77, 0.71, 0.44), room);
    vec2 q = vec2(u, p.y) * 3.3;
    vec2 f = fract(vec2(q.x, q.y + 0.5 * floor(q.x)));
    float d = abs(f.x - 0.5) + abs(f.y - 0.5);
    float motif = 1.0 - smoothstep(0.0, 0.05, abs(d - 0.32));
    float stripe = 1.0 - smoothstep(0.0, 0.03, abs(f.x - 0.5));
    vec3 c = base * (1.0 - (0.07 * motif + 0.04 * stripe) * detail(0.03, fp));
    // water damage: a rising tide mark from the floor, leak streaks down from the ceiling
    float tide = (0.06 + 0.45 * vnoise1(u * 0.7 + room * 37.0, 11u)) * damage;
    float below = smoothstep(tide + 0.03, tide - 0.06, p.y);
    c = mix(c, c * vec3(0.80, 0.72, 0.55), below);
    c *= 1.0 - 0.12 * smoothstep(0.03, 0.0, abs(p.y - tide)) * step(0.05, damage);
    float streak = vnoise1(u * 7.0 + room * 531.0, 12u);
    float len = (0.3 + 1.4 * vnoise1(u * 2.0, 13u)) * damage;
    c *= 1.0 - 0.22 * smoothstep(0.72, 0.9, streak) * smoothstep(u_height - len, u_height, p.y);
    // seepage blotches: no two stretches of wall alike, even seen from arm's length
    float blot = vnoise(vec2(u * 1.4, p.y * 0.9) + room * 71.0, 14u);
    c = mix(c, c * vec3(0.83, 0.76, 0.57), smoothstep(0.5, 0.85, blot) * (0.4 + 0.6 * damage));
    c *= 1.0 - 0.22 * smoothstep(0.12, 0.0, p.y);  // grime at the skirting
    return c;
}

vec3 carpet(vec3 p, float room, float damage, float fp) {
    vec3 c = vec3(0.58, 0.49, 0.27) * (0.88 + 0.18 * vnoise(p.xz * 0.7, 21u));
    float wet = vnoise(p.xz * 0.45 + room * 13.0, 22u);
    c = mix(c, vec3(0.36, 0.29, 0.15), smoothstep(0.72 - 0.3 * damage, 0.86 - 0.3 * damage, wet));
    float pile = hash(ivec2(floor(p.xz * 70.0)), 23u);
    return c * (1.0 + 0.12 * (pile - 0.5) * detail(0.03, fp));
}

vec3 ceiling(vec3 p, float room, float damage, float fp, out float glow) {
    glow = 0.0;
    ivec2 id = ivec2(floor((p.xz - u_light_offset) / u_light_grid + 0.5));
    vec2 local = p.xz - (vec2(id) * u_light_grid + u_light_offset);
    if (abs(local.x) < 0.6 && abs(local.y) < 0.3) {
        float b = tube(id);
        vec2 e = 0.5 - abs(local / vec2(1.2, 0.6));
        glow = b * (0.7 + 0.3 * smoothstep(0.0, 0.12, min(e.x, e.y)));
        return mix(vec3(0.40, 0.40, 0.36), vec3(0.0), b);
    }
    vec2 t = p.xz / 0.6;
    ivec2 tid = ivec2(floor(t));
    vec2 f = fract(t);
    float edge = min(min(f.x, 1.0 - f.x), min(f.y, 1.0 - f.y));
    float th = hash(tid, 31u);
    if (th < 0.012 + 0.06 * damage * damage) return vec3(0.035, 0.03, 0.02);  // missing tile
    vec3 c = vec3(0.80, 0.77, 0.62);
    if (th > 0.975 - 0.12 * damage) {  // a water stain: a faint brown tide ring, never round
        vec2 q = f - 0.5 + 0.25 * (vec2(hash(tid, 32u), hash(tid, 33u)) - 0.5);
        float r = length(q) * (0.8 + 0.4 * hash(tid, 35u) * abs(q.x - q.y) * 4.0);
        float s = 0.15 + 0.25 * hash(tid, 34u);
        c = mix(c, vec3(0.66, 0.58, 0.40), 0.7 * smoothstep(s + 0.02, s - 0.1, r));
        c *= 1.0 - 0.12 * smoothstep(0.03, 0.0, abs(r - s));
    }
    float bar = 1.0 - smoothstep(0.012, 0.03, edge);  // the T-bar grid, faded where it would alias
    return mix(c, vec3(0.46, 0.43, 0.36), bar * detail(0.02, fp));
}

float lighting(vec3 p, vec3 n) {
    ivec2 base = ivec2(floor((p.xz - u_light_offset) / u_light_grid));
    float sum = 0.0;
    for (int k = 0; k < 4; k++) {
        ivec2 id = base + ivec2(k & 1, k >> 1);
        vec2 c = vec2(id) * u_light_grid + u_light_offset - p.xz;
        vec3 l = vec3(c.x, u_height - p.y, c.y);
        float d2 = dot(l, l) + 0.05;
        float facing = max(dot(n, l) * inversesqrt(d2), 0.0);
        sum += tube(id) * (0.25 + 0.75 * facing) / (1.0 + 0.3 * d2);
    }
    return sum;
}

void main() {
    float room = v_attr.y;
    float damage = smoothstep(0.25, 1.0, room);
    vec3 p = v_pos, n = v_normal;
    float fp = length(fwidth(p));  // metres per pixel here
    float glow = 0.0;
    vec3 albedo;
    if (kind == FLOOR) albedo = carpet(p, room, damage, fp);
    else if (kind == CEILING) albedo = ceiling(p, room, damage, fp, glow);
    else albedo = wallpaper(p, n, room, damage, fp);
    vec3 c = albedo * (0.22 + 1.25 * lighting(p, n) * LAMP) + glow * LAMP * 1.15;
    finish(c, 0.02 + 0.09 * u_fog);
}
