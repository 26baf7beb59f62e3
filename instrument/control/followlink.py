"""Follow mode on a shared clock: the leader's Link marks (control/followwire.py's "b") turned into
the moments this machine starts its frames.

Without it a follower starts frame n when the leader's line for n arrives: it trails the leader by
the network's hop and whatever the hop's jitter is that frame, and can only guess by how much (the
leader's wall clock is not this one's). In an Ableton Link session both machines hold one timeline:
the leader marks each frame with the Link beat it began the frame at, and the follower starts its
frame n when its own timeline reaches that beat. It can never start before the line has come (the
leader decides frame n's events when it begins frame n), so on a quiet network the gain is not a
smaller lag but a measured one: the lag is read on the shared timeline, true between machines whose
clocks disagree, and a frame that starts more than half a period behind its mark is counted late.

What Link shares is the timeline's phase, not its count: each peer numbers beats from where it
joined, so the follower's beat and the leader's differ by a whole number of beats (measured: two
aalink peers 3.000 beats apart, before and after a tempo change). That whole number is read off
lines that have just come (their mark is a few milliseconds old, far from half a beat), and taken
only when AGREE such lines in a row say the same; until then, or when the session has no other
peer, the follower plays as it would without Link. A mark becomes a time at the tempo the session
has when the frame is due, so a tempo change moves nothing: the mark is a beat the leader has
already reached, a frame or less ago, and the tempo only converts what remains of that frame.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Protocol

MAX_MARKS = 4 * 3600 * 60  # marks held for frames not yet built (popped as they are)
AGREE = 2  # fresh lines in a row that must agree on the beats between the two timelines
FRESH = 0.25  # beats: a line whose mark is older than this when it comes cannot place the timelines
AHEAD = 0.002  # s a mark may seem to be in the future as it arrives (peers' timelines agree within ~1 ms)


class Timeline(Protocol):
    """A Link session seen from this machine (control/link.py's LinkFollower)."""

    @property
    def tempo(self) -> float | None: ...  # None: no other peer in the session

    def timeline(self, t: float) -> float: ...  # the beat at perf_counter time t


class Marks:
    """Frame marks from the leader, the whole beats between its timeline and ours, and what they
    make of this machine's frame starts."""

    def __init__(self, link: Timeline, period: float, stats: Counter[str]) -> None:
        self.link, self.period, self.stats = link, period, stats
        self.offset: int | None = None  # our beat minus the leader's, once AGREE fresh lines agree
        self._candidate: int | None = None
        self._agreed = 0
        self._marks: dict[int, float] = {}

    def arrived(self, frame: int, mark: float, t: float) -> None:
        """Frame `frame`'s line came at perf_counter time `t` marked `mark`: kept for its frame, and
        read for the beats between the timelines."""
        if len(self._marks) < MAX_MARKS:
            self._marks[frame] = mark
        tempo = self.link.tempo
        if tempo is None:
            return
        since = self.link.timeline(t) - mark
        whole = round(since)
        part = since - whole  # the mark's age, in beats, if `whole` is right
        if not -AHEAD * tempo / 60.0 <= part <= FRESH:
            return  # stale (a line held up) or not our session: it places nothing
        if whole != self._candidate:
            self._candidate, self._agreed = whole, 0
        self._agreed += 1
        if self._agreed >= AGREE and whole != self.offset:
            self.offset = whole
            self.stats["link placed"] += 1

    def target(self, frame: int) -> float | None:
        """The perf_counter time frame `frame` is due (its mark on our timeline), or None: no mark,
        no other peer, the timelines not placed yet."""
        mark, tempo = self._marks.get(frame), self.link.tempo
        if mark is None or tempo is None or self.offset is None:
            return None
        now = time.perf_counter()
        return now + (mark + self.offset - self.link.timeline(now)) * 60.0 / tempo

    def lag(self, frame: int, t: float) -> float | None:
        """Seconds frame `frame`, begun at perf_counter time `t`, began after the leader's (on the
        shared timeline), or None (see `target`); its mark is forgotten. Past half a period it is
        counted ("late frames")."""
        due = self.target(frame)
        self._marks.pop(frame, None)
        if due is None:
            return None
        lag = t - due
        if lag > self.period / 2:
            self.stats["late frames"] += 1
        return lag


__all__ = ["Marks", "Timeline"]
