"""Where the artifacts land, and that the noise is a pure function of (seed, frame, params)."""

from __future__ import annotations

import numpy as np
import pytest
from analog_rig import QUIET, RGB2YIQ, TAPE

W, H = TAPE




@pytest.fixture(scope="module")
def bars() -> np.ndarray:
    """Vertical bars of random widths and colours: every sideways shift of a line shows."""
    rng = np.random.default_rng(3)
    row = np.zeros((W, 3))
    x = 0
    while x < W:
        n = int(rng.integers(6, 40))
        row[x : x + n] = rng.uniform(0.1, 0.9, 3)
        x += n
    return np.repeat(row[None], H, axis=0)


def luma(img: np.ndarray) -> np.ndarray:
    return (img @ RGB2YIQ.T)[..., 0]


def row_shifts(out: np.ndarray, ref: np.ndarray, reach: int = 40) -> np.ndarray:
    """Per row, the sideways shift (px) that best maps the reference row onto the output row."""
    a, b = luma(out), luma(ref)
    cols = slice(reach + 8, W - reach - 8)
    shifts = np.arange(-reach, reach + 1)
    err = np.stack(
        [np.mean((a[:, cols] - np.roll(b, s, axis=1)[:, cols]) ** 2, axis=1) for s in shifts]
    )
    return shifts[np.argmin(err, axis=0)]


def test_head_switching_stays_in_the_bottom_lines(rig, bars):
    ref = rig.render(bars, **QUIET)["frame"]
    touched = set()
    for frame in range(6):  # the band bounces from frame to frame
        out = rig.render(bars, frame=frame, **{**QUIET, "head_switch": 1.0})["frame"]
        rows = np.nonzero(np.abs(out - ref).max(axis=(1, 2)) > 0)[0]
        assert rows.size >= 4, f"frame {frame}: head switching touched only rows {rows}"
        assert rows.min() >= H - 10, (
            f"frame {frame}: head switching reached row {rows.min()} of {H}"
        )
        touched.update(rows.tolist())
    shifts = row_shifts(rig.render(bars, frame=0, **{**QUIET, "head_switch": 1.0})["frame"], ref)
    assert np.all(shifts[: H - 10] == 0) and np.any(shifts[H - 4 :] > 0), (
        "the bottom lines hook sideways"
    )


