"""The scene at the dream's working size: what the generator reads back and what the compositor's
detail band is measured against.

A patch may render its scene finer than its model dreams (`size` 640x480 for the tape's 480 lines,
`dream_size` 256x192 for two CPU cores). The generator then needs the scene and its motion at its own
size, and the compositor needs the same small picture to know which part of the scene's detail the
dream cannot hold (the scene less this, upsampled) and carries that over the dream. One pass each, a
box filter over the footprint, so nothing aliases and both sides see the same picture.
"""

from __future__ import annotations

import moderngl

from .gl import Program, draw, load_program, quad_buffer, target


class Shrink:
    """Scene colour (RGBA8) and motion (RG32F, scene pixels) → the same at `size` (motion in its
    pixels)."""

    def __init__(self, ctx: moderngl.Context, source: tuple[int, int], size: tuple[int, int]) -> None:
        self.ctx, self.source, self.size = ctx, source, size
        self.quad = quad_buffer(ctx)
        self.program: Program = load_program(ctx, "core/shrink.frag", self.quad)
        self.image, self.image_fbo = target(ctx, size)
        self.motion = ctx.texture(size, 2, dtype="f4")
        self.motion.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.motion_fbo = ctx.framebuffer(color_attachments=[self.motion])
        self.ratio = (source[0] / size[0], source[1] / size[1])

    def __call__(self, image: moderngl.Texture, motion: moderngl.Texture | None
                 ) -> tuple[moderngl.Texture, moderngl.Texture | None]:
        self._pass(image, (1.0, 1.0, 1.0, 1.0), self.image_fbo)
        if motion is None:
            return self.image, None
        self._pass(motion, (1 / self.ratio[0], 1 / self.ratio[1], 0.0, 0.0), self.motion_fbo)
        return self.image, self.motion

    def _pass(self, source: moderngl.Texture, gain: tuple[float, ...], fbo: moderngl.Framebuffer) -> None:
        self.program.bind_textures({"source": source})
        self.program.set("u_ratio", self.ratio)
        self.program.set("u_gain", gain)
        draw(self.program, fbo)

    def release(self) -> None:
        for obj in (self.program, self.image, self.image_fbo, self.motion, self.motion_fbo, self.quad):
            obj.release()
