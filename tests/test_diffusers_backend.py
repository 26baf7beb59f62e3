"""The diffusers backend on tiny local pipelines (tests/tiny_diffusers.py): loaded through
`load_backend(folder)` like a performer's model, held to diffusers' own components and to its
image-to-image pipelines, directly and through the StreamEngine, and played in a show. No network:
the hub is switched off for this module."""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers / huggingface_hub are first imported

import numpy as np
import pytest
import tiny_diffusers as tiny
import torch

from instrument.generate import check_model, load_backend
from instrument.patch import ConfigError, load_patch

PROMPT = "a yellow hallway"
LAT = tiny.SIZE // 2  # latent cells per side


pytestmark = pytest.mark.usefixtures("hub_offline")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name → (folder, diffusers img2img pipeline, backend loaded from the folder)."""
    root = tmp_path_factory.mktemp("models")
    pipes = {"sd": tiny.sd_pipeline(root / "sd"), "taesd": tiny.sd_pipeline(root / "taesd", tiny_vae=True),
             "sdxl": tiny.sdxl_pipeline(root / "sdxl"), "lcm": tiny.sd_pipeline(root / "lcm", lcm=True)}
    return {k: (root / k, p, load_backend(str(root / k), "cpu")) for k, p in pipes.items()}


def image(seed: int = 1, size: tuple[int, int] = (tiny.SIZE, tiny.SIZE)) -> torch.Tensor:
    """A smooth test picture in [0, 1] (what the pipeline takes; the engine takes 2x - 1), (h, w)."""
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=size, mode="bilinear")


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


# -- the wrappers are the components ------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sd", "taesd", "sdxl"])
def test_autoencoder_is_the_vae_scaled(models, kind):
    _, pipe, backend = models[kind]
    ae, vae, x = backend.autoencoder, pipe.vae, image() * 2 - 1
    with torch.no_grad():
        enc = vae.encode(x)
        raw = enc.latents if kind == "taesd" else enc.latent_dist.mean
        z = ae.encode(x)
        assert close(z, raw * vae.config.scaling_factor)
        assert close(ae.decode(z), vae.decode(raw).sample)
    assert (ae.factor, ae.channels) == (2, 4) and backend.size == (tiny.SIZE, tiny.SIZE)


@pytest.mark.parametrize("kind", ["sd", "sdxl"])
def test_conditioner_is_the_pipelines_prompt_encoding(models, kind):
    _, pipe, backend = models[kind]
    with torch.no_grad():
        out = pipe.encode_prompt(PROMPT, device="cpu", num_images_per_prompt=1,
                                 do_classifier_free_guidance=False)
    cond = backend.conditioner(PROMPT)
    if kind == "sd":
        assert close(cond, out[0])
    else:  # token states, then one row that starts with the pooled embedding (diffusers_parts doc)
        embeds, pooled = out[0], out[2]
        assert cond.shape == (1, 78, 64) and close(cond[:, :77], embeds)
        assert close(cond[0, 77, :32], pooled[0]) and not cond[0, 77, 32:].any()
    assert backend.conditioner(PROMPT) is cond            # cached: a prompt played again costs nothing
    assert not close(backend.conditioner(""), cond)       # the empty prompt works, and differs


@pytest.mark.parametrize("kind", ["sd", "lcm"])
def test_denoiser_is_the_unet(models, kind):
    _, pipe, backend = models[kind]
    x, t = torch.randn(2, 4, LAT, LAT), torch.tensor([700, 300])
    cond = backend.conditioner(PROMPT).repeat(2, 1, 1)
    w = None  # an LCM-distilled UNet takes the guidance scale's embedding (8.5 - 1, as its pipeline)
    if kind == "lcm":
        w = pipe.get_guidance_scale_embedding(torch.tensor([7.5, 7.5]), embedding_dim=32)
    with torch.no_grad():
        want = pipe.unet(x, t, encoder_hidden_states=cond, timestep_cond=w).sample
    assert close(backend.denoiser(x, t, cond), want)
    assert backend.denoiser.prediction == "epsilon"
    assert torch.allclose(backend.denoiser.schedule.alphas_cumprod, pipe.scheduler.alphas_cumprod.double())


# -- the stream's arithmetic on these parts is diffusers' image-to-image -------------------------

def dream(backend, picture: torch.Tensor, noises: list[torch.Tensor], timesteps: list[int]) -> torch.Tensor:
    """What the stream engine does per frame with Stream Batch, feedback and noise warping off:
    encode, noise to t0, then per step predict x0 and re-noise to the next timestep."""
    s, den = backend.denoiser.schedule, backend.denoiser
    z = backend.autoencoder.encode(picture * 2 - 1)
    cond = backend.conditioner(PROMPT)
    x = s.noise(z, noises[0], torch.tensor([timesteps[0]]))
    for i, t in enumerate(timesteps):
        tt = torch.tensor([t])
        x0 = s.x0(x, den(x, tt, cond), tt, den.prediction)
        if i + 1 < len(timesteps):
            x = s.noise(x0, noises[i + 1], torch.tensor([timesteps[i + 1]]))
    return x0


@pytest.mark.parametrize("kind, strength, steps, size", [
    ("sd", 0.5, 1, (32, 32)), ("sd", 0.7, 2, (32, 32)), ("taesd", 0.5, 2, (32, 32)),
    ("sdxl", 0.6, 2, (24, 32)),  # SDXL's size conditioning follows the picture, not the model's default
    ("lcm", 0.6, 2, (32, 32)),   # an LCM-distilled model, against diffusers' LCM img2img pipeline
])
def test_same_frames_as_the_diffusers_img2img_pipeline(models, monkeypatch, kind, strength, steps, size):
    """Same scheduler (LCM), timesteps, strength and noise: the pipeline draws its noise through
    diffusers' randn_tensor, which is handed the noise the stream uses; its VAE posterior gives its
    mean, as the stream's autoencoder does (the stream must not sample: frames would shimmer)."""
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.schedulers.scheduling_lcm as lcm_mod

    _, pipe, backend = models[kind]
    timesteps = backend.denoiser.schedule.timesteps(strength, steps)
    g = torch.Generator().manual_seed(7)
    noises = [torch.randn(1, 4, size[0] // 2, size[1] // 2, generator=g) for _ in timesteps]
    handed = iter(noises)
    monkeypatch.setattr(vae_mod.DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)
    monkeypatch.setattr(type(pipe).__module__ + ".randn_tensor", lambda *a, **k: next(handed))
    monkeypatch.setattr(lcm_mod, "randn_tensor", lambda *a, **k: next(handed))

    cfg = 8.5 if kind == "lcm" else 1.0  # LCM: embedded (the default); others: no guidance
    want = pipe(PROMPT, image=image(1, size), strength=1.0, timesteps=timesteps, guidance_scale=cfg,
                output_type="latent").images
    got = dream(backend, image(1, size), noises, timesteps)
    assert next(handed, None) is None  # the pipeline drew exactly the stream's noises
    assert close(got, want, 1e-4), float((got - want).abs().max())
    handed = iter(noises)
    picture = pipe(PROMPT, image=image(1, size), strength=1.0, timesteps=timesteps, guidance_scale=cfg,
                   output_type="pt").images
    assert close((backend.autoencoder.decode(got) / 2 + 0.5).clamp(0, 1), picture, 1e-4)


# -- options ------------------------------------------------------------------------------------

def test_tiny_autoencoder_option_swaps_the_vae(models):
    from instrument.generate.diffusers_backend import load

    folder, *_ = models["sd"]
    b = load(str(folder), "cpu", taesd=str(models["taesd"][0] / "vae"))
    assert b.autoencoder.tiny and not models["sd"][2].autoencoder.tiny
    assert b.autoencoder.encode(image() * 2 - 1).shape == (1, 4, LAT, LAT)


@pytest.mark.parametrize("layout", ["peft", "kohya"])
def test_lora_is_fused_into_the_unet(models, tmp_path, layout):
    from safetensors.torch import save_file

    from instrument.generate.catalog import lora_file
    from instrument.generate.diffusers_backend import load
    from instrument.generate.lora import fuse

    folder, *_ = models["sd"]
    unet = load(str(folder), "cpu").denoiser.unet
    name = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    w0 = unet.get_submodule(name).weight.clone()
    g = torch.Generator().manual_seed(3)
    down, up = torch.randn(4, w0.shape[1], generator=g), torch.randn(w0.shape[0], 4, generator=g)
    if layout == "peft":
        state, scale = {f"unet.{name}.lora_A.weight": down, f"unet.{name}.lora_B.weight": up}, 1.0
    else:  # kohya's names and an alpha of 2 over rank 4
        k = "lora_unet_" + name.replace(".", "_")
        state = {f"{k}.lora_down.weight": down, f"{k}.lora_up.weight": up, f"{k}.alpha": torch.tensor(2.0)}
        scale = 0.5
    save_file(state, tmp_path / "pytorch_lora_weights.safetensors")
    assert fuse(unet, lora_file(str(tmp_path)), "sd") == 1
    assert torch.allclose(unet.get_submodule(name).weight, w0 + scale * up @ down, atol=1e-5)


# -- names: check_model, patches, the CLI, and the hub switched off ------------------------------

def test_check_model_accepts_what_can_load(tmp_path, models):
    ckpt = tmp_path / "mine.safetensors"
    ckpt.write_bytes(b"")
    for name in ["none", "builtin", "sd-turbo", "sdxl-turbo", "sd15-lcm", str(models["sd"][0]), str(ckpt),
                 "stabilityai/sd-turbo", "some-org/some.model_v2"]:
        assert check_model(name) == name


@pytest.mark.parametrize("name, words", [
    ("sd_turbo!", "unknown model"), ("", "a model name"), ("a/b/c", "unknown model"),
    ("./nowhere/model.safetensors", "no such file"), ("missing.ckpt", "no such file"),
])
def test_check_model_rejects_garbage(name, words):
    with pytest.raises(ValueError, match=words):
        check_model(name)


def test_folder_without_model_index_and_other_files_are_rejected(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match=r"model_index\.json"):
        check_model(str(tmp_path))
    with pytest.raises(ValueError, match="not a checkpoint"):
        check_model(str(tmp_path / "notes.txt"))


def test_patch_with_a_bad_model_names_file_line_and_key(tmp_path, models):
    path = tmp_path / "p.toml"
    path.write_text('version = 1\nchain = "vhs"\nmodel = "sd_turbo!"\n')
    with pytest.raises(ConfigError) as err:
        load_patch(path)
    assert (err.value.line, err.value.key) == (3, "model") and str(err.value).startswith(f"{path}:3: model:")
    path.write_text(f'version = 1\nmodel = "{models["sd"][0]}"\n')
    assert load_patch(path).model == str(models["sd"][0])
    path.write_text('version = 1\nmodel = "someone/their-turbo"\n')
    assert load_patch(path).model == "someone/their-turbo"


def test_cli_model_flag_is_checked():
    from instrument.cli import resolve_patch

    args = argparse.Namespace(patch="default", model="stabilityai/sdxl-turbo", set=None, source=None)
    assert resolve_patch(args)[0].model == "stabilityai/sdxl-turbo"
    with pytest.raises(SystemExit, match="--model: unknown model"):
        resolve_patch(argparse.Namespace(patch="default", model="no such!", set=None, source=None))


def test_unknown_hub_id_offline_is_a_clear_quick_error():
    from instrument.generate.diffusers_backend import ModelUnavailable

    t = time.perf_counter()
    with pytest.raises(ModelUnavailable) as err:
        load_backend("noclip-tests/no-such-model", "cpu")
    assert time.perf_counter() - t < 5.0
    msg = str(err.value)
    assert "noclip fetch noclip-tests/no-such-model" in msg and "hf download noclip-tests/no-such-model" in msg
    assert "never downloads" in msg and "cache" in msg


def test_a_snapshot_with_only_fp16_weights_loads(models, tmp_path):
    """What a hub fetch for half precision leaves: only the *.fp16.safetensors files."""
    _, pipe, backend = models["sd"]
    pipe.save_pretrained(tmp_path, variant="fp16")
    assert not list((tmp_path / "unet").glob("diffusion_pytorch_model.safetensors"))
    b = load_backend(str(tmp_path), "cpu")
    x, t, cond = torch.randn(1, 4, LAT, LAT), torch.tensor([400]), backend.conditioner(PROMPT)
    assert close(b.denoiser(x, t, cond), backend.denoiser(x, t, cond), 1e-6)


# -- through the stream engine -------------------------------------------------------------------

def frame_params(**values):
    from instrument.params import REGISTRY, ParamBank

    bank = ParamBank(REGISTRY)
    for name, value in values.items():
        bank.set(name, value, immediate=True)
    return bank.advance(0, 0.0, 0.0)


@pytest.mark.parametrize("kind, strength, steps", [("sd", 0.5, 1), ("sdxl", 0.7, 2)])
def test_stream_engine_makes_the_pipelines_frame(models, monkeypatch, kind, strength, steps):
    """The StreamEngine on a loaded backend, Stream Batch off, feedback 0, seed_morph 0, no motion:
    handed the noise the engine drew, diffusers' pipeline dreams the same latent and picture."""
    import diffusers.models.autoencoders.vae as vae_mod
    import diffusers.schedulers.scheduling_lcm as lcm_mod

    from instrument.generate.stream import StreamEngine
    from instrument.generate.worker import BaseFrame

    _, pipe, backend = models[kind]
    engine = StreamEngine(backend)
    drawn, decoded = [], []
    advance, decode = engine.noise.advance, backend.autoencoder.decode
    monkeypatch.setattr(engine.noise, "advance", lambda *a, **k: drawn.append(advance(*a, **k)) or drawn[-1])
    monkeypatch.setattr(backend.autoencoder, "decode", lambda z: decoded.append(z) or decode(z))
    picture = (image(3)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    fp = frame_params(seed=11, strength=strength, steps=steps, feedback=0.0, seed_morph=0.0, prompt=PROMPT,
                      prompt_fade=0.0, similarity_skip=0.0, stream_batch=False)
    out = engine(BaseFrame(picture), fp)

    noises = list(drawn[0][11][:steps].unsqueeze(1))  # (steps, 1, C, h, w): the seed's noise per step
    handed = iter(noises)
    monkeypatch.setattr(vae_mod.DiagonalGaussianDistribution, "sample", lambda self, generator=None: self.mean)
    monkeypatch.setattr(type(pipe).__module__ + ".randn_tensor", lambda *a, **k: next(handed))
    monkeypatch.setattr(lcm_mod, "randn_tensor", lambda *a, **k: next(handed))
    timesteps = backend.denoiser.schedule.timesteps(strength, steps)
    tensor = torch.from_numpy(picture).permute(2, 0, 1)[None].float() / 255
    want = pipe(PROMPT, image=tensor, strength=1.0, timesteps=timesteps, guidance_scale=1.0,
                output_type="latent").images
    assert next(handed, None) is None
    assert close(decoded[0], want, 1e-4), float((decoded[0] - want).abs().max())
    expect = (decode(want)[0].clamp(-1, 1) + 1) * 127.5
    assert np.abs(out.astype(float) - expect.permute(1, 2, 0).numpy()).max() <= 1.0


# -- in the show ----------------------------------------------------------------------------------

def run_show(ctx, model: str, n: int = 3):
    from instrument.clock import OfflineClock
    from instrument.patch import Patch
    from instrument.report import Reporter
    from instrument.show import Show

    reporter = Reporter()
    show = Show(ctx, Patch(model=model, size=(64, 48)), (64, 48), clock=OfflineClock(30), reporter=reporter,
                overrides={"similarity_skip": 0.0})
    try:
        for _ in range(n):
            show.step()
        return show.generator.name, show.generator.latest() is not None, [m for _, m in reporter.recent]
    finally:
        show.close()


def test_a_model_folder_dreams_in_the_show(ctx, models):
    name, dreamed, errors = run_show(ctx, str(models["taesd"][0]))
    assert name == str(models["taesd"][0]) and dreamed and not errors


def test_show_plays_the_scene_when_the_model_is_not_on_this_machine(ctx):
    t = time.perf_counter()
    name, dreamed, errors = run_show(ctx, "noclip-tests/no-such-model")
    assert name == "noclip-tests/no-such-model" and not dreamed and time.perf_counter() - t < 10.0
    assert any("hf download noclip-tests/no-such-model" in m for m in errors)


def test_fetch_names_local_sources_and_explains_missing_ones(models, capsys):
    from instrument.cli import main
    from instrument.generate.diffusers_backend import ModelUnavailable, Sources, locate

    folder, tiny_vae = models["sd"][0], models["taesd"][0] / "vae"
    assert locate(str(folder)) == Sources(folder)
    assert locate(str(folder), taesd=str(tiny_vae)) == Sources(folder, tiny=tiny_vae)
    assert main(["fetch", str(folder)]) == 0 and f"model: {folder}" in capsys.readouterr().out
    with pytest.raises(ModelUnavailable, match="stabilityai/sd-turbo"):
        locate("sd-turbo")
    with pytest.raises(SystemExit, match="noclip fetch noclip-tests/nothing-here"):
        main(["fetch", "noclip-tests/nothing-here"])
    with pytest.raises(SystemExit, match="unknown model"):
        main(["fetch", "what?"])


def test_compile_is_for_cuda_only(models):
    from instrument.generate.diffusers_backend import load

    folder, _, backend = models["sd"]
    b = load(str(folder), "cpu", compile=True)  # logged and skipped on a CPU: it would not pay
    assert not b.denoiser.graphs and type(b.denoiser.unet).__name__ == "UNet2DConditionModel"
    x, t, cond = torch.randn(1, 4, LAT, LAT), torch.tensor([300]), backend.conditioner(PROMPT)
    assert close(b.denoiser(x, t, cond), backend.denoiser(x, t, cond), 1e-6)


def cached(cache, repo: str, source) -> None:
    """Put a folder into a Hugging Face hub cache as `repo`'s snapshot, as a download leaves it."""
    import shutil

    root = cache / ("models--" + repo.replace("/", "--"))
    shutil.copytree(source, root / "snapshots" / "0123abc")
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("0123abc")


def test_named_models_play_from_the_hub_cache_offline(models, tmp_path, monkeypatch):
    """A gig machine: sd-turbo, sd15-lcm (with its LCM-LoRA) and TAESD already in the cache (here
    tiny stand-ins with fp16-only weights, as `noclip fetch` leaves them), no network."""
    from huggingface_hub import constants
    from safetensors.torch import save_file

    from instrument.generate.catalog import ALIASES, TAESD

    _, pipe, ref = models["sd"]
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    pipe.save_pretrained(tmp_path / "fp16", variant="fp16")
    for alias in ("sd-turbo", "sd15-lcm"):
        cached(tmp_path / "hub", ALIASES[alias].repo, tmp_path / "fp16")
    cached(tmp_path / "hub", TAESD, models["taesd"][0] / "vae")
    name = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"
    lora = {f"unet.{name}.lora_A.weight": torch.ones(1, 64), f"unet.{name}.lora_B.weight": torch.ones(64, 1)}
    (tmp_path / "lora").mkdir()
    save_file(lora, tmp_path / "lora" / "pytorch_lora_weights.safetensors")
    cached(tmp_path / "hub", ALIASES["sd15-lcm"].lora, tmp_path / "lora")

    turbo, lcm = load_backend("sd-turbo", "cpu"), load_backend("sd15-lcm", "cpu")
    assert turbo.size == (512, 512) and turbo.autoencoder.tiny and lcm.autoencoder.tiny
    x, t, cond = torch.randn(1, 4, LAT, LAT), torch.tensor([300]), ref.conditioner(PROMPT)
    assert close(turbo.denoiser(x, t, cond), ref.denoiser(x, t, cond), 1e-6)
    w = lcm.denoiser.unet.get_submodule(name).weight - turbo.denoiser.unet.get_submodule(name).weight
    assert torch.allclose(w, torch.ones_like(w))  # the LoRA is fused into sd15-lcm's UNet
