"""The stream engine on a real Backrooms walk, with a tiny backend built here (tests/tiny_backend.py)."""

import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from tiny_backend import PoolAutoencoder, load_named, tiny_backend

from instrument import generate
from instrument.clock import OfflineClock, RealtimeClock
from instrument.generate.model import Schedule
from instrument.generate.stream import StreamEngine
from instrument.generate.warp import warp
from instrument.generate.worker import BaseFrame, ThreadedGenerator
from instrument.params import REGISTRY, FrameParams
from instrument.patch import load_patch
from instrument.show import Show

torch.set_num_threads(1)  # tiny tensors: extra threads only fight over a busy machine's cores

SIZE = (128, 96)
FPS = 30.0
QUIET = {"similarity_skip": 0.0, "feedback": 0.0, "stream_batch": False}


def params(n: int, **values) -> FrameParams:
    return FrameParams(n, n / FPS, 1 / FPS, {**REGISTRY.defaults(), **QUIET, **values})


@pytest.fixture(scope="module")
def walk(ctx):
    """40 frames of a Backrooms walk: colour and motion read back as the generator gets them."""
    from instrument.scene.backrooms import Backrooms

    scene = Backrooms(ctx, SIZE)
    colour = np.empty((SIZE[1], SIZE[0], 4), np.uint8)
    motion = np.empty((SIZE[1], SIZE[0], 2), np.float32)
    frames = []
    for n in range(40):
        scene.render(params(n)).read_into(colour)
        scene.motion.read_into(motion)
        frames.append(BaseFrame(colour[::-1, :, :3].copy(), motion[::-1] * np.float32([1, -1]), scene.cut))
    scene.release()
    return frames


def play(frames, engine=None, **values) -> list[np.ndarray]:
    engine = StreamEngine(tiny_backend(SIZE)) if engine is None else engine
    return [engine(f, params(n, **values)) for n, f in enumerate(frames)]


def flicker(frames, outputs) -> float:
    """Motion-compensated frame-to-frame difference: each output against the previous one moved
    along the scene's motion, where that lay inside the frame (0..255 levels)."""
    diffs = []
    for n in range(2, len(outputs)):
        prev = torch.from_numpy(outputs[n - 1]).permute(2, 0, 1)[None].float()
        moved, valid = warp(prev, frames[n].motion)
        cur = torch.from_numpy(outputs[n]).permute(2, 0, 1)[None].float()
        diffs.append(float(((cur - moved).abs() * valid).sum() / (3 * valid.sum())))
    return float(np.mean(diffs))


def test_the_walk_moves(walk):
    assert walk[0].cut and not any(f.cut for f in walk[1:])
    assert np.abs(walk[10].motion).mean() > 1.0  # pixels per frame: the motion maps are real
    assert flicker(walk, [f.image for f in walk]) < 0.5 * np.mean(
        [np.abs(walk[n].image.astype(float) - walk[n - 1].image).mean() for n in range(2, 40)])


@pytest.mark.parametrize("steps", [2, 3])
def test_stream_batch_gives_the_plain_frames_shifted_by_steps_minus_one(walk, steps):
    frames = walk[:12]
    plain_engine, batch_engine = StreamEngine(tiny_backend(SIZE)), StreamEngine(tiny_backend(SIZE))
    plain = play(frames, plain_engine, steps=steps, strength=0.6)
    batch = play(frames, batch_engine, steps=steps, strength=0.6, stream_batch=True)
    lag = steps - 1
    for n in range(lag):  # warming up: the base image, never a half-denoised latent
        assert np.array_equal(batch[n], frames[n].image)
    for n in range(lag, len(frames)):
        assert np.abs(batch[n].astype(int) - plain[n - lag]).max() <= 1, n
    assert not np.array_equal(plain[5], plain[6])
    assert plain_engine.den.batches == [1] * steps * len(frames)
    assert batch_engine.den.batches == list(range(1, steps)) + [steps] * (len(frames) - lag)


def test_nothing_leaks_across_a_cut(walk):
    """After a cut the engine plays as if it had just started there: no feedback, no frames in
    flight, no noise from before."""
    after = [BaseFrame(walk[20].image, walk[20].motion, cut=True), walk[21], walk[22]]
    settings = {"feedback": 0.5, "stream_batch": True, "steps": 2}
    engine = StreamEngine(tiny_backend(SIZE))
    for n, f in enumerate(walk[:6]):
        engine(f, params(n, **settings))
    went_on = [engine(f, params(6 + n, **settings)) for n, f in enumerate(after)]
    fresh = StreamEngine(tiny_backend(SIZE))
    started = [fresh(f, params(6 + n, **settings)) for n, f in enumerate(after)]
    assert np.array_equal(went_on[0], after[0].image)  # the pipe refills: the scene, not the old dream
    for a, b in zip(went_on, started, strict=True):
        assert np.array_equal(a, b)


