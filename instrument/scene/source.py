"""Footage as the base scene (`--source PATH`): a video file looped (PyAV) or a still image (Pillow).

Frames are cropped to fill the working size (for a patch of `fields`, the picture twice as tall,
each field line the mean of the two lines it spans, as a camera integrating both rows reads one).
Frame n shows the video frame at show time `fp.time`, so offline renders are exact and repeatable.
This is only the picture: `Moving` (scene/flow.py) makes it a scene, estimating a video's motion
from its frames (depth stays 0, unknown); a still has no motion. Tests use this to feed exact
patterns through the chain.

A file that is not a picture or a video (corrupt, truncated, empty, a decompression bomb) is a
SourceError, `file: what is wrong`, before the show starts (`probe`). A video that breaks further
in is played up to the break and looped there; the break is raised once (the show's scene stage
reports it and holds its last frame), never again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import moderngl
import numpy as np
from PIL import Image, ImageOps

from ..params import FrameParams

if TYPE_CHECKING:
    from av.container import InputContainer

IMAGES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
VIDEOS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg", ".ogv"}
SOURCE_SUFFIXES = IMAGES | VIDEOS


class SourceError(ValueError):
    """A source file that cannot be shown; str() is `file: what is wrong`."""


def why(exc: Exception) -> str:
    """What went wrong, in a line a performer can read (an OS error's own words; at most 300
    characters: a codec's message can be long)."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _image(path: Path) -> Image.Image:
    """The decoded still (fully loaded, so a truncated file fails here, not mid-show)."""
    try:
        img = Image.open(path)
        img.load()
        return img
    except Image.DecompressionBombError as exc:
        raise SourceError(f"{path}: too many pixels to be a source ({exc})") from None
    except Exception as exc:  # Pillow: UnidentifiedImageError, OSError (truncated), SyntaxError (broken PNG)
        raise SourceError(f"{path}: not an image that can be read ({why(exc)})") from None


def probe(path: Path) -> None:
    """Raise SourceError unless `path` is a picture or a video whose first frame decodes."""
    path = Path(path)
    if path.suffix.lower() in VIDEOS:
        import av

        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    raise SourceError(f"{path}: no video stream")
                next(c.decode(c.streams.video[0]), None) or _no_frames(path)
        except SourceError:
            raise
        except Exception as exc:  # av.InvalidDataError, OSError, ...
            raise SourceError(f"{path}: not a video that can be decoded ({why(exc)})") from None
    else:
        _image(path).close()


def _no_frames(path: Path) -> NoReturn:
    raise SourceError(f"{path}: no video frames")


def blank_aux(ctx: moderngl.Context, size: tuple[int, int]) -> tuple[moderngl.Texture, moderngl.Texture]:
    """Depth (0 = unknown) and motion (zero) for scenes that know neither."""
    w, h = size
    depth = ctx.texture(size, 1, data=np.zeros((h, w), "f4").tobytes(), dtype="f4")
    motion = ctx.texture(size, 2, data=np.zeros((h, w, 2), "f4").tobytes(), dtype="f4")
    for tex in (depth, motion):
        tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
    return depth, motion


def fit_pixels(image: Image.Image, size: tuple[int, int], fields: bool = False) -> bytes:
    """Crop to fill, RGBA, rows bottom-up as GL stores them. With `fields`, `size` is a field: the
    picture is fitted to twice its lines and each pair of lines averaged into one."""
    w, h = size
    fitted = ImageOps.fit(image.convert("RGBA"), (w, 2 * h) if fields else size, Image.Resampling.BILINEAR)
    if fields:
        fitted = fitted.resize(size, Image.Resampling.BOX)
    return fitted.transpose(Image.Transpose.FLIP_TOP_BOTTOM).tobytes()


class Footage:
    """The picture of a `--source` file (a flow.PictureSource): a video looped at show time, or a still."""

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], path: Path, fields: bool = False) -> None:
        self.size, self.path, self.fields = size, Path(path), fields
        self.texture = ctx.texture(size, 4)
        self.video = self.moving = self.path.suffix.lower() in VIDEOS
        self.fresh = self.cut = False  # render gave a new frame; that frame went back (the loop)
        self.count: int | None = None  # video frames, known after the first pass
        self.shown = -1
        self._container: InputContainer | None = None
        try:
            if self.video:
                probe(self.path)
                self._open()
                self.fps = self._fps
            else:
                with _image(self.path) as img:
                    self.texture.write(fit_pixels(img, size, fields))
        except Exception:
            self.release()
            raise

    def _open(self) -> None:
        import av

        try:
            self._container = av.open(str(self.path))
            stream = self._container.streams.video[0]
        except Exception as exc:
            raise SourceError(f"{self.path}: not a video that can be decoded ({why(exc)})") from None
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else 30.0
        self._frames: Iterator = self._container.decode(stream)
        self._next = 0

    def _seek(self, k: int) -> int:
        """Decode up to frame k (wrapping at the end); returns the index actually uploaded."""
        if self.count:
            k %= self.count
        if k < self._next:
            if self._container is not None:
                self._container.close()
            self._open()
        frame = None
        while self._next <= k:
            try:
                frame = next(self._frames)
            except StopIteration:
                if self._next == 0:
                    raise SourceError(f"{self.path}: no video frames") from None
                self.count = self._next
                return self._seek(k)
            except Exception as exc:  # corrupt from here on: what played so far is the loop
                if self._next == 0:
                    raise SourceError(f"{self.path}: not a video that can be decoded ({why(exc)})") from None
                self.count = self._next
                raise SourceError(f"{self.path}: broken after frame {self._next} ({why(exc)}); "
                                  f"looping its first {self._next} frames") from None
            self._next += 1
        if frame is not None:
            self.texture.write(fit_pixels(frame.to_image(), self.size, self.fields))
        return k

    def render(self, fp: FrameParams) -> moderngl.Texture:
        self.fresh = self.cut = False
        if self.video:
            k = int(fp.time * self.fps + 1e-6)
            if self.count:
                k %= self.count
            if k != self.shown:
                before, self.shown = self.shown, self._seek(k)
                self.cut = self.shown < before  # looped (or sought back): not the motion of one step
                self.fresh = True
        return self.texture

    def release(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self.texture.release()
