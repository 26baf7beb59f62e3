// Shared by every level's fragment shader (prepended after #version): inputs, hashes, and the
// three outputs. Colour is fogged and exposed here; depth is the view-axis distance in metres;
// motion is in pixels of the working size, GL orientation (+x right, +y up), from frame n-1 to
// frame n: the surface seen at pixel p was at p - motion a frame ago.
uniform vec3 u_eye;
uniform vec2 u_resolution;
uniform uint u_seed;
uniform float u_time;
uniform float u_fog;
uniform float u_exposure;
uniform float u_far;
uniform float u_height;
uniform vec3 u_fog_colour;

in vec3 v_pos;
flat in vec3 v_normal;
flat in vec2 v_attr;
in vec4 v_prev;

layout(location = 0) out vec4 o_color;
layout(location = 1) out float o_depth;
layout(location = 2) out vec2 o_motion;

const int FLOOR = 0, CEILING = 1, WALL = 2, PILLAR = 3, PIPE = 4;
// The material this program shades: scene/backrooms.py compiles a level once per material and draws
// each with its own, because llvmpipe shades every side of a branch (one program choosing by the
// vertex's kind paid for all three materials at every pixel: 30 ms a 640x480 frame, against 20).
const int kind = KIND;

uint pcg(uint v) {
    uint s = v * 747796405u + 2891336453u;
    uint w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    return (w >> 22u) ^ w;
}

// uniform in [0, 1) for an integer cell, a salt and the level seed
float hash(ivec2 c, uint salt) {
    uint h = uint(c.x) * 1597334677u + uint(c.y) * 3812015801u + salt * 2654435761u + u_seed;
    return float(pcg(h)) * (1.0 / 4294967296.0);
}

// how much of a detail `size` metres across survives this pixel's footprint (0 = alias, so fade)
float detail(float size, float footprint) {
    return clamp(size / footprint - 1.0, 0.0, 1.0);
}

float vnoise1(float x, uint salt) {
    float i = floor(x), f = fract(x);
    f = f * f * (3.0 - 2.0 * f);
    return mix(hash(ivec2(int(i), 0), salt), hash(ivec2(int(i) + 1, 0), salt), f);
}

float vnoise(vec2 p, uint salt) {
    vec2 i = floor(p), f = fract(p);
    f = f * f * (3.0 - 2.0 * f);
    ivec2 c = ivec2(i);
    return mix(mix(hash(c, salt), hash(c + ivec2(1, 0), salt), f.x),
               mix(hash(c + ivec2(0, 1), salt), hash(c + ivec2(1, 1), salt), f.x), f.y);
}

// Brightness of fluorescent tube `id` this frame, computed once per frame on the CPU (lights.py)
// for a window of tubes around the camera: u_lights_origin is the id of entry 0 (rows along z).
// Four tubes a vec4 (the same bytes as a float array): NVIDIA's GL gives every element of a float
// array a register of its own, and 1024 of them left no room for the rest ("Constant register
// limit exceeded": the scene did not compile on an H200; llvmpipe never minded).
uniform vec4 u_lights[WINDOW * WINDOW / 4];
uniform ivec2 u_lights_origin;
uniform vec2 u_light_grid;    // tube spacing, metres: tube id hangs at id * grid + offset
uniform vec2 u_light_offset;

float tube(ivec2 id) {
    ivec2 t = clamp(id - u_lights_origin, ivec2(0), ivec2(WINDOW - 1));
    int i = t.y * WINDOW + t.x;
    return u_lights[i >> 2][i & 3];
}

void finish(vec3 colour, float density) {
    vec3 to = v_pos - u_eye;
    float dist = length(to);
    float f = max(1.0 - exp(-dist * density), smoothstep(u_far * 0.55, u_far, dist));
    o_color = vec4(mix(colour, u_fog_colour, f) * u_exposure, 1.0);
    o_depth = 1.0 / gl_FragCoord.w;  // clip w is the distance along the view axis
    vec2 prev = (v_prev.xy / max(v_prev.w, 1e-4) * 0.5 + 0.5) * u_resolution;
    o_motion = gl_FragCoord.xy - prev;
}
