"""Frame clocks (realtime for a show, fixed-step for offline renders) and the beat clock."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .params import ParamSpec


@dataclass(frozen=True)
class Tick:
    """Show time is frame / fps in both clocks, so a live show and its re-render compute the same
    frames (smoothing, noise, animation); the wall clock only paces the live one."""

    frame: int
    time: float
    dt: float


SOURCES = ("link", "ableton", "midi", "tap", "internal")  # priority: the first alive one wins
SYNC = "clock/sync"  # the command an outside clock reports with (see BeatClock.sync)
MAX_BEAT = 1e9  # beats: 15 years at 120 bpm; an outside clock's report beyond this is refused

PARAMS = (
    ParamSpec("tempo", "float", 120.0, min=20.0, max=300.0, unit="bpm", group="clock", origin=__name__,
              description="the internal clock's tempo (tap sets it); "
                          "outside clocks override it while they run"),
    ParamSpec("clock_source", "enum", "auto", choices=("auto", *SOURCES), group="clock", origin=__name__,
              description="which clock the beat follows: auto takes the first running of "
                          "link > ableton > midi > tap > internal"),
)


@dataclass(frozen=True)
class Beat:
    """Where the music is at one frame: what modulators and stages read (`fp.beat`)."""

    tempo: float = 120.0
    beat: float = 0.0  # beats since the song's start (or the clock's), fractional
    playing: bool = True
    source: str = "internal"
    numerator: int = 4  # beats in a bar

    @property
    def phase(self) -> float:
        """0..1 through the current beat."""
        return self.beat - math.floor(self.beat)

    @property
    def bar(self) -> int:
        return math.floor(self.beat / self.numerator)

    @property
    def bar_phase(self) -> float:
        """0..1 through the current bar."""
        b = self.beat / self.numerator
        return b - math.floor(b)


@dataclass
class _Report:
    """An outside clock's last word: beat `beat` at show time `t`, going at `tempo`."""

    tempo: float
    beat: float
    t: float
    playing: bool
    numerator: int
    seen: float  # show time it arrived

    def at(self, t: float) -> float:
        return self.beat + (t - self.t) * self.tempo / 60.0 if self.playing else self.beat


