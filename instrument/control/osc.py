"""OSC in and out over UDP (our own bounded parser and socket reading).

Our own reading rather than python-osc's server because a show needs what that server hides: every
malformed packet counted, bundles with future timetags scheduled instead of slept on, arrival
stamps, an allow-list when the port is opened to a network, and replies from the same socket.
Our own parser (`oscwire`) because python-osc's hangs for good on a 20-byte bundle and copies the
rest of the datagram for every element. No thread of its own: the frame loop reads the socket at
the start of every frame, and while it waits for the next one (Show's idle wait selects on it), so
a flood's parsing happens in the frame's slack and never fights the loop for the interpreter lock.

Nothing from outside can stop the show (DESIGN, principle 3):
- reading and parsing at a frame's start have a time budget, `BURST` seconds at once and `SHARE`
  of the wall clock (under a flood, about 0.8 ms of a 60 fps frame); in the frame's slack (the loop's idle wait)
  they may fill the slack, and stop `MARGIN` before it ends. What is read and left waits in a
  bounded queue for the next poll (counted "deferred"); past `PENDING_BYTES`, or `MAX_WAIT`
  after they arrived (but for the last `TAKE` read), the oldest are dropped (counted "dropped":
  a stale value is not worth a frame, the newest wins); with the budget spent the rest waits in
  the kernel's buffer (4 MB; past it, the kernel drops, and its count of them, Linux's
  SO_RXQ_OVFL, is kept as "kernel_dropped": every datagram is parsed or counted);
- what a message may do (allow-list, senders beyond this machine, NaN, rate limits on heavy
  commands) is the router's (`oscroute`), shared with the OSCQuery WebSocket;
- replies go only where the handshake of `oscreply` says they may.
"""

from __future__ import annotations

import math
import socket
import struct
import sys
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..events import ControlQueue
from ..params import REGISTRY, FrameParams, Registry
from ..report import Reporter
from .oscreply import Replies, Subscriber
from .oscroute import LOCAL, OscRouter

TAKE = 64         # datagrams read per poll at most (the idle wait polls every ms): reading is on the budget
BURST = 0.003     # s of parsing at once at most ...
SHARE = 0.05      # ... and this share of the wall clock over time (the rest of a frame is the show's)
MARGIN = 0.0005   # s: parsing in the frame's slack stops this long before the slack ends
PENDING_BYTES = 8 << 20  # read but not yet parsed: past this the oldest are dropped ...
MAX_WAIT = 0.25   # ... and so are those that arrived this many seconds ago and are still not parsed
# Linux's SO_TIMESTAMPNS (not in the socket module): the kernel stamps each datagram on arrival, so
# the latency we report starts when the packet reached the machine, not when this thread woke up.
SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
# Linux's SO_RXQ_OVFL (not in the socket module either): each datagram carries the count of those
# the kernel dropped on this socket so far, when its buffer was full (a show stalled under a flood).
SO_RXQ_OVFL = 40 if sys.platform.startswith("linux") else None
_TIMESPEC = struct.Struct("@qq")
_COUNT = struct.Struct("@I")
_ANCILLARY = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_COUNT.size)


# The replies' commands (handled by oscreply.Replies), exported for the command table
COMMANDS = {
    "subscribe": "<port> [norm]: ask to be sent every parameter change at <port> (handshake: "
                 "echo the /noclip/confirm <nonce> you are sent; renew within a minute)",
    "unsubscribe": "<port>: stop sending changes to this host at <port>",
    "dump": "[port] [norm]: send all current values back (to the sender, or to [port])",
    "confirm": "<nonce>: echo a handshake's nonce (starts a subscription, allows dumps)",
}


