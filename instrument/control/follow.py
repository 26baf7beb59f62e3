"""Follow mode, the follower's side: one show played by several machines (an LED wall of tiles, a
row of projectors). The leader (record/lead.py) streams what its show applied, frame by frame, as
JSON lines over TCP; a follower reads them here, puts each frame's events on its own show's queue
when it builds that frame; control/followclock.py paces its frames by the leader's.

Why the history and not a snapshot of the state: a frame depends on every frame before it (the
camera's walk integrates the speed, parameters are smoothed, the beat clock runs, the tape keeps
the other field of the last frame), so the only exact state is the show replayed from its first
frame, the mechanism `noclip render --range` uses for its pre-roll. A follower that joins late
fast-forwards to the last clean cut in the history (record/cuts.py: a cut drops what the frames carry)
and draws from there, its outputs not yet given those frames, and joins the leader's clock once it
has caught up (`on_live`).

The stream's lines are described in control/followwire.py. When the leader and this follower are in
one Ableton Link session, the leader marks its frames on the session's timeline and the follower
starts each frame at its mark (control/followlink.py); without Link, or alone in the session, it
plays as it always did, on the lines' arrival.

Nothing on the stream can stop the show (DESIGN, principle 3). A line that is not one of these is
dropped and counted ("malformed"), one longer than MAX_LINE is skipped to its end ("oversize"),
events for frames already played are applied at once and counted ("late": from there the frames
may differ from the leader's), pending events are capped. When the leader goes quiet for STALL
seconds or the connection breaks, the follower plays on by its own clock with what it has, and
reconnects every RETRY seconds; the same show's history then brings what it missed (late).
"""

from __future__ import annotations

import errno
import logging
import select
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..events import ControlEvent, ControlQueue
from ..files import strict_json
from ..report import Reporter
from .followlink import Marks
from .followwire import KIND, MAX_LINE, MAX_PENDING, VERSION, FollowError, beat_mark, frame_number, wire_events

log = logging.getLogger("noclip")

READ = 1 << 20  # bytes read per poll at most: parsing stays bounded per frame
STALL = 0.5  # s without a frame from the leader: play on by our own clock
RETRY = 1.0  # s between reconnection attempts
SLICE = 0.0005  # s: how often the clock looks for the leader's next frame while it waits
LOCAL = ("quit",)  # what the follower's own keys may still do: the leader plays the show


