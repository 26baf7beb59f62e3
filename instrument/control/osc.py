"""OSC in and out over UDP (python-osc's parser, our own socket reading).

Our own reading rather than python-osc's server because a show needs what that server hides: every
malformed packet counted, bundles with future timetags scheduled instead of slept on, arrival
stamps, an allow-list when the port is opened to a network, and replies from the same socket.
No thread of its own: the frame loop reads the socket at the start of every frame, and while it
waits for the next one (Show's idle wait selects on it), so a flood's parsing happens in the
frame's slack and never fights the loop for the interpreter lock.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from ..commands import COMMANDS, declare_command
from ..params import REGISTRY, FrameParams, ParamError, Registry
from ..report import Reporter
from .events import ControlEvent, ControlQueue

PREFIX = "/noclip/"
NORM = "/noclip/norm/"
CMD = "/noclip/cmd/"
MAX_DELAY = 60.0  # a bundle timed further ahead than this is treated as "now", not held for hours
TAKE = 2048       # datagrams per read at most (~7 ms of work): a storm cannot stall a frame
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

declare_command("subscribe", "<port> [norm]: send every parameter change to this host at <port>")
declare_command("unsubscribe", "<port>: stop sending changes to this host at <port>")
declare_command("dump", "[port]: send all current values back (to the sender, or to [port])")


@dataclass(frozen=True)
class Subscriber:
    address: tuple[str, int]
    norm: bool


def parse_hostport(text: str, default_port: int = 9000) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, str(default_port)
    return host or "127.0.0.1", int(port)


class OscControl:
    """UDP server on 127.0.0.1:9000 by default; every message takes effect on the next frame."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, host: str = "127.0.0.1",
                 port: int = 9000, allow: Iterable[str] = (), registry: Registry = REGISTRY) -> None:
        self.queue = queue
        self.reporter = reporter
        self.registry = registry
        self.allow = [ipaddress.ip_network(a, strict=False) for a in allow]
        self.stats: Counter[str] = Counter()
        self._last: tuple[str, list[Any]] = ("", [])  # formatted only when the HUD asks
        self._subs: dict[tuple[str, int], Subscriber] = {}
        self._sent: dict[tuple[str, int], dict[str, Any]] = {}
        self._values: dict[str, Any] = {}
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

    def fileno(self) -> int:
        """The socket, for the loop's idle wait to select on."""
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    # -- input ---------------------------------------------------------------------------------

    def poll(self) -> None:
        """Take every datagram the kernel holds (each keeps its kernel arrival stamp): called by the
        frame loop before it drains the queue, and whenever its idle wait sees the socket ready."""
        anc, batch = socket.CMSG_SPACE(_TIMESPEC.size), []
        try:
            while len(batch) < TAKE:
                batch.append(self.sock.recvmsg(65536, anc))
        except (BlockingIOError, OSError):
            pass
        now, wall = time.perf_counter(), time.time()
        for data, ancdata, _flags, sender in batch:
            self.handle(data, sender[:2], self._arrival(ancdata, now, wall))

    def _arrival(self, ancdata: list, now: float, wall: float) -> float:
        """The kernel's arrival stamp on the perf_counter clock (the wake-up time without one)."""
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(payload)
                return now - max(0.0, wall - (sec + nsec * 1e-9))
        return now

    def handle(self, data: bytes, sender: tuple[str, int], arrival: float) -> None:
        """One datagram: never raises, whatever it holds."""
        self.stats["packets"] += 1
        if self.allow and not any(ipaddress.ip_address(sender[0]) in n for n in self.allow):
            self.stats["denied"] += 1
            self.reporter.problem("osc denied", sender[0], f"packet from {sender[0]} not in --osc-allow")
            return
        plain = parse_plain(data)
        if plain is not None:
            return self._safe_route(plain[0], plain[1], sender, arrival, None)
        try:
            timed = OscPacket(data).messages
        except Exception as exc:  # ParseError, but also struct/unicode errors from hostile bytes
            self.stats["malformed"] += 1
            self.reporter.problem("osc malformed", sender[0], f"malformed packet from {sender[0]}: {exc}")
            return
        wall = time.time()
        for tm in timed:
            delay = tm.time - wall
            at = arrival + delay if 0.0 < delay <= MAX_DELAY else None
            self._safe_route(tm.message.address, list(tm.message.params), sender, arrival, at)

    def _safe_route(self, address: str, args: list[Any], sender: tuple[str, int], arrival: float,
                    at: float | None) -> None:
        try:
            self._route(address, args, sender, arrival, at)
        except Exception as exc:  # a routing bug must not kill the server thread
            self.stats["errors"] += 1
            self.reporter.problem("osc error", address, f"{address}: {exc}")

    def _route(self, address: str, args: list[Any], sender: tuple[str, int], arrival: float,
               at: float | None) -> None:
        self.stats["messages"] += 1
        if address.startswith(CMD):
            name = address[len(CMD):]
            if name not in COMMANDS:
                return self._bad("osc unknown", address, f"unknown command {address}")
            self._last = (address, args)
            if name in ("subscribe", "unsubscribe", "dump"):
                return self._reply_command(name, args, sender)
            self.queue.put(ControlEvent("osc", "cmd/" + name, tuple(args), time=arrival, at=at))
            return
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
        self.queue.put(ControlEvent("osc", name, value, time=arrival, at=at))

    @property
    def last_message(self) -> str:
        address, args = self._last
        return " ".join([address, *(f"{a:.4g}" if isinstance(a, float) else str(a) for a in args)]).strip()

    def _bad(self, kind: str, address: str, message: str) -> None:
        self.stats[kind.removeprefix("osc ")] += 1
        self.reporter.problem(kind, address, message)

    def _reply_command(self, name: str, args: list[Any], sender: tuple[str, int]) -> None:
        port = args[0] if args and isinstance(args[0], int) and 0 < args[0] < 65536 else None
        if name == "dump":
            self._send_all((sender[0], port or sender[1]), norm=len(args) > 1 and args[1] == "norm")
            return
        if port is None:
            return self._bad("osc bad value", CMD + name, f"{CMD}{name} needs a port number")
        key = (sender[0], port)
        subs = dict(self._subs)
        if name == "subscribe":
            subs[key] = Subscriber(key, norm=len(args) > 1 and args[1] == "norm")
            # everything first, then changes: the frame loop sees the subscriber only once it has
            # been told all, or it would send the same values again behind later changes
            self._send_all(key, subs[key].norm, track=True)
        else:
            subs.pop(key, None)
        self._subs = subs  # copy-on-write: the frame loop iterates the old dict safely

    # -- output --------------------------------------------------------------------------------

    def publish(self, fp: FrameParams) -> None:
        """Called by the frame loop: send what changed to each subscriber."""
        self._values = dict(fp)
        for key, sub in list(self._subs.items()):
            sent = self._sent.setdefault(key, {})
            for name, value in self._values.items():
                if sent.get(name) != value:
                    sent[name] = value
                    self._send(sub.address, name, value, sub.norm)

    def _send_all(self, address: tuple[str, int], norm: bool, track: bool = False) -> None:
        values = self._values or self.registry.defaults()
        for name, value in values.items():
            self._send(address, name, value, norm)
        if track or address in self._subs:
            self._sent[address] = dict(values)

    def _send(self, address: tuple[str, int], name: str, value: Any, norm: bool) -> None:
        spec = self.registry.get(name)
        if spec is None:
            return
        b = OscMessageBuilder((NORM if norm and spec.type != "str" else PREFIX) + name)
        if norm and spec.type != "str":
            b.add_arg(float(spec.to_norm(value)), "f")
        elif isinstance(value, bool):
            b.add_arg(value)
        elif isinstance(value, float):
            b.add_arg(value, "f")
        else:
            b.add_arg(value)
        try:
            self.sock.sendto(b.build().dgram, address)
            self.stats["sent"] += 1
        except OSError as exc:
            self.reporter.problem("osc send", f"{address[0]}:{address[1]}", f"cannot send to {address}: {exc}")
