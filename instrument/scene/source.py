"""Footage as the base scene (`--source PATH`): a video file looped (PyAV) or a still image (Pillow).

Frames are cropped to fill the working size. Frame n shows the video frame at show time
`fp.time`, so offline renders are exact and repeatable. Depth and motion are not estimated: depth
is 0 (unknown) and motion is zero, which a generator reads as "no warp". Tests use this to feed
exact patterns through the chain.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import moderngl
import numpy as np
from PIL import Image, ImageOps

from ..params import FrameParams

IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEOS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ogv"}
SOURCE_SUFFIXES = IMAGES | VIDEOS


def blank_aux(ctx: moderngl.Context, size: tuple[int, int]) -> tuple[moderngl.Texture, moderngl.Texture]:
    """Depth (0 = unknown) and motion (zero) for scenes that know neither."""
    w, h = size
    depth = ctx.texture(size, 1, data=np.zeros((h, w), "f4").tobytes(), dtype="f4")
    motion = ctx.texture(size, 2, data=np.zeros((h, w, 2), "f4").tobytes(), dtype="f4")
    for tex in (depth, motion):
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return depth, motion


def _pixels(image: Image.Image, size: tuple[int, int]) -> bytes:
    """Crop to fill, RGBA, rows bottom-up as GL stores them."""
    fitted = ImageOps.fit(image.convert("RGBA"), size, Image.Resampling.BILINEAR)
    return fitted.transpose(Image.Transpose.FLIP_TOP_BOTTOM).tobytes()


class Source:
    tracked = False  # depth and motion are blanks: a late dream cannot be carried along them

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], path: Path) -> None:
        self.size, self.path = size, Path(path)
        self.texture = ctx.texture(size, 4)
        self.depth, self.motion = blank_aux(ctx, size)
        self.video = self.path.suffix.lower() in VIDEOS
        self.count: int | None = None  # video frames, known after the first pass
        self.shown = -1
        if self.video:
            self._open()
            self.fps = self._fps
        else:
            with Image.open(self.path) as img:
                self.texture.write(_pixels(img, size))

    def _open(self) -> None:
        import av

        self._container = av.open(str(self.path))
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else 30.0
        self._frames: Iterator = self._container.decode(stream)
        self._next = 0

    def _seek(self, k: int) -> int:
        """Decode up to frame k (wrapping at the end); returns the index actually uploaded."""
        if self.count:
            k %= self.count
        if k < self._next:
            self._container.close()
            self._open()
        frame = None
        while self._next <= k:
            try:
                frame = next(self._frames)
            except StopIteration:
                if self._next == 0:
                    raise ValueError(f"{self.path}: no video frames") from None
                self.count = self._next
                return self._seek(k)
            self._next += 1
        if frame is not None:
            self.texture.write(_pixels(frame.to_image(), self.size))
        return k

    def render(self, fp: FrameParams) -> moderngl.Texture:
        if self.video:
            k = int(fp.time * self.fps + 1e-6)
            if self.count:
                k %= self.count
            if k != self.shown:
                self.shown = self._seek(k)
        return self.texture

    def release(self) -> None:
        if self.video:
            self._container.close()
        for obj in (self.texture, self.depth, self.motion):
            obj.release()
