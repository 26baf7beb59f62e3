"""`noclip play --frame-times FILE`: when each frame began, one line a frame ("frame seconds", the
seconds of time.perf_counter, CLOCK_MONOTONIC on Linux, one clock for every process on a machine).

Why: tiles of one show (follow mode, control/follow.py) are meant to begin each frame together,
and what each says of itself (a follower's lag summary) is not evidence of that. Two processes on
one machine writing their frames' starts on one clock can be compared frame by frame, by a test or
by a person tuning a wall. A writer like any other (DESIGN, principle 3): a failing disk is
reported once and the show plays on without it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..params import FrameParams
from ..report import Reporter


class FrameTimes:
    """Show feedback: at each frame's publication, the frame and when its clock's tick began it."""

    def __init__(self, path: Path, began: Callable[[], float], reporter: Reporter) -> None:
        self.path, self.began, self.reporter = path, began, reporter
        self._file: TextIO | None = open(path, "w", buffering=1 << 16)  # OSError: the caller says so

    def publish(self, fp: FrameParams) -> None:
        if self._file is None:
            return
        try:
            self._file.write(f"{fp.frame} {self.began():.6f}\n")
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        """Said once; the file is let go (what its buffer still holds is lost with it)."""
        self.reporter.error("frame times", f"{self.path}: {exc.strerror or exc}; no more frame times")
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass

    def close(self) -> None:
        """The last lines leave the buffer here: a disk that fills now is said too."""
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError as exc:
                self._failed(exc)


def frame_times(path: Path | None, began: Callable[[], float], reporter: Reporter) -> FrameTimes | None:
    """The writer for `--frame-times`, or None (none asked for, or the file cannot be made: said)."""
    if path is None:
        return None
    try:
        return FrameTimes(path, began, reporter)
    except OSError as exc:
        reporter.error("frame times", f"{path}: {exc.strerror or exc}; the show plays without it")
        return None


__all__ = ["FrameTimes", "frame_times"]