def test_seed_morph_ends_on_seed_and_seed_plus_one(walk):
    frames = walk[:6]
    at_zero, at_one = play(frames, seed=3, seed_morph=0.0), play(frames, seed=3, seed_morph=1.0)
    four, between = play(frames, seed=4), play(frames, seed=3, seed_morph=0.5)
    for a, b in zip(at_one, four, strict=True):
        assert np.array_equal(a, b)
    assert np.abs(at_zero[-1].astype(int) - four[-1]).mean() > 2
    def apart(a, b):
        return np.abs(a[-1].astype(int) - b[-1]).mean()

    assert 0 < apart(between, at_zero) < apart(at_one, at_zero)


def test_feedback_cuts_flicker_by_a_third_while_seeds_still_differ(walk):
    calm = {"feedback": 0.5, "steps": 2}
    still, other_seed = play(walk, **calm), play(walk, seed=1, **calm)
    raw = play(walk, feedback=0.0, steps=2)
    assert flicker(walk, still) <= 0.7 * flicker(walk, raw)
    assert np.abs(still[-1].astype(int) - other_seed[-1]).mean() > 2  # not frozen onto the scene


def test_a_new_prompt_is_encoded_once_and_cross_fades_over_prompt_fade(walk):
    engine = StreamEngine(tiny_backend(SIZE))
    seen = []
    den = engine.den
    engine.den = lambda x, t, cond, base=None: seen.append(cond.clone()) or den(x, t, cond, base)
    engine.den.prediction, engine.den.schedule = den.prediction, den.schedule
    prompts = ["hallway"] * 3 + ["pool rooms"] * 14 + ["hallway"] * 3
    for n, prompt in enumerate(prompts):
        engine(walk[n], params(n, prompt=prompt, prompt_fade=10 / FPS, steps=1))
    a, b = engine.cond.cache["hallway"], engine.cond.cache["pool rooms"]
    assert engine.backend.conditioner.calls == ["hallway", "pool rooms"]  # once each, back again cached
    u = [float(((c - a) * (b - a)).sum() / ((b - a) ** 2).sum()) for c in seen]
    assert u[:4] == pytest.approx([0, 0, 0, 0], abs=1e-6)
    assert u[3:14] == pytest.approx([k / 10 for k in range(11)], abs=1e-5)  # 10 frames = prompt_fade
    assert u[13:17] == pytest.approx([1, 1, 1, 1], abs=1e-6)
    assert u[17] == pytest.approx(1) and u[18:] == pytest.approx([0.9, 0.8], abs=1e-5)  # and back again