class Follower:
    """A control source of the show: the leader's events, each put on the queue as the show builds
    its frame. Its own keys (`local`: the window's, Ctrl-C) may only end the show; anything else
    they ask is ignored and counted: the leader plays the show."""

    def __init__(self, host: str, port: int, queue: ControlQueue, reporter: Reporter, *,
                 local: ControlQueue | None = None, remote: bool = False) -> None:
        self.host, self.port, self.queue, self.reporter = host, port, queue, reporter
        self.local = local
        # targets this follower keeps for itself (its own chain's parameters, cmd/follow.py): the
        # leader's events at them are counted and dropped
        self.own: frozenset[str] = frozenset()
        self.remote = remote  # the leader is beyond this machine: its patch/loads name patches only
        self.stats: Counter[str] = Counter()
        self.header: dict[str, Any] | None = None
        self.newest = -1  # the newest frame the leader has played, as far as we know
        self._last = -1  # this connection's last frame line (frames come in order)
        self._why = ""  # why the last connection ended
        self._upto = -1  # the leader's newest frame when this follower joined
        self.heard = 0.0  # perf_counter time of the last frame line
        self.frame = -1  # the frame the show builds (the clock sets it)
        self.live = False  # caught up: frames go to the outputs
        self.on_live: Callable[[int], None] = lambda frame: None
        self.lag: list[float] = []  # seconds behind the leader at each live frame (its "w" to our build)
        self.linked = False  # the leader marks its frames on a Link timeline (its hello says)
        self.marks: Marks | None = None  # ... and this follower is in a Link session to read them
        self.link_lag: list[float] = []  # seconds behind the leader's mark at each live frame with one
        self._due: dict[int, list[ControlEvent]] = {}
        self._pending = 0
        self._wall: dict[int, float] = {}
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._skipping = False  # past an oversize line's start: drop up to its newline
        self._greeted = False  # this connection's hello has come
        self._retry = 0.0
        self._address: tuple | None = None  # the leader's, as first resolved
        self._knocking: socket.socket | None = None  # a reconnection under way

    # -- the connection ------------------------------------------------------------------------

    def join(self, timeout: float = 10.0) -> dict[str, Any]:
        """Connect and read the leader's hello, for up to `timeout` seconds; the header (as sent:
        the caller validates it), or FollowError saying why not."""
        end = time.monotonic() + timeout
        why = "no answer"
        while time.monotonic() < end:
            try:
                sock = socket.create_connection((self.host, self.port),
                                                timeout=max(0.1, end - time.monotonic()))
            except OSError as exc:
                why = exc.strerror or str(exc)
                time.sleep(0.2)
                continue
            self._connected(sock)
            # the hello, then the history up to the leader's newest frame: a show built before it
            # is all here would play its first frames without their events
            while (self.header is None or self.newest < self._upto) and self._sock is not None \
                    and time.monotonic() < end:
                self._read(wait=min(0.1, max(0.0, end - time.monotonic())))
            if self.header is not None and self.newest >= self._upto:
                return self.header
            why = self._why or "no hello"
        raise FollowError(f"no show to follow at {self.host}:{self.port} ({why})")

    def _connected(self, sock: socket.socket) -> None:
        self._address = sock.getpeername()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._buf, self._skipping, self._greeted = sock, bytearray(), False, False
        self._last = -1

    def _drop(self, why: str) -> None:
        """The connection is gone or unusable: play on, reconnect in RETRY seconds."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            self.stats["lost"] += 1
            self._why = why
            if self.header is not None:
                self.reporter.problem("follow lost", why, f"lost the leader at {self.host}:{self.port} "
                                      f"({why}); playing on, reconnecting")
        self._retry = time.monotonic() + RETRY

    def _reconnect(self) -> None:
        """Knock again, never waiting: the connection is begun now and taken up by a later poll once
        it is made (the leader's address as first resolved: a name lookup may block)."""
        knocking = self._knocking
        if knocking is not None:
            if not select.select([], [knocking], [], 0)[1]:
                return
            self._knocking = None
            if knocking.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                return self._connected(knocking)
            knocking.close()
        if time.monotonic() < self._retry or self._address is None:
            return None
        self._retry = time.monotonic() + RETRY
        knocking = socket.socket(socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET)
        knocking.setblocking(False)
        if knocking.connect_ex(self._address[:2]) in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            self._knocking = knocking
        else:
            knocking.close()
        return None

    def close(self) -> None:
        if self._knocking is not None:
            self._knocking.close()
            self._knocking = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- reading -------------------------------------------------------------------------------

    def poll(self) -> None:
        """What the leader sent, then the events of the frame being built (once each)."""
        self.receive()
        self._keys()
        for event in self._due.pop(self.frame, ()):
            self._pending -= 1
            self._put(event)

    def _put(self, event: ControlEvent) -> None:
        """An event of the leader's onto the show's queue, unless it is aimed at this follower's own
        tape (`own`: counted, not applied)."""
        if event.target in self.own:
            self.stats["own chain"] += 1
        else:
            self.queue.put(event)

    def receive(self) -> None:
        """Read what the leader sent (reconnecting when it is time to)."""
        if self._sock is None and self.header is not None:
            self._reconnect()
        self._read()

    def _keys(self) -> None:
        if self.local is None:
            return
        for e in self.local.drain():
            if e.is_command and e.command in LOCAL:
                self.queue.put(e)
            else:
                self.stats["ignored"] += 1
                self.reporter.problem("follow ignored", e.target,
                                      f"{e.target}: ignored, the leader plays the show")

    def _read(self, wait: float = 0.0) -> None:
        sock = self._sock
        if sock is None:
            return
        got = 0
        while got < READ:
            try:
                if wait:
                    sock.settimeout(wait)
                data = sock.recv(65536)
            except (BlockingIOError, TimeoutError):
                break
            except OSError as exc:
                return self._drop(exc.strerror or str(exc))
            finally:
                if wait:
                    sock.settimeout(0.0)
            if not data:
                return self._drop("the leader closed the connection")
            got += len(data)
            self._lines(data)
            if self._sock is None:
                return
            wait = 0.0

    def _lines(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            else:
                self._message(bytes(buf[start:end]))
                if self._sock is None:
                    return
            start = end + 1
        del buf[:start]
        if len(buf) > MAX_LINE:  # a line that never ends: drop what came, skip to its newline
            if not self._skipping:
                self._bad("oversize", f"a line over {MAX_LINE >> 20} MiB")
            self._skipping = True
            buf.clear()

    def _bad(self, kind: str, what: str) -> None:
        self.stats[kind] += 1
        self.reporter.problem(f"follow {kind}", kind, f"from the leader: {what}; dropped")

    def _message(self, raw: bytes) -> None:
        try:
            row = strict_json(raw)
            if not isinstance(row, dict):
                raise ValueError("a line is a table")
            if not self._greeted:
                return self._hello(row)
            frame = frame_number(row["f"])
            events = wire_events(row.get("ev", []), self.remote)
            w = row.get("w")
            if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float))):
                raise ValueError("w is a number")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            text = f"no {exc}" if isinstance(exc, KeyError) else str(exc)[:200]
            return self._bad("malformed", text)
        mark = row.get("b")
        if mark is not None:
            try:  # the frame's events are good: a bad mark costs only the mark
                mark = beat_mark(mark)
            except ValueError as exc:
                self._bad("bad mark", str(exc))
                mark = None
        self._arrived(frame, events, w, mark)

    def _hello(self, row: dict[str, Any]) -> None:
        if "refused" in row:
            why = str(row["refused"])[:200]
            self.reporter.error("follow", f"the leader at {self.host}:{self.port} refused: {why}")
            return self._drop(f"refused: {why}")
        if row.get("kind") != KIND or row.get("version") != VERSION or not isinstance(row.get("header"), dict):
            return self._drop(f"not a {KIND} stream of version {VERSION}")
        frame = row.get("frame", -1)
        frame = -1 if frame == -1 and not isinstance(frame, bool) else frame_number(frame)
        if self.header is not None and row["header"] != self.header:
            self.reporter.error("follow", f"{self.host}:{self.port} plays another show now; "
                                "start this follower again to follow it")
            return self._drop("another show")
        if self.header is None:
            self._upto = frame
        self.header, self._greeted = row["header"], True
        self.linked = row.get("link") is True
        self.heard = time.perf_counter()

    def _arrived(self, frame: int, events: list[ControlEvent], wall: float | None,
                 mark: float | None = None) -> None:
        self.heard = time.perf_counter()
        if frame <= self._last:
            return self._bad("out of order", f"frame {frame} after frame {self._last}")
        self._last = frame
        if frame <= self.newest:
            return None  # known: a reconnection's history repeats what came before
        self.newest = frame  # its line came: its events are known
        if frame <= self.frame:  # played already, on our own clock while the leader was away
            if events:
                self.stats["late"] += len(events)
                self.reporter.problem("follow late", "late", f"{len(events)} events came after their "
                                      "frame was played: applied now, frames may differ from the leader's")
            for e in events:
                self._put(e)
            return None
        if wall is not None and len(self._wall) < 4 * 3600 * 60:  # popped when the frame is built
            self._wall[frame] = float(wall)
        if mark is not None and self.marks is not None:
            self.marks.arrived(frame, mark, self.heard)
        if events:
            if self._pending + len(events) > MAX_PENDING:
                self.stats["overflow"] += len(events)
                self.reporter.problem("follow overflow", "overflow",
                                      f"over {MAX_PENDING} events ahead: dropped")
            else:
                self._due.setdefault(frame, []).extend(events)
                self._pending += len(events)
        return None

    def known(self, frame: int) -> list[ControlEvent]:
        """Frame `frame`'s events as far as they have come, left for the show to play (a late
        joiner's survey reads the history ahead, cmd/follow.py)."""
        return [e for e in self._due.get(frame, ()) if e.target not in self.own]

    # -- the clock's questions -----------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """The leader is there and has spoken lately: wait for its frames."""
        return self._sock is not None and time.perf_counter() - self.heard < STALL

    def built(self, frame: int) -> None:
        """The show builds `frame` now (from the clock): going live once caught up."""
        self.frame = frame
        if not self.live and frame >= self.newest and self.leading:
            self.live = True
            log.info("following %s:%d: caught up at frame %d", self.host, self.port, frame)
            self.on_live(frame)
        wall = self._wall.pop(frame, None)
        on_link = self.marks.lag(frame, time.perf_counter()) if self.marks is not None else None
        for lags, lag in ((self.lag, None if wall is None else time.time() - wall), (self.link_lag, on_link)):
            if self.live and lag is not None:
                lags.append(lag)
                if len(lags) > 100_000:
                    del lags[:50_000]

    def summary(self) -> str:
        """The lag behind the leader, on the Link timeline where frames were marked (true between
        machines), else by the wall clocks (true on one machine, or clocks kept in step), and what
        was counted."""
        said = ", ".join(f"{n} {k}" for k, n in sorted(self.stats.items()))
        lag, on = (sorted(self.link_lag), " on the Link timeline") if self.link_lag else (sorted(self.lag), "")
        if not lag:
            return said or "nothing to report"
        med, worst = lag[len(lag) // 2], lag[-1]
        return (f"behind the leader by {1000 * med:.2f} ms (median) and {1000 * worst:.2f} ms at most "
                f"over {len(lag)} frames{on}" + (f"; {said}" if said else ""))


__all__ = ["FollowError", "Follower"]
