"""A dream smaller than the scene: the scene shrunk for the generator without aliasing, its motion in
the dream's pixels, and the compositor giving back the scene's fine band over the dream (real GL)."""

from __future__ import annotations

import moderngl
import numpy as np
import pytest

from instrument.params import REGISTRY, FrameParams
from instrument.render.compositor import Compositor
from instrument.render.shrink import Shrink, span
from instrument.report import Reporter

SCENE, DREAM = (640, 480), (256, 192)


def texture(ctx, rgb: np.ndarray) -> moderngl.Texture:
    """Top-down RGB uint8 → an RGBA8 texture (GL rows bottom-up)."""
    h, w, _ = rgb.shape
    rgba = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], 2)
    tex = ctx.texture((w, h), 4, np.ascontiguousarray(rgba[::-1]).tobytes())
    tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    tex.repeat_x = tex.repeat_y = False   # as the generator's texture
    return tex


def read(tex: moderngl.Texture, components: int = 4, dtype=np.uint8) -> np.ndarray:
    w, h = tex.size
    return np.frombuffer(tex.read(), dtype).reshape(h, w, components)[::-1]


@pytest.fixture
def shrink(ctx):
    s = Shrink(ctx, SCENE, DREAM)
    yield s
    s.release()


def test_fine_stripes_shrink_to_their_mean_not_to_aliases(ctx, shrink):
    x = np.arange(SCENE[0])
    stripes = np.where(x % 2 == 0, 200, 40).astype(np.uint8)   # 1-px stripes: far past 256 px
    rgb = np.broadcast_to(stripes[None, :, None], (*SCENE[::-1], 3)).copy()
    tex = texture(ctx, rgb)
    image, _ = shrink(tex, None)
    out = read(image)[..., 0].astype(float)
    assert image.size == DREAM
    # point sampling gives bands of 40 and 200 (std 80); a 2.5 px box leaves sinc(1.25 pi) of them
    assert abs(out.mean() - 120) < 3 and out.std() < 0.25 * 80
    tex.release()


def test_a_gradient_keeps_its_place(ctx, shrink):
    x = np.arange(SCENE[0])
    ramp = np.linspace(0, 255, SCENE[0]).astype(np.uint8)
    tex = texture(ctx, np.broadcast_to(ramp[None, :, None], (*SCENE[::-1], 3)).copy())
    out = read(shrink(tex, None)[0])[0, :, 0].astype(float)
    r = SCENE[0] / DREAM[0]                                    # 2.5 px a texel: area means
    edges = np.arange(DREAM[0] + 1) * r
    cover = np.clip(np.minimum(edges[1:, None], x[None] + 1) - np.maximum(edges[:-1, None], x[None]), 0, None)
    want = cover @ ramp.astype(float) / r
    assert np.abs(out - want).max() <= 2.5
    tex.release()


def test_a_field_shrinks_by_its_own_ratio_on_each_axis(ctx):
    """The default show's 640x240 field to 256x192: 1.25 lines a texel down, 2.5 across; the loops'
    fixed bounds are the most texels a footprint spans (3 across, 2 down)."""
    field = (640, 240)
    assert (span(DREAM[0], field[0] / DREAM[0]), span(DREAM[1], field[1] / DREAM[1])) == (3, 2)
    y = np.arange(field[1])
    ramp = np.linspace(0, 255, field[1]).astype(np.uint8)
    tex = texture(ctx, np.broadcast_to(ramp[:, None, None], (*field[::-1], 3)).copy())
    s = Shrink(ctx, field, DREAM)
    out = read(s(tex, None)[0])[:, 5, 0].astype(float)
    r = field[1] / DREAM[1]
    edges = np.arange(DREAM[1] + 1) * r
    cover = np.clip(np.minimum(edges[1:, None], y[None] + 1) - np.maximum(edges[:-1, None], y[None]), 0, None)
    assert np.abs(out - cover @ ramp.astype(float) / r).max() <= 1.0
    s.release()
    tex.release()


def test_motion_is_measured_in_the_dreams_pixels(ctx, shrink):
    flow = np.tile(np.float32([5.0, -2.5]), (SCENE[1], SCENE[0], 1))
    motion = ctx.texture(SCENE, 2, flow.tobytes(), dtype="f4")
    image = ctx.texture(SCENE, 4)
    _, small = shrink(image, motion)
    m = read(small, 2, np.float32)
    assert small.size == DREAM and np.allclose(m, [2.0, -1.0], atol=1e-5)
    for t in (motion, image):
        t.release()


@pytest.mark.parametrize("detail", [1.0, 0.0])
def test_the_scenes_fine_band_rides_on_the_dream(ctx, shrink, detail):
    """A dream that is the shrunk scene gives the scene back whole at detail 1, and the dream alone
    (the scene's coarse picture) at 0."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (*SCENE[::-1], 3), dtype=np.uint8)
    scene = texture(ctx, rgb)
    low, _ = shrink(scene, None)
    dream = texture(ctx, read(low)[..., :3].copy())
    comp = Compositor(ctx, "vhs", SCENE, SCENE, Reporter(), watch=False)
    fp = FrameParams(0, 0.0, 1 / 30, {**REGISTRY.defaults(), "detail": detail, "mix": 1.0})
    comp.render(scene, dream, fp, low=low)
    mixed = read(comp.mixed)[..., :3].astype(int)
    if detail == 1.0:
        assert np.abs(mixed - rgb).max() <= 2
    else:
        assert np.abs(mixed - rgb).mean() > 20      # the dream alone has none of the noise's detail
    comp.release()
    for t in (scene, dream):
        t.release()


def test_tape480_renders_exactly(tmp_path):
    """Two renders of tape480 are the same frames (the shrink, the dream and the detail band are
    functions of the frame)."""
    from instrument.bench.lag import rgb_frames, run_noclip

    outs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.mkv"
        run = run_noclip("render", "--patch", "tape480", "-o", str(out), "--codec", "ffv1", "--fps", "10",
                         "--seconds", "0.5", "--size", "320x240")
        assert run.returncode == 0, run.stderr[-2000:]
        outs.append(rgb_frames(out, 10.0))
    assert sorted(outs[0]) == sorted(outs[1]) == list(range(5))
    assert all(np.array_equal(outs[0][i], outs[1][i]) for i in outs[0])


def test_a_performance_file_keeps_the_dream_size(tmp_path):
    from instrument.patch import load_patch
    from instrument.record.performance import PerformanceWriter, load_performance

    patch = load_patch("tape480")
    writer = PerformanceWriter(tmp_path / "p.jsonl", patch, REGISTRY.defaults(), 30.0, (640, 480))
    writer.close(1)
    got = load_performance(tmp_path / "p.jsonl").patch
    assert got.size == (640, 480) and got.dream_size == (256, 192) and got.dream == patch.dream
