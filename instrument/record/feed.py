"""Feeds: outputs that hand every frame to another program (NDI, a virtual camera, Syphon) on a
thread of their own, so that a slow receiver, a network hiccup or a codec never holds the frame.

The frame loop only starts the frame's read-back (readback.py; a kind may first pack the picture in
a pass of its own, `pack`: NDI's UYVY) and puts the frame read one frame earlier on a queue of
`depth` frames; a full queue drops its oldest frame, counted, so what is sent
is always the newest picture and the loop never waits. The sending thread opens the connection
itself (at the first frame, at the frame's size and layout; again when either changes) and sends.

A feed that fails (the device vanished, the runtime threw) is reported once and stops reading
frames back: the show plays on without it (DESIGN, principle 3).

What is fed: the output as the audience sees it (the framebuffer every output gets), or another
picture the show names through `pick` (the dream before the tape, `Compositor.clean`).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable

import moderngl
import numpy as np

from ..params import FrameParams
from ..report import Reporter
from .readback import ReadbackRing
from .video import lower_priority

Picture = moderngl.Framebuffer | moderngl.Texture
Pick = Callable[[moderngl.Framebuffer], Picture | None]  # the output -> what to send (None: the output)


class Feed(ABC):
    """The frame loop's side and the sending thread; a kind of feed says how to `open`, `send`
    and `shut` (each called on the sending thread only), and may `pack` the picture on the GPU
    (on the frame loop's side)."""

    kind = "feed"     # its name in reports
    components = 4    # RGBA (3: RGB)

    def __init__(self, reporter: Reporter, *, pick: Pick | None = None, depth: int = 2, ring: int = 2) -> None:
        """`pick(fbo)`: the picture to send instead of the output (None: the output); `depth`:
        frames queued before the oldest is dropped; `ring`: read-back buffers (2: frames leave
        one frame after they were drawn)."""
        self.reporter, self.pick, self.depth, self.ring_depth = reporter, pick, max(1, depth), ring
        self.offered = self.sent = self.dropped = 0
        self.send_cpu = 0.0  # CPU seconds the sending thread spent in `send` (bench: what a frame costs it)
        self.error: Exception | None = None  # the sending thread failed: the feed has stopped
        self.size: tuple[int, int] | None = None  # what the thread has open (sending-thread side)
        self.shape: tuple[int, ...] | None = None  # the frames it has open: (h, w, components)
        self._told = False
        self._ring: ReadbackRing | None = None
        self._queue: deque[np.ndarray] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-send", daemon=True)
        self._thread.start()

    # -- frame loop side ------------------------------------------------------------------------

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        if self.error is not None:
            if not self._told:
                self._told = True
                self.reporter.error(self.kind, f"stopped ({self.error}); the show plays on without it")
            return
        src = (self.pick(fbo) if self.pick is not None else None) or fbo
        picture, components, flip = self.pack(src)
        ring = self._ring
        if ring is None or (ring.size, ring.components, ring.flip) != (src.size, components, flip):
            if ring is not None:  # a new size (a resized window) or layout
                ring.release()
            self._ring = ring = ReadbackRing(src.size, components, self.ring_depth, flip=flip)
        frame = ring.read(picture)
        if frame is None:
            return
        self.offered += 1
        with self._cond:
            if len(self._queue) >= self.depth:
                self._queue.popleft()
                self.dropped += 1
                dropped = True
            else:
                dropped = False
            self._queue.append(frame)
            self._cond.notify()
        if dropped:
            self.reporter.problem(self.kind, self.kind, "the sender is behind: frames dropped (counted)")

    # -- sending thread ------------------------------------------------------------------------

    def _run(self) -> None:
        lower_priority(5)  # the frame loop first: a late frame sent beats a late frame shown
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    frame = self._queue.popleft()
                frame = np.ascontiguousarray(frame)  # top row first, here rather than in the loop
                if frame.shape != self.shape:
                    if self.size is not None:
                        self.shut()
                    self.size = self.shape = None
                    size = (frame.shape[1], frame.shape[0])
                    self.open(size, frame.shape[2])
                    self.size, self.shape = size, frame.shape
                cpu = time.thread_time()
                self.send(frame)
                self.send_cpu += time.thread_time() - cpu
                self.sent += 1
        except Exception as exc:  # the runtime or the device failed: reported by the loop, once
            self.error = exc.with_traceback(None)
        finally:
            if self.size is not None:
                try:
                    self.shut()
                except Exception:
                    pass
                self.size = self.shape = None

    def pack(self, picture: Picture) -> tuple[Picture, int, bool]:
        """What is read back for `picture` (frame loop side): a picture whose bytes are the frame,
        (h, w, components) at `picture`'s size, and whether its rows run bottom up as GL draws
        them (flipped on the way out). By default the picture itself, `components` a pixel."""
        return picture, self.components, True

    def open(self, size: tuple[int, int], components: int) -> None:  # noqa: B027 (a hook: may be empty)
        """Start sending frames of `size` (width, height), `components` bytes a pixel (what `pack`
        said: 4 RGBA, 3 RGB, 2 UYVY)."""

    @abstractmethod
    def send(self, frame: np.ndarray) -> None:
        """Send one frame: (h, w, components) uint8, top row first, contiguous."""

    def shut(self) -> None:  # noqa: B027 (a hook: may be empty)
        """Stop sending (the connection or device closed)."""

    def close(self) -> None:
        """Send what is queued, end the thread, release the read-back buffers."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=5.0)
        if self._ring is not None:
            self._ring.release()
            self._ring = None

    def summary(self) -> str:
        """What it did, for the end of the show."""
        why = f"; stopped: {self.error}" if self.error is not None else ""
        return f"{self.kind}: sent {self.sent} frames, dropped {self.dropped}{why}"
