"""A hostile OSC corpus: what a fuzzer, a broken controller or an attacker on the network sends.

Used by `noclip bench --only hostile` (a 10,000 packets/s flood of it against a paced show) and by
the tests (tests/test_osc_hostile.py). Deterministic: the same seed gives the same packets, with
future timetags relative to `now`.

Kinds, by weight: random bytes; valid messages (every parameter, with values in and out of range,
strings, NaN and infinities, every command but quit) and the same mutated (bytes flipped, cut,
extended, a size field rewritten); bundles, immediate and future-timed, and the same mutated; the
20-byte bundle with an element size of -4 that hung python-osc for good, and its relatives (sizes
0, 3, 2**31-1, past the end); bundles nested 9 to 40 deep; bundles of 1,025 to 2,000 elements;
arrays nested past the limit; blobs and strings that claim more than the datagram holds.
"""

from __future__ import annotations

import math
import random
import struct
import time
from typing import Any

from ..commands import CMD_ADDRESS
from ..control.oscwire import BUNDLE, build, bundle, unix_to_timetag
from ..params import REGISTRY

STUCK = BUNDLE + struct.pack(">Q", 1) + struct.pack(">i", -4)  # the 20-byte bundle of issue 15
COMMANDS = ("seed/next", "seed/prev", "tracking/jump", "tap", "record/toggle", "chain/reload", "noclip",
            "patch/load", "subscribe", "unsubscribe", "dump", "confirm", "no/such/command")


def _pad(b: bytes) -> bytes:
    b += b"\0"
    return b + b"\0" * (-len(b) % 4)


def _value(rng: random.Random, spec) -> object:
    r = rng.random()
    if r < 0.08:
        return rng.choice([math.nan, math.inf, -math.inf])
    if r < 0.16:
        return rng.choice(["", "x" * rng.randrange(1, 3000), "1e999", "NaN", "on", "\u2603"])
    if r < 0.2:
        return rng.randrange(-2**31, 2**31)
    if spec.type in ("float", "int"):
        span = (spec.max - spec.min) or 1.0
        return float(spec.min + rng.uniform(-0.5, 1.5) * span)
    if spec.type == "enum":
        return rng.choice([*spec.choices, "nonsense"])
    if spec.type == "bool":
        return rng.choice([True, False, 0, 1])
    return "a hallway " * rng.randrange(1, 40)


def _message(rng: random.Random, names: list) -> bytes:
    if rng.random() < 0.2:
        name = rng.choice(COMMANDS)
        options: list[list[Any]] = [[], [rng.randrange(65536)], ["level9"], ["../../etc/passwd"], [0.5],
                                    [rng.random(), "norm"]]
        args = rng.choice(options)
        return build(CMD_ADDRESS + name, *args)
    spec = rng.choice(names)
    prefix = "/noclip/norm/" if rng.random() < 0.3 and spec.type != "str" else "/noclip/"
    args = [_value(rng, spec) for _ in range(1 if rng.random() < 0.9 else rng.randrange(0, 4))]
    try:
        return build(prefix + spec.name, *args)
    except (OverflowError, struct.error):
        return build(prefix + spec.name, 0.5)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.random()
        if op < 0.3 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op < 0.5 and b:
            del b[rng.randrange(len(b)):]
        elif op < 0.65:
            b += rng.randbytes(rng.randrange(1, 16))
        elif len(b) >= 4:  # rewrite a 4-byte field, as if a size
            i = rng.randrange(0, len(b) - 3) & ~3
            size = rng.choice([-4, -1, 0, 3, 2**31 - 1, len(b), rng.randrange(-2**31, 2**31)])
            b[i:i + 4] = struct.pack(">i", size)
    return bytes(b)


def _bundle(rng: random.Random, names: list, now: float) -> bytes:
    when = None if rng.random() < 0.5 else now + rng.uniform(0.05, 70.0)
    return bundle([_message(rng, names) for _ in range(rng.randrange(1, 12))], when)


def _nested(rng: random.Random, names: list, depth: int) -> bytes:
    inner = _message(rng, names)
    for _ in range(depth):
        inner = bundle([inner])
    return inner


def corpus(seed: int, n: int, now: float | None = None) -> list[bytes]:
    """`n` hostile datagrams (each at most 64 KB; most under 200 bytes)."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    names = list(REGISTRY)
    seeds = [build("/noclip/seed", i) for i in range(2000)]
    out: list[bytes] = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            p = rng.randbytes(rng.randrange(1, 200))
            if rng.random() < 0.3:
                p = rng.choice([BUNDLE, b"/noclip/", b"/"]) + p
        elif r < 0.45:
            p = _message(rng, names)
        elif r < 0.6:
            p = _mutate(rng, _message(rng, names))
        elif r < 0.7:
            p = _bundle(rng, names, now)
        elif r < 0.8:
            p = _mutate(rng, _bundle(rng, names, now))
        elif r < 0.86:
            size = rng.choice([-4, -8, -1, 0, 3, 2**31 - 1, -2**31, 16, 1 << 20])
            p = BUNDLE + struct.pack(">Qi", rng.choice([1, 0, unix_to_timetag(now + 5)]), size)
            p += bytes(rng.randrange(4) * 4)
        elif r < 0.9:
            p = _nested(rng, names, rng.randrange(9, 40))
        elif r < 0.91:
            count = rng.randrange(1025, 2000)
            p = bundle(seeds[:count], now + rng.uniform(0.1, 60.0))
        elif r < 0.94:
            depth = rng.randrange(7, 30)
            p = _pad(b"/noclip/seed") + _pad(b"," + b"[" * depth + b"i" + b"]" * depth) + struct.pack(">i", 1)
        elif r < 0.97:
            p = _pad(b"/noclip/prompt") + _pad(b",b") + struct.pack(">i", rng.choice([2**31 - 1, 1 << 16, -1]))
        else:
            p = _pad(b"/noclip/prompt") + _pad(b",s") + b"no end" * rng.randrange(1, 50)
        out.append(p[:65507])
    out[::997] = [STUCK] * len(out[::997])  # the one that hung the show, throughout
    return out
