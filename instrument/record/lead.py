"""Follow mode, the leader's side: `noclip play --lead [HOST:]PORT` serves its show to followers
(`noclip play --follow HOST:PORT`, control/follow.py) over TCP, in the stream that module describes.

The leader is authoritative: what its show applied, it sends, stamped with the frame it applied on,
the same events a performance file records (the leader's own `quit` stays its own). One object
plays three parts of the show: an event sink (`applied`: the frame's events gathered), feedback
(`publish`, called once the frame's events are applied and before its picture is made: the
frame's line goes out then, so a follower can build the frame while the leader builds it) and a
socket source (`poll`: new followers accepted and the queued bytes sent, in the frame's slack).

A follower that joins late is sent the header, the history (every past frame that had events) and
the newest frame, so it replays the show from its start and catches up exactly. The history is
capped at MAX_HISTORY bytes; past it, joiners are refused, saying why.

The leader never waits on a follower: sockets are non-blocking, and each follower's unsent bytes
wait in its own buffer. One that falls SLOW_BYTES behind, or reads nothing for SLOW_SECONDS while
bytes wait, is dropped and counted ("slow"); it may connect again and catch up from the history.
What followers send is read and thrown away (a few KiB a poll at most).

With a Link session (`noclip play --lead PORT --link`) each live frame's line also carries its
mark: the Link beat at which the show began the frame (the clock's tick, before its events were
polled). A follower in the same session starts its frame n when its own timeline reaches that
mark, rather than whenever the line happens to arrive (control/follow.py). The beat, and not a
clock time, because the Link timeline is the one thing the machines share; each host's clock is
its own.
"""

from __future__ import annotations

import logging
import select
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from ..clock import MAX_BEAT
from ..control import ControlEvent
from ..control.followlink import Timeline
from ..control.followwire import hello, line
from ..control.oscroute import ip_of, networks, within
from ..net import tcp_listener
from ..params import FrameParams
from ..report import Reporter
from .eventlog import jsonable
from .performance import NOT_REPLAYED

log = logging.getLogger("noclip")

MAX_HISTORY = 64 << 20  # bytes of past events kept for late joiners (a show's worth, many hours)
SLOW_BYTES = 8 << 20  # a follower this far behind (beyond its history) is dropped
SLOW_SECONDS = 2.0  # ... or one that reads nothing this long while bytes wait for it
MAX_FOLLOWERS = 64
DISCARD = 16384  # bytes read from a follower per poll (it has nothing to say)
CLOSE_GRACE = 0.5  # s the show's end waits, at most, for followers to take the lines queued for them


class _Follower:
    """One follower's connection and the bytes it has still to be sent."""

    def __init__(self, sock: socket.socket, address: str, first: bytes) -> None:
        self.sock, self.address = sock, address
        self.out = bytearray(first)
        self.sent = 0  # bytes of `out` sent already (compacted now and then)
        self.limit = len(first) + SLOW_BYTES
        self.moved = time.perf_counter()  # the last time it took bytes


