"""Recording on command: takes started and stopped from OSC, MIDI, a key or the command line.

The deck is one of the show's outputs. Each start opens a new take (the first at `--record OUT`,
later ones OUT-2, OUT-3, …; without --record, timestamped files in the takes folder), beginning
with the very frame the command took effect on. The show flips the `recording` parameter with it,
so the tape's on-screen display says REC — in a re-render of the performance too.

No take ever overwrites a file: a name already taken (by an earlier show's take or its
performance file) is passed over for the next free one. A take that stops by itself (disk nearly
full, a failed write) is reported once and finished; the show plays on, unrecorded.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from pathlib import Path

import moderngl

from ..files import free_name
from ..params import FrameParams
from ..report import Reporter
from .audio import Soundtrack
from .encoding import QUALITIES, choose_quality
from .video import TakeStopped, VideoRecorder, lower_priority

PERFORMANCE_SUFFIX = ".performance.jsonl"


def performance_path(take: Path) -> Path:
    """The performance file written beside a take: `show.mp4` → `show.performance.jsonl`."""
    return take.with_suffix(PERFORMANCE_SUFFIX)


def free_take(path: Path, skip: tuple[Path, ...] = ()) -> Path:
    """`path`, or the next free `stem-N.ext` when it or its performance file already exists."""
    return free_name(path, lambda p: (performance_path(p),), skip)


class RecordDeck:
    def __init__(self, size: tuple[int, int], fps: float, reporter: Reporter, *, first: Path | None = None,
                 folder: Path = Path(), codec: str = "h264", audio: Callable[[], Soundtrack] | None = None,
                 suffix: str = ".mp4", reserve: int | None = None, base: Path | None = None,
                 quality: str = "best", cores: float = 1.0, performance: Path | None = None) -> None:
        """`first`: the first take's file, already chosen free (its performance file may be
        open beside it); later takes take the next free `base-N` names (`base`: `first`).
        `quality`: one of QUALITIES, or `auto`: the best whose encode, measured on this machine
        (on a thread of its own, as the show starts), fits in `cores` of CPU at `fps`.
        `performance`: the file the show's performance goes to, named when a reduced take ends."""
        self.size, self.fps, self.reporter, self.reserve = size, fps, reporter, reserve
        self.base = base or first
        self.first, self.folder, self.codec, self.audio, self.suffix = first, folder, codec, audio, suffix
        self.performance = performance
        self.recorder: VideoRecorder | None = None
        self.takes: list[Path] = []
        self.reduced: list[str] = []  # commands that render the reduced takes full size
        self.dropped = 0
        self._frame = 0  # the frame the next write will be
        self.quality, self.why = quality, "asked for"
        self._choosing: threading.Thread | None = None
        self._start_take = threading.Event()
        if quality == "auto":
            self.quality, self.why = "fast", "not measured"
            if codec == "h264":  # a show that records from its start measures now, others later
                self._choosing = threading.Thread(target=self._choose, args=(cores, 0.0 if first else 3.0),
                                                  daemon=True, name="record-quality")
                self._choosing.start()
        elif quality not in QUALITIES:
            raise ValueError(f"record quality '{quality}' is none of auto, {', '.join(QUALITIES)}")

    def _choose(self, cores: float, wait: float) -> None:
        """Measure the encoder: CPU time, timed on this thread, so niceness changes only when the
        figure comes in. A show that is not recording yet lets its start pass first, and yields."""
        if wait:
            self._start_take.wait(wait)  # a take asked for sooner ends the wait
            if not self._start_take.is_set():
                lower_priority(19)
        try:
            self.quality, self.why = choose_quality(self.size, self.fps, cores)
        except Exception as exc:  # no libx264 to measure: the cheapest, said
            self.quality, self.why = "fast", f"could not measure the encoder ({exc})"

    def status(self) -> tuple[float, int] | None:
        """The running take's (seconds, frames dropped), for the HUD; None when not recording."""
        rec = self.recorder
        return None if rec is None else (rec.offered / self.fps, rec.dropped)

    def at(self, frame: int) -> None:
        """The show's next frame is `frame` though this deck was not given the frames before it (a
        follower that joined mid-show): a take started now begins there."""
        self._frame = frame

    @property
    def recording(self) -> bool:
        """A take is running (it may have stopped by itself since the show asked for it)."""
        return self.recorder is not None

    def record(self, on: bool) -> bool:
        """Start or stop a take; returns whether a take is running now."""
        if on and self.recorder is None:
            path = self._next_path()
            if self._choosing is not None:
                self._start_take.set()
                if self.first is not None:  # recording from the start: wait for it (< 1 s, frame 0)
                    self._choosing.join()
                if not self._choosing.is_alive():
                    self._choosing = None
                else:  # mid-show, the loop never waits: this take at the cheapest, said
                    self.why = "the encoder is still being measured"
            try:
                self.recorder = VideoRecorder(path, self.size, self.fps, live=True, reporter=self.reporter,
                                              codec=self.codec, audio=self.audio() if self.audio else None,
                                              first_frame=self._frame, quality=self.quality,
                                              depth=max(8, round(self.fps)), reserve=self.reserve)
            except Exception as exc:  # disk, codec, device: say so, the show goes on unrecorded
                self.reporter.error("recorder", f"cannot record to {path}: {exc}")
                return False
            self.takes.append(path)
            w, h = self.recorder.file_size
            self.reporter.note("recorder", f"recording {path} at {w}x{h}, {self.quality} ({self.why})")
        elif not on and self.recorder is not None:
            self._finish()
        return self.recorder is not None

    def _next_path(self) -> Path:
        if self.first is not None:
            return self.first if not self.takes else free_take(self.base or self.first, tuple(self.takes))
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")  # a name only: nothing rendered reads it
        path = self.folder / f"noclip-{stamp}{self.suffix}"
        n = 2
        while path.exists() or path in self.takes:
            path, n = self.folder / f"noclip-{stamp}-{n}{self.suffix}", n + 1
        return path

    def _finish(self, reported: bool = False) -> None:
        """Close the take; `reported`: why it stopped was said already (once is enough)."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        try:
            rec.close()
        except TakeStopped as exc:  # the file is closed and plays up to here
            if not reported:
                self.reporter.error("recorder", str(exc))
            if rec.file_size != rec.size and self.performance is not None:
                self.reduced.append(self._full_size_command(rec))
            return
        except Exception as exc:
            self.reporter.error("recorder", f"finishing {rec.path}: {exc}")
            return
        self.dropped += rec.dropped
        if rec.dropped:
            self.reporter.error("recorder", f"{rec.path}: {rec.dropped} of {rec.offered} frames dropped")
        else:
            self.reporter.note("recorder", f"{rec.path}: {rec.frames} frames, none dropped")
        if rec.file_size != rec.size and self.performance is not None:
            self.reduced.append(self._full_size_command(rec))

    def _full_size_command(self, rec: VideoRecorder) -> str:
        """The render that gives this take at full size from the show's performance file: exact by
        design (the same events on the same frames), with --range when the take began mid-show."""
        start, end = rec.first_frame, rec.first_frame + rec.offered
        cut = f" --range {start / self.fps:g}:{end / self.fps:g}" if start else ""
        w, h = rec.size
        return (f"noclip render {self.performance} -o {rec.path.with_name(rec.path.stem + '-hd.mp4')}"
                f"{cut} --size {w}x{h}")

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        self._frame = fp.frame + 1
        if self.recorder is not None:
            try:
                self.recorder.write(fbo, fp)
            except TakeStopped as exc:  # disk (nearly) full, encoder gone: end this take, keep the show
                self.reporter.error("recorder", str(exc))
                self._finish(reported=True)
            except Exception as exc:
                self.reporter.error("recorder", f"{self.recorder.path}: {exc}; take stopped")
                self._finish(reported=True)

    def close(self) -> None:
        if self.recorder is not None:
            self._finish()
