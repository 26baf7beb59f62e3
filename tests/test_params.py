import math

import pytest

from instrument.params import FrameParams, ParamBank, ParamError, ParamSpec, Registry, declare


@pytest.fixture
def reg():
    r = Registry()
    declare("gain", "float", 0.5, min=0.0, max=1.0, smooth=0.2, registry=r, origin="t")
    declare("count", "int", 3, min=0, max=10, registry=r, origin="t")
    declare("speed", "enum", "SP", choices=("SP", "LP", "EP"), registry=r, origin="t")
    declare("on", "bool", False, registry=r, origin="t")
    declare("prompt", "str", "a hallway", registry=r, origin="t")
    return r


def test_coerce_clamps_and_converts(reg):
    gain, count = reg["gain"], reg["count"]
    assert gain.coerce(7) == 1.0 and gain.coerce(-3) == 0.0
    assert gain.coerce("0.25") == 0.25
    assert count.coerce(4.6) == 5 and isinstance(count.coerce(4.6), int)
    assert count.coerce(99) == 10
    assert reg["speed"].coerce("lp") == "LP" and reg["speed"].coerce(2) == "EP"
    assert reg["speed"].coerce(9) == "EP"
    assert reg["on"].coerce("on") is True and reg["on"].coerce(0.2) is False


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "abc", b"\xff\xfe", None, [1]])
def test_bad_values_raise_param_error(reg, bad):
    with pytest.raises(ParamError):
        reg["gain"].coerce(bad)


def test_norm_maps_onto_range(reg):
    assert reg["count"].from_norm(0.5) == 5
    assert reg["speed"].from_norm(0.0) == "SP" and reg["speed"].from_norm(1.0) == "EP"
    assert reg["gain"].from_norm(3.0) == 1.0
    assert reg["gain"].to_norm(reg["gain"].from_norm(0.3)) == pytest.approx(0.3)
    with pytest.raises(ParamError):
        reg["prompt"].from_norm(0.5)


def test_spec_validation():
    with pytest.raises(ValueError):
        ParamSpec("x", "float", 0.0)  # numeric without range
    with pytest.raises(ValueError):
        ParamSpec("Bad-Name", "bool", False)
    assert ParamSpec("y", "float", 5.0, min=0, max=1).default == 1.0  # default clamped too


def test_conflicting_declarations_are_refused(reg):
    declare("gain", "float", 0.5, min=0.0, max=1.0, smooth=0.2, registry=reg, origin="t")  # same: fine
    with pytest.raises(ValueError, match="declared twice"):
        declare("gain", "float", 0.1, min=0.0, max=2.0, registry=reg, origin="elsewhere")


def _glide(reg, fps, seconds=0.3):
    bank = ParamBank(reg)
    bank.set("gain", 1.0)
    fp = None
    for i in range(round(seconds * fps)):
        fp = bank.advance(i, i / fps, 1.0 / fps)
    return fp["gain"]


def test_smoothing_is_frame_rate_independent(reg):
    at30, at120 = _glide(reg, 30), _glide(reg, 120)
    expected = 1.0 - 0.5 * math.exp(-0.3 / 0.2)
    assert at30 == pytest.approx(expected, abs=1e-6)
    assert at120 == pytest.approx(expected, abs=1e-6)


def test_discrete_values_snap_and_snapshots_are_immutable(reg):
    bank = ParamBank(reg)
    bank.set("count", 7)
    fp = bank.advance(0, 0.0, 1 / 60)
    assert fp["count"] == 7 and fp.count == 7 and isinstance(fp, FrameParams)
    with pytest.raises(TypeError):
        fp._values["count"] = 1  # a read-only view
    bank.set("count", 2)
    assert fp["count"] == 7  # the old frame's snapshot did not move


def test_bank_picks_up_late_declarations(reg):
    bank = ParamBank(reg)
    declare("late", "float", 0.25, min=0, max=1, registry=reg, origin="t")
    assert bank.advance(0, 0, 1 / 60)["late"] == 0.25


def test_nudge_wraps_enums_and_clamps_ints(reg):
    bank = ParamBank(reg)
    assert bank.nudge("speed", -1) == "EP"
    bank.set("count", 10)
    assert bank.nudge("count", +1) == 10


def test_uniform_values(reg):
    assert reg["speed"].to_uniform("EP") == 2 and reg["on"].to_uniform(True) == 1
    assert reg["gain"].to_uniform(0.25) == 0.25 and reg["prompt"].to_uniform("x") is None
