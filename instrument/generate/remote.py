"""The stream engine in a process of its own, for live play.

In the show's process a CPU model fights the render loop for Python's interpreter lock, which
moderngl holds while llvmpipe draws: measured on 2 cores, the builtin model dreamed 2 frames a
second beside a 60 fps loop, against 65 alone. In its own process it only shares the cores, and
the operating system shares those fairly. The worker thread (worker.py) stays as it is: it hands
this proxy one frame at a time and waits for the answer on a pipe, without the lock.

A process that dies (a crash in a native library, the OOM killer) is started again by `recover`,
which the worker calls after a failed frame; the show plays its last good frame meanwhile.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import traceback
from typing import Any

import numpy as np

from ..params import FrameParams
from .worker import BaseFrame

# On a CPU the child dreams at a lower priority than the show: llvmpipe's threads and the loop
# must keep the frame rate (a late frame is seen), while a late dream only holds the last one longer.
NICE = 10


def _serve(conn, name: str) -> None:
    """The child: load the model, then dream every frame it is sent until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the show's to handle: it ends us cleanly
    try:
        from ..report import Reporter
        from . import load_backend
        from .accel import accelerate
        from .stream import StreamEngine, share_cpu

        backend = accelerate(load_backend(name), None, Reporter())
        share_cpu(backend)
        if backend.device.type == "cpu":
            os.nice(NICE)  # the picture's rate first: dreams take the cores the loop leaves
        engine = StreamEngine(backend)
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    from ..clock import settle_memory

    settle_memory()  # torch's objects out of the collector's way: no 100 ms pause mid-dream
    conn.send(("ready", {"motion_grid": getattr(engine, "motion_grid", None)}))
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the show has gone
            return
        if msg is None:
            return
        if msg[0] == "recover":
            try:
                engine.recover()
            except Exception:
                pass
            continue
        _, image, motion, cut, frame, time, dt, values, beat = msg
        try:
            out = engine(BaseFrame(image, motion, cut), FrameParams(frame, time, dt, values, beat))
            conn.send(("ok", out, dict(getattr(engine, "stats", {}))))
        except Exception as exc:
            conn.send(("fail", f"{type(exc).__name__}: {exc}", traceback.format_exc(limit=4)))


class RemoteEngine:
    """An Engine (worker.py) whose work happens in a child process that loaded model `name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stats: dict[str, Any] = {}
        self.motion_grid = None
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # never fork a process holding a GL context
        self._conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, self.name), daemon=True,
                                name=f"noclip generator {self.name}")
        self.proc.start()
        child.close()
        try:
            kind, info = self._conn.recv()  # the model loads: seconds to minutes, on the worker thread
        except EOFError:
            kind, info = "error", f"the generator process ended while loading (exit {self.proc.exitcode})"
        if kind == "error":
            self.close()
            raise RuntimeError(info)
        self.motion_grid = info["motion_grid"]

    def __call__(self, frame: BaseFrame, fp: FrameParams) -> np.ndarray:
        try:
            self._conn.send(("frame", frame.image, frame.motion, frame.cut, fp.frame, fp.time, fp.dt,
                             dict(fp), getattr(fp, "beat", None)))
            reply = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise RuntimeError(f"the generator process is gone (exit {self.proc.exitcode}): {exc}") from None
        if reply[0] == "ok":
            self.stats = reply[2]
            return reply[1]
        raise RuntimeError(reply[1])

    def recover(self) -> None:
        """After a failed frame: a dead process is started again, a live one clears its state."""
        if self.proc.is_alive():
            self._conn.send(("recover",))
        else:
            self.close()
            self._start()

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, BrokenPipeError):
            pass
        self.proc.join(timeout=2.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=2.0)
        self._conn.close()
