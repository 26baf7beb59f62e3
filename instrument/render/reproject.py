"""Reprojection: the newest dream carried to the frame being shown, along the scene's own motion.

Live, the generator answers late: a dream of frame b arrives while the show is at frame n, and
shown as it is the picture stands where the camera was at b (measured at 20 fps with the builtin
model: 1.7 frames behind the scene on average). The scene knows exactly how every pixel moved
from frame to frame (motion vectors and depth, written by the same rasterisation), so the
compositor keeps the last few frames of both on the GPU, in a ring, and one pass walks each pixel
of frame n back to where its surface was at frame b and reads the dream there. What the dream
never saw (a surface hidden at b behind something that has since moved aside, or outside the
screen at b) is filled from the scene of frame n. A cut (a new level) is not carried across:
what a dream of the old place shows is not in the new one, so the scene plays until a new dream
of the new place comes. A dream of the current frame (age 0) passes untouched, so an offline
render whose generator answers on time is the same with or without the pass.

The ring and the pass work at the dream's grid (or the scene's, if that is coarser): the dream has no
finer detail to place, and on llvmpipe every pixel of a pass is paid for (a 1280x720 scene dreamed at
256x192 carries 19 times fewer pixels). The fill is the current scene, softened to about that detail.

Why composed in the pass, not accumulated: a dream may be of any of the last frames (the
generator takes the newest frame when it is free), so the motion from its base frame is known
only when it arrives; composing up to CARRY steps per pixel then costs less than keeping a
composed map for every frame that might become a base. Each slot also keeps its frame's motion
composed with the frame before's (one more fetch when the frame is recorded), so the walk goes
back two frames a fetch: on llvmpipe each fetch of the walk was 0.15-0.4 ms at 256x192. Frames of
even and odd numbers live in two atlases, so the pack reads frame n-1 from the one it is not
drawing into.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import moderngl
import numpy as np

from .gl import Program, draw, target

# Frames a dream is carried at most. An older one is shown as it is, as before reprojection: a
# generator that far behind the show is lost anyway, and carrying it would cost the pass's most every
# frame, which a show that slow can least afford (the frame rate comes first).
CARRY = 12


@dataclass(frozen=True)
class SceneMotion:
    """What the scene tells the compositor about the frame it drew: its motion (RG32F, pixels of
    its grid, GL orientation, n-1 -> n), its depth (R32F metres, or None when unknown) and whether
    the frame continues the one before (`cut`: it does not)."""

    motion: moderngl.Texture
    depth: moderngl.Texture | None = None
    cut: bool = False


@dataclass(frozen=True)
class Carry:
    """How the last composited dream was carried: `age` frames old (this frame - its base
    frame), `carried` frames along the motion (its age, or 0 when it was older than the ring and
    shown as it is), `cut`: dropped, a cut lies between its base frame and this one (the scene was
    shown)."""

    age: int = 0
    carried: int = 0
    cut: bool = False


def ring_grid(scene: tuple[int, int], dream: tuple[int, int] | None) -> tuple[int, int]:
    """The grid the carry works at: the dream's, unless the scene's is coarser (per axis)."""
    if dream is None:
        return scene
    return min(scene[0], dream[0]), min(scene[1], dream[1])


def tiling(grid: tuple[int, int], slots: int, most: int) -> tuple[int, int, int]:
    """(columns, rows, slots) of an atlas of `slots` tiles of `grid` that fits `most` pixels a side:
    side by side while they fit, then in rows; fewer slots (a shorter carry) where even that does
    not fit (a 1280x720 grid keeps 12 columns of 22 rows on a 16384 limit: all of them)."""
    cols = max(1, min(slots, most // grid[0]))
    rows = max(1, min(-(-slots // cols), most // grid[1]))
    return cols, rows, min(slots, cols * rows)


class Ring:
    """The last CARRY + 1 (or + 2) frames' motion and depth, tiled in two float textures by the
    frame's parity (one sampler per atlas: the pass picks a slot by index, which an array of
    samplers cannot do in GLSL 3.30)."""

    def __init__(self, ctx: moderngl.Context, grid: tuple[int, int], slots: int = CARRY + 1,
                 most: int | None = None) -> None:
        # most: an atlas's longest side (default: the context's texture limit)
        self.cols, rows, half = tiling(grid, -(-slots // 2), most or ctx.info["GL_MAX_TEXTURE_SIZE"])
        self.ctx, self.grid, self.half = ctx, grid, half  # grid: (w, h) of the ring and the pass
        self.slots = 2 * half  # frames kept: frame f in atlas f % 2, slot f // 2 % half
        self.reach = min(slots, self.slots) - 1  # the oldest dream carried, in frames
        size = (grid[0] * self.cols, grid[1] * rows)
        self.atlases = [ctx.texture(size, 4, dtype="f4") for _ in range(2)]
        for atlas in self.atlases:
            atlas.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.fbos = [ctx.framebuffer(color_attachments=[atlas]) for atlas in self.atlases]
        # one ring pixel in an atlas's uv, for the passes (shaders/core/ring.glsl)
        self.texel = (1.0 / size[0], 1.0 / size[1])
        self.out, self.out_fbo = target(ctx, grid)  # the carried dream, at the scene's size
        self.zero = ctx.texture(grid, 1, data=np.zeros(grid[::-1], "f4").tobytes(), dtype="f4")
        self.frames: deque[int] = deque(maxlen=self.slots)  # frames in the ring, oldest first
        # where a frame sits (and so how its lookups round) is a function of its number, not of how
        # many frames came before (a farm's chunk, pre-rolled from mid-show, fills its ring exactly
        # as the whole show did once `slots` frames are in)
        self.last_cut = -1     # the newest frame that did not continue the one before

    def slot(self, frame: int) -> int:
        return frame // 2 % self.half

    def corner(self, frame: int) -> tuple[int, int]:
        """Frame `frame`'s slot's lower left corner in its atlas, in pixels."""
        i = self.slot(frame)
        return i % self.cols * self.grid[0], i // self.cols * self.grid[1]

    def record(self, pack: Program, frame: int, scene: SceneMotion) -> None:
        """Frame `frame`'s motion and depth into its slot. A frame that does not follow the last one
        recorded (a patch load, a stage that failed) counts as a cut."""
        chain = not scene.cut and bool(self.frames) and frame == self.frames[-1] + 1
        if not chain:
            self.last_cut = frame
        w, h = self.grid
        x, y = self.corner(frame)
        fbo = self.fbos[frame % 2]
        fbo.viewport = (x, y, w, h)
        pack.bind_textures({"motion": scene.motion, "depth": scene.depth or self.zero,
                            "previous": self.atlases[(frame - 1) % 2]})
        pack.set("u_offset", (x, y))
        sw, sh = scene.motion.size
        pack.set("u_scale", (sw / w, sh / h))
        pack.set("u_grid", self.grid)
        pack.set("u_previous", self.corner(frame - 1))
        pack.set("u_chain", int(chain))
        draw(pack, fbo)
        self.frames.append(frame)

    def route(self, base: int, frame: int) -> tuple[str, Carry]:
        """How the dream of frame `base` reaches frame `frame` (the newest recorded): "as is" (it is
        current, older than the ring, or the ring does not know this frame), "cut" (show the scene)
        or "carry" (a carrying program of its age's parity, `bind`-ed, draws it)."""
        age = frame - base
        if age <= 0 or not self.frames or self.frames[-1] != frame:
            return "as is", Carry(max(age, 0))
        if self.last_cut > base:
            return "cut", Carry(age, 0, cut=True)
        if age > min(self.reach, len(self.frames) - 1):  # older: as it is, at no cost (see CARRY)
            return "as is", Carry(age)
        return "carry", Carry(age, age)

    def bind(self, prog: Program, dream: moderngl.Texture, base: int, frame: int) -> None:
        """The ring's textures and the walk from frame `frame` back to `base` into a carrying
        program (core/carry.glsl): the one for even ages or, for an odd age, the ODD one."""
        age = frame - base
        start = frame - age % 2  # where the two-frame steps start: this frame, or the one before
        prog.bind_textures({"generated": dream, "first": self.atlases[frame % 2],
                            "rest": self.atlases[start % 2]})
        prog.set("u_grid", self.grid)
        prog.set("u_texel", self.texel)
        prog.set("u_cols", self.cols)
        prog.set("u_half", self.half)
        prog.set("u_first", self.corner(frame))
        prog.set("u_start", self.slot(start))
        prog.set("u_pairs", age // 2)

    def carry(self, progs: tuple[Program, Program], dream: moderngl.Texture, base: int, frame: int,
              scene: moderngl.Texture) -> tuple[moderngl.Texture | None, Carry]:
        """The dream of frame `base` carried to frame `frame` by the carrying pass `progs` (for even
        ages, for odd ones; core/reproject.frag) into a texture of its own: the dream itself when
        `route` says "as is", None across a cut (show the scene), else the carried texture."""
        way, info = self.route(base, frame)
        if way != "carry":
            return (dream if way == "as is" else None), info
        prog = progs[info.age % 2]
        self.bind(prog, dream, base, frame)
        prog.bind_textures({"scene": scene})
        draw(prog, self.out_fbo)
        return self.out, info

    def release(self) -> None:
        for fbo in (*self.fbos, self.out_fbo):
            fbo.release()
        for tex in (*self.atlases, self.out, self.zero):
            tex.release()
