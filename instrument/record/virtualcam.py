"""The show as a webcam (`--virtualcam [DEVICE]`), for OBS, video calls and browsers.

Through pyvirtualcam (the optional extra `noclip[virtualcam]`): a v4l2loopback device on Linux
(`modprobe v4l2loopback`), OBS's virtual camera on Windows and macOS. The camera is opened at the
start, so a machine without one says so before the show (and the show plays on without it); the
frames go on the feed's thread (feed.py). A camera has one size: when the output changes size (a
resized window) it is opened again at the new one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..extras import need
from ..report import Reporter
from .feed import Feed


class VirtualCamera(Feed):
    kind = "virtual camera"
    components = 3  # pyvirtualcam takes RGB, not RGBA

    def __init__(self, size: tuple[int, int], fps: float, reporter: Reporter,
                 device: str | None = None) -> None:
        """`device`: which camera (e.g. /dev/video10); None: the first loopback device found."""
        self.cams = need("pyvirtualcam", "virtualcam", "--virtualcam")
        self.fps, self.device = fps, device
        self._camera: Any = None
        self._camera = self._camera_at(size)  # RuntimeError: no device (pyvirtualcam says which)
        self.device = self._camera.device
        super().__init__(reporter)

    def _camera_at(self, size: tuple[int, int]) -> Any:
        return self.cams.Camera(size[0], size[1], self.fps, fmt=self.cams.PixelFormat.RGB, device=self.device)

    def open(self, size: tuple[int, int], components: int) -> None:
        """The camera of `size`: the one open when it has that size (a camera stays open across
        the feed's `shut`, so a size change reopens it here, once the new size is known; `close`
        closes it)."""
        camera = self._camera
        if camera is None or (camera.width, camera.height) != size:
            if camera is not None:
                camera.close()
            self._camera = None
            self._camera = self._camera_at(size)

    def send(self, frame: np.ndarray) -> None:
        self._camera.send(frame)

    def close(self) -> None:
        super().close()
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.close()
