"""ControlEvent and the queue between control threads and the frame loop."""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

CMD = "cmd/"


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

    @property
    def is_command(self) -> bool:
        return self.target.startswith(CMD)

    @property
    def command(self) -> str:
        return self.target[len(CMD):]


class ControlQueue:
    """Many producers, one consumer. deque append/popleft are atomic, so no lock on the hot path.

    Bounded: past `limit` pending events the oldest are dropped and counted, so a runaway source
    cannot grow memory without bound.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self._q: deque[ControlEvent] = deque()
        self._later: list[tuple[float, int, ControlEvent]] = []
        self._order = itertools.count()
        self.limit = limit
        self.dropped = 0

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
                heapq.heappush(self._later, (e.at, next(self._order), e))
            else:
                out.append(e)
        while self._later and self._later[0][0] <= now:
            out.append(heapq.heappop(self._later)[2])
        return out

    def __len__(self) -> int:
        return len(self._q) + len(self._later)
