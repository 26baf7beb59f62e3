"""The bundled model: the shipped weights load, fill the backend interfaces and meet issue 6's
quality bars on held-out renders; `noclip train` runs from scratch and resumes exactly."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from instrument.generate import load_backend
from instrument.generate.builtin import WEIGHTS, load
from instrument.generate.model import PREDICTIONS, Schedule
from instrument.tools.plan import small_plan
from instrument.tools.quality import BARS, img2img, measure, passes
from instrument.tools.train import Trainer

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def backend():
    return load_backend("builtin", "cpu")


def test_weights_are_shipped_small_and_documented():
    weights = WEIGHTS / "model.safetensors"
    assert weights.is_file()
    total = sum(p.stat().st_size for p in WEIGHTS.glob("*.safetensors"))
    assert total <= 25 * 2**20
    for name in ("config.json", "MODEL_CARD.md", "losses.png", "contact-sheet.png"):
        assert (WEIGHTS / name).is_file(), name


def test_backend_fills_the_interfaces(backend):
    assert backend.name == "builtin"
    w, h = backend.size
    assert max(w, h) >= 256 and w % backend.autoencoder.factor == 0 and h % backend.autoencoder.factor == 0
    x = torch.rand(2, 3, h, w) * 2 - 1
    with torch.inference_mode():
        z = backend.autoencoder.encode(x)
        assert z.shape == (2, backend.autoencoder.channels, h // backend.autoencoder.factor,
                           w // backend.autoencoder.factor)
        assert backend.autoencoder.decode(z).shape == x.shape
        den = backend.denoiser
        assert den.prediction in PREDICTIONS and isinstance(den.schedule, Schedule)
        cond = backend.conditioner("level 1")
        assert cond.dim() == 2 and cond.shape[0] == 1
        assert den(z, torch.tensor([10, 900]), cond.expand(2, -1)).shape == z.shape


def test_prompts_name_levels(backend):
    c = backend.conditioner
    assert torch.equal(c("level 0"), c("Lobby")) and torch.equal(c("level 1"), c("1"))
    assert not torch.equal(c("level 0"), c("level 1"))
    assert torch.equal(c(""), c("an empty office hallway"))      # anything else: unconditional
    assert not torch.equal(c(""), c("level 0"))
    blend = torch.lerp(c("level 0"), c("level 1"), 0.5)          # cross-fades are plain lerps
    assert blend.shape == c("level 0").shape


def test_same_seed_same_frame(backend):
    x = torch.rand(1, 3, backend.size[1], backend.size[0]) * 2 - 1
    a, b = img2img(backend, x, ["level 0"], 5), img2img(backend, x, ["level 0"], 5)
    assert torch.equal(a, b)
    assert not torch.equal(a, img2img(backend, x, ["level 0"], 6))


@pytest.fixture(scope="module")
def figures(backend, ctx):
    return measure(backend, ctx, frames_per_level=2, walk_frames=10, seeds=2, fps_seconds=0)


@pytest.mark.parametrize("name", ["psnr_db", "ssim", "seed_mad"])
def test_quality_bars_on_held_out_renders(figures, name):
    assert passes(figures[name], *BARS[name]), (name, figures[name], figures)


def test_feedback_lowers_flicker(figures):
    assert figures["flicker_out05"] < figures["flicker_out0"]
    assert figures["flicker_added05"] < 0.85 * figures["flicker_added0"]


def test_feedback_flicker_bar(figures):
    """Through the stream engine itself, on a held-out walk."""
    assert passes(figures["flicker_reduction_output"], *BARS["flicker_reduction_output"]), figures


def _copy_data(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("data-*.npz"):
        shutil.copy(f, dst / f.name)


def test_training_runs_and_resumes_exactly(tmp_path, monkeypatch):
    torch.set_num_threads(1)   # bitwise reproducible reductions
    plan = small_plan(ae_steps=4, unet_steps=4)
    whole = Trainer(tmp_path / "a", tmp_path / "a-out", plan, progress=False)
    whole.run()
    ref = load("cpu", tmp_path / "a-out")
    assert (tmp_path / "a-out" / "model.safetensors").is_file()
    assert len(whole.log["ae"]) == 4 and len(whole.log["unet"]) == 4 and len(whole.log["change"]) == 3
    assert ref.change is not None  # the engine adds its change instead of decoding both latents

    _copy_data(tmp_path / "a", tmp_path / "b")   # same seed, same frames: skip rendering again
    crash = Trainer(tmp_path / "b", tmp_path / "b-out", plan, progress=False)
    saved = Trainer._save

    def save_then_die(self, stage, step, modules, opt):
        saved(self, stage, step, modules, opt)
        if stage == "unet" and step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        crash.run()
    monkeypatch.setattr(Trainer, "_save", saved)
    resumed = Trainer(tmp_path / "b", tmp_path / "b-out", plan, progress=False)
    resumed.run()
    assert [r[0] for r in resumed.log["unet"]] == [0, 1, 2, 3]
    got = load("cpu", tmp_path / "b-out")
    for a, b in zip(ref.denoiser.unet.parameters(), got.denoiser.unet.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(ref.autoencoder.dec.parameters(), got.autoencoder.dec.parameters(), strict=True):
        assert torch.equal(a, b)
    for a, b in zip(ref.change.net.parameters(), got.change.net.parameters(), strict=True):
        assert torch.equal(a, b)

    # --keep: the autoencoder and denoiser kept exactly, only the change decoder trained for them,
    # then against the critic (stage 4), its losses logged and in the exported loss log
    _copy_data(tmp_path / "a", tmp_path / "c")
    kept = Trainer(tmp_path / "c", tmp_path / "c-out", small_plan(change_steps=2, adv_steps=2), progress=False)
    kept.run(keep=tmp_path / "a-out")
    assert kept.log["ae"] == kept.log["unet"] == [] and len(kept.log["change"]) == 2
    assert [r[0] for r in kept.log["adversarial"]] == [0, 1]
    assert all(math.isfinite(v) for r in kept.log["adversarial"] for v in r)
    assert len(json.loads((tmp_path / "c-out" / "losses.json").read_text())["adversarial"]) == 2
    again = load("cpu", tmp_path / "c-out")
    for a, b in zip([*ref.denoiser.unet.parameters(), *ref.autoencoder.enc.parameters()],
                    [*again.denoiser.unet.parameters(), *again.autoencoder.enc.parameters()], strict=True):
        assert torch.equal(a, b)
    torch.set_num_threads(2)


def test_weights_without_a_change_decoder_decode_both_latents(tmp_path):
    """Weights from before the change decoder (no `change` in their config) still load and play:
    the engine decodes the dream and its base and adds the difference, as it did."""

    from instrument.generate.stream import dreamed

    folder = tmp_path / "old"
    folder.mkdir()
    meta = json.loads((WEIGHTS / "config.json").read_text())
    meta["config"].pop("change", None)
    (folder / "config.json").write_text(json.dumps(meta))
    shutil.copy(WEIGHTS / "model.safetensors", folder / "model.safetensors")
    old = load("cpu", folder)
    assert old.change is None and old.edits
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 192, 256, generator=g) * 2 - 1
    base = old.autoencoder.encode(image)
    x0 = base + 0.3 * torch.randn(base.shape, generator=g)
    both = old.autoencoder.decode(torch.cat([x0, base]))
    assert torch.allclose(dreamed(old, x0, base, image), image + both[:1] - both[1:], atol=1e-5)


def test_an_edit_denoiser_passes_its_base_exactly_and_adds_its_last_layer():
    """The denoiser answers an edit (prediction "edit"): x0 = base + its last layer. On the schedule
    the engine plays, x0 is the base exactly where the last layer draws nothing, and exactly what it
    draws added where it does, at every strength; an edit without its base is refused by name, and
    weights from before it play v."""
    from instrument.generate.builtin import config_of
    from instrument.generate.builtin.model import Config, UNet, cosine_alphas, shifted

    c = Config(width=32, height=24)
    assert c.prediction == "edit" and c.prediction in PREDICTIONS
    unet = UNet(c).eval()
    played, where = shifted(cosine_alphas(c.T), c.shift)
    schedule = Schedule(played)
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, c.latent, 6, 8, generator=g)
    x = torch.randn(3, c.latent, 6, 8, generator=g)
    cond = unet.classes(torch.tensor([0, 1, 2]))
    t = torch.tensor([schedule.timesteps(s, 1)[0] for s in (0.2, 0.5, 0.9)])
    with torch.no_grad():
        x0 = schedule.x0(x, unet(x, where[t], cond, base), t, c.prediction, base)
        assert torch.allclose(x0, base, atol=1e-5)
        unet.out.bias.fill_(0.25)
        x0 = schedule.x0(x, unet(x, where[t], cond, base), t, c.prediction, base)
        assert torch.allclose(x0, base + 0.25, atol=1e-5)
        with pytest.raises(ValueError, match="base"):
            schedule.x0(x, unet(x, where[t], cond, base), t, c.prediction)
    assert config_of({"config": {"base": True, "prediction": "v_prediction"}}).prediction == "v_prediction"


# `noclip train` itself (runs, keeps checkpoints unless --fresh): tests/test_user_data.py


def test_the_shipped_change_decoder_adds_what_decoding_both_would(backend, ctx):
    """The engine adds the change decoder's answer instead of decoding the dream and its base (half
    of each dream's time): on a held-out walk its change is within 20 % of the decoded one's
    (the training log says about 8 %), and the dream's own detail stays (Laplacian energy)."""
    from instrument.bench.generator import walk_frames
    from instrument.generate import stream
    from instrument.generate.stream import StreamEngine, dreamed
    from instrument.params import REGISTRY, FrameParams
    from instrument.tools.data import HELD_OUT

    assert backend.change is not None
    caught = []
    engine = StreamEngine(backend, backend.size)
    values = {**REGISTRY.defaults(), "similarity_skip": 0.0}
    real = stream.dreamed
    try:
        stream.dreamed = lambda b, x0, base, image: caught.append((x0, base, image)) or real(b, x0, base, image)
        for n, frame in enumerate(walk_frames(ctx, backend.size, 12, level_seed=HELD_OUT + 3)):
            engine(frame, FrameParams(n, n / 15.0, 1 / 15.0, values))
    finally:
        stream.dreamed = real
    both = replace(backend, change=None)
    errs, lap = [], []
    for x0, base, image in caught[4:]:
        fast, slow = dreamed(backend, x0, base, image), dreamed(both, x0, base, image)
        errs.append(((fast - slow).pow(2).mean() / (slow - image).pow(2).mean()).sqrt().item())
        lap.append(_laplacian_energy(fast) / _laplacian_energy(slow))
    assert max(errs) < 0.2, errs
    assert min(lap) > 0.9 and max(lap) < 1.1, lap


def _laplacian_energy(x: torch.Tensor) -> float:
    y = x.mean(1, keepdim=True)
    k = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    return torch.nn.functional.conv2d(y, k).pow(2).mean().item()