class OscControl(OscRouter):
    """UDP server on 127.0.0.1:9000 by default; every message takes effect on the next frame."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, host: str = "127.0.0.1",
                 port: int = 9000, allow: Iterable[str] = (), registry: Registry = REGISTRY, *,
                 allow_quit: bool = False, local: Iterable[str] = LOCAL, max_subs: int = 8,
                 ttl: float = 60.0) -> None:
        super().__init__(queue, reporter, allow, registry, allow_quit=allow_quit, local=local)
        self._pending: deque[tuple[bytes, Any, float]] = deque()  # datagram, sender, kernel arrival
        self._pending_bytes = 0
        self._known = 0  # pending datagrams already counted as deferred
        self._tokens, self._refilled = BURST, time.perf_counter()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.kernel_stamps = self._option(SO_TIMESTAMPNS)
        self.stats["kernel_dropped"] = 0
        self._option(SO_RXQ_OVFL)
        self.sock.bind((host, port))
        self.sock.setblocking(False)  # read only what is there
        self.address = self.sock.getsockname()[:2]
        self.replies = Replies(self.sock.sendto, registry, reporter, self.stats, max_subs=max_subs, ttl=ttl)

    def _option(self, name: int | None) -> bool:
        """Turn on a Linux socket option; False where there is none."""
        if name is None:
            return False
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, name, 1)
            return True
        except OSError:
            return False

    @property
    def _subs(self) -> dict[tuple[str, int], Subscriber]:
        return self.replies.subs

    def fileno(self) -> int:
        """The socket, for the loop's idle wait to select on."""
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def _reply(self, name: str, args: list[Any], sender: tuple[str, int], local: bool) -> None:
        self.replies.command(name, args, sender, local)

    # -- input ---------------------------------------------------------------------------------

    def poll(self, until: float | None = None) -> None:
        """Take the datagrams the kernel holds (each keeps its kernel arrival stamp) and parse them:
        called by the frame loop before it drains the queue (within the budget), and whenever its
        idle wait sees the socket ready (`until`: the end of the frame's slack, which parsing may
        fill, stopping `MARGIN` before it: the slack is the show's to give, the frame's start not)."""
        clock = time.perf_counter
        if until is not None:
            stop = until - MARGIN
            while clock() < stop and self._read():
                self._parse(stop)
            return self._count_deferred()
        start = clock()
        left = min(BURST, self._tokens + (start - self._refilled) * SHARE)
        self._refilled = start
        while left > 0.0:  # reading is on the budget too; spent, the kernel's buffer holds them
            t0 = clock()
            waiting = self._read()
            left -= clock() - t0
            if not waiting:
                break
            left = self._parse(math.inf, left)
        # a debt of one burst at most: a datagram costs well under that, and a thread preempted
        # mid-parse (a busy machine) must not hold the next ones back for a quarter second
        self._tokens = max(left, -BURST)
        return self._count_deferred()

    def _read(self) -> int:
        """Up to TAKE datagrams from the kernel into the pending queue; past PENDING_BYTES the
        oldest are dropped. Returns how many wait."""
        pending = self._pending
        now, wall = time.perf_counter(), time.time()
        try:
            for _ in range(TAKE):
                data, ancdata, _flags, sender = self.sock.recvmsg(65536, _ANCILLARY)
                pending.append((data, sender, self._arrival(ancdata, now, wall)))
                self._pending_bytes += len(data)
        except (BlockingIOError, OSError):
            pass
        # too much waiting, or waiting too long since it arrived (in the kernel's buffer too): under
        # a flood the newest values are the ones worth a frame, so the last read are always kept
        while pending and (self._pending_bytes > PENDING_BYTES
                           or (pending[0][2] < now - MAX_WAIT and len(pending) > TAKE)):
            self._pending_bytes -= len(pending.popleft()[0])
            self._known = max(0, self._known - 1)
            self.stats["dropped"] += 1
        return len(pending)

    def _parse(self, stop: float, budget: float = math.inf) -> float:
        """Handle pending datagrams, oldest first, until perf_counter time `stop` or until `budget`
        seconds are spent; returns what is left of the budget."""
        pending, clock = self._pending, time.perf_counter
        while pending and budget > 0.0 and clock() < stop:
            data, sender, arrival = pending.popleft()
            self._pending_bytes -= len(data)
            self._known = max(0, self._known - 1)
            t0 = clock()
            self.handle(data, sender[:2], arrival)
            budget -= clock() - t0
        return budget

    def _count_deferred(self) -> None:
        if len(self._pending) > self._known:  # left for a later poll: counted once each
            self.stats["deferred"] += len(self._pending) - self._known
            self._known = len(self._pending)

    def _arrival(self, ancdata: list, now: float, wall: float) -> float:
        """The kernel's arrival stamp on the perf_counter clock (the wake-up time without one); the
        kernel's count of the datagrams it dropped, when it comes with one, is kept in the stats."""
        stamp = now
        for level, kind, payload in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            if kind == SO_RXQ_OVFL and len(payload) >= _COUNT.size:
                dropped = _COUNT.unpack_from(payload)[0]
                self.stats["kernel_dropped"] = max(self.stats["kernel_dropped"], dropped)
            elif kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                stamp = now - max(0.0, wall - (sec + nsec * 1e-9))
        return stamp

    # -- output --------------------------------------------------------------------------------

    def publish(self, fp: FrameParams) -> None:
        """Called by the frame loop: send what changed to each subscriber."""
        self.replies.publish(dict(fp))
