// Level 1, the Habitable Zone: poured concrete walls and columns with formwork seams and tie
// holes, a concrete floor with standing puddles that mirror the lights, rusty service pipes under
// a bare concrete ceiling, caged fluorescent tubes every other cell, and a grey haze.
const vec3 LAMP = vec3(0.93, 1.0, 0.90);

// distance of p to the tube of fixture id (a 1.5 x 0.14 m strip along x), and the fixture id
vec2 fixture(vec2 p, out ivec2 id) {
    id = ivec2(floor((p - u_light_offset) / u_light_grid + 0.5));
    vec2 local = p - (vec2(id) * u_light_grid + u_light_offset);
    return abs(local) - vec2(0.75, 0.07);
}

vec3 concrete(vec2 q, float room, float tone) {
    float n = vnoise(q * 1.7 + room * 9.0, 41u);
    return vec3(tone) * mix(vec3(0.98, 0.98, 1.0), vec3(1.03, 1.0, 0.94), room) * (0.8 + 0.35 * n);
}

vec3 wall(vec3 p, vec3 n, float room, float damage, float fp) {
    float u = abs(n.x) > 0.5 ? p.z : p.x;
    vec3 c = concrete(vec2(u, p.y), room, 0.55);
    vec2 board = vec2(u / 1.2, p.y / 0.6);
    vec2 f = fract(board);
    float seam = 1.0 - smoothstep(0.0, 0.02, min(f.y, 1.0 - f.y));
    c *= 1.0 - 0.18 * seam * detail(0.015, fp);                                // formwork seams
    float hole = length((f - 0.5) * vec2(1.2, 0.6));
    c *= 1.0 - 0.55 * smoothstep(0.022, 0.015, hole) * detail(0.02, fp);     // tie holes
    float damp = (0.2 + 0.9 * vnoise1(u * 0.6 + room * 21.0, 43u)) * damage;
    c = mix(c, c * vec3(0.62, 0.6, 0.52), smoothstep(damp + 0.05, damp - 0.1, p.y));
    float streak = vnoise1(u * 5.0 + room * 611.0, 44u);
    c *= 1.0 - 0.3 * smoothstep(0.7, 0.9, streak) * smoothstep(u_height - 2.5 * damage, u_height, p.y);
    return c;
}

vec3 ceiling(vec3 p, float room, out float glow) {
    ivec2 id;
    vec2 d = fixture(p.xz, id);
    float b = tube(id);
    glow = b * smoothstep(0.02, -0.02, max(d.x, d.y));
    float housing = smoothstep(0.12, 0.1, max(d.x + 0.05, d.y - 0.06));
    vec3 c = concrete(p.xz, room, 0.40);
    return mix(c, vec3(0.25, 0.25, 0.24), housing * (1.0 - glow));
}

vec3 floor_(vec3 p, float room, float damage) {
    vec3 c = concrete(p.xz, room, 0.45);
    float wet = vnoise(p.xz * 0.4 + room * 7.0, 45u);
    float puddle = smoothstep(0.66 - 0.2 * damage, 0.7 - 0.2 * damage, wet);
    if (puddle > 0.0) {
        // a still puddle is a mirror: follow the reflected ray up to the ceiling's tubes
        vec3 v = normalize(p - u_eye);
        vec3 r = vec3(v.x, -v.y, v.z);
        vec2 q = p.xz + r.xz * ((u_height - p.y) / max(r.y, 0.02));
        ivec2 id;
        vec2 d = fixture(q, id);
        float mirror = tube(id) * smoothstep(0.06, -0.02, max(d.x, d.y));
        vec3 wetc = c * 0.35 + vec3(0.04, 0.045, 0.05) + mirror * LAMP * 0.9;
        c = mix(c, wetc, puddle);
    }
    return c;
}

float lighting(vec3 p, vec3 n) {
    ivec2 base = ivec2(floor((p.xz - u_light_offset) / u_light_grid));
    float sum = 0.0;
    for (int k = 0; k < 4; k++) {
        ivec2 id = base + ivec2(k & 1, k >> 1);
        vec2 c = vec2(id) * u_light_grid + u_light_offset - p.xz;
        vec3 l = vec3(c.x, u_height - 0.1 - p.y, c.y);
        float d2 = dot(l, l) + 0.05;
        float facing = max(dot(n, l) * inversesqrt(d2), 0.0);
        sum += tube(id) * (0.2 + 0.8 * facing) / (1.0 + 0.12 * d2);
    }
    return sum;
}

void main() {
    float room = v_attr.y;
    float damage = smoothstep(0.2, 1.0, room);
    vec3 p = v_pos, n = v_normal;
    float fp = length(fwidth(p));  // metres per pixel here
    float glow = 0.0;
    vec3 albedo;
    if (kind == FLOOR) albedo = floor_(p, room, damage);
    else if (kind == CEILING) albedo = ceiling(p, room, glow);
    else if (kind == PIPE) albedo = vec3(0.36, 0.27, 0.2) * (0.7 + 0.5 * vnoise(p.xz * 3.0 + p.y, 46u));
    else albedo = wall(p, n, room, damage, fp);
    vec3 c = albedo * (0.16 + 1.1 * lighting(p, n) * LAMP) + glow * LAMP * 1.3;
    finish(c, 0.03 + 0.1 * u_fog);
}
