"""The show's ports: what its parts implement to be handed in (outputs, control sources, feedback,
event sinks), and the figures it keeps about itself (`Stats`: stage and frame times, control
latency, the age of the dreams it showed), read by the HUD, `noclip play` and the bench.

Apart from show.py so the loop reads as the loop, and so a part can see what it must provide
without reading the loop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeGuard, runtime_checkable

import moderngl

from .events import ControlEvent
from .params import FrameParams


class Output(Protocol):
    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Deck(Protocol):
    """An output that records takes (record/deck.py): `record/start` and `stop` go to it, the HUD
    shows its status, and the show notices when a take stopped by itself (a full disk)."""

    @property
    def recording(self) -> bool: ...

    def record(self, on: bool) -> bool:
        """Start (True) or stop a take; whether one is running now."""

    def status(self) -> tuple[float, int] | None:
        """(seconds, frames dropped) of the take running, None when none is."""


class ControlSource(Protocol):
    """A control source the loop asks for what has arrived, at the start of every frame. What `poll`
    returns the loop ignores (AudioControl's: the blocks it heard)."""

    def poll(self) -> object: ...


@runtime_checkable
class SocketSource(Protocol):
    """A source with a socket: also read while the loop waits for the next frame, then with
    `poll(until=...)`: the end of the slack, which its reading may fill but never pass."""

    def fileno(self) -> int: ...

    def poll(self, until: float | None = None) -> None: ...


class Feedback(Protocol):
    def publish(self, fp: FrameParams) -> None: ...


class EventSink(Protocol):
    """Told of every control event the moment it is applied (event logs, performance files)."""

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None: ...

    def close(self, frames: int) -> None:
        """The show ended after `frames` frames."""


@runtime_checkable
class FileSink(EventSink, Protocol):
    """A sink that writes a file: named in the report when a write fails, and then closed with
    `abandon()`, without another write."""

    path: Any

    def abandon(self) -> None: ...


@dataclass
class Stats:
    """Per-stage wall times (ms) of recent frames and control latencies (s), for HUD and bench."""

    keep: int = 600
    stages: dict[str, deque] = field(default_factory=dict)
    frame_times: deque = field(default_factory=lambda: deque(maxlen=600))
    latencies: list[float] = field(default_factory=list)
    measure_latency: bool = False
    # recent dreams composited: (age, carried, batch lag, hop, cut), see `dreamed`
    dream: deque = field(default_factory=lambda: deque(maxlen=600))

    def add(self, stage: str, seconds: float) -> None:
        self.stages.setdefault(stage, deque(maxlen=self.keep)).append(seconds * 1000.0)

    def dreamed(self, frame: int, carry: Any, dream: tuple[int, int] | None) -> None:
        """The latency of the dream composited at `frame`: its age (frames since its base frame),
        how far it was carried, and the two parts of the age: the generator's own lag (Stream
        Batch answers k-1 frames after the frame it was handed) and the hop (frames between
        handing that frame over and compositing the answer: the process, the queue)."""
        handed, base = dream if dream is not None else (frame, frame)
        self.dream.append((carry.age, carry.carried, handed - base, frame - handed, carry.cut))

    def dream_summary(self) -> dict[str, float]:
        """Means over the recent frames that showed a dream (empty when none did)."""
        if not self.dream:
            return {}
        rows = list(self.dream)
        keys = ("age", "carried", "batch_lag", "hop")
        out = {k: sum(r[i] for r in rows) / len(rows) for i, k in enumerate(keys)}
        out["cut_share"] = sum(1 for r in rows if r[4]) / len(rows)
        out["frames"] = len(rows)
        return out

    def fps(self) -> float:
        ft = self.frame_times
        return (len(ft) - 1) / (ft[-1] - ft[0]) if len(ft) > 1 and ft[-1] > ft[0] else 0.0


_PROVIDES: dict[tuple[type, type], bool] = {}


def _provides(obj: object, protocol: type) -> bool:
    """isinstance(obj, protocol) for a runtime-checkable protocol of methods and properties, asked
    once per class: the loop asks every frame, and isinstance against a Protocol costs 10-20 µs a
    call (measured), a hundred times a plain attribute check."""
    key = (type(obj), protocol)
    known = _PROVIDES.get(key)
    if known is None:
        known = _PROVIDES[key] = isinstance(obj, protocol)
    return known


def is_deck(obj: object) -> TypeGuard[Deck]:
    return _provides(obj, Deck)


def is_socket(obj: object) -> TypeGuard[SocketSource]:
    return _provides(obj, SocketSource)
