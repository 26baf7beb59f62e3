"""Rectified flow (SD3's schedule) in the stream engine's Schedule: the same noise levels as
diffusers' FlowMatchEulerDiscreteScheduler, its noising and Euler step, and the engine playing a
flow-matching denoiser (issue 19, item 1: the schedule; the SD3 backend is still to come)."""

import numpy as np
import pytest
import torch
from tiny_backend import HashConditioner, PixelAutoencoder

from instrument.generate.model import Backend, Schedule
from instrument.generate.stream import StreamEngine
from instrument.generate.worker import BaseFrame
from instrument.params import REGISTRY, FrameParams

diffusers = pytest.importorskip("diffusers")


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_the_levels_are_diffusers_flow_match_levels(shift):
    theirs = diffusers.FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    ours = Schedule.flow(1000, shift)
    # theirs: timestep T first (sigma 1), descending; ours: timestep t has sigma (t + 1) / T, shifted
    assert torch.allclose(ours.sigma.flip(0).float(), theirs.sigmas[:1000], atol=1e-6)
    assert torch.allclose(ours.signal + ours.sigma, torch.ones(1000, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    for t in (0, 250, 700, 999):
        mine = ours.noise(x0, eps, torch.tensor([t, t]))
        want = theirs.scale_noise(x0, theirs.timesteps[999 - t].expand(2), eps)
        assert torch.allclose(mine, want, atol=1e-5), t


def test_a_velocity_gives_back_its_clean_latent_and_euler_lands_where_noising_does():
    sched = Schedule.flow()
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 4, 6, 6, generator=g), torch.randn(3, 4, 6, 6, generator=g)
    t, later = torch.tensor([800, 500, 100]), torch.tensor([400, 200, 0])
    x = sched.noise(x0, eps, t)
    v = eps - x0   # the flow's velocity
    assert torch.allclose(sched.x0(x, v, t, "flow"), x0, atol=1e-5)
    # the engine re-noises the predicted x0 with the same noise: for an exact velocity that is
    # exactly one Euler step of the flow from sigma(t) to sigma(later), diffusers' sampler step
    s, s2 = sched.ab(t, x)[1], sched.ab(later, x)[1]
    assert torch.allclose(sched.noise(sched.x0(x, v, t, "flow"), eps, later), x + (s2 - s) * v, atol=1e-5)
    # and a DDPM-family schedule reads its levels from alphas_cumprod as before
    ddpm = Schedule.scaled_linear()
    a, s = ddpm.ab(t, x)
    assert torch.allclose(a.flatten() ** 2, ddpm.alphas_cumprod[t].float())


class FlowOracle:
    """A flow-matching denoiser that knows the answer: the velocity from the frame's own clean
    latent to the noise in its input, so every dream should be the base image itself."""

    prediction = "flow"

    def __init__(self) -> None:
        self.schedule = Schedule.flow()
        self.calls = 0

    def __call__(self, x, t, cond, base=None):
        self.calls += 1
        _, s = self.schedule.ab(t, x)
        return (x - base) / s   # x = (1 - s) base + s eps  ->  eps - base


@pytest.mark.parametrize("settings", [
    {"steps": 1}, {"steps": 2}, {"steps": 2, "stream_batch": True},
    {"steps": 2, "feedback": 0.6, "seed_morph": 0.4}, {"steps": 3, "strength": 0.9, "stream_batch": True}])
def test_the_engine_plays_a_flow_matching_denoiser(settings):
    backend = Backend("flow-oracle", PixelAutoencoder(2), HashConditioner(), FlowOracle(),
                      torch.device("cpu"), torch.float32, (32, 24))
    engine = StreamEngine(backend)
    rng = np.random.default_rng(2)
    values = {**REGISTRY.defaults(), "similarity_skip": 0.0, "stream_batch": False, **settings}
    shown = []
    for n in range(6):
        image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        out = engine(BaseFrame(image, None, n == 0), FrameParams(n, n / 20, 1 / 20, values))
        shown.append((engine.stats["base_frame"], image, out))
    assert backend.denoiser.calls >= 6
    frames = {n: image for n, (_, image, _) in enumerate(shown)}
    for base, _, out in shown[2:]:   # past the pipe's filling: each answer is its own base image
        assert np.abs(out.astype(int) - frames[base]).max() <= 1
