"""Motion estimated from the picture, for a base that is only a picture (a video file, a camera).

The Backrooms scene knows how every pixel moved (it drew them); a video or a live camera does not,
and without motion the generator's noise stands still while the picture moves under it, feedback
smears, and a late dream cannot be carried to the frame it is shown on. So a source that moves is
wrapped in `Moving`, which estimates its motion each time a new picture comes and gives it as the
scenes do: RG32F at the scene's size, pixels, GL orientation (+y up), a backward map from the
picture before to this one (scene/__init__.py). Depth stays unknown (0).

Why block matching in GL, not OpenCV's DIS: it needs no new dependency, runs where the picture
already is (no readback of two frames, no upload of the field), costs about what a chain pass does
on llvmpipe (`noclip bench --only flow`), and the generator wants motion on its latent grid anyway
(8 px cells): a vector per 16 px block, sub-texel at the flow's grid, is what it can use.

The method: the picture shrunk to luma about FLOW_WIDTH wide (`flow_size`), a pyramid of
LEVELS halvings; at the coarsest level every block tries every offset within RADIUS, and each finer
level refines the doubled guess by one texel; the finest adds a parabola through the costs for the
sub-texel part (shaders/scene/flow_match.frag). A 3x3 median over the block grid drops lone wrong
blocks, and the blocks' vectors are spread over the scene's pixels bilinearly. Ties keep the first
offset tried: the motion is a function of the two frames, so an offline render is repeatable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import moderngl
import numpy as np

from ..params import FrameParams, ParamSpec
from ..render.gl import Program, draw, load_program, quad_buffer
from .source import blank_aux

PARAMS = (
    ParamSpec("flow", "bool", True, origin=__name__, group="scene",
              description="estimate the motion of a video or camera source, so noise, feedback and "
                          "a late dream follow it (off: the source has no motion)"),
)

LEVELS = 3          # pyramid levels: the coarsest sees RADIUS << (LEVELS - 1) finest texels each way
RADIUS = 4          # offsets tried each way at the coarsest level (1 at the finer ones)
BLOCK = 4           # finest luma texels per block (a 8x8 window around each block's centre is compared)
LAMBDA = 0.004      # cost per texel away from the guess: luma difference 0..1 a flat block cannot beat
FLOW_WIDTH = 160    # the finest luma level is about this wide (shrunk by a whole ratio)


def flow_size(size: tuple[int, int]) -> tuple[tuple[int, int], int]:
    """The finest luma level's size and the whole ratio from the scene's: 1, or even (each of
    flow_luma.frag's taps then averages four texels exactly)."""
    ratio = max(1, 2 * round(size[0] / FLOW_WIDTH / 2))
    return (max(8, round(size[0] / ratio)), max(8, round(size[1] / ratio))), ratio


class BlockFlow:
    """The motion between consecutive pictures handed to it (GL passes; see the module's doc)."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]) -> None:
        self.ctx, self.size = ctx, size
        finest, _ = flow_size(size)
        self.levels = [finest]
        for _ in range(LEVELS - 1):
            w, h = self.levels[-1]
            self.levels.append((max(8, (w + 1) // 2), max(8, (h + 1) // 2)))
        self.quad = quad_buffer(ctx)
        self.programs: list[Program] = []
        self.luma = self._program("scene/flow_luma.frag")
        self.match = self._program("scene/flow_match.frag")
        self.match.set("u_block", BLOCK)
        self.match.set("u_lambda", LAMBDA)
        self.median = self._program("scene/flow_median.frag")
        self.spread = self._program("scene/flow_out.frag")
        gain = self._gain()  # the sizes are fixed: set once
        self.spread.set("u_gain", gain)
        self.spread.set("u_cell", (gain[0] * BLOCK, gain[1] * BLOCK))
        # two pyramids of luma pictures (R8), this one and the last
        self.pyramids = [[self._luma(s) for s in self.levels] for _ in range(2)]
        # each level's block grid: its vectors, in its texels
        self.fields = [self._field(_blocks(s), moderngl.NEAREST) for s in self.levels]
        self.grid = _blocks(finest)
        self.smooth = self._field(self.grid, moderngl.LINEAR)
        self.zero = self._field((1, 1), moderngl.NEAREST)
        self.motion = ctx.texture(size, 2, dtype="f4")
        self.motion.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.motion_fbo = ctx.framebuffer(color_attachments=[self.motion])
        self.motion_fbo.clear()
        self.zeroed = True  # the motion target holds no motion (cleared, nothing estimated since)
        self.have = False   # a picture is in the last pyramid
        self.now = 0        # which pyramid holds this picture

    def _program(self, name: str) -> Program:
        prog = load_program(self.ctx, name, self.quad)
        self.programs.append(prog)
        return prog

    def _luma(self, size: tuple[int, int]) -> tuple[moderngl.Texture, moderngl.Framebuffer]:
        tex = self.ctx.texture(size, 1)
        tex.repeat_x = tex.repeat_y = False  # linear filter (the next level's taps), clamped
        return tex, self.ctx.framebuffer(color_attachments=[tex])

    def _field(self, grid: tuple[int, int], filt: int) -> tuple[moderngl.Texture, moderngl.Framebuffer]:
        tex = self.ctx.texture(grid, 2, dtype="f4")
        tex.filter = (filt, filt)
        tex.repeat_x = tex.repeat_y = False
        fbo = self.ctx.framebuffer(color_attachments=[tex])
        fbo.clear()
        return tex, fbo

    def __call__(self, picture: moderngl.Texture) -> moderngl.Texture:
        """The motion from the last picture handed in to `picture` (zero for the first)."""
        if self.push(picture):
            self.estimate()
        return self.motion

    def push(self, picture: moderngl.Texture) -> bool:
        """Take `picture` as the newest (its luma pyramid made; the one before kept); whether there
        is a picture before it to estimate the motion from (if not, the motion is zero)."""
        self.now ^= 1
        source, size = picture, self.size
        for tex, fbo in self.pyramids[self.now]:  # each level the mean of the one before
            ratio = (size[0] / tex.size[0], size[1] / tex.size[1])
            self.luma.bind_textures({"source": source})
            self.luma.set("u_ratio", ratio)
            self.luma.set("u_taps", max(1, math.ceil(max(ratio) / 2 - 1e-6)))
            self.luma.set("u_rgb", source is picture)
            draw(self.luma, fbo)
            source, size = tex, tex.size
        had, self.have = self.have, True
        if not had:
            self.still()
        return had

    def estimate(self) -> None:
        """The motion from the picture pushed before the last to the last (see the module's doc)."""
        pyramid = self.pyramids[self.now]
        before = self.pyramids[self.now ^ 1]
        guess, up = self.zero[0], (0.0, 0.0)
        for k in reversed(range(LEVELS)):
            out_tex, out_fbo = self.fields[k]
            self.match.bind_textures({"current": pyramid[k][0], "previous": before[k][0], "guess": guess})
            self.match.set("u_up", up)
            self.match.set("u_radius", RADIUS if k == LEVELS - 1 else 1)
            self.match.set("u_final", k == 0)
            draw(self.match, out_fbo)
            if k:
                finer = self.levels[k - 1]
                guess, up = out_tex, (finer[0] / self.levels[k][0], finer[1] / self.levels[k][1])
        self.median.bind_textures({"field": self.fields[0][0]})
        draw(self.median, self.smooth[1])
        self.spread.bind_textures({"field": self.smooth[0]})
        draw(self.spread, self.motion_fbo)
        self.zeroed = False

    def _gain(self) -> tuple[float, float]:
        """Scene pixels per finest luma texel."""
        return self.size[0] / self.levels[0][0], self.size[1] / self.levels[0][1]

    def still(self) -> None:
        """No motion this frame (the picture did not change): the target cleared once, not again
        on every frame that brings no picture (a scene-size float target: ~7 MB at 720p)."""
        if not self.zeroed:
            self.motion_fbo.clear()
            self.zeroed = True

    def forget(self) -> None:
        """The next picture does not continue the last one (a cut, a reopened device): no motion to it."""
        self.have = False
        self.still()

    def field(self) -> np.ndarray:
        """The block grid's vectors (after the median) in scene pixels, top-down, +y up as GL has
        it: (grid h, grid w, 2). For tests and the bench."""
        w, h = self.grid
        v = np.frombuffer(self.smooth[0].read(), np.float32).reshape(h, w, 2)[::-1]
        return v * np.array(self._gain(), np.float32)

    def release(self) -> None:
        for prog in self.programs:
            prog.release()
        for tex, fbo in [*self.pyramids[0], *self.pyramids[1], *self.fields, self.smooth, self.zero]:
            fbo.release()
            tex.release()
        self.motion_fbo.release()
        self.motion.release()
        self.quad.release()


def _blocks(level: tuple[int, int]) -> tuple[int, int]:
    """A level's block grid: BLOCK texels a block, the last one partial."""
    return -(-level[0] // BLOCK), -(-level[1] // BLOCK)


class PictureSource(Protocol):
    """What `Moving` wraps: a base that is only a picture. `fresh`: render gave a new picture (not
    the last one again); `cut`: that picture does not continue the one before (a loop, a reopened
    device); `moving`: it may ever change (a still does not: no flow is made for it)."""

    size: tuple[int, int]
    texture: moderngl.Texture
    fresh: bool
    cut: bool
    moving: bool

    def render(self, fp: FrameParams) -> moderngl.Texture: ...

    def release(self) -> None: ...


class Moving:
    """A picture (a video, a camera, anything `PictureSource`) as a scene that knows its motion: the flow
    between its pictures, zero while it shows the same one, none across its cuts; depth unknown.
    `tracked` follows the `flow` parameter (and is False for a still).

    The motion is estimated when it is read, and only while it is read: a show with no generator
    (a camera through the tape alone) never asks for it, and pays for no flow. A picture that comes
    after frames nobody read has nothing to be moved from, so it is a cut."""

    def __init__(self, ctx: moderngl.Context, picture: PictureSource) -> None:
        self.picture, self.size, self.texture = picture, picture.size, picture.texture
        self.commands: dict[str, Callable] = {}  # none of its own
        self.depth, self._blank = blank_aux(ctx, self.size)
        self.flow: BlockFlow | None = None
        try:
            self.flow = BlockFlow(ctx, self.size) if picture.moving else None
        except Exception:
            for obj in (self.depth, self._blank, picture):
                obj.release()
            raise
        self.tracked = False
        self.cut = False
        self._read = True      # the motion was asked for since the last render
        self._pending = False  # a picture was pushed whose motion is not estimated yet

    @property
    def motion(self) -> moderngl.Texture:
        """RG32F, the scene's size: this frame's motion (estimated now if it was not yet)."""
        self._read = True
        if self.flow is None:
            return self._blank
        if self._pending:
            self.flow.estimate()
            self._pending = False
        return self.flow.motion

    def render(self, fp: FrameParams) -> moderngl.Texture:
        flow, wanted = self.flow, self._read
        self.cut = self._read = self._pending = False
        try:
            texture = self.picture.render(fp)
        except Exception:  # the show keeps the last picture: it does not move
            if flow is not None:
                flow.still()
            raise
        if flow is None:
            return texture
        if not fp.get("flow", True) or not wanted:
            if flow.have:
                flow.forget()
            self.tracked = bool(fp.get("flow", True))
            return texture
        if not self.tracked or self.picture.cut:
            flow.forget()
            self.cut = self.tracked  # a tracked run broken: nothing is carried across
        if self.picture.fresh or not flow.have:
            self._pending = flow.push(texture)
            self.cut = self.cut or not self._pending
        else:
            flow.still()
        self.tracked = True
        return texture

    def skip(self, fp: FrameParams) -> None:
        """A frame passes undrawn (a farm's fast-forward): the picture is found again by its show
        time when drawn; the flow has nothing to move from, as after frames nobody read."""
        self._read = False

    def release(self) -> None:
        if self.flow is not None:
            self.flow.release()
        self.picture.release()
        self.depth.release()
        self._blank.release()
