"""The OSC 1.0 wire format, read by offset within hard limits: what the show's OSC port and the
AbletonOSC listener parse every datagram with.

Written by hand (DESIGN: "write by hand only what no maintained library does, and say why") because
python-osc's parser cannot face a hostile network:

- its bundle parser trusts each element's size: a 20-byte datagram (`#bundle\\0`, a timetag, then
  an element size of -4) makes it step back onto the same element forever, on whatever thread
  parses (the show's frame loop: the show ignored --seconds, Ctrl-C and /noclip/cmd/quit);
- it slices the rest of the datagram for every element it reads (12 ms for one 64 KB bundle of
  small messages: quadratic in the datagram), and nests bundles without limit.

Here every bundle is checked whole before any element is parsed (each element's size positive, a
multiple of 4 and inside its bundle; nesting at most `MAX_DEPTH`; at most `MAX_ELEMENTS` messages and
bundles in one datagram), then messages are read by offset from the one buffer, so a datagram
costs time linear in its length and can never loop. Anything else is an `OscError` naming why.

Types: i f d h (int64) s S (string) b (blob) c (char) r (rgba, as an int) m (MIDI, 4 ints) t
(timetag, as the raw 64-bit NTP integer) T F N I (impulse: None) and [ ] arrays (nested at most
`MAX_DEPTH`). Floats come back as Python floats, NaN and infinities included: the caller decides
(the show drops them).
"""

from __future__ import annotations

import struct
from typing import Any

MAX_DEPTH = 8          # bundles inside bundles, and arrays inside arrays
MAX_ELEMENTS = 1024    # messages and bundles in one datagram, at every level together
BUNDLE = b"#bundle\0"
IMMEDIATELY = 1        # the timetag that means "now"
NTP_EPOCH = 2_208_988_800  # seconds from 1900 (NTP) to 1970 (Unix)

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
# fixed-size arguments: tag -> (struct, how to turn the unpacked tuple into the value)
_FIXED: dict[int, tuple[struct.Struct, Any]] = {
    ord("i"): (_I32, None), ord("f"): (_F32, None), ord("d"): (_F64, None), ord("h"): (_I64, None),
    ord("r"): (_U32, None), ord("t"): (_U64, None),
}
_CONST = {ord("T"): True, ord("F"): False, ord("N"): None, ord("I"): None}


class OscError(ValueError):
    """A datagram that is not OSC, or breaks a limit: dropped, counted and reported by the caller."""


def _align(n: int) -> int:
    return (n + 3) & ~3


def timetag_to_unix(tag: int) -> float | None:
    """A bundle's 64-bit NTP timetag as Unix time; None for "immediately" (0 and 1)."""
    if tag <= IMMEDIATELY:
        return None
    return (tag >> 32) - NTP_EPOCH + (tag & 0xFFFFFFFF) / 4294967296.0


def unix_to_timetag(t: float) -> int:
    """Unix time as a 64-bit NTP timetag (for tests, benches and senders)."""
    sec = int(t) + NTP_EPOCH
    return (sec << 32) | int((t - int(t)) * 4294967296.0) & 0xFFFFFFFF


def parse(data: bytes, limit: int = MAX_ELEMENTS) -> list[tuple[str, list[Any], float | None]]:
    """Every message of a datagram as (address, args, when): `when` the Unix time of the innermost
    enclosing bundle's timetag, None for "now". Raises OscError; never loops, never copies the rest."""
    end = len(data)
    if end == 0:
        raise OscError("empty datagram")
    if data.startswith(BUNDLE):
        check_bundle(data, 0, end, 1, [limit])
        out: list[tuple[str, list[Any], float | None]] = []
        _bundle(data, 0, end, None, out)
        return out
    address, args = message(data, 0, end)
    return [(address, args, None)]


def check_bundle(data: bytes, start: int, end: int, depth: int, budget: list[int]) -> None:
    """The whole tree of a bundle, sizes only: raises before a single element is parsed."""
    if depth > MAX_DEPTH:
        raise OscError(f"bundles nested deeper than {MAX_DEPTH}")
    if end - start < 16:
        raise OscError("bundle shorter than its header")
    pos = start + 16
    while pos < end:
        if pos + 4 > end:
            raise OscError(f"bundle element size cut short at byte {pos}")
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if size <= 0 or size & 3 or pos + size > end:
            raise OscError(f"bundle element size {size} at byte {pos - 4} (must be a positive "
                           f"multiple of 4 inside the bundle's {end - start} bytes)")
        budget[0] -= 1
        if budget[0] < 0:
            raise OscError(f"more than {MAX_ELEMENTS} elements in one datagram")
        if data.startswith(BUNDLE, pos):
            check_bundle(data, pos, pos + size, depth + 1, budget)
        pos += size


