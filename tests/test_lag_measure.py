"""The lag measurement of `noclip bench --only lag,late`: a picture k frames behind its scene reads as
k frames late, the scene itself is left out, and flicker is measured against the scene's own."""

import numpy as np

from instrument.bench.lag import block_ssim, clean_tape, compare


def scene_frames(n=30, h=48, w=64):
    """A pan over a random texture: every frame differs from its neighbours."""
    rng = np.random.default_rng(3)
    wide = rng.random((h, w + 3 * n)).astype(np.float32) * 255
    return {i: wide[:, 3 * i:3 * i + w].copy() for i in range(n)}


def test_a_picture_two_frames_behind_reads_as_two_frames_late():
    scene = scene_frames()
    late = {i: scene[max(i - 2, 0)] + 1.0 for i in scene}  # +1: not the scene itself
    r = compare(late, scene)
    assert r["mean_lag"] > 1.8 and r["aligned"] < 0.1
    assert r["lags"]["2"] >= 26


def test_the_scene_itself_is_left_out_and_a_kept_up_picture_is_aligned():
    scene = scene_frames()
    live = {i: (scene[i] if i < 10 else scene[i] * 0.9 + 10) for i in scene}
    r = compare(live, scene)
    assert r["dreamed_frames"] == 20 and r["mean_lag"] == 0 and r["aligned"] == 1.0
    assert 0.8 < r["flicker_ratio"] < 1.0  # 0.9x contrast: 0.9x the frame-to-frame change


def test_block_ssim_and_the_clean_tape():
    a = scene_frames()[0]
    assert block_ssim(a, a) == 1.0 and block_ssim(a, 255 - a) < 0
    sets = dict(s.split("=", 1) for s in clean_tape())
    assert sets["snow"] == "0.0" and sets["osd"] == "false" and sets["crt"] == "false"
    assert sets["fit"] == "stretch" and "recording" not in sets