class Leader:
    """Serves the show to followers (see the module's docstring); `stats` counts what happened."""

    def __init__(self, host: str, port: int, header: dict[str, Any], reporter: Reporter,
                 allow: Iterable[str] = (), link: Timeline | None = None,
                 began: Callable[[], float] | None = None) -> None:
        self.header, self.reporter = header, reporter
        # the Link timeline and when the frame being published began (the show clock's `began`):
        # both, or the frames go unmarked
        marked = link is not None and began is not None
        self.link: Timeline | None = link if marked else None
        self.began: Callable[[], float] | None = began if marked else None
        self.allow = networks(allow)
        self.sock = tcp_listener(host, port, 16)
        self.address = self.sock.getsockname()[:2]
        self.followers: list[_Follower] = []
        self.stats: Counter[str] = Counter()
        self._events: list[list[Any]] = []  # the frame being built's, as [source, target, value]
        self._history: list[bytes] = []
        self._history_bytes = 0
        self._full = False  # the history outgrew MAX_HISTORY: joiners are refused
        self._newest = -1  # the last frame published
        self._closed = False

    # -- the show's side -----------------------------------------------------------------------

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        if event.is_command and event.command in NOT_REPLAYED:
            return
        self._events.append([event.source, event.target, jsonable(value)])

    def publish(self, fp: FrameParams) -> None:
        """Frame `fp.frame`'s events are all applied: its line goes to every follower now."""
        message: dict[str, Any] = {"f": fp.frame, "w": round(time.time(), 6)}
        if self.link is not None and self.began is not None:
            try:
                beat = self.link.timeline(self.began())
            except Exception as exc:  # Link's binding failing is no reason to stop serving frames
                self.link = None
                self.reporter.error("lead", f"Link: {exc}; frames go unmarked from now on")
            else:
                if 0.0 <= beat <= MAX_BEAT:  # (a timeline just joined may count from below zero)
                    message["b"] = round(beat, 6)
        if self._events:
            message["ev"] = self._events
            self._keep(line({"f": fp.frame, "ev": self._events}))
            self._events = []
        self._newest = fp.frame
        data = line(message)
        for f in list(self.followers):
            if len(f.out) - f.sent + len(data) > f.limit:
                self._drop(f, "slow", f"{len(f.out) - f.sent} bytes behind")
                continue
            f.out += data
            self._send(f)
        self.stats["frames"] += 1

    def _keep(self, data: bytes) -> None:
        if self._full:
            return
        if self._history_bytes + len(data) > MAX_HISTORY:
            self._full = True
            self._history.clear()
            self.reporter.error("lead", f"over {MAX_HISTORY >> 20} MiB of events: followers joining from "
                                "now on are refused (they could not catch up exactly)")
            return
        self._history.append(data)
        self._history_bytes += len(data)

    # -- the sockets ---------------------------------------------------------------------------

    def fileno(self) -> int:
        """The listening socket, for the loop's idle wait: a follower knocking wakes it."""
        return self.sock.fileno()

    def poll(self, until: float | None = None) -> None:
        """Accept who knocked, send what waits, read (and drop) what followers said."""
        if self._closed:
            return
        self._accept()
        for f in list(self.followers):
            self._listen(f)
            if f in self.followers and f.sent < len(f.out):
                self._send(f)

    def _accept(self) -> None:
        for _ in range(8):
            try:
                sock, peer = self.sock.accept()
            except (BlockingIOError, OSError):
                return
            host = str(peer[0])
            if not self._allowed(host):
                self.stats["denied"] += 1
                self.reporter.problem("lead denied", host, f"follower {host} not in --osc-allow")
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._full or len(self.followers) >= MAX_FOLLOWERS:
                why = "the show's history is too long to catch up" if self._full else \
                    f"{MAX_FOLLOWERS} followers already"
                self.stats["refused"] += 1
                self.reporter.problem("lead refused", host, f"follower {host} refused: {why}")
                try:
                    sock.send(line({"refused": why}))
                except OSError:
                    pass
                sock.close()
                continue
            first = b"".join([hello(self.header, self._newest, self.link is not None), *self._history,
                              line({"f": self._newest}) if self._newest >= 0 else b""])
            f = _Follower(sock, host, first)
            self.followers.append(f)
            self.stats["joined"] += 1
            log.info("lead: follower %s joined at frame %d (%d bytes of history)", host, self._newest + 1,
                     len(first))
            self._send(f)

    def _allowed(self, host: str) -> bool:
        if not self.allow:
            return True
        try:
            ip = ip_of(host)
        except ValueError:
            return False
        return within(ip, self.allow)

    def _send(self, f: _Follower) -> None:
        try:
            n = f.sock.send(memoryview(f.out)[f.sent:])
        except BlockingIOError:
            n = 0
        except OSError as exc:
            return self._drop(f, "gone", exc.strerror or str(exc))
        now = time.perf_counter()
        if n:
            f.sent += n
            f.moved = now
            if f.sent == len(f.out):
                f.out.clear()
                f.sent = 0
            elif f.sent > 1 << 20:
                del f.out[:f.sent]
                f.sent = 0
        elif now - f.moved > SLOW_SECONDS:
            self._drop(f, "slow", f"read nothing for {SLOW_SECONDS:g} s")
        return None

    def _listen(self, f: _Follower) -> None:
        try:
            data = f.sock.recv(DISCARD)
        except BlockingIOError:
            return
        except OSError as exc:
            return self._drop(f, "gone", exc.strerror or str(exc))
        if not data:
            self._drop(f, "left", "closed the connection")
        return None

    def _drop(self, f: _Follower, kind: str, why: str) -> None:
        self.followers.remove(f)
        f.sock.close()
        self.stats[kind] += 1
        if kind == "left":
            log.info("lead: follower %s left", f.address)
        else:
            self.reporter.problem(f"lead {kind}", f.address, f"follower {f.address} dropped: {why}")

    def summary(self) -> str:
        said = ", ".join(f"{n} {k}" for k, n in sorted(self.stats.items()) if k != "frames")
        return f"{len(self.followers)} following now" + (f"; {said}" if said else "")

    def close(self, frames: int = 0) -> None:
        """The show ended: what is queued goes out whole if the followers take it within
        CLOSE_GRACE (a line cut short would be a follower's last, broken, line); then they see the
        connection close (and play on by themselves)."""
        if self._closed:
            return
        self._closed = True
        end = time.perf_counter() + CLOSE_GRACE
        while (waiting := [f for f in self.followers if f.out]) and (left := end - time.perf_counter()) > 0:
            for sock in select.select([], [f.sock for f in waiting], [], left)[1]:
                f = next(f for f in waiting if f.sock is sock)
                if f in self.followers:
                    self._send(f)
        for f in self.followers:
            f.sock.close()
        self.followers.clear()
        self.sock.close()
