"""`noclip train --from builtin --data PATH...`: the builtin model taught a look from your footage.

Footage has no Backrooms scene behind it, so the pairs are made from the footage itself: each frame
is the answer, and its base (what the denoiser sees as "the scene") is the same frame *neutralised*:
its colours moved to the statistics of the rendered Backrooms (per channel, mean and spread: a
Reinhard-style transfer) and its grain softened. The denoiser, starting from the shipped weights,
learns to turn something that looks like the scene into the footage's colours, contrast and
texture, on the footage's own geometry, so at play time it keeps the walk's geometry and paints the
look over it. The teacher's stains (tools/rich.py) stay in the answers, so seeds still matter. Only
the denoiser trains; the autoencoder, the change decoder and the latent normalisation are the
shipped ones, so the result is a drop-in folder: `--model DIR`.

`look` measures how far a set of frames is from the footage's look: the L1 distance of their colour
histograms and the mean distance of their radially averaged log spectra (luma), the figures issue 19
asks to fall by 30 % after 10 minutes of fine-tuning on a CPU.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..files import write_atomically
from .finetune import load_data, picture
from .train import Plan, Trainer

BINS = 32          # colour histogram bins per channel
RINGS = 24         # radial bins of the luma spectrum


def scene_stats(size: tuple[int, int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and spread (0..255) of a few rendered frames of each level (the statistics a
    neutralised footage frame is moved to)."""
    from ..render.gl import headless_context
    from .data import render_set

    ctx = headless_context()
    try:
        frames = render_set(ctx, size, clips=3, per_clip=6, seed=seed, augmented=0.0, progress=False)
    finally:
        ctx.release()
    px = frames.images.reshape(-1, 3).astype(np.float64)
    return px.mean(0), px.std(0)


def neutralise(images: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(N, H, W, 3) uint8 frames with each frame's channel statistics moved to `stats` and their
    grain softened (a 3x3 binomial blur): what the scene would look like under the footage."""
    mean, std = (np.asarray(s, np.float32) for s in stats)
    x = images.astype(np.float32)
    m, s = x.mean(axis=(1, 2), keepdims=True), x.std(axis=(1, 2), keepdims=True) + 1e-3
    x = (x - m) / s * std + mean
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    t = F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    return t.permute(0, 2, 3, 1).clamp(0, 255).round().to(torch.uint8).numpy()


def restyle(data: list[Path], out: Path, work: Path, *, steps: int = 600, seed: int = 0, frames: int = 48,
            device: str = "cpu", weights: Path | None = None, progress: bool = True) -> Path:
    """Fine-tune the builtin denoiser (the weights in `weights`, the shipped ones by default) on the
    footage in `data`; resumable from `work`; the weights go to `out`. Returns `out`."""
    from safetensors.torch import load_file

    from ..generate.builtin import WEIGHTS, config_of, read_config
    from ..generate.builtin.model import Change, channels_last

    source = Path(weights or WEIGHTS)
    meta = read_config(source)
    config = config_of(meta)
    plan = replace(Plan(), seed=seed, unet_steps=steps, unet_batch=8, unet_lr=3e-4, change_steps=0,
                   checkpoint_every=50, clips=0, per_clip=0)
    trainer = Trainer(work, out, plan, config, device=device, progress=progress)
    enc, dec, unet, shift, scale = trainer.kept(source)
    change = None
    if config.change:
        state = load_file(str(source / "model.safetensors"))
        change = Change(config)
        change.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("change.")})
        change = channels_last(change, trainer.device).eval()
    pairs = load_data(data, (config.width, config.height), frames, "")
    images = np.stack([picture(img) for img, _ in pairs])
    bases = neutralise(images, scene_stats((config.width, config.height), seed))
    raw = trainer.encode_all(enc, bases)
    latents = ((raw - shift[None, :, None, None]) * scale[None, :, None, None]).half()
    levels = np.random.default_rng([seed, 4]).integers(0, config.classes, len(images))
    _, ema = trainer.train_unet(latents, levels, images, enc, shift, scale, init=unet.state_dict())
    trainer.export(enc, dec, ema, shift, scale, change)
    told = json.loads((out / "config.json").read_text())
    told["restyled"] = {"from": str(source), "footage": [str(p) for p in data], "frames": len(images),
                        "steps": steps, "seed": seed}
    write_atomically(out / "config.json", json.dumps(told, indent=2) + "\n")
    return out


# -- the look, measured ------------------------------------------------------------------------------

def _histogram(frames: np.ndarray) -> np.ndarray:
    """(3, BINS): each channel's share of pixels per bin."""
    return np.stack([np.histogram(frames[..., c], BINS, (0, 256))[0] / frames[..., c].size for c in range(3)])


def _spectrum(frames: np.ndarray) -> np.ndarray:
    """(RINGS,): log10 of the luma power, radially averaged, over the frames (each at its own size,
    the radius in cycles per pixel so sizes compare)."""
    out = np.zeros(RINGS)
    for f in frames:
        y = f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        p = np.abs(np.fft.fft2(y - y.mean())) ** 2 / y.size
        fy, fx = np.meshgrid(np.fft.fftfreq(y.shape[0]), np.fft.fftfreq(y.shape[1]), indexing="ij")
        ring = np.minimum((np.hypot(fx, fy) / 0.5 * RINGS).astype(int), RINGS - 1)
        power = np.bincount(ring.ravel(), p.ravel(), RINGS) / np.bincount(ring.ravel(), None, RINGS)
        out += np.log10(power + 1e-6)
    return out / len(frames)


def look(frames: np.ndarray, footage: np.ndarray) -> dict[str, float]:
    """How far `frames` are from the footage's look: `histogram` (L1 of the colour histograms,
    summed over channels: 0 same, 6 disjoint) and `spectrum` (mean |difference| of the log10 luma
    spectra, in decades)."""
    return {"histogram": float(np.abs(_histogram(frames) - _histogram(footage)).sum()),
            "spectrum": float(np.abs(_spectrum(frames) - _spectrum(footage)).mean())}
