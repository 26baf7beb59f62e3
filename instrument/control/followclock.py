"""Follow mode's pacing: the follower's show builds frame n once the leader has played it, and, in
a Link session, when the shared timeline reaches the leader's mark for it (control/followlink.py).
The follower that reads the leader's stream is control/follow.py; this is only when frames start.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..clock import RealtimeClock, Tick
from .follow import SLICE, STALL, Follower
from .followlink import Marks


class FollowClock(RealtimeClock):
    """The leader's frames pace this show: frame n is built once the leader has played it (as fast
    as the machine goes while catching up), and while the leader is silent or gone the show plays
    on at its own `fps` (RealtimeClock's pacing). Show time is frame * period, as the leader's.
    Live, with Link marks (control/followlink.py), frame n also waits for its mark on the shared
    timeline: never more than a period (a mark further ahead is not believed, "mark ahead")."""

    def __init__(self, fps: float, follower: Follower) -> None:
        super().__init__(fps)
        self.follower = follower

    def tick(self, idle: Callable[[float], None] = time.sleep) -> Tick:
        f, nxt = self.follower, self.frame + 1
        now = time.perf_counter()
        if self.frame < 0:
            self.start = self._next = now
        f.receive()  # what came while the last frame was made
        while f.newest < nxt:  # the leader has not played it yet
            now = time.perf_counter()
            until = f.heard + STALL if f.leading else self._next
            if now >= until:
                if not f.leading and now - self._next > self.period:
                    self.late += 1
                    self._next = now
                break
            idle(min(SLICE, until - now))  # the show polls its sources, the follower's too
        if f.live and f.marks is not None and f.newest >= nxt:
            self._await(f.marks, nxt, idle)
        self.frame = nxt
        # the leader's frame came: our own pacing, should it fall silent, runs on from here
        self._next = (time.perf_counter() if f.newest >= nxt else self._next) + self.period
        self.began = time.perf_counter()
        f.built(nxt)
        return Tick(nxt, nxt * self.period, self.period)

    def _await(self, marks: Marks, frame: int, idle: Callable[[float], None]) -> None:
        """Until the shared timeline reaches frame `frame`'s mark (at once when it has, or when
        there is no mark to go by)."""
        due = marks.target(frame)
        if due is None:
            return
        if due - time.perf_counter() > self.period:
            marks.stats["mark ahead"] += 1
            return
        while (left := due - time.perf_counter()) > self.SPIN:
            idle(min(SLICE, left - self.SPIN))
        while time.perf_counter() < due:
            pass


__all__ = ["FollowClock"]
