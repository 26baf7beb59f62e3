"""Measured bandwidths: sine sweeps of luma and of chroma through the tape with all noise at zero,
-3 dB points converted to MHz with the 52.6 us active line, against VHS.md's table (+-20%).

Measured on the woven frame (the tape as the deck plays it); the screen after it is the TV, which
has its own response.
"""

from __future__ import annotations

import numpy as np
import pytest
from analog_rig import QUIET, RGB2YIQ, TAPE, YIQ2RGB, Rig, mhz_to_cycles_per_px

from instrument.bench.dream import amplitude, crossing

TARGET = {"SP": (2.4, 0.32), "LP": (1.9, 0.30), "EP": (1.4, 0.28)}  # MHz: luma, chroma (VHS.md)
BAND = 20  # rows per test frequency: 24 frequencies a frame
COLS = np.arange(48, TAPE[0] - 48)  # away from the clamped edges
LUMA_MHZ = np.geomspace(0.3, 4.5, TAPE[1] // BAND)
CHROMA_MHZ = np.geomspace(0.06, 1.2, TAPE[1] // BAND)
LUMA_AMP, CHROMA_AMP = 0.25, 0.15




def sweep(freqs_mhz: np.ndarray, channel: int, amp: float) -> np.ndarray:
    """Bands of rows, each one horizontal sine in Y (channel 0) or I (channel 1), as RGB."""
    yiq = np.zeros((TAPE[1], TAPE[0], 3))
    yiq[..., 0] = 0.5
    x = np.arange(TAPE[0])
    for b, f in enumerate(freqs_mhz):
        yiq[b * BAND : (b + 1) * BAND, :, channel] += amp * np.sin(
            2 * np.pi * mhz_to_cycles_per_px(f) * x
        )
    return yiq @ YIQ2RGB.T


def response(rig: Rig, channel: int, **params) -> tuple[np.ndarray, np.ndarray]:
    """Gain per sweep frequency of Y (channel 0) or I (channel 1) in the woven frame."""
    freqs, amp = (LUMA_MHZ, LUMA_AMP) if channel == 0 else (CHROMA_MHZ, CHROMA_AMP)
    out = rig.render(sweep(freqs, channel, amp), **{**QUIET, **params})["frame"]
    sig = (out @ RGB2YIQ.T)[..., channel]
    gains = []
    for b, f in enumerate(freqs):
        rows = sig[b * BAND + 5 : (b + 1) * BAND - 3, COLS]  # clear of the line-above chroma blend
        gains.append(
            np.mean([amplitude(r, mhz_to_cycles_per_px(f), COLS.astype(float)) for r in rows])
        )
    return freqs, np.array(gains) / amp


def cutoff(freqs: np.ndarray, gains: np.ndarray) -> float:
    """The first -3 dB crossing, interpolated on a log-frequency axis (the bench's measure)."""
    found = crossing(freqs, gains)
    assert found is not None, f"no -3 dB crossing inside the sweep: {np.round(20 * np.log10(gains), 2)}"
    return found


def measure(rig: Rig) -> dict[str, tuple[float, float]]:
    return {
        s: (cutoff(*response(rig, 0, tape_speed=s)), cutoff(*response(rig, 1, tape_speed=s)))
        for s in TARGET
    }


@pytest.fixture(scope="module")
def measured(rig):
    return measure(rig)


@pytest.mark.parametrize("speed", list(TARGET))
def test_luma_cutoff_matches_vhs(measured, speed):
    got, want = measured[speed][0], TARGET[speed][0]
    assert abs(got - want) <= 0.2 * want, f"{speed} luma -3 dB at {got:.2f} MHz, VHS.md says {want}"


@pytest.mark.parametrize("speed", list(TARGET))
def test_chroma_cutoff_matches_vhs(measured, speed):
    got, want = measured[speed][1], TARGET[speed][1]
    assert abs(got - want) <= 0.2 * want, (
        f"{speed} chroma -3 dB at {got * 1000:.0f} kHz, VHS.md says {want * 1000:.0f}"
    )


def test_slower_tape_has_less_bandwidth(measured):
    for slow in ("LP", "EP"):
        assert measured[slow][0] < measured["SP"][0]
        assert measured[slow][1] < measured["SP"][1]
    assert measured["EP"][0] < measured["LP"][0]


def test_passband_is_flat(rig):
    """Low frequencies pass at unit gain: the -3 dB points are not an artifact of a wrong DC gain."""
    for channel in (0, 1):
        _, gains = response(rig, channel, tape_speed="SP")
        assert abs(gains[0] - 1.0) < 0.05, gains[0]


def test_bleed_widens_the_chroma_smear(rig):
    """bleed 0 is the tape speed's bandwidth; more bleed is less chroma bandwidth, luma untouched."""
    base = measure_one(rig, 1, bleed=0.0)
    smeared = measure_one(rig, 1, bleed=0.8)
    assert smeared < 0.8 * base
    assert abs(measure_one(rig, 0, bleed=0.8) - measure_one(rig, 0, bleed=0.0)) < 0.01


def measure_one(rig: Rig, channel: int, **params) -> float:
    return cutoff(*response(rig, channel, tape_speed="SP", **params))


if __name__ == "__main__":  # the table for the issue note
    from instrument.render.gl import headless_context

    r = Rig(headless_context())
    print(f"{'speed':<6}{'luma MHz':>10}{'target':>8}{'chroma kHz':>12}{'target':>8}")
    for s, (luma, chroma) in measure(r).items():
        print(
            f"{s:<6}{luma:>10.2f}{TARGET[s][0]:>8.2f}{chroma * 1000:>12.0f}{TARGET[s][1] * 1000:>8.0f}"
        )
