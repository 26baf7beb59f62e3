"""Generator noise: pure, Gaussian however long it is warped, and it really moves with the scene."""

import numpy as np
import torch

from instrument.generate.motion import compose, to_grid
from instrument.generate.noise import WarpedNoise, gaussian, slerp
from instrument.generate.warp import warp

torch.set_num_threads(1)  # tiny tensors: extra threads only fight over a busy machine's cores

H, W = 48, 64
SHAPE = (4, 4, H, W)


def uniform(dx: float, dy: float = 0.0) -> np.ndarray:
    m = np.zeros((H, W, 2), np.float32)
    m[..., 0], m[..., 1] = dx, dy
    return m


def camera(n: int) -> np.ndarray:
    """A restless camera: turning, zooming in and out, panning, with a wobble across the image."""
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    cx, cy = W / 2, H / 2
    rot, zoom = 0.03 * np.sin(n / 17), 0.04 * np.cos(n / 11)
    mx = -(ys - cy) * rot + (xs - cx) * zoom + 1.3 * np.sin(n / 7) + 0.3 * np.sin(ys / 5 + n)
    my = (xs - cx) * rot + (ys - cy) * zoom + 0.6 * np.cos(n / 9)
    return np.stack([mx, my], -1).astype(np.float32)


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def test_gaussian_is_a_pure_function_of_seed_frame_and_purpose():
    a = gaussian(SHAPE, 7, 12, "noise")
    torch.randn(100)  # nothing global is consumed or consulted
    assert torch.equal(a, gaussian(SHAPE, 7, 12, "noise"))
    others = gaussian(SHAPE, 8, 12, "noise"), gaussian(SHAPE, 7, 13, "noise"), gaussian(SHAPE, 7, 12, "x")
    for other in others:
        assert abs(corr(a, other)) < 0.03
    assert abs(float(a.mean())) < 0.03 and abs(float(a.var()) - 1) < 0.05


def test_slerp_ends_exactly_on_its_seeds_and_keeps_unit_variance_between():
    a, b = gaussian(SHAPE, 1, 0, "noise"), gaussian(SHAPE, 2, 0, "noise")
    assert torch.equal(slerp(a, b, 0.0), a) and torch.equal(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert abs(float(mid.var()) - 1) < 0.05  # a lerp would give 0.5
    assert 0.6 < corr(mid, a) < 0.8 and 0.6 < corr(mid, b) < 0.8
    assert corr(slerp(a, b, 0.1), a) > corr(slerp(a, b, 0.3), a) > corr(mid, a)


def test_slow_motion_adds_up_to_whole_cells():
    noise = WarpedNoise()
    start = noise.advance(0, (5,), SHAPE, None)[5]
    for n in range(1, 9):  # a quarter cell per frame: two cells after eight frames
        field = noise.advance(n, (5,), SHAPE, uniform(0.25, -0.125))[5]
    assert torch.equal(field[..., 1:H - 1, 2:], start[..., 2:H, :-2])  # moved right 2, up 1: whole cells
    assert not torch.equal(field[..., :, :2], start[..., :, :2])  # the revealed edge is fresh noise


def test_warped_noise_stays_standard_normal_and_uncorrelated_after_long_camera_motion():
    noise = WarpedNoise()
    noise.advance(0, (3, 4), SHAPE, None)
    carried = []
    for n in range(1, 301):
        fields = noise.advance(n, (3, 4), SHAPE, camera(n))
        carried.append(noise.carried)
    f = fields[3]
    assert np.mean(carried) > 0.75  # the noise travelled with the motion, it was not just redrawn
    x = f.flatten().double()
    assert abs(float(x.mean())) < 0.02 and abs(float(x.var()) - 1) < 0.03
    q = torch.quantile(x, torch.tensor([0.025, 0.16, 0.5, 0.84, 0.975], dtype=torch.float64))
    assert torch.allclose(q, torch.tensor([-1.96, -0.994, 0.0, 0.994, 1.96], dtype=torch.float64), atol=0.04)
    for a, b in ((f[..., 1:], f[..., :-1]), (f[..., 1:, :], f[..., :-1, :]), (f[..., 1:, 1:], f[..., :-1, :-1]),
                 (f[:, 1:], f[:, :-1]), (f[1:], f[:-1]), (fields[3], fields[4])):
        assert abs(corr(a, b)) < 0.02  # neighbours, channels, steps and seeds all independent
    assert torch.unique(f[0, 0]).numel() == H * W  # no cell was copied twice


def test_expansion_gives_fresh_noise_instead_of_copies():
    noise = WarpedNoise()
    start = noise.advance(0, (1,), SHAPE, None)[1]
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float32)
    zoom = np.stack([(xs - W / 2) * 0.3, (ys - H / 2) * 0.3], -1).astype(np.float32)
    field = noise.advance(1, (1,), SHAPE, zoom)[1]
    kept = np.isin(field[0, 0].numpy(), start[0, 0].numpy())
    assert 0.4 < kept.mean() < 0.7  # about 1/1.3² of the cells keep their noise, once each
    assert torch.unique(field[0, 0]).numel() == H * W
    assert abs(float(field.var()) - 1) < 0.05


def test_a_cut_or_a_new_seed_starts_from_fresh_noise():
    noise = WarpedNoise()
    noise.advance(0, (1, 2), SHAPE, None)
    moved = noise.advance(1, (1, 2), SHAPE, uniform(3.0))
    assert not torch.equal(moved[1], gaussian(SHAPE, 1, 1, "noise"))
    cut = noise.advance(2, (1, 2), SHAPE, uniform(3.0), cut=True)
    assert torch.equal(cut[1], gaussian(SHAPE, 1, 2, "noise"))
    new = noise.advance(3, (2, 3), SHAPE, None)
    assert torch.equal(new[2], cut[2]) and torch.equal(new[3], gaussian(SHAPE, 3, 3, "noise"))


def test_motion_composes_scales_to_the_latent_grid_and_warps_exactly():
    assert np.allclose(compose(uniform(1.5, 2.0), uniform(2.0, -1.0)), uniform(3.5, 1.0))
    pixels = np.zeros((96, 128, 2), np.float32)
    pixels[..., 0], pixels[..., 1] = 4.0, -2.0
    assert np.allclose(to_grid(pixels, (64, 48)), uniform(2.0, -1.0))
    assert np.allclose(to_grid(pixels, (32, 12))[..., :], np.array([1.0, -0.25]))
    x = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    moved, valid = warp(x, uniform(2.0, 1.0))
    assert torch.allclose(moved[..., 1:, 2:], x[..., :-1, :-2], atol=1e-2)
    assert valid[..., :, :2].sum() == 0 and valid[..., :1, :].sum() == 0 and valid[..., 1:, 2:].all()
