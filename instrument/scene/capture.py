"""A live capture device as the base picture (`--source /dev/video0`, `v4l2:`, `avfoundation:`,
`dshow:`, and `lavfi:` for FFmpeg's own generated sources), read through PyAV.

A camera delivers frames at its own pace, and the show must never wait for one: a thread reads
and converts them (cropped to fill the working size, as a file's are) and keeps only the newest;
each show frame uploads it if it is new (`fresh`), else shows the last again. FFmpeg's options for
the device follow a `?`: `v4l2:/dev/video0?size=1280x720&fps=30&input_format=mjpeg` (only the
names in OPTIONS; `size` and `fps` are video_size and framerate). A source that paces nothing
itself (lavfi) is paced by its frames' timestamps, so it plays at its rate rather than as fast as
the CPU can make it.

A device that goes away (unplugged, the stream ended) leaves the last frame on screen: the loss is
said once (render raises it once; the show's scene stage reports it and plays on), and the reader
tries to open it again, RETRIES times RETRY_S apart, then gives up (said once more). The first
frame after a reopen is a cut (no motion across it). A device that is not there at the start is a
SourceError before the show begins (`probe_device`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import moderngl

from ..params import FrameParams
from .source import SourceError, fit_pixels, why

if TYPE_CHECKING:
    from av.container import InputContainer

FORMATS = ("v4l2", "avfoundation", "dshow", "lavfi")  # `FORMAT:URL`, as ffmpeg's -f FORMAT -i URL
# FFmpeg device options a spec may give (after `?`), and the short names for the common two
OPTIONS = ("video_size", "framerate", "input_format", "pixel_format", "video_device_index")
ALIASES = {"size": "video_size", "fps": "framerate"}
RETRIES = 10          # reopen attempts after a device is lost, before giving up
RETRY_S = 1.0         # seconds between them
TIMEOUT_S = 5.0       # opening, or waiting for a frame, longer than this counts as failed
FIRST_S = 3.0         # how long opening waits for the first frame (the show starts with a picture)
OPTION_LENGTH = 200   # characters of an option's value at most


@dataclass(frozen=True)
class Device:
    """A capture device as FFmpeg names it: demuxer `format`, `url`, demuxer `options`."""

    spec: str
    format: str
    url: str
    options: dict[str, str] = field(default_factory=dict)


def parse_device(spec: str) -> Device | None:
    """The device `spec` names (`/dev/videoN`, or `FORMAT:URL[?name=value&...]` with FORMAT one of
    FORMATS), None when it names none (a file, a scene); SourceError for a device spec that is
    wrong (an unknown option)."""
    head, sep, rest = spec.partition(":")
    if sep and head in FORMATS:
        fmt, url = head, rest
    elif spec.startswith("/dev/video"):
        fmt, url = "v4l2", spec
    else:
        return None
    options: dict[str, str] = {}
    url, q, query = url.partition("?")
    for item in query.split("&") if q else ():
        name, eq, value = item.partition("=")
        name = ALIASES.get(name.strip(), name.strip())
        if not eq or name not in OPTIONS or not value or len(value) > OPTION_LENGTH:
            raise SourceError(f"{spec}: {item!r} is not an option it takes "
                              f"({', '.join([*ALIASES, *OPTIONS])}, as name=value)")
        options[name] = value.strip()
    if not url:
        raise SourceError(f"{spec}: names no device")
    return Device(spec, fmt, url, options)


def _open(device: Device) -> InputContainer:
    import av

    try:
        container = av.open(device.url, format=device.format, options=dict(device.options),
                            timeout=(TIMEOUT_S, TIMEOUT_S))
    except Exception as exc:  # av.FFmpegError (no such device, unknown format), OSError
        raise SourceError(f"{device.spec}: cannot open ({why(exc)})") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{device.spec}: no video stream")
    return container


def capture_devices() -> list[str]:
    """The capture devices this machine shows, as `--source` specs, or how to list them where
    FFmpeg's device lists are only printed (macOS, Windows)."""
    import glob
    import sys

    if sys.platform.startswith("linux"):
        return sorted(glob.glob("/dev/video*")) or ["none found (/dev/video*)"]
    if sys.platform == "darwin":
        return ['avfoundation:0, :1, … (ffmpeg -f avfoundation -list_devices true -i "" lists them)']
    return ["dshow:video=NAME (list them: ffmpeg -list_devices true -f dshow -i dummy)"]


