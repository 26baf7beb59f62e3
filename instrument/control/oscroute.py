"""What an OSC message may do, wherever it came in: the show's UDP port (osc.py) or the OSCQuery
server's WebSocket (oscquery.py). One set of rules for both, so a phone on the web remote can do
exactly what the same phone could do over UDP, and nothing more:

- senders outside `allow` (when given) are refused; senders beyond this machine (not in `local`)
  may load patches by name only, never a path, and may not end the show unless `allow_quit`;
  `patch/load` and `chain/reload` are rate-limited per sender (two at once, then one a second);
- NaN and infinities are dropped wherever they appear in a message (counted "non-finite");
- values are coerced by the parameter's own spec (clamped; wrong types counted and dropped);
- every message becomes a ControlEvent in the show's queue: nothing here touches the show.

Each entrance has its own router (its own counters and buckets): a router belongs to one thread.
"""

from __future__ import annotations

import ipaddress
import math
import re
import socket
import struct
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .. import commands
from ..commands import CMD_ADDRESS
from ..events import CMD_TARGET, ControlEvent, ControlQueue
from ..params import REGISTRY, ParamError, Registry
from ..report import Reporter
from .oscreply import Buckets
from .oscwire import OscError, parse

PREFIX = "/noclip/"
NORM = "/noclip/norm/"
MAX_DELAY = 60.0  # a bundle timed further ahead than this is treated as "now", not held for hours
LOCAL = ("127.0.0.0/8", "::1/128")  # senders on this machine (the kernel drops forged loopback sources)
HEAVY = ("patch/load", "chain/reload")  # commands that read files or rebuild: rate-limited per sender
PATCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")  # what a remote sender may load
REPLIES = ("subscribe", "unsubscribe", "dump", "confirm")  # the UDP port's own answers (oscreply)
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


def finite(args: list[Any]) -> bool:
    """No NaN or infinity anywhere in the arguments (arrays included)."""
    for a in args:
        if type(a) is float:
            if not math.isfinite(a):
                return False
        elif type(a) is list and not finite(a):
            return False
    return True


def is_loopback(host: str) -> bool:
    """Whether a listen address or host name stays on this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ip_of(host).is_loopback
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False
        return bool(infos) and all(ip_of(str(i[4][0])).is_loopback for i in infos)  # an int only off IP


def ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    ip = ipaddress.ip_address(host.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(cidrs: Iterable[str]) -> list[Network]:
    """An allow-list's entries (`192.168.1.0/24`, `10.0.0.5`) as networks."""
    return [ipaddress.ip_network(a, strict=False) for a in cidrs]


def within(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]) -> bool:
    return any(ip in n for n in nets if n.version == ip.version)


def parse_hostport(text: str, default_port: int = 9000) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        host, port = text, str(default_port)
    return host or "127.0.0.1", int(port)


class OscRouter:
    """OSC messages → ControlEvents under the rules above (see the module's docstring)."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, allow: Iterable[str] = (),
                 registry: Registry = REGISTRY, *, allow_quit: bool = False,
                 local: Iterable[str] = LOCAL, source: str = "osc") -> None:
        self.queue = queue
        self.reporter = reporter
        self.registry = registry
        self.source = source  # the ControlEvents' source: "osc" (UDP), "oscquery" (WebSocket)
        self.allow, self.local = networks(allow), networks(local)
        self.allow_quit = allow_quit
        self.stats: Counter[str] = Counter()
        self._last: tuple[str, list[Any]] = ("", [])  # formatted only when the HUD asks
        self._senders: dict[str, tuple[bool, bool]] = {}  # host -> (allowed, local), a bounded cache
        self._heavy = Buckets(1.0, 2.0)

    def _reply(self, name: str, args: list[Any], sender: tuple[str, int], local: bool) -> None:
        """subscribe, dump and their handshake: only the UDP port answers them (OscControl)."""
        address = CMD_ADDRESS + name
        self._bad("osc unknown", address, f"{address} is answered on the UDP OSC port only")

    def admit(self, host: str) -> tuple[bool, bool]:
        """(allowed, on this machine) for a sender's address, cached (at most 4096 addresses)."""
        known = self._senders.get(host)
        if known is None:
            try:
                ip = ip_of(host)
            except ValueError:
                return False, False
            local = within(ip, self.local)
            allowed = not self.allow or within(ip, self.allow)
            if len(self._senders) >= 4096:
                self._senders.clear()
            known = self._senders[host] = (allowed, local)
        return known

    def handle(self, data: bytes, sender: tuple[str, int], arrival: float) -> None:
        """One datagram: never raises, never loops, whatever it holds."""
        self.stats["packets"] += 1
        allowed, local = self.admit(sender[0])
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
        if not finite(args):
            return self._bad("osc non-finite", address, f"{address}: NaN or infinity dropped")
        if address.startswith(CMD_ADDRESS):
            name = address[len(CMD_ADDRESS):]
            if name not in commands.COMMANDS:
                return self._bad("osc unknown", address, f"unknown command {address}")
            if name in REPLIES:
                self._last = (address, args)
                return self._reply(name, args, sender, local)
            if not local and not self._remote_may(name, args, sender):
                return None
            if name in HEAVY and not self._heavy.take(sender[0], time.perf_counter()):
                return self._bad("osc throttled", sender[0], f"{address} from {sender[0]}: 1 a second at most")
            self._last = (address, args)
            self.queue.put(ControlEvent(self.source, CMD_TARGET + name, tuple(args), time=arrival, at=at,
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
        self.queue.put(ControlEvent(self.source, name, value, time=arrival, at=at, origin=sender[0],
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
