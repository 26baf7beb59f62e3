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


class ClockFollower:
    """Tempo and beat position from a MIDI clock (24 ticks a beat, start / stop / continue / song
    position): what a beat clock for modulation reads.

    The tempo is the least-squares slope of tick times over the last two beats, so USB and
    scheduler jitter averages out instead of wobbling the estimate tick to tick; a gap of more
    than a few tick periods (the clock stopped, the cable was pulled) starts a fresh estimate.
    """

    PPQN = 24
    WINDOW = 48  # ticks: two beats

    def __init__(self) -> None:
        self.running = False
        self.ticks = 0  # clock ticks since song position 0 (while running)
        self._times: list[float] = []
        self._period: float | None = None
        self._last = 0.0  # fitted time of the newest tick

    @property
    def tempo(self) -> float | None:
        """Beats per minute, None until a few ticks have been seen."""
        return 60.0 / (self._period * self.PPQN) if self._period else None

    def tick(self, t: float) -> None:
        times = self._times
        if times and t - times[-1] > max(0.25, 4.0 * (self._period or 0.0)):
            times.clear()
            self._period = None
        times.append(t)
        if len(times) > self.WINDOW:
            del times[0]
        n = len(times)
        if n >= 3:
            mean_i, mean_t = (n - 1) / 2.0, sum(times) / n
            num = sum((i - mean_i) * (x - mean_t) for i, x in enumerate(times))
            den = n * (n * n - 1) / 12.0
            self._period = num / den if num > 0 else self._period
            self._last = mean_t + (n - 1 - mean_i) * (self._period or 0.0)
        else:
            self._last = t
        if self.running:
            self.ticks += 1

    def start(self) -> None:
        self.running, self.ticks = True, 0

    def stop(self) -> None:
        self.running = False

    def cont(self) -> None:
        self.running = True

    def song_position(self, sixteenths: int) -> None:
        """Song position pointer: 1 unit = a sixteenth note = 6 ticks."""
        self.ticks = sixteenths * 6

    def beat(self, t: float) -> float:
        """Beats since song position 0 at time `t`, between ticks by the fitted tempo (at most one
        tick ahead of the last one, so a stopped clock never runs on)."""
        if not self.running or not self._period:
            return self.ticks / self.PPQN
        ahead = min(max((t - self._last) / self._period, 0.0), 1.0)
        return (self.ticks - 1 + ahead) / self.PPQN if self.ticks else 0.0
