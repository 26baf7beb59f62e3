"""NDI out (`--ndi NAME`): the show as a source on the network, for Resolume, TouchDesigner, OBS.

Through cyndilib (the optional extra `noclip[ndi]`), whose wheel carries the NDI runtime (Vizrt's
NDI SDK licence; README, NDI). Frames go at the show's rate, announced at that rate; the runtime
compresses them (SpeedHQ) on the feed's thread (feed.py), never the frame loop's, and does so
whether or not anyone is connected (measured). Other machines find the source over mDNS (on Linux,
through avahi-daemon).

What is handed to the runtime, by its CPU cost a 1280x720 frame (measured: `write_video` timed on
its thread): RGBA ~5.8 ms (it converts to Y'CbCr, and carries an alpha plane), RGBX ~4.8
ms (the show is opaque: no alpha), UYVY ~3.8 ms. On a GPU the frame is packed as UYVY in a pass
(render/uyvy.py), which also halves the read-back. On llvmpipe that pass cost the show 8-10 ms of
the renderer's CPU a frame (1.4 ms drawn alone), more than the ~1 ms it saves the runtime, so
there the frame goes as RGBX. A picture of odd width, which 4:2:2 cannot carry, goes as RGBX too."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import moderngl
import numpy as np

from ..extras import need
from ..render.gl import software
from ..render.uyvy import UyvyPack, packs
from ..report import Reporter
from .feed import Feed, Pick, Picture

SOURCES = ("output", "clean")  # --ndi-source: as the audience sees it, or the dream without the tape


class NdiOutput(Feed):
    kind = "NDI"
    components = 4

    def __init__(self, name: str, fps: float, reporter: Reporter, *,
                 pick: Pick | None = None, uyvy: bool | None = None) -> None:
        """`name`: the source's name (receivers see `HOST (NAME)`); `fps`: the rate announced;
        `uyvy`: pack frames as UYVY on the GPU (None: where the GL draws on a GPU, not the CPU)."""
        if not name.strip():
            raise ValueError("--ndi needs a name for the source, e.g. --ndi noclip")
        self.ndi = need("cyndilib", "ndi", "--ndi")  # here, so a missing extra is said at the start
        self.name, self.fps = name, fps
        self._sender: Any = None
        self.uyvy = uyvy
        self._uyvy: UyvyPack | None = None  # the packing pass, made at the first frame (GL's thread)
        super().__init__(reporter, pick=pick)

    def pack(self, picture: Picture) -> tuple[Picture, int, bool]:
        texture = picture.color_attachments[0] if isinstance(picture, moderngl.Framebuffer) else picture
        if self.uyvy is None:
            self.uyvy = not software(picture.ctx)
        if not self.uyvy or not isinstance(texture, moderngl.Texture) or not packs(texture.size):
            return picture, 4, True  # RGBX: the runtime converts it
        if self._uyvy is None:
            self._uyvy = UyvyPack(texture.ctx)
        return self._uyvy(texture), 2, False

    def open(self, size: tuple[int, int], components: int) -> None:
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        frame = VideoSendFrame()
        frame.set_resolution(*size)
        frame.set_fourcc(FourCC.UYVY if components == 2 else FourCC.RGBX)  # opaque: no alpha plane to compress
        frame.set_frame_rate(Fraction(self.fps).limit_denominator(1001))
        # clock_video off: the show's own clock paces the frames; the runtime must not wait again
        sender = self.ndi.Sender(self.name, clock_video=False)
        sender.set_video_frame(frame)
        sender.open()
        self._sender = sender

    def send(self, frame: np.ndarray) -> None:
        if not self._sender.write_video(frame.reshape(-1)):
            raise RuntimeError("the NDI runtime refused a frame")

    def shut(self) -> None:
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    def close(self) -> None:
        super().close()
        pack, self._uyvy = self._uyvy, None
        if pack is not None:
            pack.release()
