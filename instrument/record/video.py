"""Video files through PyAV. Encoding runs on its own thread; in live play a full queue drops the
frame and counts it (never silently), offline the loop waits so the file is exact."""

from __future__ import annotations

import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import moderngl
import numpy as np

from ..params import FrameParams
from ..render.gl import read_rgb
from ..report import Reporter

# name → (encoder, pixel format, options). HAP is decode-only in PyAV's FFmpeg build.
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "h264": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
    "ffv1": ("ffv1", "bgr0", {}),  # lossless RGB: re-renders compare bit for bit
    "prores": ("prores_ks", "yuv422p10le", {"profile": "3"}),  # ProRes 422 HQ
}


class VideoRecorder:
    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, *, live: bool,
                 reporter: Reporter | None = None, codec: str = "h264", depth: int = 8) -> None:
        if codec not in CODECS:
            raise ValueError(f"unknown codec '{codec}' (have: {', '.join(CODECS)})")
        self.path = Path(path)
        self.live, self.reporter = live, reporter
        encoder, pix_fmt, options = CODECS[codec]
        self.container = av.open(str(self.path), "w")
        self.stream = self.container.add_stream(encoder, rate=Fraction(fps).limit_denominator(1001))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = pix_fmt
        self.stream.options = dict(options)
        self.frames = self.dropped = 0
        self.error: Exception | None = None
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._encode, name="video-encode", daemon=True)
        self._thread.start()

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        self.push(read_rgb(fbo))

    def push(self, rgb: np.ndarray) -> None:
        if self.error is not None:
            raise RuntimeError(f"recording to {self.path} failed: {self.error}")
        if not self.live:
            self._queue.put(rgb)
            return
        try:
            self._queue.put_nowait(rgb)
        except queue.Full:
            self.dropped += 1
            if self.reporter:
                self.reporter.problem("recorder", str(self.path), "encoder behind: frames dropped")

    def _encode(self) -> None:
        while (rgb := self._queue.get()) is not None:
            if self.error is not None:
                continue
            try:
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                for packet in self.stream.encode(frame):
                    self.container.mux(packet)
                self.frames += 1
            except Exception as exc:  # disk full, codec error: report, keep the show
                self.error = exc

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()
