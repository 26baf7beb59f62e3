"""The scene at the dream's working size: what the generator reads back and what the compositor's
detail band is measured against.

A patch may render its scene finer than its model dreams (`size` 640x480 for the tape's 480 lines,
`dream_size` 256x192 for two CPU cores). The generator then needs the scene and its motion at its own
size, and the compositor needs the same small picture to know which part of the scene's detail the
dream cannot hold (the scene less this, upsampled) and carries that over the dream. One pass for
both, a box filter over the footprint, so nothing aliases and both sides see the same picture.
"""

from __future__ import annotations

import math

import moderngl

from .gl import Program, draw, load_program, quad_buffer, target


class Shrink:
    """Scene colour (RGBA8) and motion (RG32F, scene pixels) → the same at `size` (motion in its
    pixels), in one pass."""

    def __init__(self, ctx: moderngl.Context, source: tuple[int, int], size: tuple[int, int]) -> None:
        self.ctx, self.source, self.size = ctx, source, size
        self.ratio = (source[0] / size[0], source[1] / size[1])
        spans = [f"N{axis} {span(n, r)}" for axis, n, r in zip("XY", size, self.ratio, strict=True)]
        self.quad = quad_buffer(ctx)
        self.programs: dict[bool, Program] = {
            moving: load_program(ctx, "core/shrink.frag", self.quad, defines=(*spans, *(["MOTION"] * moving)))
            for moving in (False, True)}
        for program in self.programs.values():   # the ratio is the patch's: set once, not a frame
            program.set("u_ratio", self.ratio)
            program.set("u_motion_gain", (1 / self.ratio[0], 1 / self.ratio[1]))
        self.image, self.image_fbo = target(ctx, size)
        self.motion = ctx.texture(size, 2, dtype="f4")
        self.motion.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.both_fbo = ctx.framebuffer(color_attachments=[self.image, self.motion])

    def __call__(self, image: moderngl.Texture, motion: moderngl.Texture | None
                 ) -> tuple[moderngl.Texture, moderngl.Texture | None]:
        program = self.programs[motion is not None]
        program.bind_textures({"source": image} if motion is None else {"source": image, "motion": motion})
        draw(program, self.image_fbo if motion is None else self.both_fbo)
        return self.image, None if motion is None else self.motion

    def release(self) -> None:
        for program in self.programs.values():
            program.release()
        for obj in (self.image, self.image_fbo, self.motion, self.both_fbo, self.quad):
            obj.release()


def span(count: int, ratio: float) -> int:
    """The most source texels one of `count` footprints `ratio` texels long (end to end from 0)
    overlaps: the fixed bound of the shader's loop on that axis."""
    return max(math.ceil((k + 1) * ratio - 1e-9) - math.floor(k * ratio + 1e-9) for k in range(count))