class BeatClock:
    """Tempo, beat, bar and phase for each frame, from the best clock there is.

    Sources in priority order: Ableton Link, AbletonOSC, MIDI clock, tap, internal (the `tempo`
    parameter). Outside clocks live on their own threads and only ever report through the control
    queue (`clock/sync` events, see `sync`), and everything here runs on show time, so a live show,
    its performance file and an offline render compute the same beats. Between reports the beat is
    extrapolated from the tempo, and a report that disagrees with the extrapolation is eased in over
    `EASE` seconds (never backwards while playing) instead of jumping, so phase stays smooth even
    when reports come ~100 ms apart with jitter; past `SNAP` it jumps (the show ran late — show
    time stood still while the music went on — or Live located). A source that has not reported
    for `STALE` seconds (or two beats, whichever is longer) is gone and the next one takes over.
    """

    STALE = 2.0
    EASE = 0.1  # seconds to ~63% of a phase correction
    SNAP = 0.02  # seconds of disagreement past which the clock jumps (late frames, a locate, a restart)
    TAP_RESET = 2.0  # seconds between taps that start a new tap tempo

    def __init__(self, tempo: float = 120.0) -> None:
        self.reports: dict[str, _Report] = {}
        self.taps: list[float] = []
        self.tapped = False
        self._internal = _Report(tempo, 0.0, 0.0, True, 4, 0.0)
        self.now: Beat | None = None
        self._t = 0.0

    # -- reports (applied by the show from control events, in frame order) -------------------

    def sync(self, report: dict[str, Any], t: float) -> None:
        """An outside clock said: at show time `t`, beat `report['beat']` at `report['tempo']`."""
        source = str(report["source"])
        if source not in SOURCES[:3]:
            raise ValueError(f"clock source {source!r} is not one of {', '.join(SOURCES[:3])}")
        if report.get("gone"):
            self.reports.pop(source, None)
            return
        tempo, beat = float(report["tempo"]), float(report["beat"])
        if not 1.0 <= tempo <= 999.0:
            raise ValueError(f"tempo {tempo} is out of 1..999")
        if not abs(beat) <= MAX_BEAT:  # NaN and infinities too: math.floor(inf) ends a show
            raise ValueError(f"beat {beat} is out of ±{MAX_BEAT:g}")
        numerator = report.get("numerator", 4)
        if not isinstance(numerator, (int, float)) or not 1 <= numerator <= 64:
            raise ValueError(f"time signature numerator {numerator!r} is out of 1..64")
        self.reports[source] = _Report(tempo, beat, t, bool(report.get("playing", True)), int(numerator), t)

    def tap(self, t: float) -> float | None:
        """A tap at show time `t`; returns the tapped tempo once there are two taps. The beat lands
        on the tap: the internal clock is re-anchored so the tap is a whole beat."""
        if self.taps and t - self.taps[-1] > self.TAP_RESET:
            self.taps.clear()
        if self.taps and t <= self.taps[-1]:  # the same instant (a flood in one frame) or older: one tap
            return None
        self.taps = [*self.taps[-7:], t]
        if len(self.taps) < 2:
            return None
        tempo = 60.0 * (len(self.taps) - 1) / (self.taps[-1] - self.taps[0])
        tempo = min(max(tempo, 20.0), 300.0)
        i = self._internal
        self._internal = _Report(tempo, float(round(i.at(t))), t, True, i.numerator, t)
        self.tapped = True
        return tempo

    # -- one frame ---------------------------------------------------------------------------

    def source(self, t: float, choice: str = "auto") -> str:
        """The source that drives the frame at show time `t`: the chosen one while it is alive,
        else the first alive by priority."""
        alive = [s for s, r in self.reports.items()
                 if t - r.seen <= max(self.STALE, 120.0 / r.tempo)]
        if choice in alive:
            return choice
        for s in SOURCES[:3]:
            if s in alive:
                return s
        return "tap" if self.tapped else "internal"

    def advance(self, t: float, tempo: float = 120.0, choice: str = "auto") -> Beat:
        """The beat at show time `t` (call once a frame, `t` never decreasing)."""
        i = self._internal
        if tempo != i.tempo:  # the tempo moved since the last frame: the new one runs from there
            self._internal = _Report(tempo, i.at(self._t), self._t, True, i.numerator, self._t)
            self.tapped = False
        source = self.source(t, choice)
        r = self.reports.get(source, self._internal)
        target = r.at(t)
        prev = self.now
        if prev is None or prev.source != source or not r.playing or not prev.playing:
            beat = target
        else:
            guess = prev.beat + (t - self._t) * r.tempo / 60.0
            err = target - guess
            if abs(err) * 60.0 / r.tempo > self.SNAP:
                beat = target
            else:
                beat = max(prev.beat, guess + err * (1.0 - math.exp(-(t - self._t) / self.EASE)))
        self._t = t
        self.now = Beat(r.tempo, beat, r.playing, source, r.numerator)
        return self.now


class OfflineClock:
    """Frame n is at n / fps, whatever the wall clock says: renders are identical run to run."""

    realtime = False

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.frame = -1

    def tick(self, idle: Callable[[float], None] | None = None) -> Tick:
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
        self.began = 0.0  # perf_counter time the current frame began (its tick returned): what tiles compare

    def tick(self, idle: Callable[[float], None] = time.sleep) -> Tick:
        """The next frame, at its deadline; `idle(seconds)` spends the slack (the show reads its
        control sockets there), returning in time for the spin."""
        now = time.perf_counter()
        if self.frame < 0:
            self.start = self._next = now
        elif self.paced:
            wait = self._next - now
            if wait > self.SPIN:
                idle(wait - self.SPIN)
            while time.perf_counter() < self._next:
                pass
            now = time.perf_counter()
            if now - self._next > self.period:
                self.late += 1
                self._next = now
        self.frame += 1
        self._next += self.period
        self.began = time.perf_counter()
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


def settle_memory() -> None:
    """Before a live show: collect once, then keep everything alive so far (the libraries, torch's
    hundreds of thousands of objects) out of the collector's reach. A full collection over them
    takes 100-200 ms here, ten dropped frames whenever Python's schedule decides; afterwards it
    only walks what the show itself allocates."""
    gc.collect()
    gc.freeze()
