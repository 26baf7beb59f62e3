"""SD3 / SD3.5 through diffusers (issue 19, item 2) on tiny local pipelines (tests/tiny_diffusers.py),
loaded from their folders like a performer's model: the wrappers are diffusers' components, and the
stream's arithmetic on them is StableDiffusion3Img2ImgPipeline's, with T5 absent and present, on
several shapes. No network: the hub is switched off for this module."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers / huggingface_hub are first imported

import numpy as np
import pytest
import tiny_diffusers as tiny
import torch
from test_diffusers_backend import PROMPT, close, dream, frame_params, image

from instrument.generate import load_backend

LAT = tiny.SIZE // 2


pytestmark = pytest.mark.usefixtures("hub_offline")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """"clip" (no T5) and "t5" → (folder, diffusers SD3 img2img pipeline, backend from the folder)."""
    from instrument.generate.diffusers_backend import load

    root = tmp_path_factory.mktemp("sd3")
    out = {}
    for name, t5 in (("clip", False), ("t5", True)):
        pipe = tiny.sd3_pipeline(root / name, t5=t5)
        out[name] = (root / name, pipe, load(str(root / name), "cpu", t5=t5))
    return out


def test_an_sd3_folder_loads_as_a_flow_backend(models):
    _, pipe, backend = models["clip"]
    assert backend.denoiser.prediction == "flow" and backend.size == (tiny.SIZE, tiny.SIZE)
    assert (backend.autoencoder.factor, backend.autoencoder.channels) == (2, 16)
    sched, ours, ts = pipe.scheduler, backend.denoiser.schedule, [749, 499, 249]
    sched.set_timesteps(sigmas=[(t + 1) / 1000 for t in ts])  # the scheduler shifts them, as noclip does
    assert torch.allclose(sched.sigmas[:-1].double(), ours.sigma[ts], atol=1e-6)
    assert torch.allclose(sched.timesteps.double(), ours.sigma[ts] * 1000, atol=1e-3)  # what the model reads
    assert backend.conditioner.t5 is None and models["t5"][2].conditioner.t5 is not None


def test_autoencoder_shifts_and_scales_as_sd3(models):
    _, pipe, backend = models["clip"]
    vae, x = pipe.vae, image() * 2 - 1
    cfg = vae.config
    with torch.no_grad():
        raw = vae.encode(x).latent_dist.mean
        z = backend.autoencoder.encode(x)
        assert close(z, (raw - cfg.shift_factor) * cfg.scaling_factor)
        assert close(backend.autoencoder.decode(z), vae.decode(raw).sample)


@pytest.mark.parametrize("kind", ["clip", "t5"])
def test_conditioner_is_the_pipelines_prompt_encoding(models, kind):
    _, pipe, backend = models[kind]
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(PROMPT, None, None, device="cpu",
                                                  do_classifier_free_guidance=False)
    cond = backend.conditioner(PROMPT)
    assert cond.shape == (1, 77 + 256 + 1, 96) and close(cond[:, :-1], embeds)
    assert close(cond[0, -1, :64], pooled[0]) and not cond[0, -1, 64:].any()
    if kind == "clip":  # zeros where T5 would be, as diffusers plays text_encoder_3=None
        assert not cond[:, 77:-1].any()
    else:
        assert cond[:, 77:-1].abs().sum() > 0 and not close(cond, models["clip"][2].conditioner(PROMPT))
    assert backend.conditioner(PROMPT) is cond and not close(backend.conditioner(""), cond)


def test_denoiser_is_the_transformer_at_the_schedulers_timestep(models):
    _, pipe, backend = models["clip"]
    x, t = torch.randn(2, 16, LAT, LAT), torch.tensor([700, 300])
    cond = backend.conditioner(PROMPT).repeat(2, 1, 1)
    sigma = backend.denoiser.schedule.sigma[t].float()
    with torch.no_grad():
        want = pipe.transformer(hidden_states=x, timestep=sigma * 1000, encoder_hidden_states=cond[:, :-1],
                                pooled_projections=cond[:, -1, :64], return_dict=False)[0]
    assert close(backend.denoiser(x, t, cond), want)


@pytest.mark.parametrize("kind, strength, steps, size", [
    ("clip", 0.5, 1, (32, 32)), ("clip", 0.7, 2, (24, 32)), ("clip", 0.9, 3, (32, 16)),
    ("t5", 0.6, 2, (32, 32)), ("t5", 0.8, 1, (16, 24)),
])
def test_same_latents_as_the_sd3_img2img_pipeline(models, monkeypatch, kind, strength, steps, size):
    """The pipeline on noclip's levels (handed as its unshifted sigmas: it shifts them as noclip did),
    strength 1 (all of them), no guidance, its VAE posterior's mean, and the stream's noises, drawn
    through diffusers' randn_tensor: by the pipeline at the start, by the scheduler's stochastic step
    after each step (the last one's noise is multiplied by sigma 0)."""
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.schedulers.scheduling_flow_match_euler_discrete as flow_mod

    _, pipe, backend = models[kind]
    sched = backend.denoiser.schedule
    timesteps = sched.timesteps(strength, steps)
    g = torch.Generator().manual_seed(7)
    noises = [torch.randn(1, 16, size[0] // 2, size[1] // 2, generator=g) for _ in range(steps + 1)]
    handed = iter(noises)
    monkeypatch.setattr(vae_mod.DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)
    monkeypatch.setattr(type(pipe).__module__ + ".randn_tensor", lambda *a, **k: next(handed))
    monkeypatch.setattr(flow_mod, "randn_tensor", lambda *a, **k: next(handed))
    sigmas = [(t + 1) / sched.T for t in timesteps]
    want = pipe(PROMPT, image=image(1, size), height=size[0], width=size[1], strength=1.0, sigmas=sigmas,
                num_inference_steps=steps, guidance_scale=1.0, output_type="latent").images
    assert next(handed, None) is None  # the pipeline drew exactly the stream's noises (and one for sigma 0)
    got = dream(backend, image(1, size), noises, timesteps)
    assert close(got, want, 1e-4), float((got - want).abs().max())


def test_one_step_is_the_plain_euler_pipeline(tmp_path, monkeypatch):
    """At one step the flow's Euler step to sigma 0 is the clean estimate: the default
    (deterministic) scheduler of a downloaded SD3 model gives the same latent."""
    import diffusers.models.autoencoders.vae as vae_mod

    pipe = tiny.sd3_pipeline(tmp_path / "euler", stochastic=False)
    backend = load_backend(str(tmp_path / "euler"), "cpu")
    timesteps = backend.denoiser.schedule.timesteps(0.6, 1)
    noise = torch.randn(1, 16, LAT, LAT, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(vae_mod.DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)
    monkeypatch.setattr(type(pipe).__module__ + ".randn_tensor", lambda *a, **k: noise)
    want = pipe(PROMPT, image=image(2), strength=1.0, sigmas=[(timesteps[0] + 1) / 1000], num_inference_steps=1,
                guidance_scale=1.0, output_type="latent").images
    assert close(dream(backend, image(2), [noise], timesteps), want, 1e-4)


def test_stream_engine_plays_sd3_with_its_features(models):
    """Stream Batch, feedback, seed morph and a prompt fade on SD3: frames come out, move with the
    base image, and repeat exactly for the same inputs."""
    from instrument.generate.stream import StreamEngine
    from instrument.generate.worker import BaseFrame

    _, _, backend = models["clip"]

    def play() -> list[np.ndarray]:
        engine = StreamEngine(backend)
        out = []
        for n in range(5):
            picture = (image(10 + n)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
            fp = frame_params(seed=5, strength=0.6, steps=2, feedback=0.5, seed_morph=0.3, prompt=PROMPT,
                              prompt_fade=1.0, similarity_skip=0.0, stream_batch=True)
            out.append(engine(BaseFrame(picture, None, n == 0), fp))
        return out

    a, b = play(), play()
    assert all(x.shape == (32, 32, 3) and x.dtype == np.uint8 for x in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert np.abs(a[-1].astype(int) - a[-2]).mean() > 0.5  # the dream follows a changing scene


def test_non_sd3_transformers_and_missing_encoders_are_named(models, tmp_path):
    import json
    import shutil

    folder = tmp_path / "flux"
    shutil.copytree(models["clip"][0], folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["transformer"] = ["diffusers", "FluxTransformer2DModel"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"FluxTransformer2DModel.*SD3Transformer2DModel"):
        load_backend(str(folder), "cpu")
    index["transformer"] = ["diffusers", "SD3Transformer2DModel"]
    index["text_encoder_2"] = [None, None]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="text_encoder_2"):
        load_backend(str(folder), "cpu")


def test_sd3_names_fetch_only_what_plays(monkeypatch, tmp_path):
    """The catalogue's SD3 names fetch the plain weights without T5 unless it is asked for (NOCLIP_T5)."""
    from instrument.generate import diffusers_backend as db
    from instrument.generate.catalog import ALIASES, check_model

    asked = []
    monkeypatch.setattr(db, "fetch", lambda repo, allow=None, **kw: asked.append((repo, allow, kw)) or tmp_path)
    for name in ("sd3-medium", "sd35-medium", "sd35-large-turbo"):
        assert check_model(name) == name and ALIASES[name].variant is None
        db.locate(name, taesd=False)
    repo, allow, kw = asked[-1]
    assert repo == "stabilityai/stable-diffusion-3.5-large-turbo" and "*/*.safetensors" in allow
    assert "text_encoder_3/*" in kw["ignore"] and "*.fp16.*" in kw["ignore"]
    db.locate("sd35-medium", taesd=False, t5=True)
    assert "text_encoder_3/*" not in asked[-1][2]["ignore"]


def test_the_speed_bench_builds_each_release_at_its_published_shape():
    """bench/sd3_shapes times SD3.5 where its weights cannot be had: its transformers must be the
    releases' own (parameters counted on the meta device: nothing allocated)."""
    from instrument.bench.sd3_shapes import transformer

    def count(name: str) -> int:
        return sum(p.numel() for p in transformer(name).parameters())

    assert count("sd35-medium") == 2_243_171_520
    assert count("sd35-large-turbo") == 8_056_627_520
