"""ControlEvent and the queue between the sources (control/, the window's keys) and the frame loop,
and `Host`: the show as a part handed to it sees it.

Ground, beside params.py: the event is the data control hands the show, and the window (render/)
puts its keys on the same queue, so neither part has to import the other (nor the show)."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

CMD_TARGET = "cmd/"  # a command's event targets this and its name (a parameter's, its name)


@dataclass(frozen=True)
class ControlEvent:
    """One control move. `time` is the arrival stamp (perf_counter); `at` delays it (OSC timetags)."""

    source: str
    target: str  # a parameter name, or "cmd/<command>"
    value: Any = None
    norm: bool = False
    time: float = field(default_factory=time.perf_counter)
    at: float | None = None
    reply: tuple[str, int] | None = None  # where an answering source wants replies
    origin: str = ""  # the network sender's address (OSC), "" for devices on this machine
    remote: bool = False  # from beyond this machine: may not name paths (see control/osc.py)

    @property
    def is_command(self) -> bool:
        return self.target.startswith(CMD_TARGET)

    @property
    def command(self) -> str:
        return self.target[len(CMD_TARGET):]


class ControlQueue:
    """Many producers, one consumer. deque append/popleft are atomic, so no lock on the hot path.

    Bounded: past `limit` pending events the oldest are dropped and counted, so a runaway source
    cannot grow memory without bound. Events timed for later (OSC bundles' timetags) wait in a heap
    of at most `later_limit`, and at most `per_sender` from any one sender (`origin`, else
    `source`): 40 datagrams of future-timed bundles once parked 92,800 events (+30 MiB) here, all
    applied in one frame. What does not fit is dropped and counted in `dropped_later`.
    """

    def __init__(self, limit: int = 100_000, later_limit: int = 4096, per_sender: int = 512) -> None:
        self._q: deque[ControlEvent] = deque()
        self._later: list[tuple[float, int, ControlEvent]] = []
        self._waiting: Counter[str] = Counter()  # sender -> events of theirs in the heap
        self._order = itertools.count()
        self.limit = limit
        self.later_limit, self.per_sender = later_limit, per_sender
        self.dropped = 0
        self.dropped_later = 0

    def put(self, event: ControlEvent) -> None:
        if len(self._q) >= self.limit:
            try:
                self._q.popleft()
                self.dropped += 1
            except IndexError:
                pass
        self._q.append(event)

    def drain(self, now: float | None = None) -> list[ControlEvent]:
        """Everything due by `now`, in arrival order; events timed for later wait (no blocking)."""
        now = time.perf_counter() if now is None else now
        out: list[ControlEvent] = []
        q = self._q
        while q:
            e = q.popleft()
            if e.at is not None and e.at > now:
                who = e.origin or e.source
                if len(self._later) >= self.later_limit or self._waiting[who] >= self.per_sender:
                    self.dropped_later += 1
                    continue
                self._waiting[who] += 1
                heapq.heappush(self._later, (e.at, next(self._order), e))
            else:
                out.append(e)
        while self._later and self._later[0][0] <= now:
            e = heapq.heappop(self._later)[2]
            who = e.origin or e.source
            self._waiting[who] -= 1
            if self._waiting[who] <= 0:
                del self._waiting[who]
            out.append(e)
        return out

    def __len__(self) -> int:
        return len(self._q) + len(self._later)


class Host(Protocol):
    """The show's narrow entry points, all a part attached to it may use (MIDI, a MIDI file, the
    window): it hands itself in and hears of patch loads; it never reaches into the show."""

    @property
    def targets(self) -> dict[str, Any]:
        """Where each parameter is heading (read-only)."""

    def add_source(self, source: Any) -> None: ...

    def add_feedback(self, feedback: Any) -> None: ...

    def add_sink(self, sink: Any) -> None: ...

    def on_patch(self, listener: Callable[[Any], None]) -> None:
        """`listener(patch)` after each patch loaded mid-show."""

    def resize(self, size: tuple[int, int]) -> None: ...

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """Where the picture sits in the output (x, y, w, h)."""
