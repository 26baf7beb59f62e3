"""The Backrooms on a real EGL context: exact repeatability, motion vectors that predict the next
frame, no near-duplicate views over a long walk, noclip through the show, level changes.

Rendered at reduced sizes where the property does not depend on resolution.
"""

import random
from dataclasses import replace

import numpy as np
import pytest

from instrument.clock import OfflineClock
from instrument.commands import COMMANDS
from instrument.control import ControlEvent
from instrument.params import REGISTRY, FrameParams
from instrument.patch import load_patch
from instrument.scene.backrooms import TRANSITION, Backrooms
from instrument.show import Show

FPS = 60


def params(**kw):
    return {**REGISTRY.defaults(), **kw}


def fp(n, values):
    return FrameParams(n, n / FPS, 1 / FPS, values)


def read(tex, comps=4, dtype=np.uint8):
    w, h = tex.size
    return np.frombuffer(tex.read(), dtype).reshape(h, w, comps)  # GL rows: bottom-up


def outputs(scene):
    return read(scene.texture), read(scene.depth, 1, np.float32), read(scene.motion, 2, np.float32)


# -- determinism -----------------------------------------------------------------------------------

def _history(n):
    """A parameter history: knobs move, the level changes, noclip is pressed."""
    v = params(level="0", level_seed=21)
    if n >= 40:
        v = {**v, "speed": 3.0, "wander": 1.0, "flicker": 1.0}
    if n >= 90:
        v = {**v, "level": "1"}
    return v


def _run(ctx):
    scene = Backrooms(ctx, (96, 72))
    frames = []
    for n in range(0, 200):
        if n == 60:
            scene.noclip()
        scene.render(fp(n, _history(n)))
        if n % 10 == 0:
            frames.append(outputs(scene))
    scene.release()
    return frames


