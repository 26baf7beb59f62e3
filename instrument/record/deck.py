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
from collections.abc import Callable
from pathlib import Path

import moderngl

from ..files import free_name
from ..params import FrameParams
from ..report import Reporter
from .audio import AudioSource
from .video import TakeStopped, VideoRecorder

PERFORMANCE_SUFFIX = ".performance.jsonl"


def performance_path(take: Path) -> Path:
    """The performance file written beside a take: `show.mp4` → `show.performance.jsonl`."""
    return take.with_suffix(PERFORMANCE_SUFFIX)


def free_take(path: Path, skip: tuple[Path, ...] = ()) -> Path:
    """`path`, or the next free `stem-N.ext` when it or its performance file already exists."""
    return free_name(path, lambda p: (performance_path(p),), skip)


class RecordDeck:
    def __init__(self, size: tuple[int, int], fps: float, reporter: Reporter, *, first: Path | None = None,
                 folder: Path = Path(), codec: str = "h264", audio: Callable[[], AudioSource] | None = None,
                 suffix: str = ".mp4", reserve: int | None = None, base: Path | None = None) -> None:
        """`first`: the first take's file, already chosen free (its performance file may be
        open beside it); later takes take the next free `base-N` names (`base`: `first`)."""
        self.size, self.fps, self.reporter, self.reserve = size, fps, reporter, reserve
        self.base = base or first
        self.first, self.folder, self.codec, self.audio, self.suffix = first, folder, codec, audio, suffix
        self.recorder: VideoRecorder | None = None
        self.takes: list[Path] = []
        self.dropped = 0
        self._frame = 0  # the frame the next write will be

    @property
    def recording(self) -> bool:
        """A take is running (it may have stopped by itself since the show asked for it)."""
        return self.recorder is not None

    def record(self, on: bool) -> bool:
        """Start or stop a take; returns whether a take is running now."""
        if on and self.recorder is None:
            path = self._next_path()
            try:
                self.recorder = VideoRecorder(path, self.size, self.fps, live=True, reporter=self.reporter,
                                              codec=self.codec, audio=self.audio() if self.audio else None,
                                              first_frame=self._frame, reserve=self.reserve)
            except Exception as exc:  # disk, codec, device: say so, the show goes on unrecorded
                self.reporter.error("recorder", f"cannot record to {path}: {exc}")
                return False
            self.takes.append(path)
            self.reporter.note("recorder", f"recording {path}")
        elif not on and self.recorder is not None:
            self._finish()
        return self.recorder is not None

    def _next_path(self) -> Path:
        if self.first is not None:
            return self.first if not self.takes else free_take(self.base, tuple(self.takes))
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")  # a name only: nothing rendered reads it
        path = self.folder / f"noclip-{stamp}{self.suffix}"
        n = 2
        while path.exists() or path in self.takes:
            path, n = self.folder / f"noclip-{stamp}-{n}{self.suffix}", n + 1
        return path

    def _finish(self, reported: bool = False) -> None:
        """Close the take; `reported`: why it stopped was said already (once is enough)."""
        rec, self.recorder = self.recorder, None
        try:
            rec.close()
        except TakeStopped as exc:
            if not reported:
                self.reporter.error("recorder", str(exc))
            return
        except Exception as exc:
            self.reporter.error("recorder", f"finishing {rec.path}: {exc}")
            return
        self.dropped += rec.dropped
        if rec.dropped:
            self.reporter.error("recorder", f"{rec.path}: {rec.dropped} of {rec.offered} frames dropped")
        else:
            self.reporter.note("recorder", f"{rec.path}: {rec.frames} frames, none dropped")

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
