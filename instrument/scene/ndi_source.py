"""An NDI source as the base image (`--source ndi:NAME`): a camera, OBS, Resolume or another noclip
on the network dreamed on like footage.

Through cyndilib (the optional extra `noclip[ndi]`). A receiver thread finds the source by name
over mDNS, receives its frames and keeps only the newest, already cropped to fill the working size
(`fit_pixels`, as footage is), so the frame loop only uploads a finished picture, and only when a
new one came. The source is named as NDI lists it, `HOST (NAME)`, or by its NAME alone.

The show never waits on the network: until the source appears the base is blank (said once); when
it stops sending for LOST seconds its last frame stays (said once, and again when it is back).
It is a picture (flow.PictureSource): `make_scene` wraps it in `Moving`, which estimates its motion
from its frames as for footage and a camera; depth is unknown. A live source cannot be re-rendered
from a performance file: its pictures were never the show's to keep.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import moderngl
import numpy as np
from PIL import Image

from ..extras import need
from ..params import FrameParams
from .source import fit_pixels

PREFIX = "ndi:"
LOST = 1.0   # s without a frame: the source is lost (its last frame stays)
POLL = 0.1   # s the receiver thread waits for a frame or a source before looking at `stop` again

log = logging.getLogger("noclip")


def ndi_name(spec: str) -> str | None:
    """The source's name in a `--source ndi:NAME` (None: not an NDI source); ValueError when empty."""
    if not spec.startswith(PREFIX):
        return None
    name = spec[len(PREFIX):].strip()
    if not name:
        raise ValueError(f"{spec!r}: ndi:NAME names the source, e.g. ndi:noclip or 'ndi:HOST (noclip)'")
    return name


def matches(wanted: str, listed: str) -> bool:
    """Whether NDI's `HOST (NAME)` is the source asked for, by its full name or its NAME."""
    return listed == wanted or (listed.endswith(")") and listed[listed.find(" (") + 2:-1] == wanted)


class NdiSource:
    """The newest frame of an NDI source (a flow.PictureSource)."""

    moving = True

    def __init__(self, ctx: moderngl.Context, size: tuple[int, int], name: str, fields: bool = False) -> None:
        self.cy = need("cyndilib", "ndi", f"--source {PREFIX}{name}")
        self.size, self.name, self.fields = size, name, fields
        w, h = size
        self.texture = ctx.texture(size, 4, data=np.zeros((h, w, 4), np.uint8).tobytes())
        self.fresh = self.cut = False  # a new frame this render; it follows a loss (no motion across)
        self.state = "waiting"  # waiting (nothing yet) · live · lost (holding the last frame)
        self.found: str | None = None  # the source's full name, once found
        self.received = 0       # frames received (the thread's count)
        self.error: str | None = None
        self._said = ""
        self._shown = 0
        self._frame: bytes | None = None
        self._last = 0.0        # time.monotonic() of the newest frame
        self._seen = (0, 0)     # its size as sent
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ndi-receive", daemon=True)
        self._thread.start()

    # -- frame loop side ------------------------------------------------------------------------

    def render(self, fp: FrameParams) -> moderngl.Texture:
        with self._lock:
            frame, count, last = self._frame, self.received, self._last
        self.fresh = self.cut = False
        if frame is not None and count != self._shown:
            self.texture.write(frame)
            self._shown = count
            self.fresh, self.cut = True, self.state == "lost"
        state = "waiting" if count == 0 else "lost" if time.monotonic() - last > LOST else "live"
        self._say(state)
        return self.texture

    def _say(self, state: str) -> None:
        if state == self._said:
            return
        where = f"{PREFIX}{self.name}"
        if state == "waiting":
            why = f" ({self.error})" if self.error else ""
            log.warning("%s: no such NDI source yet%s; the base is blank until it appears", where, why)
        elif state == "live":
            back = " is back" if self._said == "lost" else f" found ({self.found})"
            log.info("%s: NDI source%s, %dx%d fitted to %dx%d", where, back, *self._seen, *self.size)
        else:
            log.warning("%s: the NDI source is lost (no frame for %g s); holding its last frame", where, LOST)
        self._said = self.state = state

    # -- receiver thread ------------------------------------------------------------------------

    def _run(self) -> None:
        from cyndilib.receiver import ReceiveFrameType
        from cyndilib.video_frame import VideoRecvFrame
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        finder: Any = None
        receiver: Any = None
        try:
            finder = self.cy.Finder()
            finder.open()
            receiver = self.cy.Receiver(color_format=RecvColorFormat.RGBX_RGBA,
                                        bandwidth=RecvBandwidth.highest, recv_name="noclip")
            frame = VideoRecvFrame()
            receiver.set_video_frame(frame)
            while not self._stop.is_set():
                if self.found is None:
                    finder.wait_for_sources(POLL)
                    finder.update_sources()
                    for listed in finder.get_source_names():
                        if matches(self.name, listed):
                            receiver.set_source(finder.get_source(listed))
                            self.found = listed
                            break
                    continue
                video = ReceiveFrameType.recv_video
                if receiver.receive(video, int(POLL * 1000)) & video:
                    self._take(frame)
        except Exception as exc:  # the runtime failed: the base stays as it is, said by `render`
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("%s%s: the NDI receiver stopped (%s)", PREFIX, self.name, self.error)
        finally:
            for closing in (receiver.disconnect if receiver is not None else None,
                            finder.close if finder is not None else None):
                if closing is not None:
                    try:
                        closing()
                    except Exception:
                        pass

    def _take(self, frame: Any) -> None:
        """The frame just received, cropped to fill the working size, as the newest."""
        w, h = frame.get_resolution()
        data = np.empty(frame.get_data_size(), np.uint8)
        if not frame.fill_p_data(data):
            return
        stride = frame.get_line_stride()
        rgba = np.ascontiguousarray(data[:h * stride].reshape(h, stride)[:, :w * 4])
        image = Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1)
        picture = fit_pixels(image, self.size, self.fields)
        with self._lock:
            self._frame, self._last, self._seen = picture, time.monotonic(), (w, h)
            self.received += 1

    def release(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.texture.release()
