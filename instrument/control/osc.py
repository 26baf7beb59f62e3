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
  the kernel's buffer (4 MB; past it, the kernel drops);
- NaN and infinities are dropped wherever they appear in a message (counted "non-finite");
- senders beyond this machine (not in `local`) may load patches by name only, never a path, and
  may not end the show unless `allow_quit`; `patch/load` and `chain/reload` are rate-limited per
  sender (two at once, then one a second);
- replies go only where the handshake of `oscreply` says they may.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import struct
import sys
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import Any

from .. import commands
from ..events import ControlEvent, ControlQueue
from ..params import REGISTRY, FrameParams, ParamError, Registry
from ..report import Reporter
from .oscreply import Buckets, Replies, Subscriber
from .oscwire import OscError, parse

PREFIX = "/noclip/"
NORM = "/noclip/norm/"
CMD = "/noclip/cmd/"
MAX_DELAY = 60.0  # a bundle timed further ahead than this is treated as "now", not held for hours
TAKE = 64         # datagrams read per poll at most (the idle wait polls every ms): reading is on the budget
BURST = 0.003     # s of parsing at once at most ...
SHARE = 0.05      # ... and this share of the wall clock over time (the rest of a frame is the show's)
MARGIN = 0.0005   # s: parsing in the frame's slack stops this long before the slack ends
PENDING_BYTES = 8 << 20  # read but not yet parsed: past this the oldest are dropped ...
MAX_WAIT = 0.25   # ... and so are those that arrived this many seconds ago and are still not parsed
LOCAL = ("127.0.0.0/8", "::1/128")  # senders on this machine (the kernel drops forged loopback sources)
HEAVY = ("patch/load", "chain/reload")  # commands that read files or rebuild: rate-limited per sender
PATCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # what a remote sender may load
# The replies' commands (handled by oscreply.Replies), exported for the command table
COMMANDS = {
    "subscribe": "<port> [norm]: ask to be sent every parameter change at <port> (handshake: "
                 "echo the /noclip/confirm <nonce> you are sent; renew within a minute)",
    "unsubscribe": "<port>: stop sending changes to this host at <port>",
    "dump": "[port] [norm]: send all current values back (to the sender, or to [port])",
    "confirm": "<nonce>: echo a handshake's nonce (starts a subscription, allows dumps)",
}
REPLIES = tuple(COMMANDS)
# Linux's SO_TIMESTAMPNS (not in the socket module): the kernel stamps each datagram on arrival, so
# the latency we report starts when the packet reached the machine, not when this thread woke up.
SO_TIMESTAMPNS = 35 if sys.platform.startswith("linux") else None
_TIMESPEC = struct.Struct("@qq")
_ARG = {ord("f"): struct.Struct(">f"), ord("i"): struct.Struct(">i"), ord("d"): struct.Struct(">d")}
_FLAG = {ord("T"): True, ord("F"): False}


def parse_plain(data: bytes) -> tuple[str, list[Any]] | None:
    """The common datagram, one message of f/i/d/s/T/F arguments, parsed in a few microseconds;
    None for anything else (bundles, blobs, odd types, damage), which python-osc then parses."""
    end = data.find(0)
    if end <= 0 or data[0] != 0x2F:  # "/"
        return None
    pos = (end + 4) & ~3
    tend = data.find(0, pos)
    if tend < 0 or data[pos:pos + 1] != b",":
        return None
    try:
        address = data[:end].decode()
    except UnicodeDecodeError:
        return None
    tags, pos, args = data[pos + 1:tend], (tend + 4) & ~3, []
    for tag in tags:
        if (fmt := _ARG.get(tag)) is not None:
            if pos + fmt.size > len(data):
                return None
            args.append(fmt.unpack_from(data, pos)[0])
            pos += fmt.size
        elif tag in _FLAG:
            args.append(_FLAG[tag])
        elif tag == 0x73:  # "s"
            send = data.find(0, pos)
            if send < 0:
                return None
            try:
                args.append(data[pos:send].decode())
            except UnicodeDecodeError:
                return None
            pos = (send + 4) & ~3
        else:
            return None
    return (address, args) if pos == len(data) else None


