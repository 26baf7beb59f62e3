"""A picture packed as UYVY on the GPU, for the feeds that carry 4:2:2 video (NDI).

Sent as RGBA, a 1280x720 frame costs NDI's runtime ~2 ms of CPU to convert to Y'CbCr before it
compresses, and the read-back moves twice the bytes. Packed here (shaders/core/uyvy.frag: BT.709,
video range, the matrix the runtime decodes UYVY with), the read-back is half the size, top row
first (nothing to flip or copy on the way out), and the runtime compresses the bytes as they are.
That is a gain where a GPU draws the pass; on llvmpipe the pass costs more CPU than it saves (the
record/ndi.py docstring has the figures), so NDI out packs only on a GPU.
"""

from __future__ import annotations

import moderngl

from .gl import Program, draw, load_program, quad_buffer, target


def packs(size: tuple[int, int]) -> bool:
    """Whether a picture of `size` can go as UYVY: 4:2:2 pairs pixels, so an even width."""
    return size[0] % 2 == 0 and size[0] > 0 and size[1] > 0


class UyvyPack:
    """RGBA picture (W x H) -> RGBA8 texture (W/2 x H), each texel (U, Y0, V, Y1), top row first:
    its bytes are the UYVY frame."""

    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.quad = quad_buffer(ctx)
        self.program: Program = load_program(ctx, "core/uyvy.frag", self.quad)
        self.size: tuple[int, int] | None = None  # the picture's size the target is made for
        self.texture: moderngl.Texture | None = None
        self.fbo: moderngl.Framebuffer | None = None

    def __call__(self, picture: moderngl.Texture) -> moderngl.Texture:
        if picture.size != self.size:
            self._release_target()
            if not packs(picture.size):
                raise ValueError(f"UYVY needs an even width, not {picture.size[0]}")
            self.texture, self.fbo = target(self.ctx, (picture.size[0] // 2, picture.size[1]), filter="nearest")
            self.size = picture.size
        assert self.texture is not None and self.fbo is not None
        self.program.bind_textures({"source": picture})
        draw(self.program, self.fbo)
        return self.texture

    def _release_target(self) -> None:
        for obj in (self.texture, self.fbo):
            if obj is not None:
                obj.release()
        self.texture = self.fbo = None
        self.size = None

    def release(self) -> None:
        self._release_target()
        self.program.release()
        self.quad.release()
