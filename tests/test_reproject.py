"""Reprojection: a late dream carried along the scene's motion to the frame shown (render/reproject.py),
on a real EGL context: synthetic scenes whose truth is known, and a real Backrooms walk."""

from dataclasses import replace

import numpy as np
import pytest

from instrument.clock import OfflineClock
from instrument.generate.worker import ThreadedGenerator
from instrument.params import REGISTRY, FrameParams
from instrument.patch import load_patch
from instrument.render.compositor import Compositor, core_program
from instrument.render.gl import draw, quad_buffer, read_rgb
from instrument.render.hud import dream_line
from instrument.render.reproject import CARRY, Ring, SceneMotion, tiling
from instrument.report import Reporter
from instrument.show import Show

W, H = 64, 48


@pytest.fixture(scope="module")
def progs(ctx):
    quad = quad_buffer(ctx)
    pack, even, odd = (core_program(ctx, quad, k) for k in ("pack", "reproject", "reproject_odd"))
    yield pack, (even, odd)
    for prog in (pack, even, odd):
        prog.release()
    quad.release()


def texture(ctx, rgb: np.ndarray):
    """An RGB uint8 image in GL row order (row 0 at the bottom), as the shaders see it."""
    return ctx.texture((rgb.shape[1], rgb.shape[0]), 3, np.ascontiguousarray(rgb).tobytes())


def field(ctx, values: np.ndarray):
    comps = 1 if values.ndim == 2 else values.shape[2]
    return ctx.texture((values.shape[1], values.shape[0]), comps, values.astype("f4").tobytes(), dtype="f4")


def pixels(tex) -> np.ndarray:
    w, h = tex.size
    return np.frombuffer(tex.read(), np.uint8).reshape(h, w, -1)[..., :3].astype(int)


