"""What the OSC port sends back: subscriptions, dumps and the handshake that guards them.

UDP's source address is whatever the sender wrote, so anything that answers a datagram can be
turned into a reflector: before this, a 24-byte `/noclip/cmd/dump` with a forged source made the
show send 43 datagrams to the victim, and `subscribe <port>` streamed every change to any port of
that address, forever. So:

- a sender that has not shown it receives at its address (unconfirmed) gets back at most one
  24-byte challenge per request: `/noclip/confirm <nonce>`, sent to the address the request came
  from. Requests are at least 20 bytes, so the reflection is at most 1.2x, and challenges are
  rate-limited per address and in all;
- `subscribe <port> [norm]` is answered by that challenge; echoing it (`/noclip/cmd/confirm <nonce>`
  from the same address and port) starts the subscription. Subscriptions are capped (`max_subs`),
  expire `ttl` seconds after the last subscribe (send it again from the same address and port to
  renew: no new handshake while it runs), and end with `unsubscribe <port>`;
- `dump` answers senders on this machine, and senders confirmed by a handshake within `ttl`; an
  unconfirmed one gets the challenge instead. Dumps are rate-limited per sender.

The nonce is a secret (not the show's seeded randomness): guessing it is what a forger would have to do.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..commands import CMD_ADDRESS
from ..params import Registry
from ..report import Reporter
from .oscwire import build

NORM = "/noclip/norm/"
PREFIX = "/noclip/"
CONFIRM = "/noclip/confirm"
MAX_CHALLENGES = 64     # handshakes waiting for their echo
MAX_CONFIRMED = 256     # addresses that passed one, remembered for `ttl`


class Bucket:
    """A token bucket: `rate` tokens a second, at most `burst` saved up."""

    __slots__ = ("burst", "level", "rate", "t")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.level, self.t = rate, burst, burst, now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.level = min(self.burst, self.level + (now - self.t) * self.rate)
        self.t = now
        if self.level >= cost:
            self.level -= cost
            return True
        return False

    def full(self, now: float) -> bool:
        return self.level + (now - self.t) * self.rate >= self.burst


class Buckets:
    """A bucket per key (a sender's address), at most `cap` of them: full buckets hold no state and
    are forgotten when the table fills; while it is full of busy ones, new keys are refused."""

    def __init__(self, rate: float, burst: float, cap: int = 1024) -> None:
        self.rate, self.burst, self.cap = rate, burst, cap
        self._b: dict[Any, Bucket] = {}

    def take(self, key: Any, now: float) -> bool:
        b = self._b.get(key)
        if b is None:
            if len(self._b) >= self.cap:
                for k in [k for k, v in self._b.items() if v.full(now)]:
                    del self._b[k]
                if len(self._b) >= self.cap:
                    return False
            b = self._b[key] = Bucket(self.rate, self.burst, now)
        return b.take(now)

    def __len__(self) -> int:
        return len(self._b)


@dataclass
class Subscriber:
    address: tuple[str, int]
    norm: bool
    expires: float = 0.0
    owner: tuple[str, int] | None = None  # who confirmed it: only they renew it without a handshake


@dataclass(frozen=True)
class _Challenge:
    to: tuple[str, int]                # where the nonce went: the echo must come from there
    sub: tuple[str, int] | None        # the subscription it starts (None: a dump's handshake)
    norm: bool
    expires: float


class Replies:
    """Subscriptions, dumps and handshakes of one OSC port (see the module's docstring)."""

    def __init__(self, send: Callable[[bytes, tuple[str, int]], object], registry: Registry,
                 reporter: Reporter, stats: Counter[str], *, max_subs: int = 8, ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sendto, self.registry, self.reporter, self.stats = send, registry, reporter, stats
        self.max_subs, self.ttl, self.clock = max_subs, ttl, clock
        self.subs: dict[tuple[str, int], Subscriber] = {}
        self._sent: dict[tuple[str, int], dict[str, Any]] = {}
        self._challenges: dict[int, _Challenge] = {}
        self._confirmed: dict[str, float] = {}   # host -> until when it counts as confirmed
        self._values: dict[str, Any] = {}
        now = clock()
        self._per_host = Buckets(1.0, 3.0)       # challenges to one address: 3, then 1 a second
        self._all = Bucket(50.0, 50.0, now)      # challenges in all
        self._dumps = Buckets(1.0, 2.0)          # dumps to one address
        self._next_prune = now

    # -- requests ------------------------------------------------------------------------------

    def command(self, name: str, args: list[Any], sender: tuple[str, int], local: bool) -> None:
        """subscribe / unsubscribe / dump / confirm from `sender`."""
        now = self.clock()
        port = args[0] if args and type(args[0]) is int and 0 < args[0] < 65536 else None
        norm = len(args) > 1 and args[1] == "norm"
        host = sender[0]
        if name == "confirm":
            return self._confirm(args, sender, now)
        if name == "dump":
            if local or self._confirmed.get(host, 0.0) > now:
                if not self._dumps.take(host, now):
                    return self._refuse("throttled", host, f"dump from {host}: at most one a second")
                return self.send_all((host, port or sender[1]), norm)
            return self._challenge(sender, None, norm, now)
        if port is None:
            return self._refuse("bad value", CMD_ADDRESS + name, f"{CMD_ADDRESS}{name} needs a port number")
        key = (host, port)
        if name == "unsubscribe":
            self._drop(key)
            return None
        sub = self.subs.get(key)
        if sub is not None and sub.owner == sender:  # renewal: it proved its address when it started
            sub.expires, sub.norm = now + self.ttl, norm
            return None
        return self._challenge(sender, key, norm, now)

    def _challenge(self, sender: tuple[str, int], sub: tuple[str, int] | None, norm: bool, now: float) -> None:
        if not (self._per_host.take(sender[0], now) and self._all.take(now)):
            return self._refuse("throttled", sender[0], f"handshake requests from {sender[0]} come too fast")
        if len(self._challenges) >= MAX_CHALLENGES:
            self._prune(now)
            if len(self._challenges) >= MAX_CHALLENGES:  # the oldest waiting handshake gives way
                del self._challenges[next(iter(self._challenges))]
        nonce = secrets.randbelow(2**31 - 1) + 1
        self._challenges[nonce] = _Challenge(sender, sub, norm, now + 10.0)
        self.stats["challenges"] += 1
        self._send_raw(build(CONFIRM, nonce), sender)

    def _confirm(self, args: list[Any], sender: tuple[str, int], now: float) -> None:
        nonce = args[0] if args and type(args[0]) is int else None
        c = self._challenges.get(nonce) if nonce is not None else None
        if nonce is None or c is None or c.to != sender or c.expires < now:
            return self._refuse("bad handshake", sender[0], f"confirm from {sender[0]}: no such handshake")
        del self._challenges[nonce]
        if len(self._confirmed) >= MAX_CONFIRMED:
            self._prune(now)
            if len(self._confirmed) >= MAX_CONFIRMED:
                del self._confirmed[next(iter(self._confirmed))]
        self._confirmed[sender[0]] = now + self.ttl
        if c.sub is None:
            return self.send_all(sender, c.norm) if self._dumps.take(sender[0], now) else None
        if c.sub not in self.subs and len(self.subs) >= self.max_subs:
            self._prune(now)
            if len(self.subs) >= self.max_subs:
                return self._refuse("subscribers full", sender[0],
                                    f"subscription from {sender[0]} refused: {self.max_subs} already")
        self.subs = {**self.subs, c.sub: Subscriber(c.sub, c.norm, now + self.ttl, sender)}
        self.stats["subscribed"] += 1
        # everything first, then changes: `publish` sees the subscriber only once it has been told all
        self.send_all(c.sub, c.norm, track=True)

    def _refuse(self, kind: str, key: str, message: str) -> None:
        self.stats[kind] += 1
        self.reporter.problem(f"osc {kind}", key, message)

    def _drop(self, key: tuple[str, int]) -> None:
        if key in self.subs:
            self.subs = {k: v for k, v in self.subs.items() if k != key}
        self._sent.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in [k for k, s in self.subs.items() if s.expires <= now]:
            self._drop(key)
            self.stats["expired"] += 1
        for nonce in [n for n, c in self._challenges.items() if c.expires <= now]:
            del self._challenges[nonce]
        for host in [h for h, t in self._confirmed.items() if t <= now]:
            del self._confirmed[host]

    # -- output --------------------------------------------------------------------------------

    def publish(self, values: dict[str, Any]) -> None:
        """Once a frame: send what changed to each subscriber; forget the expired."""
        self._values = values
        now = self.clock()
        if now >= self._next_prune:
            self._prune(now)
            self._next_prune = now + 0.25
        for key, sub in list(self.subs.items()):
            sent = self._sent.setdefault(key, {})
            for name, value in values.items():
                if sent.get(name) != value:
                    sent[name] = value
                    self.send_value(sub.address, name, value, sub.norm)

    def send_all(self, address: tuple[str, int], norm: bool, track: bool = False) -> None:
        values = self._values or self.registry.defaults()
        for name, value in values.items():
            self.send_value(address, name, value, norm)
        if track or address in self.subs:
            self._sent[address] = dict(values)

    def send_value(self, address: tuple[str, int], name: str, value: Any, norm: bool) -> None:
        spec = self.registry.get(name)
        if spec is None:
            return
        try:
            if norm and spec.type != "str":
                data = build(NORM + name, float(spec.to_norm(value)))
            else:
                data = build(PREFIX + name, value)
        except (OverflowError, TypeError, ValueError):  # not a value OSC can carry: not sent
            return
        self._send_raw(data, address)

    def _send_raw(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self._sendto(data, address)
            self.stats["sent"] += 1
            self.stats["sent bytes"] += len(data)
        except OSError as exc:
            self.reporter.problem("osc send", f"{address[0]}:{address[1]}", f"cannot send to {address}: {exc}")
