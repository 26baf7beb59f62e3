"""Arrival stamps for polled MIDI: rtmidi's deltas, chained, put on time.perf_counter's clock.

rtmidi says how long after the previous message each one came, from its own clock, but not when.
Chained, the deltas give exact relative times r; one offset c is unknown (arrival = r + c). The
polls themselves bound it: a message first seen by a poll arrived after the previous poll found the
queue empty (`since`) and before this poll finished reading (`now`), so since < r + c <= now. Every
batch narrows the interval and the stamp takes its middle, so stamps converge on the true arrival
times as messages come in, and are never later than the poll that saw them.

Clocks part slowly (an NTP-slewed or crystal clock against CLOCK_MONOTONIC): old bounds loosen by
DRIFT a second, symmetrically, so the middle holds still until new messages say otherwise. Clocks
also jump (a device re-opened, a clock stepped, messages lost from a full queue): bounds that
contradict by more than JUMP start the estimate afresh from the current batch; a smaller
contradiction (the reader woke late, or a clock parts faster than DRIFT) is split down the middle.
"""

from __future__ import annotations

import math

DRIFT = 100e-6  # s/s: how fast two clocks may part (crystals: tens of ppm); old bounds loosen by this
JUMP = 0.002    # s: a contradiction above this is a clock jump; below it, the reader woke up late


class ArrivalClock:
    """One input port's offset estimate; `stamps` is called once per poll that took messages."""

    __slots__ = ("at", "hi", "lo", "r", "resets", "since")

    def __init__(self, opened: float) -> None:
        self.r = 0.0          # the last message's time on the device's clock (deltas chained)
        self.lo, self.hi = -math.inf, math.inf  # bounds on the offset c
        self.at = opened      # when the bounds were last tightened
        self.since = opened   # nothing the next poll sees arrived before this
        self.resets = 0

    @property
    def offset(self) -> float | None:
        """The estimate of c (None before any message)."""
        return None if math.isinf(self.hi) else 0.5 * (self.lo + self.hi)

    def stamps(self, deltas: list[float], now: float, start: float, emptied: bool = True) -> list[float]:
        """Arrival times (perf_counter) of messages read between `start` and `now`. `emptied`: the
        read ended on an empty queue, so whatever the next poll sees arrived after `start`."""
        since = self.since
        if emptied:
            self.since = start
        r, rs = self.r, []
        for d in deltas:
            r += d
            rs.append(r)
        if not rs:
            return rs
        self.r = r
        blo, bhi = since - min(rs), now - max(rs)  # this batch alone: blo < c <= bhi
        widen = DRIFT * (now - self.at)
        self.at = now
        lo, hi = max(self.lo - widen, blo), min(self.hi + widen, bhi)
        if lo > hi:
            if lo - hi > JUMP or blo > bhi + JUMP:
                self.resets += not math.isinf(self.hi)
                lo, hi = blo, bhi  # a clock jump: start again from what this batch says
            if lo > hi:
                lo = hi = 0.5 * (lo + hi)  # a late reader or a clock outrunning DRIFT: meet halfway
        self.lo, self.hi = lo, hi
        c = 0.5 * (lo + hi)
        return [since if x + c < since else now if x + c > now else x + c for x in rs]
