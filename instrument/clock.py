"""Frame clocks: realtime for a show, fixed-step for offline renders (exact and repeatable)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    """Show time is frame / fps in both clocks, so a live show and its re-render compute the same
    frames (smoothing, noise, animation); the wall clock only paces the live one."""

    frame: int
    time: float
    dt: float


class OfflineClock:
    """Frame n is at n / fps, whatever the wall clock says: renders are identical run to run."""

    realtime = False

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.frame = -1

    def tick(self) -> Tick:
        self.frame += 1
        return Tick(self.frame, self.frame / self.fps, 1.0 / self.fps)


class RealtimeClock:
    """Steady pacing at `fps`: sleep to just before the deadline, spin the rest (sleep overshoots).

    Deadlines are absolute (start + n·period), so pacing does not drift; when a frame runs late by
    more than a whole period the schedule restarts from now instead of racing to catch up.
    """

    realtime = True
    SPIN = 0.0008  # seconds of busy-wait before each deadline

    def __init__(self, fps: float, paced: bool = True) -> None:
        self.fps = fps
        self.period = 1.0 / fps
        self.paced = paced
        self.frame = -1
        self.start = 0.0
        self._next = 0.0
        self.late = 0

    def tick(self) -> Tick:
        now = time.perf_counter()
        if self.frame < 0:
            self.start = self._next = now
        elif self.paced:
            wait = self._next - now
            if wait > self.SPIN:
                time.sleep(wait - self.SPIN)
            while time.perf_counter() < self._next:
                pass
            now = time.perf_counter()
            if now - self._next > self.period:
                self.late += 1
                self._next = now
        self.frame += 1
        self._next += self.period
        return Tick(self.frame, self.frame * self.period, self.period)
