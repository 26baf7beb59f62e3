"""Arrival stamps from rtmidi's deltas and the polls that saw them: real numbers, simulated clocks."""

import random

import pytest

from instrument.control.stamps import ArrivalClock

FRAME = 1 / 60


def poisson(rng, start, end, mean_gap):
    t, out = start, []
    while (t := t + rng.expovariate(1 / mean_gap)) < end:
        out.append(t)
    return out


def run(arrivals, *, seconds, seed=1, offset=1234.5, ppm=0.0, jumps=(), wake=0.0, poll_jitter=0.002):
    """Poll at 60 Hz (each poll late by up to `poll_jitter`) a queue that rtmidi fills: the device's
    clock is `offset` away from ours, runs `ppm` fast and steps by `jumps` [(at, seconds)]; a message
    becomes readable up to `wake` after it arrived. Returns (arrival, stamp, since, now) per message."""
    rng = random.Random(seed)
    clock = ArrivalClock(0.0)
    device = [a * (1 + ppm * 1e-6) - offset + sum(s for at, s in jumps if a >= at) for a in arrivals]
    visible = [a + rng.uniform(0.0, wake) for a in arrivals]
    out, i, prev, since = [], 0, None, 0.0
    for n in range(1, int(seconds * 60)):
        start = n * FRAME + rng.uniform(0.0, poll_jitter)
        now = start + 20e-6  # the read takes a little while
        j = i
        while j < len(arrivals) and visible[j] <= start:
            j += 1
        deltas = []
        for k in range(i, j):
            deltas.append(0.0 if prev is None else device[k] - prev)  # rtmidi: 0 for the first
            prev = device[k]
        stamps = clock.stamps(deltas, now, start)
        out += [(arrivals[k], s, since, now) for k, s in zip(range(i, j), stamps, strict=True)]
        i, since = j, start
    return out, clock


def errors(out, after=0.0, before=float("inf")):
    return [abs(s - a) for a, s, _, _ in out if after <= a < before]


def check_bounds(out):
    for _a, s, since, now in out:
        assert since <= s <= now  # never later than the poll that saw it, never before the one before


def test_offset_converges_below_a_millisecond_at_60_hz():
    rng = random.Random(3)
    out, clock = run(poisson(rng, 0.1, 4.0, 0.03), seconds=4.0)
    check_bounds(out)
    err = errors(out)
    assert max(err[:3]) <= FRAME + 0.002  # at first no better than the poll
    assert max(errors(out, after=1.0)) < 0.001
    assert clock.offset == pytest.approx(out[0][0], abs=0.001)  # the first message is the chain's zero
    assert clock.resets == 0


def test_a_long_gap_loosens_the_estimate_and_it_converges_again():
    rng = random.Random(4)
    arrivals = poisson(rng, 0.1, 3.0, 0.05) + poisson(rng, 40.0, 43.0, 0.05)  # 37 s of silence
    out, clock = run(arrivals, seconds=43.0)
    check_bounds(out)
    assert max(errors(out, after=1.5, before=3.0)) < 0.001
    assert max(errors(out, after=40.0)) < FRAME / 2  # 3.7 ms of possible drift: less sure, not lost
    assert max(errors(out, after=41.5)) < 0.001
    assert clock.resets == 0


@pytest.mark.parametrize(("ppm", "bound"), [(100.0, 0.001), (-100.0, 0.001), (300.0, 0.0025), (-300.0, 0.0025)])
def test_slow_drift_is_followed(ppm, bound):
    rng = random.Random(5)
    out, clock = run(poisson(rng, 0.1, 60.0, 0.05), seconds=60.0, ppm=ppm)  # ±300 ppm: 18 ms in 60 s
    check_bounds(out)
    assert max(errors(out, after=2.0)) < bound  # past DRIFT (100 ppm) it still follows, less closely
    assert clock.resets == 0


def test_a_clock_jump_restarts_the_estimate():
    rng = random.Random(6)
    out, clock = run(poisson(rng, 0.1, 6.0, 0.02), seconds=6.0, jumps=[(3.0, 0.5)])
    check_bounds(out)
    assert clock.resets == 1
    assert max(errors(out, after=4.0)) < 0.001
    assert max(e for a, e in zip([a for a, *_ in out], errors(out), strict=True) if a < 3.0) < FRAME


def test_late_wake_up_of_the_reader_is_tolerated():
    rng = random.Random(7)
    out, clock = run(poisson(rng, 0.1, 4.0, 0.01), seconds=4.0, wake=0.0003)
    check_bounds(out)
    assert max(errors(out, after=1.0)) < 0.001 and clock.resets == 0


def test_a_batch_with_impossible_deltas_still_stamps_inside_its_poll():
    clock = ArrivalClock(0.0)
    stamps = clock.stamps([0.0, 5.0, 5.0], now=0.02, start=0.019)  # 10 s of deltas inside 20 ms
    assert all(0.0 <= s <= 0.02 for s in stamps) and stamps[-1] == pytest.approx(0.02)
    assert clock.stamps([], now=0.04, start=0.039) == []
    assert clock.since == 0.039