@pytest.mark.parametrize("amount", [4.0, 12.0])
def test_aberration_moves_red_and_blue_at_the_edge_only(rig, amount):
    """A thin white line at the centre, and one near each side; red moves outward, blue inward."""
    img = np.zeros((H, W, 3))
    lines = (32, W // 2, W - 32)
    for x in lines:
        img[:, x - 1 : x + 1] = 1.0  # two px wide, centred on the texel edge x
    base = rig.render(img, **QUIET)["frame"]  # the lens is in the frame pass
    out = rig.render(img, **{**QUIET, "aberration": amount})["frame"]
    sw = base.shape[1]
    scale = sw / W  # screen px per tape px
    rows = slice(base.shape[0] // 2 - 40, base.shape[0] // 2 + 40)  # near the horizontal axis
    for x in lines:
        expect = amount * (x - W / 2) / (W / 2)  # tape px, radial: `amount` at the side edge
        window = np.arange(max(int((x - 40) * scale), 0), min(int((x + 40) * scale), sw))
        for ch, sign in ((0, 1.0), (1, 0.0), (2, -1.0)):
            moved = (
                centroid(out[rows, :, ch], window) - centroid(base[rows, :, ch], window)
            ) / scale
            assert abs(moved - sign * expect) < 0.35, (
                f"line at {x}: channel {'RGB'[ch]} moved {moved:.2f} tape px, expected {sign * expect:.2f}"
            )


def centroid(img: np.ndarray, window: np.ndarray) -> float:
    w = img[:, window].mean(axis=0)
    w = np.maximum(w - 0.02, 0.0)
    return float(np.sum(w * (window + 0.5)) / np.sum(w))


def test_tracking_zero_displaces_no_line(rig, bars):
    """With the rest of the tape as worn as default, tracking 0 leaves every line in place."""
    steady = {
        "interlace": False,
        "edge_wave": 0.0,
        "head_switch": 0.0,
        "dropouts": 0.0,
        "crt": False,
        "osd": False,
        "aberration": 0.0,
    }
    ref = rig.render(bars, **QUIET)["frame"]
    for frame in (0, 37, 1000):
        out = rig.render(bars, frame=frame, tracking=0.0, tracking_jump=0.0, **steady)["frame"]
        shifts = row_shifts(out, ref)
        assert np.all(shifts == 0), f"frame {frame}: rows {np.nonzero(shifts)[0]} displaced"
    out = rig.render(bars, frame=37, tracking=0.4, **steady)["frame"]
    assert np.count_nonzero(row_shifts(out, ref)) >= 10, "tracking 0.4 should tear lines sideways"


def test_tracking_jump_jolts_the_picture(rig, bars):
    ref = rig.render(bars, **QUIET)["frame"]
    jolted = rig.render(bars, **{**QUIET, "tracking_jump": 1.0})["frame"]
    assert np.mean(np.abs(jolted - ref)) > 0.02
    assert np.array_equal(rig.render(bars, **{**QUIET, "tracking_jump": 0.0})["frame"], ref)


NOISY = {
    "luma_noise": 0.5,
    "chroma_noise": 0.5,
    "snow": 0.5,
    "tracking": 0.3,
    "dropouts": 0.5,
    "chroma_loss": 0.5,
    "head_switch": 1.0,
    "edge_wave": 2.0,
    "interlace": False,
}


def test_same_inputs_same_bytes(rig, bars):
    a = rig.render(bars, frame=120, seed=7, **NOISY)["frame"]
    rig.render(bars, frame=999, seed=3, **NOISY)  # unrelated work in between
    b = rig.render(bars, frame=120, seed=7, **NOISY)["frame"]
    assert np.array_equal(a, b)


def test_next_frame_and_other_seed_differ(rig, bars):
    """The grain itself moves: with nothing but tape noise on, most pixels change frame to frame."""
    for noise in ("luma_noise", "chroma_noise"):
        grain = {**QUIET, noise: 0.5}
        a = rig.render(bars, frame=120, seed=7, **grain)["frame"]
        b = rig.render(bars, frame=121, seed=7, **grain)["frame"]
        c = rig.render(bars, frame=120, seed=8, **grain)["frame"]
        for other in (b, c):
            differ = np.abs(a - other).max(axis=2) > 0
            assert differ.mean() > 0.5, f"{noise} should change across most of the picture"


def test_interlaced_sequence_repeats_exactly(rig, bars):
    """Fields read the previous frame, so a sequence (not a frame) is the unit that repeats."""
    one, two = rig.fresh(), rig.fresh()
    try:
        params = {**NOISY, "interlace": True}
        for frame in range(3):
            moving = np.roll(bars, 5 * frame, axis=1)
            a = one.render(moving, frame=frame, seed=1, **params)["frame"]
            b = two.render(moving, frame=frame, seed=1, **params)["frame"]
            assert np.array_equal(a, b), f"frame {frame} differs between two identical runs"
    finally:
        one.release()
        two.release()


def test_interlace_keeps_the_other_field(rig, bars):
    rig.render(bars, frame=10, **{**QUIET, "interlace": True})
    moved = np.roll(bars, 20, axis=1)
    out = rig.render(moved, frame=11, **{**QUIET, "interlace": True})["frame"]
    fresh = rig.render(moved, frame=11, **QUIET)["frame"]
    stale = rig.render(bars, frame=11, **QUIET)["frame"]
    new_rows = np.arange(H)[(np.arange(H) ^ 11) & 1 == 0]
    old_rows = np.arange(H)[(np.arange(H) ^ 11) & 1 == 1]
    assert np.array_equal(out[new_rows], fresh[new_rows])
    assert np.array_equal(out[old_rows], stale[old_rows])