# random 8x8 blocks: every pixel tells where it came from, yet the fill's softening keeps them
STRIPE = np.repeat(np.repeat((np.random.default_rng(1).random((H // 8, (W + 120) // 8, 3)) * 255)
                             .astype(np.uint8), 8, 0), 8, 1)


def panned(n: int, v: int = 3) -> np.ndarray:
    """Frame n of a pan: the picture slides right by v pixels a frame (pixel x shows STRIPE[x - n v])."""
    return STRIPE[:, 60 - n * v:60 - n * v + W]


def filled(got: np.ndarray, scene: np.ndarray, wrong=None) -> bool:
    """The scene there (softened: within 25 levels on average), not what a carry that ignored the
    gap would show (`wrong`; default the dream's inverted scene)."""
    wrong = 255 - scene.astype(int) if wrong is None else np.asarray(wrong)
    return bool(np.abs(got - scene.astype(int)).mean() < 25 and np.abs(got - wrong).mean() > 60)


@pytest.mark.parametrize("most", [None, 4 * W], ids=["one row", "tiled in rows"])
def test_a_stale_dream_carried_lines_up_with_the_current_frame(ctx, progs, most):
    pack, carry = progs
    ring = Ring(ctx, (W, H), most=most)
    assert ring.cols == (-(-(CARRY + 1) // 2) if most is None else 4)  # an atlas holds half the frames
    motion = field(ctx, np.tile(np.float32([3, 0]), (H, W, 1)))
    depth = field(ctx, np.full((H, W), 2.0))
    for n in range(5):
        ring.record(pack, n, SceneMotion(motion, depth, cut=n == 0))
    dream = texture(ctx, 255 - panned(1))  # the dream of frame 1 (inverted: tells dream from scene)
    scene = texture(ctx, panned(4))
    out, info = ring.carry(carry, dream, 1, 4, scene)
    assert (info.age, info.carried, info.cut) == (3, 3, False)
    got = pixels(out)
    # where frame 4 shows what frame 1 showed: the dream, moved 9 px, exactly (whole-pixel motion)
    assert np.array_equal(got[:, 10:], 255 - panned(4)[:, 10:].astype(int))
    # the 9 px the pan revealed were never dreamed: the current scene fills them (softened a little)
    assert filled(got[:, 1:8], panned(4)[:, 1:8])
    # shown as it was (no carry), the dream is 9 px behind: far from the current frame
    assert np.abs(pixels(dream)[:, 10:] - (255 - panned(4)[:, 10:].astype(int))).mean() > 40
    ring.release()
    for t in (motion, depth, dream, scene):
        t.release()


def test_a_ring_at_a_big_grid_fits_the_texture_limit(ctx):
    """13 slots of 1280x720 side by side are 16640 pixels wide, past llvmpipe's 16384: the ring
    tiles them in rows (this once failed to build, and the show with it)."""
    assert tiling((1280, 720), CARRY + 1, 16384) == (12, 2, CARRY + 1)
    assert tiling((1280, 720), CARRY + 1, 2048) == (1, 2, 2)  # a tiny limit: a shorter carry
    ring = Ring(ctx, (1280, 720))
    assert ring.reach == CARRY
    assert all(max(atlas.size) <= ctx.info["GL_MAX_TEXTURE_SIZE"] for atlas in ring.atlases)
    ring.release()


def test_depth_tells_what_the_dream_never_saw(ctx, progs):
    """A near box slides right over a still far wall: the wall it uncovers was hidden in the dream's
    frame, so the carry must not smear the box there but show the scene."""
    pack, carry = progs
    ring = Ring(ctx, (W, H))
    wall = np.repeat(np.repeat((40 + 3 * np.arange(W)).astype(np.uint8)[None, :, None], H, 0), 3, 2)

    def frame(n):
        x0 = 10 + 4 * n
        img, d, m = wall.copy(), np.full((H, W), 9.0), np.zeros((H, W, 2))
        img[10:30, x0:x0 + 16] = (250, 20, 20)
        d[10:30, x0:x0 + 16] = 1.5
        m[10:30, x0:x0 + 16] = (4, 0)
        return img, d, m

    textures = []
    for n in range(4):
        _, d, m = frame(n)
        textures += [field(ctx, m), field(ctx, d)]
        ring.record(pack, n, SceneMotion(textures[-2], textures[-1], cut=n == 0))
    dream = texture(ctx, 255 - frame(1)[0])
    now = frame(3)[0]
    scene = texture(ctx, now)
    got = pixels(ring.carry(carry, dream, 1, 3, scene)[0])
    box = slice(10, 30), slice(10 + 12, 10 + 12 + 16)       # the box now: the dream, moved with it
    assert np.abs(got[box] - (255 - now[box].astype(int))).max() <= 1
    uncovered = slice(10, 30), slice(14, 22)                  # the wall the box left between frames 1 and 3
    assert filled(got[uncovered], now[uncovered], wrong=[255 - 250, 255 - 20, 255 - 20])  # not the box
    still = slice(32, 48), slice(0, W)                        # the wall that stood still: the dream as it was
    assert np.array_equal(got[still], 255 - now[still].astype(int))
    ring.release()
    for t in (*textures, dream, scene):
        t.release()


def test_a_current_dream_passes_untouched_and_a_cut_is_not_carried(ctx, progs):
    pack, carry = progs
    ring = Ring(ctx, (W, H))
    motion = field(ctx, np.tile(np.float32([3, 0]), (H, W, 1)))
    dream, scene = texture(ctx, panned(0)), texture(ctx, panned(5))
    for n in range(6):
        ring.record(pack, n, SceneMotion(motion, None, cut=n in (0, 3)))
    same, info = ring.carry(carry, dream, 5, 5, scene)
    assert same is dream and info.age == 0
    dropped, info = ring.carry(carry, dream, 2, 5, scene)   # the cut at frame 3 lies between
    assert dropped is None and info.cut
    carried, info = ring.carry(carry, dream, 3, 5, scene)   # a dream of the cut frame itself moves on
    assert carried is not None and carried is not dream and info.carried == 2
    # a frame that does not follow the last one recorded is a cut too (a stage failed, a new patch)
    ring.record(pack, 9, SceneMotion(motion))
    assert ring.carry(carry, dream, 8, 9, scene)[0] is None
    ring.release()
    for t in (motion, dream, scene):
        t.release()


def test_a_dream_older_than_the_ring_is_shown_as_it_is(ctx, progs):
    pack, carry = progs
    ring = Ring(ctx, (W, H))
    motion = field(ctx, np.tile(np.float32([1, 0]), (H, W, 1)))
    for n in range(20):
        ring.record(pack, n, SceneMotion(motion, None, cut=n == 0))
    dream, scene = texture(ctx, panned(0, 1)), texture(ctx, panned(19, 1))
    out, info = ring.carry(carry, dream, 19 - CARRY - 1, 19, scene)
    assert out is dream and (info.age, info.carried) == (CARRY + 1, 0)
    out, info = ring.carry(carry, dream, 19 - CARRY, 19, scene)
    assert out is not dream and (info.age, info.carried) == (CARRY, CARRY)
    ring.release()
    for t in (motion, dream, scene):
        t.release()


def walk(ctx, size, frames, **values):
    from instrument.scene.backrooms import Backrooms

    scene = Backrooms(ctx, size)
    v = {**REGISTRY.defaults(), **values}
    for n in range(frames):
        fp = FrameParams(n, n / 20.0, 1 / 20.0, v)
        tex = scene.render(fp)
        yield n, scene, tex
    scene.release()


def test_on_a_backrooms_walk_a_late_dream_keeps_up_with_the_camera(ctx, progs):
    """The 'dream' is the scene itself, k frames late (a generator that only lags): carried, it
    matches the current frame far better than shown as it is, with the fill only where the walk
    revealed something."""
    pack, carry = progs
    size, k = (160, 120), 3
    ring = Ring(ctx, size)
    past: list = []
    errors = {"stale": [], "carried": []}
    for n, scene, tex in walk(ctx, size, 40, speed=2.0, wander=1.0):
        ring.record(pack, n, SceneMotion(scene.motion, scene.depth, scene.cut))
        now = pixels(tex)
        past.append(texture(ctx, np.frombuffer(tex.read(), np.uint8).reshape(size[1], size[0], 4)[..., :3]))
        if n < 10:
            continue
        stale = past[n - k]
        out, info = ring.carry(carry, stale, n - k, n, tex)
        assert info.carried == k
        errors["stale"].append(np.abs(pixels(stale) - now).mean())
        errors["carried"].append(np.abs(pixels(out) - now).mean())
    stale, carried = np.mean(errors["stale"]), np.mean(errors["carried"])
    assert stale > 3.0, "the walk must move enough for the test to mean something"
    print("walk errors", stale, carried)
    assert carried < 0.35 * stale, (carried, stale)
    ring.release()
    for t in past:
        t.release()


def lagging(by: int):
    """An engine that answers with frame n's image, but says it is a dream of frame n - by (as
    Stream Batch does); its picture is the scene, brightened so it tells from the scene."""
    stats = {"base_frame": -1}

    def engine(base, fp):
        stats["base_frame"] = max(fp.frame - by, 0)
        return np.minimum(base.image.astype(int) + 40, 255).astype(np.uint8)

    engine.stats = stats
    return engine


def offline(ctx, engine, frames=12, **values):
    patch = replace(load_patch("default"), model="none")  # the engine below stands in for the model
    show = Show(ctx, patch, (160, 120), clock=OfflineClock(20), overrides={"tracking": 0.0, **values})
    show.generator.release()
    show.generator = ThreadedGenerator("test", engine, ctx, patch.size, show.reporter, live=False)
    out = []
    for _ in range(frames):
        show.step()
        out.append(read_rgb(show.compositor.fbo).copy())
    stats = list(show.stats.dream)
    offline.hud = dream_line(show.stats.dream)
    show.close()
    return out, stats


def test_offline_a_current_dream_renders_the_same_with_or_without_the_pass(ctx):
    on, ages = offline(ctx, lagging(0), reproject=True)
    off, _ = offline(ctx, lagging(0), reproject=False)
    assert all(np.array_equal(a, b) for a, b in zip(on, off, strict=True))
    assert {row[0] for row in ages} == {0}


def test_offline_a_lagging_generator_is_carried_the_same_way_every_time(ctx):
    off, _ = offline(ctx, lagging(1), reproject=False)
    a, _ = offline(ctx, lagging(1), reproject=True)
    b, ages = offline(ctx, lagging(1), reproject=True)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, off, strict=True))
    # the age and its parts, as the HUD and the bench read them: (age, carried, batch lag, hop, cut)
    assert ages[-1][:4] == (1, 1, 1, 0)
    assert offline.hud == "dream: age 1 carried 1  lag: batch 1 hop 0"


def test_the_worker_says_which_frame_a_dream_is_of(ctx):
    gen = ThreadedGenerator("test", lagging(2), ctx, (32, 24), Reporter(), live=False)
    scene = ctx.texture((32, 24), 4)
    for n in range(4):
        gen.submit(scene, FrameParams(n, n / 20, 1 / 20, REGISTRY.defaults()))
        assert gen.latest() is not None
        assert gen.base_frame == max(n - 2, 0) and gen.dream == (n, max(n - 2, 0))
    gen.release()
    scene.release()


def test_the_stream_engine_reports_stream_batch_lag_as_its_base_frame(ctx):
    torch = pytest.importorskip("torch")
    from tiny_backend import tiny_backend

    from instrument.generate.stream import StreamEngine
    from instrument.generate.worker import BaseFrame

    torch.set_num_threads(1)
    engine = StreamEngine(tiny_backend((64, 48)))
    image = np.zeros((48, 64, 3), np.uint8)
    values = {**REGISTRY.defaults(), "similarity_skip": 0.0, "steps": 2, "stream_batch": True}
    bases = []
    for n in range(5):
        image[:] = n * 20
        engine(BaseFrame(image.copy(), None, n == 0), FrameParams(n, n / 20, 1 / 20, values))
        bases.append(engine.stats["base_frame"])
    assert bases == [0, 0, 1, 2, 3]  # the first is the scene while the pipe fills, then one frame late


def test_a_current_dream_through_the_compositor_is_todays_picture(ctx):
    """Two compositors (the chain keeps a frame of its own: fields), one given no motion."""
    plain, carrying = (Compositor(ctx, "vhs", (W, H), (W, H), Reporter(), watch=False) for _ in range(2))
    dream, scene = texture(ctx, panned(0)), texture(ctx, panned(2))
    motion = field(ctx, np.tile(np.float32([3, 0]), (H, W, 1)))
    for n in range(3):
        fp = FrameParams(n, n / 20, 1 / 20, {**REGISTRY.defaults(), "tracking": 0.0})
        a = read_rgb(plain.render(scene, dream, fp)).copy()
        b = read_rgb(carrying.render(scene, dream, fp, SceneMotion(motion, None, cut=n == 0), base=n)).copy()
        assert np.array_equal(a, b)
    assert carrying.carry.age == 0
    for comp in (plain, carrying):
        comp.release()
    for t in (dream, scene, motion):
        t.release()


def test_a_dream_smaller_than_the_scene_is_carried_on_its_own_grid(ctx, progs):
    """The scene at twice the dream's size: its motion (6 scene px a frame) drives the ring at the
    dream's grid (3 px), and the compositor picks that grid from the dream's texture."""
    from instrument.render.reproject import ring_grid

    assert ring_grid((2 * W, 2 * H), (W, H)) == (W, H) and ring_grid((W, H), (2 * W, H)) == (W, H)
    pack, carry = progs
    ring = Ring(ctx, (W, H))
    motion = field(ctx, np.tile(np.float32([6, 0]), (2 * H, 2 * W, 1)))
    depth = field(ctx, np.full((2 * H, 2 * W), 2.0))
    for n in range(4):
        ring.record(pack, n, SceneMotion(motion, depth, cut=n == 0))
    dream = texture(ctx, 255 - panned(1))
    scene = texture(ctx, np.repeat(np.repeat(panned(3), 2, 0), 2, 1))
    got = pixels(ring.carry(carry, dream, 1, 3, scene)[0])
    assert np.array_equal(got[:, 7:], 255 - panned(3)[:, 7:].astype(int))
    assert filled(got[:, 1:5], panned(3)[:, 1:5])
    ring.release()
    for t in (motion, depth, dream, scene):
        t.release()


@pytest.mark.parametrize("age", [2, 3])
def test_on_one_grid_the_mix_carries_the_dream_as_it_mixes(ctx, progs, age):
    """Where scene, dream and ring share one grid (the default show) the mix carries the dream itself
    (core/mix.frag with CARRY): one pass, no carried texture written and read back. Where the dream
    saw, the same picture as the carrying pass then the mix; where it never saw, the scene's own
    texel (the scene is on the dream's grid: no sharper than the dream, nothing to soften)."""
    pack, carry = progs
    quad = quad_buffer(ctx)
    variant = ("mixer_carry", "mixer_carry_odd")[age % 2]
    mixer, carrying = (core_program(ctx, quad, k) for k in ("mixer_grid", variant))
    ring = Ring(ctx, (W, H))
    motion = field(ctx, np.tile(np.float32([3, 0]), (H, W, 1)))
    depth = field(ctx, np.full((H, W), 2.0))
    for n in range(5):
        ring.record(pack, n, SceneMotion(motion, depth, cut=n == 0))
    dream, scene = texture(ctx, 255 - panned(4 - age)), texture(ctx, panned(4))
    out = ctx.texture((W, H), 4)
    fbo = ctx.framebuffer([out])

    def mixed(prog, generated):
        prog.bind_textures({"scene": scene, "generated": generated, "low": scene})
        prog.set("mix", 1.0)
        prog.set("detail", 1.0)
        draw(prog, fbo)
        return pixels(out)

    two_passes = mixed(mixer, ring.carry(carry, dream, 4 - age, 4, scene)[0])
    assert ring.route(4 - age, 4)[0] == "carry"
    ring.bind(carrying, dream, 4 - age, 4)
    one_pass = mixed(carrying, dream)
    seen = slice(3 * age + 1, W)
    assert np.array_equal(one_pass[:, seen], two_passes[:, seen])
    assert np.array_equal(one_pass[:, seen], 255 - panned(4)[:, seen].astype(int))
    never = slice(0, 3 * age - 1)
    assert np.array_equal(one_pass[:, never], panned(4)[:, never].astype(int))
    ring.release()
    for obj in (mixer, carrying, motion, depth, dream, scene, out, fbo, quad):
        obj.release()


def test_the_compositor_takes_the_one_pass_way_on_one_grid(ctx, monkeypatch):
    comp = Compositor(ctx, "vhs", (W, H), (W, H), Reporter(), watch=False)
    dream, scene = texture(ctx, panned(0)), texture(ctx, panned(2))
    motion = field(ctx, np.tile(np.float32([3, 0]), (H, W, 1)))
    for n in range(4):
        if n == 3:   # frames with a dream two frames late: carried, and never by a pass of its own
            monkeypatch.setattr(Ring, "carry", lambda *a, **k: pytest.fail("a carrying pass on one grid"))
        fp = FrameParams(n, n / 20, 1 / 20, {**REGISTRY.defaults(), "tracking": 0.0})
        comp.render(scene, dream, fp, SceneMotion(motion, None, cut=n == 0), base=max(n - 2, 0))
    assert (comp.carry.age, comp.carry.carried) == (2, 2)
    comp.release()
    for t in (dream, scene, motion):
        t.release()