def _finite(args: list[Any]) -> bool:
    """No NaN or infinity anywhere in the arguments (arrays included)."""
    for a in args:
        if type(a) is float:
            if not math.isfinite(a):
                return False
        elif type(a) is list and not _finite(a):
            return False
    return True


def is_loopback(host: str) -> bool:
    """Whether a listen address or host name stays on this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return _ip(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(_ip(i[4][0]).is_loopback for i in infos)


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(host.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip

def parse_hostport(text: str, default_port: int = 9000) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, str(default_port)
    return host or "127.0.0.1", int(port)


class OscControl:
    """UDP server on 127.0.0.1:9000 by default; every message takes effect on the next frame."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, host: str = "127.0.0.1",
                 port: int = 9000, allow: Iterable[str] = (), registry: Registry = REGISTRY, *,
                 allow_quit: bool = False, local: Iterable[str] = LOCAL, max_subs: int = 8,
                 ttl: float = 60.0) -> None:
        self.queue = queue
        self.reporter = reporter
        self.registry = registry
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.local = [ipaddress.ip_network(a, strict=False) for a in local]
        self.allow_quit = allow_quit
        self.stats: Counter[str] = Counter()
        self._last: tuple[str, list[Any]] = ("", [])  # formatted only when the HUD asks
        self._senders: dict[str, tuple[bool, bool]] = {}  # host -> (allowed, local), a bounded cache
        self._pending: deque[tuple[bytes, Any, float]] = deque()  # datagram, sender, kernel arrival
        self._pending_bytes = 0
        self._known = 0  # pending datagrams already counted as deferred
        self._tokens, self._refilled = BURST, time.perf_counter()
        self._heavy = Buckets(1.0, 2.0)
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.kernel_stamps = False
        if SO_TIMESTAMPNS is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                self.kernel_stamps = True
            except OSError:
                pass
        self.sock.bind((host, port))
        self.sock.setblocking(False)  # read only what is there
        self.address = self.sock.getsockname()[:2]
        self.replies = Replies(self.sock.sendto, registry, reporter, self.stats, max_subs=max_subs, ttl=ttl)

    @property
    def _subs(self) -> dict[tuple[str, int], Subscriber]:
        return self.replies.subs

    def fileno(self) -> int:
        """The socket, for the loop's idle wait to select on."""
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

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
        anc, pending = socket.CMSG_SPACE(_TIMESPEC.size), self._pending
        now, wall = time.perf_counter(), time.time()
        try:
            for _ in range(TAKE):
                data, ancdata, _flags, sender = self.sock.recvmsg(65536, anc)
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
        """The kernel's arrival stamp on the perf_counter clock (the wake-up time without one)."""
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                return now - max(0.0, wall - (sec + nsec * 1e-9))
        return now

    def _sender(self, host: str) -> tuple[bool, bool]:
        """(allowed, on this machine) for a sender's address, cached (at most 4096 addresses)."""
        known = self._senders.get(host)
        if known is None:
            try:
                ip = _ip(host)
            except ValueError:
                return False, False
            local = any(ip in n for n in self.local if n.version == ip.version)
            allowed = not self.allow or any(ip in n for n in self.allow if n.version == ip.version)
            if len(self._senders) >= 4096:
                self._senders.clear()
            known = self._senders[host] = (allowed, local)
        return known

    def handle(self, data: bytes, sender: tuple[str, int], arrival: float) -> None:
        """One datagram: never raises, never loops, whatever it holds."""
        self.stats["packets"] += 1
        allowed, local = self._sender(sender[0])
        if not allowed:
            self.stats["denied"] += 1
            self.reporter.problem("osc denied", sender[0], f"packet from {sender[0]} not in --osc-allow")
            return
        plain = parse_plain(data)
        if plain is not None:
            return self._safe_route(plain[0], plain[1], sender, arrival, None, local)
        try:
            messages = parse(data)
        except OscError as exc:
            self.stats["malformed"] += 1
            self.reporter.problem("osc malformed", sender[0], f"malformed packet from {sender[0]}: {exc}")
            return
        wall = time.time()
        for address, args, when in messages:
            delay = when - wall if when is not None else 0.0
            at = arrival + delay if 0.0 < delay <= MAX_DELAY else None
            self._safe_route(address, args, sender, arrival, at, local)

    def _safe_route(self, address: str, args: list[Any], sender: tuple[str, int], arrival: float,
                    at: float | None, local: bool) -> None:
        try:
            self._route(address, args, sender, arrival, at, local)
        except Exception as exc:  # a routing bug must not kill the loop
            self.stats["errors"] += 1
            self.reporter.problem("osc error", address, f"{address}: {exc}")

    def _route(self, address: str, args: list[Any], sender: tuple[str, int], arrival: float,
               at: float | None, local: bool) -> None:
        self.stats["messages"] += 1
        if not _finite(args):
            return self._bad("osc non-finite", address, f"{address}: NaN or infinity dropped")
        if address.startswith(CMD):
            name = address[len(CMD):]
            if name not in commands.COMMANDS:
                return self._bad("osc unknown", address, f"unknown command {address}")
            if name in REPLIES:
                self._last = (address, args)
                return self.replies.command(name, args, sender, local)
            if not local and not self._remote_may(name, args, sender):
                return None
            if name in HEAVY and not self._heavy.take(sender[0], time.perf_counter()):
                return self._bad("osc throttled", sender[0], f"{address} from {sender[0]}: 1 a second at most")
            self._last = (address, args)
            self.queue.put(ControlEvent("osc", "cmd/" + name, tuple(args), time=arrival, at=at,
                                        origin=sender[0], remote=not local))
            return None
        norm = address.startswith(NORM)
        name = address[len(NORM):] if norm else address[len(PREFIX):] if address.startswith(PREFIX) else ""
        spec = self.registry.get(name)
        if spec is None:
            return self._bad("osc unknown", address, f"unknown address {address}")
        if len(args) != 1:
            return self._bad("osc bad value", address, f"{address} takes one value, got {len(args)}")
        try:
            value = spec.from_norm(args[0]) if norm else spec.coerce(args[0])
        except ParamError as exc:
            return self._bad("osc bad value", address, str(exc))
        self._last = (address, args)
        self.queue.put(ControlEvent("osc", name, value, time=arrival, at=at, origin=sender[0],
                                    remote=not local))
        return None

    def _remote_may(self, name: str, args: list[Any], sender: tuple[str, int]) -> bool:
        """What a sender beyond this machine may not do: end the show (unless allowed), name a path."""
        if name == "quit" and not self.allow_quit:
            self._bad("osc refused", sender[0], f"quit from {sender[0]} refused (--osc-allow-quit allows it)")
            return False
        if name == "patch/load" and not (args and isinstance(args[0], str) and PATCH_NAME.match(args[0])):
            self._bad("osc refused", sender[0], f"patch/load from {sender[0]}: a patch name only, never a path")
            return False
        return True

    @property
    def last_message(self) -> str:
        address, args = self._last
        text = " ".join([address, *(f"{a:.4g}" if isinstance(a, float) else str(a) for a in args[:8])])
        return text.strip()[:120]

    def _bad(self, kind: str, address: str, message: str) -> None:
        self.stats[kind.removeprefix("osc ")] += 1
        self.reporter.problem(kind, address, message)

    # -- output --------------------------------------------------------------------------------

    def publish(self, fp: FrameParams) -> None:
        """Called by the frame loop: send what changed to each subscriber."""
        self.replies.publish(dict(fp))
