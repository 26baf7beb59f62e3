"""The Backrooms: endless procedural levels walked by a camera, rasterised in one pass.

One pass over the visible chunks writes three targets at once: colour, depth (metres along the
view axis) and motion (pixels, frame n-1 → n). Chunk meshes are built on the CPU once and cached; all
surface detail is procedural in shaders/scene/level<N>.frag, compiled once per material (wall,
pipe, floor, ceiling) so that each pixel pays for its own material only. Every frame is a pure
function of (level, level_seed, frame, parameter history): the walk advances by the frame's dt,
flicker reads the frame's time, nothing reads the wall clock.

Drawing fields (a patch's `fields`), the target holds one field of a 4:3 picture with twice its
lines: the projection keeps the picture's aspect, and each field's lines sit where that field's lines
of the full frame are, half a frame line above (field 0) or below (field 1) the middle of a field's
row, so the two fields the tape weaves are 480 different lines, not 240 shown twice. The offset is in
the view-projection, so the motion each frame writes carries it and a carried dream follows it.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import moderngl
import numpy as np

from ..params import FrameParams, ParamSpec
from ..render.gl import line_directive, settler, shader_error, shader_path
from .camera import Pose, Walker, projection, view_matrix
from .layout import LEVELS, World
from .lights import WINDOW, tubes, window_origin
from .mesh import ATTRIBUTES, MATERIALS, PIPE, VERTEX, chunk_mesh, materials

_P: dict[str, Any] = {"origin": __name__, "group": "scene"}
PARAMS = (
    ParamSpec("level", "enum", "0", choices=tuple(str(s.index) for s in LEVELS), **_P,
              description="which level: 0 the yellow Lobby, 1 the concrete Habitable Zone "
                          "(lights out between)"),
    ParamSpec("level_seed", "int", 0, min=0, max=2**31 - 1, **_P,
              description="the building you are lost in: seed of the layout, the walk and the lights"),
    ParamSpec("speed", "float", 1.2, min=0.0, max=4.0, smooth=0.6, unit="m/s", **_P,
              description="walking speed of the camera"),
    ParamSpec("wander", "float", 0.5, min=0.0, max=1.0, smooth=0.5, **_P,
              description="how much the walk turns, hesitates and looks around"),
    ParamSpec("flicker", "float", 0.3, min=0.0, max=1.0, smooth=0.2, **_P,
              description="how many fluorescent tubes stutter, and how hard the rest hum"),
    ParamSpec("fog", "float", 0.25, min=0.0, max=1.0, smooth=0.5, **_P,
              description="haze: 0 clear to the end of sight, 1 thick"),
)
COMMANDS = {"noclip": "phase the camera through the nearest wall into the space behind it"}

FOV_Y = math.radians(70.0)
NEAR = 0.05
TRANSITION = 1.6             # seconds of lights-out between levels
MESH_CACHE = 96              # chunk meshes kept on the GPU


def _compile(ctx: moderngl.Context, level: int, material: int) -> moderngl.Program:
    """world.vert + common.glsl + level<N>.frag shading `material` (mesh.MATERIALS); errors name the
    file and line they are in."""
    vpath, common, frag = (shader_path("scene/world.vert"), shader_path("scene/common.glsl"),
                           shader_path(f"scene/level{level}.frag"))
    source = (f"#version 330\n#define WINDOW {WINDOW}\n#define KIND {material}\n{line_directive(0)}"
              f"{common.read_text()}\n{line_directive(1)}{frag.read_text()}")
    try:
        return ctx.program(vertex_shader=vpath.read_text(), fragment_shader=source)
    except moderngl.Error as exc:
        raise shader_error(exc, [vpath], [common, frag]) from None


# a chunk's buffer and, per material it has in draw order, (material, VAO, first vertex, vertices)
Mesh = tuple[moderngl.Buffer, list[tuple[int, moderngl.VertexArray, int, int]]]


def _uniform(prog: moderngl.Program, name: str) -> moderngl.Uniform:
    """A uniform of a level's program (a member that is not one is a shader mistake)."""
    member = prog[name]
    if not isinstance(member, moderngl.Uniform):
        raise TypeError(f"{name} is a {type(member).__name__}, not a uniform")
    return member


def _mat(m: np.ndarray) -> bytes:
    return m.T.astype("f4").tobytes()  # GL wants column-major


