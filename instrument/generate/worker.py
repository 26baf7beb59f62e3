"""The generator's own thread, behind one-slot mailboxes.

Live, the frame loop hands over the newest base frame (an older one still waiting is replaced:
dreaming a stale frame helps nobody) and composites whatever finished last; it never waits.
Offline, each frame waits for its own result as long as it takes (a heavy model on a CPU, a busy
GPU, a farm machine shared with other work: any deadline would write a wrong frame and call it
done), so renders are exact. An engine that raises is reported and the show goes on with the last
good frame while the engine gets the next one; a frame left without its own dream is remembered
(`missing`) so that an offline render can refuse to pass it off as exact.

Closing stops the engine's work and joins the thread: a thread left inside torch when the
interpreter exits aborts the process ("terminate called without an active exception").

A replaced frame's image is dropped but not its motion: the engine is handed the motion from the
last frame it saw to the one it gets (composed), so warped noise and feedback stay on the geometry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import moderngl
import numpy as np

from ..params import FrameParams
from ..report import Reporter
from .motion import compose, to_grid

log = logging.getLogger("noclip")


@dataclass(frozen=True)
class BaseFrame:
    """What an engine dreams on.

    image: RGB uint8 (H, W, 3), top-down. motion: float32 (h, w, 2), top-down, +x right and +y down
    (the scene's GL motion flipped), in pixels of its own grid: the image's, or a coarser one when
    the engine asks for it (`motion_grid`); the surface at p was at p - motion in the previous frame
    the engine saw; None when nothing moves. cut: this frame does not continue the last one (a jump,
    a new level), so nothing should be carried over.
    """

    image: np.ndarray
    motion: np.ndarray | None = None
    cut: bool = False
    gl: bool = False  # motion still as GL wrote it (bottom-up, +y up): turned on the worker thread

    def prepared(self, grid: tuple[int, int] | None = None) -> BaseFrame:
        """Motion brought to `grid` (w, h) first, while it is cheap, then turned the right way up."""
        if self.motion is None or (grid is None and not self.gl):
            return self
        m = self.motion if grid is None else to_grid(self.motion, grid)
        assert m is not None  # to_grid keeps motion that is there
        if self.gl:
            m = m[::-1] * np.array([1.0, -1.0], np.float32)
        return BaseFrame(self.image, np.ascontiguousarray(m), self.cut)

    def after(self, older: BaseFrame) -> BaseFrame:
        """This frame as seen from the frame before `older` (older was dropped, its motion kept)."""
        if self.cut or older.cut:
            return BaseFrame(self.image, None, True)
        if older.motion is None:
            return self
        if self.motion is None:
            return BaseFrame(self.image, older.motion, False)
        return BaseFrame(self.image, compose(older.motion, self.motion), False)


# → RGB uint8 (H, W, 3) top-down. An engine with a `motion_grid` (w, h) gets its motion on that grid:
# composing the motion of replaced frames at full size would cost the loop's cores far more.
Engine = Callable[[BaseFrame, FrameParams], np.ndarray]


def described(exc: Exception) -> str:
    """'Kind: message', unless the exception's message names its kind already (`described`)."""
    return str(exc) if getattr(exc, "described", False) else f"{type(exc).__name__}: {exc}"


MISSING_KEPT = 256  # failed frames remembered for `missing` (an offline render asks at once)


class GeneratorWorker:
    """`engine`, or `load` to build it on this thread: loading a model takes seconds to minutes, and
    a show that loads one mid-set (patch/load) must keep playing the scene meanwhile. `interrupt`,
    callable from any thread, ends the engine's work at once (a child process is killed, a load
    included); without it, closing waits for the frame in hand."""

    def __init__(self, engine: Engine | None, reporter: Reporter, *, live: bool, name: str = "generator",
                 load: Callable[[], Engine] | None = None,
                 interrupt: Callable[[], None] | None = None) -> None:
        self.engine, self.reporter, self.live, self.name = engine, reporter, live, name
        self._load, self._interrupt = load, interrupt
        self.loading = engine is None
        self.load_error: str | None = None  # why the model did not load
        self._cv = threading.Condition()
        self._pending: tuple[BaseFrame, FrameParams] | None = None
        self._dropped: list[BaseFrame] = []  # replaced frames since the engine last took one
        self._result: tuple[int, np.ndarray] | None = None  # newest finished (frame, image)
        # (frame, base frame) of that result: the frame whose scene the image is a dream of, which
        # Stream Batch puts k-1 frames before the frame handed in (the compositor carries it on)
        self.result_base: tuple[int, int] = (-1, -1)
        self._done_frame = -1  # newest frame handled, successfully or not
        self._failed: dict[int, str] = {}  # frame -> why its engine call failed (newest MISSING_KEPT)
        self._busy = self.loading  # loading, or inside an engine call: what close() would interrupt
        self._stop = self._ended = False
        self.replaced = self.failures = 0
        self.busy_seconds = 0.0
        self.done = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: BaseFrame, fp: FrameParams) -> None:
        with self._cv:
            if self._pending is not None:
                self.replaced += 1
                if len(self._dropped) < 64:  # composed on the worker thread, not here
                    self._dropped.append(self._pending[0])
                else:
                    self._dropped = [BaseFrame(frame.image, None, True)]  # too far behind: a cut
            self._pending = (frame, fp)
            self._cv.notify_all()

    def result(self, frame: int | None = None) -> tuple[int, np.ndarray] | None:
        """Newest finished image; with `frame` (offline), first wait until that frame has been
        handled, however long the model takes to load and to dream it (no deadline: see the module
        doc). Only closing the worker ends the wait early."""
        with self._cv:
            if frame is not None:
                while self._done_frame < frame and not self._stop and not self._ended:
                    self._cv.wait()
            return self._result

    def wait_loaded(self) -> None:
        """Block until the model has loaded or failed to."""
        with self._cv:
            while self.loading and not self._stop and not self._ended:
                self._cv.wait()

    def missing(self, frame: int) -> str | None:
        """Why `frame` (handled already) has no dream of its own: its engine call failed, or the
        model never loaded. None when it has one."""
        with self._cv:
            why = self._failed.get(frame)
            if why is None and self._done_frame < frame:
                why = "the generator stopped before dreaming it"
        if why is None and self.engine is None and not self.loading:
            why = f"the model did not load ({self.load_error or 'stopped'})"
        return why

    def _run(self) -> None:
        try:
            self._work()
        finally:  # however the thread ends, nobody waits for it any more
            with self._cv:
                self._ended = True
                self._cv.notify_all()

    def _work(self) -> None:
        if self.engine is None:
            try:
                if self._load is None:
                    raise RuntimeError("no engine, and nothing to load one with")
                self.engine = self._load()
                log.info("%s: dreams on %s", self.name, getattr(self.engine, "runtime", "torch"))
                for note in getattr(self.engine, "notes", ()):
                    self.reporter.error(self.name, note)
            except Exception as exc:  # missing weights, no network, out of memory: play the scene
                self.load_error = described(exc)
                if not self._stop:
                    self.reporter.error(self.name, f"did not load, playing the scene alone ({self.load_error})")
            with self._cv:
                self.loading = self._busy = False
                self._cv.notify_all()
        while True:
            with self._cv:
                while self._pending is None and not self._stop:
                    self._cv.wait()
                if self._stop or self._pending is None:  # the wait ends on one or the other
                    return
                frame, fp = self._pending
                dropped, self._pending, self._dropped = self._dropped, None, []
                self._busy = True
            t = time.perf_counter()
            out, failed = None, ""  # an engine that did not load leaves every frame to the scene
            try:
                if self.engine is not None:
                    grid = getattr(self.engine, "motion_grid", None)
                    frame = frame.prepared(grid)
                    for older in reversed(dropped):
                        frame = frame.after(older.prepared(grid))
                    out = self.engine(frame, fp)
            except Exception as exc:  # includes out-of-memory: report, keep the last good frame
                if self._stop:
                    return  # interrupted by close(): not a failure of the engine
                self.failures += 1
                failed = described(exc)
                self.reporter.error(self.name, f"frame {fp.frame}: {failed}")
            self.busy_seconds += time.perf_counter() - t
            self.done += 1
            recover = getattr(self.engine, "recover", None) if failed else None
            base = getattr(self.engine, "stats", {}).get("base_frame", -1) if out is not None else -1
            with self._cv:
                if out is not None:
                    self.result_base = (fp.frame, base if 0 <= base <= fp.frame else fp.frame)
                    self._result = (fp.frame, out)
                elif failed:
                    self._failed[fp.frame] = failed
                    while len(self._failed) > MISSING_KEPT:
                        del self._failed[next(iter(self._failed))]
                self._done_frame = max(self._done_frame, fp.frame)
                self._busy = recover is not None  # a recovery can be a reload: interruptible too
                self._cv.notify_all()
            # after the frame is answered: restarting a dead process reloads the model (minutes),
            # and an offline render that will stop on the failure must not wait for that
            if recover is not None and not self._stop:
                try:
                    recover()
                except Exception as again:
                    if not self._stop:
                        self.reporter.error(self.name, f"recovery failed: {again}")
            with self._cv:
                self._busy = False

    def close(self) -> None:
        """Stop, and join the thread before returning. An idle engine is closed as it asks; busy
        work (a load, a frame) is interrupted where it can be (`interrupt`), otherwise the frame
        in hand is finished first."""
        with self._cv:
            self._stop = True  # from here the thread takes no more work
            busy = self._busy
            self._cv.notify_all()
        if busy and self._interrupt is not None:
            self._interrupt()
        self._thread.join(timeout=2.0)
        if self._thread.is_alive():
            log.info("%s: waiting for the frame in hand to finish before exit", self.name)
            self._thread.join()
        close = getattr(self.engine, "close", None)  # an engine in another process ends with us
        if close is not None:
            try:
                close()
            except Exception as exc:
                self.reporter.error(self.name, f"closing: {exc}")


