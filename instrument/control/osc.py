"""OSC in and out over UDP (python-osc's parser, our own socket loop).

Our own loop rather than python-osc's server because a show needs what that server hides: every
malformed packet counted, bundles with future timetags scheduled instead of slept on, arrival
stamps, an allow-list when the port is opened to a network, and replies from the same socket.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
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
        self.last_message = ""
        self._subs: dict[tuple[str, int], Subscriber] = {}
        self._sent: dict[tuple[str, int], dict[str, Any]] = {}
        self._values: dict[str, Any] = {}
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, port))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name="osc-in", daemon=True)

    def start(self) -> OscControl:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        self.sock.close()

    # -- input ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.handle(data, sender[:2], time.perf_counter())

    def handle(self, data: bytes, sender: tuple[str, int], arrival: float) -> None:
        """One datagram: never raises, whatever it holds."""
        self.stats["packets"] += 1
        if self.allow and not any(ipaddress.ip_address(sender[0]) in n for n in self.allow):
            self.stats["denied"] += 1
            self.reporter.problem("osc denied", sender[0], f"packet from {sender[0]} not in --osc-allow")
            return
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
            try:
                self._route(tm.message.address, list(tm.message.params), sender, arrival, at)
            except Exception as exc:  # a routing bug must not kill the server thread
                self.stats["errors"] += 1
                self.reporter.problem("osc error", tm.message.address, f"{tm.message.address}: {exc}")

    def _route(self, address: str, args: list[Any], sender: tuple[str, int], arrival: float,
               at: float | None) -> None:
        self.stats["messages"] += 1
        if address.startswith(CMD):
            name = address[len(CMD):]
            if name not in COMMANDS:
                return self._bad("osc unknown", address, f"unknown command {address}")
            self.last_message = f"{address} {' '.join(map(str, args))}".strip()
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
        self.last_message = f"{address} {args[0]:.4g}" if isinstance(args[0], float) else f"{address} {args[0]}"
        self.queue.put(ControlEvent("osc", name, value, time=arrival, at=at))

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
        else:
            subs.pop(key, None)
        self._subs = subs  # copy-on-write: the frame loop iterates the old dict safely
        if name == "subscribe":
            self._send_all(key, subs[key].norm)

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

    def _send_all(self, address: tuple[str, int], norm: bool) -> None:
        values = self._values or self.registry.defaults()
        for name, value in values.items():
            self._send(address, name, value, norm)
        if address in self._subs:
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