class Backrooms:
    """A Scene: `render` returns colour; `depth` (R32F) and `motion` (RG32F) are filled alongside."""

    tracked = True  # motion and depth are the rasterisation's own: a late dream is carried along them

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], fields: bool = False) -> None:
        self.ctx, self.size = ctx, size
        self.aspect = size[0] / (size[1] * (2 if fields else 1))  # the picture's, not the target's
        self._settle = settler(ctx)  # after the frame's draws: their wait with the GIL let go
        self.texture = ctx.texture(size, 4)
        self.depth = ctx.texture(size, 1, dtype="f4")
        self.motion = ctx.texture(size, 2, dtype="f4")
        for tex in (self.depth, self.motion):
            tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._zbuffer = ctx.depth_renderbuffer(size)
        self.fbo = ctx.framebuffer([self.texture, self.depth, self.motion], self._zbuffer)
        self.proj = projection(FOV_Y, self.aspect, NEAR, max(s.far for s in LEVELS) + 8.0)
        # each field's projection, made once: the lines sampled half a frame line above the
        # middle of a field's row for field 0, below for field 1, by moving the picture the other way
        self.field_proj = [self.proj] * 2
        if fields:
            for field in (0, 1):
                shift = np.identity(4)
                shift[1, 3] = (field - 0.5) / size[1]   # NDC: a field line is 2 / lines
                self.field_proj[field] = shift @ self.proj
        # every level compiled now: a broken shader fails at patch load, not at a level change
        self.programs = {spec.index: {m: _compile(ctx, spec.index, m) for m in MATERIALS
                                      if m != PIPE or spec.pipes} for spec in LEVELS}
        self.meshes: OrderedDict[tuple, Mesh] = OrderedDict()
        self.world: World | None = None
        self.walker: Walker | None = None
        self.pose: Pose | None = None
        self.prev_vp: np.ndarray | None = None
        self.transition = -1.0  # seconds into a level change, -1 when none
        self.cut = False        # this frame does not continue the last (motion is zero)
        self.commands: dict[str, Callable] = {"noclip": lambda e: self.noclip()}

    # -- level and walk ------------------------------------------------------------------------

    def _enter(self, level: int, seed: int) -> None:
        """Arrive in (level, seed) where the camera stands, at the centre of the cell there."""
        world = World(LEVELS[level], seed)
        if self.pose is None or self.walker is None:  # both set by the first arrival
            cell, yaw = (0, 0), 0.0
        else:
            cell, yaw = world.cell_of(self.pose.x, self.pose.z), self.walker.body_yaw
        self.world, self.walker = world, Walker(world, seed, cell, yaw)
        self.cut = True

    def noclip(self) -> bool:
        """Phase through the nearest wall (the lore's way in); ignored mid-phase or between levels."""
        if self.walker is None or self.transition >= 0:
            return False
        return self.walker.noclip()

    def _exposure(self) -> float:
        """Lights out and back on across a level change, stuttering as they go."""
        if self.transition < 0:
            return 1.0
        u = self.transition / TRANSITION
        level = 1.0 - min(u, 1.0 - u) * 2.0
        stutter = 0.25 if (int(self.transition * 23.0) * 2654435761) % 7 < 2 else 1.0
        return max(level, 0.0) ** 2 * stutter

    def advance(self, fp: FrameParams) -> Pose:
        """Move the camera one frame (also what tests call to walk without rendering)."""
        want = (int(fp["level"]), int(fp["level_seed"]))
        self.cut = False
        if self.world is None:
            self._enter(*want)
        elif self.transition >= 0:
            half = self.transition < TRANSITION / 2
            self.transition += fp.dt
            if half and self.transition >= TRANSITION / 2:
                self._enter(*want)
            if self.transition >= TRANSITION:
                self.transition = -1.0
        elif want != (self.world.spec.index, self.world.seed):
            self.transition = 0.0
        assert self.walker is not None  # _enter made one
        self.pose = self.walker.step(fp.dt, float(fp["speed"]), float(fp["wander"]))
        return self.pose

    def skip(self, fp: FrameParams) -> None:
        """The walk of `render` without the drawing: the next frame drawn moves from this pose."""
        pose = self.advance(fp)
        self.prev_vp = self.field_proj[fp.field] @ view_matrix(pose)

    # -- drawing -------------------------------------------------------------------------------

    def _mesh(self, cx: int, cz: int) -> Mesh | None:
        """A chunk's buffer and its materials' VAOs, built on first sight and cached."""
        w = self.world
        assert w is not None  # drawn after advance()
        key = (w.spec.index, w.seed, cx, cz)
        entry = self.meshes.get(key)
        if entry is None:
            data = chunk_mesh(w, cx, cz)
            if not len(data):
                return None
            vbo = self.ctx.buffer(data.tobytes())
            progs = self.programs[w.spec.index]
            entry = self.meshes[key] = (vbo, [
                (m, self.ctx.vertex_array(progs[m], [(vbo, VERTEX, *ATTRIBUTES)], skip_errors=True), first, n)
                for m, first, n in materials(data)])
            while len(self.meshes) > MESH_CACHE:
                self._free(self.meshes.popitem(last=False)[1])
        else:
            self.meshes.move_to_end(key)
        return entry

    def visible_chunks(self, pose: Pose, far: float) -> list[tuple[int, int]]:
        """Chunks within `far` that meet the horizontal view wedge, nearest first."""
        assert self.world is not None  # after advance()
        size = self.world.spec.chunk * self.world.spec.cell
        ccx, ccz = math.floor(pose.x / size), math.floor(pose.z / size)
        reach = math.ceil(far / size)
        half = math.atan(math.tan(FOV_Y / 2) * self.aspect) + 0.35
        planes = [(math.sin(pose.yaw + a), math.cos(pose.yaw + a)) for a in (half - math.pi / 2,
                                                                            math.pi / 2 - half)]
        out = []
        for cx in range(ccx - reach, ccx + reach + 1):
            for cz in range(ccz - reach, ccz + reach + 1):
                x0, z0 = cx * size - pose.x, cz * size - pose.z
                corners = [(x0, z0), (x0 + size, z0), (x0, z0 + size), (x0 + size, z0 + size)]
                dx = max(x0, 0.0, -(x0 + size))
                dz = max(z0, 0.0, -(z0 + size))
                dist = math.hypot(dx, dz)
                if dist > far:
                    continue
                if dist > 0 and any(all(px * a + pz * b < 0 for px, pz in corners) for a, b in planes):
                    continue
                out.append((dist, cx, cz))
        return [(cx, cz) for _, cx, cz in sorted(out)]

    def render(self, fp: FrameParams) -> moderngl.Texture:
        pose = self.advance(fp)
        world = self.world
        assert world is not None  # advance() entered one
        vp = self.field_proj[fp.field] @ view_matrix(pose)
        prev = vp if self.cut or self.prev_vp is None else self.prev_vp
        self.prev_vp = vp
        spec = world.spec
        far = spec.far
        origin = window_origin(pose.x, pose.z, spec.lights, spec.light_offset)
        exposure = self._exposure()
        matrices = {"u_vp": _mat(vp), "u_prev_vp": _mat(prev),
                    "u_lights": tubes(origin, world.seed, fp.time, float(fp["flicker"])).tobytes()}
        uniforms = {
            "u_eye": (pose.x, pose.y, pose.z),
            "u_resolution": self.size, "u_seed": world.seed & 0xFFFFFFFF, "u_time": fp.time,
            "u_fog": float(fp["fog"]), "u_exposure": exposure, "u_far": far,
            "u_fog_colour": spec.fog, "u_height": spec.height,
            "u_light_grid": spec.lights, "u_light_offset": spec.light_offset,
            "u_lights_origin": origin,
        }
        for prog in self.programs[spec.index].values():
            for name, data in matrices.items():
                if name in prog:
                    _uniform(prog, name).write(data)
            for name, value in uniforms.items():
                if name in prog:
                    _uniform(prog, name).value = value
        r, g, b = spec.fog
        self._clear((r * exposure, g * exposure, b * exposure), far)
        meshes = [m for m in (self._mesh(*c) for c in self.visible_chunks(pose, far)) if m]
        self._draw(meshes)
        return self.texture

    def _draw(self, meshes: list[Mesh]) -> None:
        """Material by material (mesh.MATERIALS: occluders first), each chunk nearest first: hidden
        pixels fail the depth test before they are shaded (measured: a separate depth pass costs
        what it saves)."""
        self.ctx.enable(moderngl.DEPTH_TEST)
        try:
            for material in MATERIALS:
                for _, parts in meshes:
                    for m, vao, first, count in parts:
                        if m == material:
                            vao.render(moderngl.TRIANGLES, vertices=count, first=first)
            if self._settle is not None:
                self._settle()
        finally:
            self.ctx.disable(moderngl.DEPTH_TEST)

    def _clear(self, fog: tuple[float, float, float], far: float) -> None:
        """Beyond the geometry: fog colour, depth at the far fog, no motion (one clear per target)."""
        fbo, on, off = self.fbo, (True,) * 4, (False,) * 4
        fbo.use()
        self._mask(on, off, off)
        fbo.clear(*fog, 1.0, depth=1.0)
        self._mask(off, on, off)
        fbo.clear(far, 0.0, 0.0, 0.0)
        self._mask(off, off, on)
        fbo.clear(0.0, 0.0, 0.0, 0.0)
        self._mask(on, on, on)

    def _mask(self, *masks: tuple[bool, ...]) -> None:
        # one mask per colour attachment: moderngl takes a list of them, its stubs only one
        self.fbo.color_mask = list(masks)  # type: ignore[assignment]

    @staticmethod
    def _free(mesh: Mesh) -> None:
        vbo, parts = mesh
        for _, vao, _, _ in parts:
            vao.release()
        vbo.release()

    def release(self) -> None:
        for mesh in self.meshes.values():
            self._free(mesh)
        self.meshes.clear()
        for progs in self.programs.values():
            for prog in progs.values():
                prog.release()
        for obj in (self.fbo, self._zbuffer, self.texture, self.depth, self.motion):
            obj.release()
