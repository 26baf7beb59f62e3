"""The bounded OSC parser: agrees with python-osc on what is valid, refuses what breaks a limit,
and costs time linear in the datagram (python-osc's copied the rest for every element)."""

from __future__ import annotations

import math
import random
import re
import struct
import time

import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from instrument.control.oscwire import (
    BUNDLE,
    MAX_DEPTH,
    MAX_ELEMENTS,
    OscError,
    build,
    bundle,
    parse,
    timetag_to_unix,
    unix_to_timetag,
)


def _random_message(rng: random.Random) -> OscMessageBuilder:
    b = OscMessageBuilder("/" + "".join(rng.choice("abc_/") for _ in range(rng.randint(1, 12))))
    for _ in range(rng.randint(0, 5)):
        tag = rng.choice("fidshTFNb")
        value = {"f": rng.uniform(-1e3, 1e3), "i": rng.randint(-2**31, 2**31 - 1), "d": rng.uniform(-1e9, 1e9),
                 "s": "é" * rng.randint(0, 6), "h": rng.randint(-2**63, 2**63 - 1), "T": True, "F": False,
                 "N": None, "b": bytes(rng.randrange(256) for _ in range(rng.randint(1, 9)))}[tag]
        b.add_arg(value, tag)
    return b


def test_agrees_with_python_osc_on_valid_messages_and_bundles():
    rng = random.Random(5)
    for _ in range(2000):
        if rng.random() < 0.5:
            data = _random_message(rng).build().dgram
        else:
            bb = OscBundleBuilder(IMMEDIATELY)
            for _ in range(rng.randint(1, 6)):
                bb.add_content(_random_message(rng).build())
            data = bb.build().dgram
        ours = [(a, args) for a, args, _ in parse(data)]
        theirs = [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]
        assert ours == theirs


def test_timetags_nested_and_immediate():
    t = time.time() + 5
    inner = bundle([build("/b", 2)], t + 3)
    data = bundle([build("/a", 1), inner, bundle([build("/c", 3)])], t)
    (a, b, c) = parse(data)
    assert a[2] == pytest.approx(t, abs=1e-6) and b[2] == pytest.approx(t + 3, abs=1e-6)
    assert c[2] == pytest.approx(t, abs=1e-6)  # an immediate bundle inside takes its enclosing time
    assert timetag_to_unix(1) is None and timetag_to_unix(unix_to_timetag(t)) == pytest.approx(t, abs=1e-6)
    assert parse(bundle([build("/x")]))[0][2] is None


def _stuck(size: int) -> bytes:
    return BUNDLE + struct.pack(">Qi", 1, size)


@pytest.mark.parametrize("data, why", [
    (_stuck(-4), "element size -4"),
    (_stuck(0), "element size 0"),
    (_stuck(3), "element size 3"),
    (_stuck(2**31 - 1), "inside the bundle"),
    (_stuck(8) + b"/a\0\0", "inside the bundle"),
    (BUNDLE + b"\0" * 7, "shorter than its header"),
    (BUNDLE + struct.pack(">Q", 1) + b"\0\0", "cut short"),
    (b"", "empty"),
    (b"noslash\0", "must start with '/'"),
    (b"/a\0\0,x\0\0", "unknown type tag"),
    (b"/a\0\0,i\0\0\0\0", "cut short"),
    (b"/a\0\0,b\0\0\x7f\xff\xff\xff", "blob size"),
    (b"/a\0\0,s\0\0abcd", "no terminating zero"),
    (b"/a\0\0,[i\0\0\0\0\0", "without ']'"),
    (b"/a\0\0,]\0\0", "without '['"),
    (b"/\xff\0\0", "not UTF-8"),
    (b"/a\0\0,i\0\0\0\0\0\x01junk", "arguments end"),
])
def test_refuses_with_a_reason(data, why):
    with pytest.raises(OscError, match=re.escape(why)):
        parse(data)


def test_nesting_and_element_limits():
    deep = build("/x", 1)
    for _ in range(MAX_DEPTH):
        deep = bundle([deep])
    assert parse(deep) == [("/x", [1], None)]
    with pytest.raises(OscError, match="nested deeper"):
        parse(bundle([deep]))
    many = bundle([build("/s", i) for i in range(MAX_ELEMENTS)])
    assert len(parse(many)) == MAX_ELEMENTS
    with pytest.raises(OscError, match="more than 1024 elements"):
        parse(bundle([build("/s", i) for i in range(MAX_ELEMENTS + 1)]))
    tags = b"," + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    arrays = b"/a\0\0" + tags + b"\0" * (4 - len(tags) % 4)
    with pytest.raises(OscError, match="arrays nested deeper"):
        parse(arrays)


def test_time_is_linear_in_the_datagram():
    """A 64 KB bundle of small messages: python-osc copied the rest of the datagram per element
    (12 ms here); reading by offset costs what its messages cost, and the refused ones less."""
    small = bundle([build("/s", i) for i in range(1000)])
    blob = build("/pad", b"\0" * 48_000)
    big = bundle([build("/s", i) for i in range(1023)] + [blob])  # 64 KB
    refused = bundle([build("/s", i) for i in range(2000)])
    assert len(big) > 60_000
    for data in (small, big, refused):
        best = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            try:
                parse(data)
            except OscError:
                pass
            best = min(best, time.perf_counter() - t0)
        assert best < 0.02, f"{len(data)} bytes took {best * 1000:.1f} ms"


def test_build_round_trips_what_the_show_sends():
    data = build("/noclip/x", 1, 2**40, 0.5, True, False, "hé", b"\x01\x02", None)
    assert parse(data) == [("/noclip/x", [1, 2**40, 0.5, True, False, "hé", b"\x01\x02", None], None)]
    assert OscPacket(data).messages[0].message.params[:3] == [1, 2**40, 0.5]