class ThreadedGenerator:
    """A Generator (see generate/__init__) running a CPU/CUDA engine on the worker thread.

    GL stays on the main thread: the scene (colour and motion) is read back here and the result
    uploaded here.
    """

    def __init__(self, name: str, engine: Engine | None, ctx: moderngl.Context, size: tuple[int, int],
                 reporter: Reporter, *, live: bool, load: Callable[[], Engine] | None = None,
                 interrupt: Callable[[], None] | None = None) -> None:
        self.name = name
        self.worker = GeneratorWorker(engine, reporter, live=live, name=f"generator {name}", load=load,
                                      interrupt=interrupt)
        self.texture = ctx.texture(size, 3)
        self.texture.repeat_x = self.texture.repeat_y = False  # scaled up, its edges must not wrap round
        self._readback = np.empty((size[1], size[0], 4), dtype=np.uint8)  # reused every frame
        self._shown = -1
        self._frame = -1
        # the texture `latest` returned: (frame handed in, base frame it is a dream of), -1 for none
        self.dream: tuple[int, int] = (-1, -1)
        self.commands: dict[str, Callable] = {}  # none of its own (the protocol's)

    def submit(self, scene: moderngl.Texture, fp: FrameParams, motion: moderngl.Texture | None = None,
               cut: bool = False) -> None:
        scene.read_into(self._readback)
        self._frame = fp.frame
        # one copy each: the worker keeps them while the next frame is read back here, and turns
        # the motion the right way up on its own thread (a full-size pass the loop need not pay for)
        image = np.ascontiguousarray(self._readback[::-1, :, :3])
        flow = None
        if motion is not None and motion.size == scene.size:
            flow = np.empty((scene.size[1], scene.size[0], 2), dtype=np.float32)
            motion.read_into(flow)
        self.worker.submit(BaseFrame(image, flow, cut, gl=True), fp)

    def latest(self) -> moderngl.Texture | None:
        res = self.worker.result(None if self.worker.live else self._frame)
        if res is None:
            return None  # nothing dreamed yet: the compositor shows the scene
        frame, image = res
        if frame != self._shown:
            self.texture.write(np.ascontiguousarray(image[::-1]))
            self._shown = frame
            done, base = self.worker.result_base
            self.dream = (frame, base if done == frame else frame)
        return self.texture

    def ready(self) -> None:
        """Block until the model has loaded or failed to (an offline render times frames after it)."""
        self.worker.wait_loaded()

    def missing(self, frame: int) -> str | None:
        """Offline, once `latest` has answered for `frame`: why it has no dream of its own, or None."""
        return self.worker.missing(frame)

    @property
    def base_frame(self) -> int | None:
        """The frame whose scene the texture `latest` returned is a dream of (None before any)."""
        return self.dream[1] if self.dream[1] >= 0 else None

    @property
    def engine(self) -> Engine | None:
        """The engine, once it has loaded (None before, or if it did not)."""
        return self.worker.engine

    def stats(self) -> dict[str, Any]:
        w = self.worker
        return {"replaced": w.replaced, "failures": w.failures, "busy_seconds": w.busy_seconds,
                "done": w.done, "loading": w.loading, **getattr(w.engine, "stats", {})}

    def release(self) -> None:
        self.worker.close()
        self.texture.release()