def _bundle(data: bytes, start: int, end: int, outer: float | None,
            out: list[tuple[str, list[Any], float | None]]) -> None:
    """A bundle already checked by `check_bundle`: its messages, in order, into `out`."""
    when = timetag_to_unix(_U64.unpack_from(data, start + 8)[0])
    if when is None or (outer is not None and when < outer):
        when = outer  # OSC 1.0: an enclosed bundle is never earlier than its enclosing one
    pos = start + 16
    while pos < end:
        size = _I32.unpack_from(data, pos)[0]
        pos += 4
        if data.startswith(BUNDLE, pos):
            _bundle(data, pos, pos + size, when, out)
        else:
            address, args = message(data, pos, pos + size)
            out.append((address, args, when))
        pos += size


def _string(data: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    nul = data.find(0, pos, end)
    if nul < 0:
        raise OscError(f"{what} at byte {pos} has no terminating zero")
    try:
        text = data[pos:nul].decode()
    except UnicodeDecodeError:
        raise OscError(f"{what} at byte {pos} is not UTF-8") from None
    return text, _align(nul + 1)


def message(data: bytes, start: int, end: int) -> tuple[str, list[Any]]:
    """One message in data[start:end] (read in place): its address and arguments."""
    if data[start:start + 1] != b"/":
        raise OscError("not an OSC message (the address must start with '/')")
    address, pos = _string(data, start, end, "address")
    if pos >= end:
        return address, []  # no type tag string: OSC 1.0 allows it for old senders
    if data[pos] != 0x2C:  # ","
        raise OscError("type tag string must start with ','")
    tend = data.find(0, pos, end)
    if tend < 0:
        raise OscError("type tag string has no terminating zero")
    tags = data[pos + 1:tend]
    pos = _align(tend + 1)
    args: list[Any] = []
    stack: list[list[Any]] = []
    for tag in tags:
        fixed = _FIXED.get(tag)
        if fixed is not None:
            fmt = fixed[0]
            if pos + fmt.size > end:
                raise OscError(f"argument '{chr(tag)}' cut short at byte {pos}")
            args.append(fmt.unpack_from(data, pos)[0])
            pos += fmt.size
        elif tag in _CONST:
            args.append(_CONST[tag])
        elif tag == 0x73 or tag == 0x53:  # s S
            text, pos = _string(data, pos, end, "string")
            args.append(text)
        elif tag == 0x62:  # b
            if pos + 4 > end:
                raise OscError(f"blob size cut short at byte {pos}")
            size = _I32.unpack_from(data, pos)[0]
            pos += 4
            if size < 0 or pos + size > end:
                raise OscError(f"blob size {size} at byte {pos - 4} outside the message")
            args.append(data[pos:pos + size])
            pos = _align(pos + size)
        elif tag == 0x63:  # c
            if pos + 4 > end:
                raise OscError(f"char cut short at byte {pos}")
            code = _U32.unpack_from(data, pos)[0]
            if code > 0x10FFFF:
                raise OscError(f"char {code} is not a code point")
            args.append(chr(code))
            pos += 4
        elif tag == 0x6D:  # m
            if pos + 4 > end:
                raise OscError(f"MIDI argument cut short at byte {pos}")
            args.append(tuple(data[pos:pos + 4]))
            pos += 4
        elif tag == 0x5B:  # [
            if len(stack) >= MAX_DEPTH:
                raise OscError(f"arrays nested deeper than {MAX_DEPTH}")
            inner: list[Any] = []
            args.append(inner)
            stack.append(args)
            args = inner
        elif tag == 0x5D:  # ]
            if not stack:
                raise OscError("']' without '[' in the type tags")
            args = stack.pop()
        else:
            raise OscError(f"unknown type tag {chr(tag)!r}")
    if stack:
        raise OscError("'[' without ']' in the type tags")
    if pos > end or (pos < end and any(data[pos:end])):
        raise OscError(f"message is {end - start} bytes but its arguments end at {pos - start}")
    return address, args


def build(address: str, *args: Any) -> bytes:
    """A message from ints, floats (sent as 32-bit), bools, strings and bytes: what the show sends."""
    def pad(b: bytes) -> bytes:
        return b + b"\0" * (4 - len(b) % 4)

    tags, payload = [","], []
    for a in args:
        if a is True or a is False:
            tags.append("T" if a else "F")
        elif isinstance(a, int):
            if -2**31 <= a < 2**31:
                tags.append("i")
                payload.append(_I32.pack(a))
            else:
                tags.append("h")
                payload.append(_I64.pack(a))
        elif isinstance(a, float):
            tags.append("f")
            payload.append(_F32.pack(a))
        elif isinstance(a, str):
            tags.append("s")
            payload.append(pad(a.encode()))
        elif isinstance(a, (bytes, bytearray)):
            tags.append("b")
            payload.append(_I32.pack(len(a)) + bytes(a) + b"\0" * (-len(a) % 4))
        elif a is None:
            tags.append("N")
        else:
            raise TypeError(f"cannot send {type(a).__name__} over OSC")
    return pad(address.encode()) + pad("".join(tags).encode()) + b"".join(payload)


def bundle(elements: list[bytes], when: float | None = None, timetag: int | None = None) -> bytes:
    """A bundle of already built messages or bundles."""
    tag = timetag if timetag is not None else IMMEDIATELY if when is None else unix_to_timetag(when)
    return BUNDLE + _U64.pack(tag) + b"".join(_I32.pack(len(e)) + e for e in elements)