def probe_device(device: Device) -> None:
    """Raise SourceError unless the device opens and gives a video stream."""
    if device.format == "v4l2" and not Path(device.url).exists():
        raise SourceError(f"{device.spec}: no such device")
    _open(device).close()


class Capture:
    """The newest frame of a live device (a flow.PictureSource), read on a thread of its own."""

    moving = True

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], device: Device,
                 retries: int = RETRIES, retry_s: float = RETRY_S, fields: bool = False) -> None:
        self.size, self.device, self.retries, self.retry_s = size, device, retries, retry_s
        self.fields = fields
        self.fresh = self.cut = False
        self.count = 0  # frames read so far (for tests and the HUD's curiosity)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._newest: tuple[int, int, bytes] | None = None  # (frame number, opening, pixels)
        self._shown = (-1, 0)  # (frame number, opening) of the frame on the texture
        self._news: list[str] = []  # losses and give-ups not yet said
        container = _open(device)
        self.texture = ctx.texture(size, 4)
        self._thread = threading.Thread(target=self._read, args=(container,), daemon=True,
                                        name=f"capture {device.spec}")
        self._thread.start()
        deadline = time.monotonic() + FIRST_S
        while self._newest is None and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _read(self, container: InputContainer) -> None:
        opening = 0
        while not self._stop.is_set():
            try:
                self._frames(container, opening)
                lost = "the stream ended"
            except Exception as exc:  # av.FFmpegError (unplugged: EIO, ENODEV), a decode error
                lost = why(exc)
            container.close()
            if self._stop.is_set():
                return
            self._say(f"{self.device.spec}: lost ({lost}); showing its last frame, trying to reopen it")
            for _ in range(self.retries):
                if self._stop.wait(self.retry_s):
                    return
                try:
                    container = _open(self.device)
                    break
                except SourceError:
                    continue
            else:
                self._say(f"{self.device.spec}: gave up after {self.retries} tries to reopen it; "
                          "showing its last frame")
                return
            opening += 1

    def _frames(self, container: InputContainer, opening: int) -> None:
        """Read and convert frames until the stream ends, paced by their timestamps."""
        start: tuple[float, float] | None = None  # (first frame's time stamp, when it came)
        for frame in container.decode(video=0):
            if self._stop.is_set():
                return
            stamp = frame.time
            if stamp is not None:
                if start is None:
                    start = (stamp, time.monotonic())
                ahead = (stamp - start[0]) - (time.monotonic() - start[1])
                if ahead > 0 and self._stop.wait(min(ahead, TIMEOUT_S)):
                    return
            pixels = fit_pixels(frame.to_image(), self.size, self.fields)
            with self._lock:
                self.count += 1
                self._newest = (self.count, opening, pixels)

    def _say(self, text: str) -> None:
        with self._lock:
            self._news.append(text)

    def render(self, fp: FrameParams) -> moderngl.Texture:
        with self._lock:
            newest, news = self._newest, self._news
            self._news = []
        self.fresh = self.cut = False
        if newest is not None and newest[:2] != self._shown:
            self.texture.write(newest[2])
            self.fresh = True
            self.cut = newest[1] != self._shown[1]  # a reopened device: no motion across
            self._shown = newest[:2]
        if news:
            raise SourceError("; ".join(news))
        return self.texture

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=TIMEOUT_S + 1)
        self.texture.release()

