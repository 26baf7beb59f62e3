"""NDI out (`--ndi NAME`): the show as a source on the network, for Resolume, TouchDesigner, OBS.

Through cyndilib (the optional extra `noclip[ndi]`), whose wheel carries the NDI runtime (Vizrt's
NDI SDK licence; README, NDI). Frames go as RGBA at the show's rate, announced at that rate: the
runtime compresses them (SpeedHQ) on the feed's thread (feed.py), never the frame loop's. Other
machines find the source over mDNS (on Linux, through avahi-daemon).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from ..extras import need
from ..report import Reporter
from .feed import Feed, Pick

SOURCES = ("output", "clean")  # --ndi-source: as the audience sees it, or the dream without the tape


class NdiOutput(Feed):
    kind = "NDI"
    components = 4

    def __init__(self, name: str, fps: float, reporter: Reporter, *,
                 pick: Pick | None = None) -> None:
        """`name`: the source's name (receivers see `HOST (NAME)`); `fps`: the rate announced."""
        if not name.strip():
            raise ValueError("--ndi needs a name for the source, e.g. --ndi noclip")
        self.ndi = need("cyndilib", "ndi", "--ndi")  # here, so a missing extra is said at the start
        self.name, self.fps = name, fps
        self._sender: Any = None
        super().__init__(reporter, pick=pick)

    def open(self, size: tuple[int, int]) -> None:
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        frame = VideoSendFrame()
        frame.set_resolution(*size)
        frame.set_fourcc(FourCC.RGBA)
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
