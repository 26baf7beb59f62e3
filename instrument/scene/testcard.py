"""A moving colour-bar test card: the calibration source of any video chain (sharp chroma edges show
bleed, the ramp shows noise, the sweep shows motion). A pure function of the frame index. It is
flat and its sweep is not tracked, so its depth and motion are zero."""

from __future__ import annotations

import moderngl

from ..params import FrameParams
from ..render.gl import draw, load_program, quad_buffer, target
from .source import blank_aux


class TestCard:
    tracked = False  # depth and motion are blanks: a late dream cannot be carried along them
    cut = False      # (never tracked: nothing to cut)
    commands: dict = {}  # none of its own

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int]) -> None:
        self.size = size
        self.quad = quad_buffer(ctx)
        self.program = load_program(ctx, "scene/testcard.frag", self.quad)
        self.texture, self.fbo = target(ctx, size)
        self.depth, self.motion = blank_aux(ctx, size)

    def render(self, fp: FrameParams) -> moderngl.Texture:
        self.program.set("u_frame", fp.frame)
        self.program.set("u_resolution", self.size)
        draw(self.program, self.fbo)
        return self.texture

    def skip(self, fp: FrameParams) -> None:
        """Nothing carries: each frame is drawn from its number alone."""

    def release(self) -> None:
        for obj in (self.program, self.texture, self.fbo, self.quad, self.depth, self.motion):
            obj.release()