def test_similarity_skip_reuses_the_result_on_a_still_input_only(walk):
    still = [walk[10]] + [BaseFrame(walk[10].image, None) for _ in range(5)]
    engine = StreamEngine(tiny_backend(SIZE))
    out = play(still, engine, similarity_skip=0.01)
    assert engine.stats == {"generated": 1, "skipped": 5, "base_frame": 0}  # skips answer with frame 0
    assert all(o is out[0] for o in out)
    engine = StreamEngine(tiny_backend(SIZE))
    play(walk[:8], engine, similarity_skip=0.01)
    assert engine.stats == {"generated": 8, "skipped": 0, "base_frame": 7}
    engine = StreamEngine(tiny_backend(SIZE))  # a new setting is not a still input
    for n, f in enumerate(still):
        engine(f, params(n, similarity_skip=0.01, seed=n // 2))
    assert engine.stats == {"generated": 3, "skipped": 3, "base_frame": 4}


def test_a_scene_at_another_size_is_answered_at_its_own(walk):
    engine = StreamEngine(tiny_backend(SIZE))
    big = np.repeat(np.repeat(walk[3].image, 2, 0), 2, 1)
    moving = np.repeat(np.repeat(walk[3].motion, 2, 0), 2, 1) * 2
    out = engine(BaseFrame(big, None, True), params(0))
    out2 = engine(BaseFrame(big, moving), params(1))
    assert out.shape == out2.shape == big.shape and out.dtype == np.uint8


# -- in the show ---------------------------------------------------------------------------------


def show_with_tiny(ctx, monkeypatch, backend, *, clock, model="builtin"):
    """The show as `noclip` builds it, with load_backend answering with the tiny backend (in this
    process: a generator process would load the real model, not the patched one)."""
    monkeypatch.setattr(generate, "load_backend", lambda name, device=None: backend)
    monkeypatch.setenv("NOCLIP_GENERATOR", "thread")
    patch = replace(load_patch("level0").with_params(**QUIET), model=model, size=SIZE)
    return Show(ctx, patch, (160, 120), clock=clock)


def test_the_loop_keeps_its_rate_while_the_generator_is_slower(ctx, monkeypatch):
    backend = tiny_backend(SIZE)
    backend.denoiser.delay = 0.15  # two steps: a generator at about 3 fps
    seconds = {}
    for model in ("none", "builtin"):
        show = show_with_tiny(ctx, monkeypatch, backend, clock=RealtimeClock(30), model=model)
        show.run(frames=3)
        t = time.perf_counter()
        show.run(frames=40)
        seconds[model] = time.perf_counter() - t
        stats = getattr(show.generator, "stats", dict)()
        show.close()
    assert isinstance(show.generator, ThreadedGenerator)
    # 40 frames are 1.3 s at 30 fps; waiting on the generator would take 12 s
    assert seconds["builtin"] < min(6.0, 1.5 * seconds["none"] + 1.0), seconds
    assert 1 <= stats["generated"] <= 20 and stats["replaced"] >= 20


def test_an_injected_generator_failure_keeps_the_show_on_its_last_good_frame(ctx, monkeypatch):
    backend = tiny_backend(SIZE)
    show = show_with_tiny(ctx, monkeypatch, backend, clock=OfflineClock(FPS))
    shown = []
    for n in range(8):
        backend.denoiser.fail = n in (3, 4)
        show.step()
        shown.append(show.generator.latest().read())
    show.close()
    assert show.running
    assert shown[2] == shown[3] == shown[4] != shown[5]
    assert show.generator.stats()["failures"] == 2
    assert any("out of memory" in msg for _, msg in show.reporter.recent)
    assert show.generator.engine.stats["generated"] == 6


def test_a_backend_that_does_not_load_leaves_the_scene_playing(ctx, monkeypatch):
    """In the generator's own process (the default, live and offline): a model that cannot load
    there is reported here, and the show plays on."""
    monkeypatch.setattr(generate, "load_backend", load_named)  # raises "no weights" for this name
    show = Show(ctx, replace(load_patch("level0"), model="noclip-tests/tiny-broken"), (160, 120),
                clock=OfflineClock(FPS))
    show.run(frames=2)
    assert show.generator.latest() is None  # the compositor shows the scene
    show.close()
    assert any("no weights" in msg and "playing the scene alone" in msg for _, msg in show.reporter.recent)


def test_offline_renders_with_the_generator_are_identical(ctx, monkeypatch):
    runs = []
    for _ in range(2):
        show = show_with_tiny(ctx, monkeypatch, tiny_backend(SIZE), clock=OfflineClock(FPS))
        for name, value in {"feedback": 0.4, "stream_batch": True, "seed_morph": 0.3}.items():
            show.bank.set(name, value, immediate=True)
        frames = []
        for _ in range(6):
            show.step()
            frames.append(show.generator.latest().read())
        show.close()
        runs.append(frames)
    assert runs[0] == runs[1] and len(set(runs[0])) == 6


class _Keeper:
    """A denoiser that answers the base latent itself: the dream changes nothing."""

    prediction = "sample"
    schedule = Schedule.scaled_linear()

    def __call__(self, x, t, cond, base=None):
        return base


def test_an_editing_backend_answers_its_base_plus_the_change(walk):
    """A lossy autoencoder (8x8 block means) and a dream that changes nothing: an editing backend
    answers the base image itself, detail and all; a plain one, the blocks its decoder makes."""
    plain = replace(tiny_backend(SIZE), autoencoder=PoolAutoencoder(8), denoiser=_Keeper())
    edits = replace(plain, edits=True)
    frame = walk[5]
    a = StreamEngine(plain)(frame, params(0)).astype(int)
    b = StreamEngine(edits)(frame, params(0)).astype(int)
    assert np.abs(b - frame.image).max() <= 1
    assert np.abs(a - frame.image).mean() > 3
