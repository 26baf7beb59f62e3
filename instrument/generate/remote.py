"""The stream engine in a process of its own, live and offline.

Live: in the show's process a CPU model fights the render loop for Python's interpreter lock,
which moderngl holds while llvmpipe draws: measured on 2 cores, the builtin model dreamed 2 frames
a second beside a 60 fps loop, against 65 alone. In its own process it only shares the cores, and
the operating system shares those fairly. The worker thread (worker.py) stays as it is: it hands
this proxy one frame at a time and waits for the answer on a pipe, without the lock.

Offline the lock does not matter, but stopping does: a torch call cannot be interrupted from
another thread (an SD-sized UNet on a CPU holds one for tens of seconds), and a thread still inside
torch when the interpreter exits aborts it ("terminate called without an active exception"). A
process can be ended at once (`kill`, on Ctrl-C), and the OOM killer, which picks the biggest
process, takes the model's and leaves the render alive to close its file and say what happened.

A process that dies (a crash in a native library, the OOM killer) is started again by `recover`,
which the worker calls after a failed frame; the show plays its last good frame meanwhile.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..params import FrameParams
from .worker import BaseFrame

# On a CPU the child dreams at a lower priority than the show: llvmpipe's threads and the loop
# must keep the frame rate (a late frame is seen), while a late dream only holds the last one longer.
NICE = 10


def _serve(conn, name: str, load: Callable[[str], Any] | None = None, live: bool = True) -> None:
    """The child: load the model (`load(name)`, default generate.load_backend), then dream every
    frame it is sent until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the show's to handle: it ends us cleanly
    # We may be killed mid-call (RemoteEngine.kill): hold nothing the resource tracker would report
    # as leaked, such as the inter-process lock tqdm makes for the loading bars by default.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    try:
        from ..report import Reporter
        from . import load_backend, open_engine

        engine = open_engine(name, load or load_backend, Reporter())
        backend = engine.backend
        if live and backend.device.type == "cpu":
            os.nice(NICE)  # the picture's rate first: dreams take the cores the loop leaves
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    from ..clock import settle_memory

    settle_memory()  # torch's objects out of the collector's way: no 100 ms pause mid-dream
    conn.send(("ready", {"motion_grid": getattr(engine, "motion_grid", None), "runtime": backend.runtime,
                         "notes": list(backend.notes)}))
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


class GeneratorProcessError(RuntimeError):
    """A failure in (or of) the generator process, its message already naming its kind."""

    described = True  # worker.py reports str(exc) alone, not prefixed with this class's name


def ended(proc: multiprocessing.process.BaseProcess) -> str:
    """How a child process ended, in words: a signal names itself (SIGKILL is most often the
    system's out-of-memory killer)."""
    proc.join(timeout=1.0)
    code = proc.exitcode
    if code is None:
        return "still running"
    if code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        return f"killed by {sig}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    return f"exit {code}"


class RemoteEngine:
    """An Engine (worker.py) whose work happens in a child process that loads model `name`.

    `start` (the worker's `load`, on its thread) starts the process and waits for the model; `kill`
    (the worker's `interrupt`, from any thread) ends it at once, a load included. `load`: what the
    child calls with the name to get its Backend (default generate.load_backend); it must pickle.
    `live`: the child dreams at a lower priority than the show (offline nothing competes with it).
    """

    def __init__(self, name: str, *, load: Callable[[str], Any] | None = None, live: bool = True) -> None:
        self.name, self.live, self._load = name, live, load
        self.stats: dict[str, Any] = {}
        self.motion_grid = None
        self.runtime = "torch"   # what the child's parts run on, once loaded
        self.notes: tuple[str, ...] = ()  # what the child's loading noticed (worker.py says it)
        self.proc: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None  # to the process, while there is one
        self._lock = threading.Lock()  # start and kill: a kill never misses a process being started
        self._killed = False

    def start(self) -> RemoteEngine:
        with self._lock:
            if self._killed:
                raise GeneratorProcessError("stopped before the model loaded")
            ctx = multiprocessing.get_context("spawn")  # never fork a process holding a GL context
            conn, child = ctx.Pipe()
            self._conn = conn
            self.proc = proc = ctx.Process(target=_serve, args=(child, self.name, self._load, self.live),
                                           daemon=True, name=f"noclip generator {self.name}")
            proc.start()
        child.close()
        try:
            kind, info = conn.recv()  # the model loads: seconds to minutes, on the worker thread
        except (EOFError, OSError):
            kind, info = "error", f"the generator process ended while loading ({ended(proc)})"
        if kind == "error":
            self.close()
            raise GeneratorProcessError(info)
        self.motion_grid, self.runtime, self.notes = info["motion_grid"], info["runtime"], tuple(info["notes"])
        return self

    def __call__(self, frame: BaseFrame, fp: FrameParams) -> np.ndarray:
        conn, proc = self._conn, self.proc
        if conn is None or proc is None:
            raise GeneratorProcessError("the generator process was not started")
        try:
            conn.send(("frame", frame.image, frame.motion, frame.cut, fp.frame, fp.time, fp.dt,
                             dict(fp), getattr(fp, "beat", None)))
            reply = conn.recv()
        except (EOFError, OSError) as exc:
            raise GeneratorProcessError(f"the generator process is gone ({ended(proc)}): "
                                        f"{type(exc).__name__}") from None
        if reply[0] == "ok":
            self.stats = reply[2]
            return reply[1]
        raise GeneratorProcessError(reply[1])

    def recover(self) -> None:
        """After a failed frame: a dead process is started again, a live one clears its state."""
        if self._killed:
            return
        if self.proc is not None and self._conn is not None and self.proc.is_alive():
            self._conn.send(("recover",))
        else:
            self.close()
            self.start()

    def kill(self) -> None:
        """End the process now, whatever it is doing; a thread waiting on it gets EOF. Callable
        from any thread, before, during or after `start`."""
        with self._lock:
            self._killed = True
            proc = self.proc
        if proc is not None and proc.is_alive():
            proc.terminate()  # SIGTERM: the child has no handler for it, so it ends mid-call
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)

    def close(self) -> None:
        if self.proc is None or self._conn is None:  # both or neither
            return
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=2.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=2.0)
        self._conn.close()
