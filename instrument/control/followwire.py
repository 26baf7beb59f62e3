"""Follow mode's wire: the lines a leader (record/lead.py) sends its followers (control/follow.py),
and how a follower reads one. Kept apart from both so each side imports the format, not the other.

The stream, one JSON object a line, each at most MAX_LINE bytes:

    {"kind": "noclip follow", "version": 1, "frame": P, "header": {...}, "link": true}
        first: the performance header (record/performance.py: the patch, every parameter's start
        value, fps) and P, the newest frame the leader has played (-1: none yet). "link" (only
        when true): the leader is in an Ableton Link session and marks its frames on its timeline
    {"f": n, "ev": [[source, target, value], ...], "w": seconds, "b": beat}
        frame n's applied events: first the past frames that had any and frame P's line, then
        every frame as the leader plays it, events or not (the follower's clock). Frames come in
        order. "w" is the leader's time.time() when it sent the frame (the lag measure; meaningful
        on one machine, or between machines whose clocks are synchronised). "b" (leaders in a Link
        session, live frames only): the Link beat at which the leader began frame n, the mark a
        follower in the same session starts its frame n at (control/follow.py)
    {"refused": "why"}
        the leader will not serve this follower

"link" and "b" came after version 1 and did not bump it: a reader of version 1 ignores keys it
does not know, so an older follower plays a newer leader's show on arrival, as before, and a newer
follower of an older leader, never given a mark, does the same.
"""

from __future__ import annotations

import json
from typing import Any

from ..clock import MAX_BEAT
from ..events import ControlEvent

KIND = "noclip follow"
VERSION = 1
PORT = 9100  # the leader's default port
MAX_LINE = 1 << 20  # bytes: a frame's events are a few hundred; a header a few kB
MAX_FRAME = 2**31 - 1  # as a performance file's
MAX_PENDING = 1_000_000  # events held for frames not yet played (a long show's history fits)


class FollowError(RuntimeError):
    """No show to follow: the leader cannot be reached, refused, or said something else first."""


def hello(header: dict[str, Any], frame: int, link: bool = False) -> bytes:
    """The leader's first line to a follower (`link`: its frames carry Link marks)."""
    message: dict[str, Any] = {"kind": KIND, "version": VERSION, "frame": frame, "header": header}
    if link:
        message["link"] = True
    return line(message)


def line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode()


def frame_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FRAME:
        raise ValueError(f"a frame number is 0..{MAX_FRAME}, not {value!r}")
    return value


def beat_mark(value: Any) -> float:
    """A frame's "b": a Link beat, 0..MAX_BEAT. A Link timeline counts up from where its peer
    joined, so a negative or astronomically large mark is not one a leader makes; taken, it would
    send the follower's clock to wait for a moment that never comes (the clock caps its waits too).
    NaN and infinities never get here: the line is not JSON (files.strict_json), malformed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= MAX_BEAT:
        raise ValueError(f"a beat mark is 0..{MAX_BEAT:g}, not {value!r}"[:200])
    return float(value)


def wire_events(value: Any, remote: bool) -> list[ControlEvent]:
    """A frame's [[source, target, value], ...] as events (lists as tuples, as a performance's)."""
    if not isinstance(value, list):
        raise ValueError("ev is a list")
    out = []
    for e in value:
        if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], str) and isinstance(e[1], str)):
            raise ValueError("an event is [source, target, value]")
        v = tuple(e[2]) if isinstance(e[2], list) else e[2]
        out.append(ControlEvent(e[0], e[1], v, remote=remote))
    return out
