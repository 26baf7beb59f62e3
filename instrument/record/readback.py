"""Frames read from GL to memory through a ring of pixel-pack buffers, for the outputs that hand
pixels on (takes, NDI, a virtual camera).

Frame n is read into one buffer and the buffer filled `depth`-1 frames earlier is mapped, so on a
real GPU the copy is done by the time it is touched and the frame loop does not stall on it (on
llvmpipe the read is a plain copy either way). Frames come back top row first, as a view: the
thread that takes them makes them contiguous, not the frame loop. A picture a pass drew top row
first already (`flip` False: render/uyvy.py) comes back as it is, contiguous.
"""

from __future__ import annotations

import moderngl
import numpy as np

RING = 3  # buffers: a frame is mapped two frames after it was read


class ReadbackRing:
    def __init__(self, size: tuple[int, int], components: int = 3, depth: int = RING, *,
                 flip: bool = True) -> None:
        """`size`: the frames' (width, height); `components`: bytes a pixel, 3 (RGB) or 4 (RGBA) read
        from a framebuffer, or any from a texture whose bytes are the frame (2: UYVY packed in an
        RGBA8 texture half as wide); `depth`: buffers in the ring (2: a frame comes back one frame
        late); `flip`: the rows run bottom up, as GL draws them."""
        self.size, self.components, self.depth, self.flip = size, components, max(1, depth), flip
        self._ring: list[moderngl.Buffer] = []
        self._pending: list[moderngl.Buffer] = []  # filled, not yet mapped, oldest first

    def read(self, src: moderngl.Framebuffer | moderngl.Texture) -> np.ndarray | None:
        """Start reading `src` (a framebuffer, or a texture of w * h * `components` bytes); the frame
        read `depth`-1 calls ago (h, w, components; None until the ring is full)."""
        if not self._ring:
            w, h = self.size
            self._ring = [src.ctx.buffer(reserve=w * h * self.components) for _ in range(self.depth)]
        buf = next(b for b in self._ring if b not in self._pending)
        if isinstance(src, moderngl.Texture):
            src.read_into(buf, alignment=1)
        else:
            src.read_into(buf, components=self.components, alignment=1)
        self._pending.append(buf)
        return self._take(self._pending.pop(0)) if len(self._pending) == self.depth else None

    def drain(self) -> list[np.ndarray]:
        """The frames read and not yet handed back, oldest first (at the end of a take)."""
        frames = [self._take(b) for b in self._pending]
        self._pending.clear()
        return frames

    def _take(self, buf: moderngl.Buffer) -> np.ndarray:
        w, h = self.size
        frame = np.empty((h, w, self.components), np.uint8)  # writable: NDI's runtime takes no read-only memory
        buf.read_into(frame)
        return frame[::-1] if self.flip else frame

    def release(self) -> None:
        self._pending.clear()
        for buf in self._ring:
            try:
                buf.release()
            except Exception:
                pass
        self._ring = []