def test_same_history_renders_the_same_bytes(ctx):
    a, b = _run(ctx), _run(ctx)
    for fa, fb in zip(a, b, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    assert len({f[0].tobytes() for f in a}) == len(a)  # and it moves


def test_chunks_built_out_of_order_render_the_same(ctx):
    scene = Backrooms(ctx, (96, 72))
    values = params(level_seed=4)
    scene.advance(fp(0, values))
    wanted = [(cx, cz) for cx in range(-2, 3) for cz in range(-2, 3)]
    random.Random(3).shuffle(wanted)
    for c in wanted:
        scene._mesh(*c)
    fresh = Backrooms(ctx, (96, 72))
    fresh.advance(fp(0, values))
    for n in range(1, 120):
        scene.render(fp(n, values))
        fresh.render(fp(n, values))
        if n % 20 == 0:
            assert all(np.array_equal(x, y) for x, y in zip(outputs(scene), outputs(fresh), strict=True))
    scene.release()
    fresh.release()


# -- motion vectors --------------------------------------------------------------------------------

def warp(img, motion):
    """Backward warp: pixel p of the prediction is img sampled at p - motion (bilinear)."""
    h, w, _ = img.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    sx = np.clip(xs - motion[..., 0], 0, w - 1)
    sy = np.clip(ys - motion[..., 1], 0, h - 1)
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


@pytest.mark.parametrize("level", ["0", "1"])
def test_motion_vectors_predict_the_next_frame(ctx, level):
    """Warping frame n by frame n+1's vectors (which point back to n) predicts frame n+1 with at
    least 50% less mean error than frame n itself, over a walk with turns. Lights held steady
    (flicker 0): a tube going out is not motion. At the working size: at a quarter of it the
    bilinear resampling of fine detail, not the vectors, dominates the error."""
    scene = Backrooms(ctx, (512, 384))
    values = params(level=level, level_seed=2, flicker=0.0, wander=1.0, speed=1.6)
    base = pred = 0.0
    turns = []
    for n in range(1200):
        if n % 40 not in (0, 1):
            scene.advance(fp(n, values))
            continue
        scene.render(fp(n, values))
        rgb = read(scene.texture)[..., :3].astype(np.float64)
        if n % 40 == 0:
            before, yaw = rgb, scene.pose.yaw
            continue
        motion = read(scene.motion, 2, np.float32).astype(np.float64)
        base += np.abs(rgb - before).mean()
        pred += np.abs(rgb - warp(before, motion)).mean()
        turns.append(abs(scene.pose.yaw - yaw))
    scene.release()
    assert max(turns) > np.radians(1.0)  # the walk turned (degrees per frame) ...
    assert sum(t > np.radians(0.3) for t in turns) >= 8  # ... often
    reduction = 1.0 - pred / base
    assert reduction >= 0.5, f"warping cut the error by only {100 * reduction:.0f}%"


def test_a_cut_has_no_motion_and_depth_is_in_metres(ctx):
    scene = Backrooms(ctx, (64, 48))
    scene.render(fp(0, params()))
    assert scene.cut  # the first frame continues nothing: zero motion, to float rounding
    assert np.abs(read(scene.motion, 2, np.float32)).max() < 1e-3
    scene.render(fp(1, params()))
    assert not scene.cut
    depth = read(scene.depth, 1, np.float32)
    assert depth.min() > 0.05 and depth.max() <= scene.world.spec.far + 1e-3
    scene.release()


# -- non-repetition --------------------------------------------------------------------------------

def fingerprint(rgb):
    """A 32x24 luma thumbnail, zero-mean, unit-norm: the layout and shading of a view, blind to
    noise, gain and offset. Two views are near-duplicates when their fingerprints correlate at
    NEAR or above."""
    g = rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]
    h, w = g.shape
    t = g.reshape(24, h // 24, 32, w // 32).mean((1, 3)).ravel()
    t -= t.mean()
    return t / (np.linalg.norm(t) + 1e-9)


NEAR = 0.95


@pytest.mark.parametrize("level", ["0", "1"])
def test_ten_minute_walk_never_shows_the_same_view_twice(ctx, level):
    scene = Backrooms(ctx, (128, 96))
    values = params(level=level, level_seed=1)
    prints, planted = [], []
    rng = np.random.default_rng(0)
    for n in range(600 * FPS):
        if n % FPS and n % 6000 != 1:
            scene.advance(fp(n, values))
            continue
        scene.render(fp(n, values))
        rgb = read(scene.texture)
        if n % FPS == 0:
            prints.append(fingerprint(rgb))
            last = rgb
        else:  # the measure must catch repeats: the same place a frame later, or a degraded copy
            copy = np.clip(np.roll(last, 1, axis=1) * 0.9 + 12 + rng.normal(0, 12, last.shape), 0, 255)
            planted += [fingerprint(rgb) @ prints[-1], fingerprint(copy) @ prints[-1]]
    scene.release()
    f = np.array(prints)
    corr = f @ f.T
    assert len(f) == 600
    assert corr.diagonal().min() > 0.999  # a frame repeated exactly: caught
    assert min(planted) >= NEAR            # a frame repeated nearly: caught
    pairs = corr[np.triu_indices(len(f), 1)]
    assert pairs.max() < NEAR, f"near-duplicate views: correlation {pairs.max():.3f}"


# -- the show: noclip, level changes ---------------------------------------------------------------

def test_noclip_command_through_the_show(ctx):
    assert "noclip" in COMMANDS  # so /noclip/cmd/noclip exists over OSC
    show = Show(ctx, replace(load_patch("level0"), model="none"), (64, 48), clock=OfflineClock(FPS))
    for _ in range(30):
        show.step()
    show.queue.put(ControlEvent("osc", "cmd/noclip", ()))
    show.step()
    assert show.scene.walker.phasing
    show.close()


def test_level_change_goes_dark_then_arrives(ctx):
    scene = Backrooms(ctx, (64, 48))
    v0, v1 = params(level="0"), params(level="1")
    for n in range(30):
        scene.render(fp(n, v0))
    lit = read(scene.texture)[..., :3].mean()
    n, dark, cut = 30, [], False
    while n < 30 + int(TRANSITION * FPS) + 5:
        scene.render(fp(n, v1))
        dark.append(read(scene.texture)[..., :3].mean())
        cut |= scene.cut
        n += 1
    assert min(dark) < 0.1 * lit and cut
    assert scene.world.spec.index == 1 and scene.transition < 0
    rgb = read(scene.texture)[..., :3].astype(float)
    assert rgb.mean() > 0.3 * lit
    assert np.abs(rgb[..., 0] - rgb[..., 2]).mean() < 25  # concrete grey, not Lobby yellow


def test_a_broken_level_shader_names_its_file_and_line(ctx, tmp_path, monkeypatch):
    import shutil

    import instrument.scene.backrooms as backrooms
    from instrument.render.gl import ShaderError, shader_path

    for name in ("world.vert", "common.glsl", "level0.frag", "level1.frag"):
        shutil.copy(shader_path(f"scene/{name}"), tmp_path / name)
    lines = (tmp_path / "level1.frag").read_text().splitlines()
    lines[11] += " oops;"
    (tmp_path / "level1.frag").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(backrooms, "shader_path", lambda name: tmp_path / name.split("/")[-1])
    with pytest.raises(ShaderError) as err:
        Backrooms(ctx, (32, 24))  # at construction (patch load), not at a level change
    assert err.value.path == tmp_path / "level1.frag" and err.value.line == 12


def test_the_level_shaders_fit_an_nvidia_gpus_uniform_registers(ctx):
    """NVIDIA's GL gives every element of a uniform array a vec4 register of its own and has 1024
    for a program: the lights as a float[1024] made the scene fail to compile on an H200 (llvmpipe
    never minded). Counted as NVIDIA counts, both levels stay well inside."""
    import moderngl

    from instrument.scene.layout import LEVELS

    scene = Backrooms(ctx, (64, 48))
    try:
        for spec in LEVELS:
            for material, prog in scene.programs[spec.index].items():
                members = [prog[name] for name in prog]
                registers = sum(m.array_length * -(-m.dimension // 4) for m in members
                                if isinstance(m, moderngl.Uniform))
                assert registers < 512, (spec.index, material, registers)
    finally:
        scene.release()
