"""What a live take can afford: which H.264 encoder, at which size and preset, measured on this
machine once per process, so a take beside the show never takes the cores the show needs.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

# What a live take costs, cheapest last: (name, lines, x264 options). `best` keeps the output's size;
# the others encode at tape resolution (480 lines, what a VHS capture holds). Measured on frames of
# the default show, 2-core build machine, CPU per frame: best at 1280x720 31-33 ms (a core at 30
# fps: the core the generator needs), tape 11-12 ms, fast 7.7 ms. A take at reduced size
# re-renders full size from its performance file, exactly.
QUALITIES: dict[str, tuple[int | None, dict[str, str]]] = {
    "best": (None, {"crf": "18", "preset": "veryfast"}),
    "tape": (480, {"crf": "20", "preset": "superfast"}),
    "fast": (480, {"crf": "20", "preset": "ultrafast"}),
}
_NVENC: bool | None = None


def h264_encoder() -> str:
    """h264_nvenc where this FFmpeg has it and a GPU opens it (checked once), else libx264."""
    global _NVENC
    if _NVENC is None:
        _NVENC = False
        if "h264_nvenc" in av.codecs_available:
            try:
                cc = av.CodecContext.create("h264_nvenc", "w")
                cc.width, cc.height, cc.pix_fmt, cc.time_base = 256, 256, "yuv420p", Fraction(1, 30)
                cc.open()
                _NVENC = True
            except Exception:
                pass
    return "h264_nvenc" if _NVENC else "libx264"


def encode_size(size: tuple[int, int], quality: str) -> tuple[int, int]:
    """The size a take of `size` is encoded at: its own, or scaled to the quality's lines (even)."""
    lines = QUALITIES[quality][0]
    if lines is None or size[1] <= lines:
        return size
    return max(2, round(size[0] * lines / size[1] / 2) * 2), lines


_MEASURED: dict[tuple, float] = {}


def encode_cost(size: tuple[int, int], quality: str, frames: int = 10) -> float:
    """CPU seconds libx264 spends on one frame of `size` at `quality`, measured once per process on
    frames like the tape's (smooth light, edges, grain, moving). One encoder thread, timed on this
    thread only, so the show starting beside it is not counted; the flush is timed too (x264's
    lookahead holds the first frames back: without it the figure came out ten times too low)."""
    key = (size, quality)
    if key not in _MEASURED:
        import io
        import resource

        w, h = encode_size(size, quality)
        pictures = test_pictures(size, frames)
        out = av.open(io.BytesIO(), "w", format="mp4")
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {**QUALITIES[quality][1], "g": "30", "threads": "1"}
        who = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)
        t = resource.getrusage(who)
        for i, rgb in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if (w, h) != size:
                frame = frame.reformat(w, h, format="yuv420p", interpolation="AREA")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        u = resource.getrusage(who)
        out.close()
        _MEASURED[key] = ((u.ru_utime - t.ru_utime) + (u.ru_stime - t.ru_stime)) / frames
    return _MEASURED[key]


def test_pictures(size: tuple[int, int], frames: int) -> list[np.ndarray]:
    """`frames` RGB pictures like the tape's for the encoder to chew on: smooth light and a bright bar
    every 160 px, moving 9 px a frame, under grain (x264's cost is mostly the grain: it cannot be
    predicted). Built from one light pattern and one grain field, sliced and rolled per frame, in
    int16: evaluated afresh per frame in float32, a 1280x720 take's pictures cost 0.7 s of CPU (3.5 s
    under the show's load) in its first seconds, now 0.17 s. The grain moves by far more than x264's
    motion search reaches (16 px), so each frame's grain is as new to the encoder as fresh noise."""
    width, height = size
    xs = np.arange(width + 9 * frames, dtype=np.float32)       # the light, 9 px further each frame
    light = (120 + 60 * np.sin(xs / 37.0)[None, :] * np.cos(np.arange(height, dtype=np.float32) / 23.0)[:, None]
             + 40 * (xs % 160 < 4)[None, :])
    tint = np.rint(light[..., None] * np.array([1.0, 0.9, 0.45], np.float32)).astype(np.int16)
    grain = np.rint(np.random.default_rng(0).normal(0.0, 6.0, (height, width, 1))).astype(np.int16)
    pictures = []
    for i in range(frames):
        rgb = tint[:, 9 * i:9 * i + width] + np.roll(grain, (97 * i, 211 * i), axis=(0, 1))
        pictures.append(np.clip(rgb, 0, 255, out=rgb).astype(np.uint8))
    return pictures


def choose_quality(size: tuple[int, int], fps: float, cores: float) -> tuple[str, str]:
    """The best quality whose measured encode fits in `cores` of CPU at `fps` (the cheapest when
    none does), and why, in words for the log. A GPU encoder (NVENC) costs the CPU nothing."""
    if h264_encoder() == "h264_nvenc":
        return "best", "NVENC encodes on the GPU"
    said = []
    for quality in QUALITIES:
        need = encode_cost(size, quality) * fps
        w, h = encode_size(size, quality)
        said.append(f"{quality} {w}x{h} {need:.2f}")
        if need <= cores:
            break
    return quality, f"encoder measured, cores needed at {fps:g} fps: {', '.join(said)}; {cores:.2f} to spare"
