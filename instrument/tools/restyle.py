"""`noclip train --from builtin --data PATH...`: the builtin model taught a look from your footage.

Footage has no Backrooms scene behind it, so the pairs are made from the footage itself: each frame
is the answer, and its base (what the denoiser sees as "the scene") is the same frame *neutralised*:
its colours moved to those of the rendered Backrooms (one curve per channel for the whole footage,
matching its histogram to the level's; each frame is given a level, its class, and that level's
colours) and its grain softened. The denoiser, starting from the shipped weights, learns to turn
something that looks like the scene into the footage's colours, contrast and texture, on the
footage's own geometry, so at play time it keeps the walk's geometry and paints the look over it.
The teacher's stains (tools/rich.py) stay in the answers, so seeds still matter. Then the change
decoder learns the same pairs' changes (a look moves every pixel; the shipped one knew only the
stains' small changes). The autoencoder and the latent normalisation are the shipped ones, so the
result is a drop-in folder: `--model DIR`.

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
from .plan import Plan
from .train import Trainer

BINS = 32          # colour histogram bins per channel
RINGS = 24         # radial bins of the luma spectrum


def scene_histograms(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Per level, per channel, the share of a few rendered frames' pixels at each value 0..255:
    (levels, 3, 256), what a neutralised footage frame's colours are moved to. Per level, because
    the levels differ more than a grade does (Level 0's mean is (160, 141, 79), Level 1's (88, 92,
    84)): bases moved to both levels' statistics at once looked like neither, and the look learnt on
    them did not carry to the walk (on bleach-bypass footage the fine-tune moved the walk's
    histogram away from the footage's)."""
    from ..render.gl import headless_context
    from .data import render_set

    ctx = headless_context()
    try:
        frames = render_set(ctx, size, clips=3, per_clip=6, seed=seed, augmented=0.0, progress=False)
    finally:
        ctx.release()
    return np.stack([channel_histograms(frames.images[frames.levels == level])
                     for level in range(int(frames.levels.max()) + 1)])


def channel_histograms(images: np.ndarray) -> np.ndarray:
    """(3, 256): each channel's share of pixels at each value, over all of `images` (N, H, W, 3)."""
    return np.stack([np.bincount(images[..., c].ravel(), minlength=256)[:256] / images[..., c].size
                     for c in range(3)])


def neutralise(images: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames with their colours moved to the `target` histograms (3, 256) and
    their grain softened (a 3x3 binomial blur): what the scene would look like under the footage.
    One curve per channel for the whole set (matching the set's histogram to the target's), as a
    grade is one curve for a whole clip: each frame keeps its own exposure and colour against the
    others. A mean and spread moved instead (a Reinhard transfer) leaves a grade's tone curve and
    clipping in the bases, which real scene frames lack."""
    own = channel_histograms(images)
    values = np.arange(256, dtype=np.float64)
    x = np.empty(images.shape, np.float32)
    for c in range(3):
        # each value at the middle of its share of the cumulative histogram, in both
        at = np.cumsum(own[c]) - own[c] / 2
        want = np.cumsum(target[c]) - target[c] / 2
        x[..., c] = np.interp(at, want, values)[images[..., c]]
    t = torch.from_numpy(x).permute(0, 3, 1, 2)
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None, :] / 16).expand(3, 1, 3, 3)
    t = F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    return t.permute(0, 2, 3, 1).clamp(0, 255).round().to(torch.uint8).numpy()


def restyle(data: list[Path], out: Path, work: Path, *, steps: int = 1500, change_steps: int | None = None,
            seed: int = 0, frames: int = 48, device: str = "cpu", weights: Path | None = None,
            progress: bool = True) -> Path:
    """Fine-tune the builtin denoiser (the weights in `weights`, the shipped ones by default) on the
    footage in `data`, then its change decoder on the same pairs (`change_steps`, default a fifth
    of `steps`); resumable from `work`; the weights go to `out`. Returns `out`. The default is the
    measured recipe: 1500 + 300 steps, about ten minutes on two cores."""
    from safetensors.torch import load_file

    from ..generate.builtin import WEIGHTS, config_of, read_config
    from ..generate.builtin.model import Change, channels_last

    source = Path(weights or WEIGHTS)
    meta = read_config(source)
    config = config_of(meta)
    change_steps = steps // 5 if change_steps is None else change_steps
    plan = replace(Plan(), seed=seed, unet_steps=steps, unet_batch=8, unet_lr=3e-4, change_steps=change_steps,
                   change_batch=8, change_lr=5e-4, checkpoint_every=50, clips=0, per_clip=0)
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
    # each frame is given a level (its class) and made to look like that level's scene
    levels = np.random.default_rng([seed, 4]).integers(0, config.classes, len(images))
    targets = scene_histograms((config.width, config.height), seed)
    bases = np.empty_like(images)
    for level, target in enumerate(targets):
        if (levels == level).any():
            bases[levels == level] = neutralise(images[levels == level], target)
    raw = trainer.encode_all(enc, bases)
    latents = ((raw - shift[None, :, None, None]) * scale[None, :, None, None]).half()
    _, ema = trainer.train_unet(latents, levels, images, enc, shift, scale, init=unet.state_dict())
    if change is not None and change_steps:
        # the shipped change decoder learnt the stains' small changes; a look's are larger (a grade
        # moves every pixel): measured on bleach-bypass footage, it drew 73 % of the decoded change
        # and a third too little of its blue shift, so it learns the footage's changes too
        change = trainer.train_change(latents, images, enc, dec, shift, scale, init=change.state_dict())
    trainer.export(enc, dec, ema, shift, scale, change)
    told = json.loads((out / "config.json").read_text())
    told["restyled"] = {"from": str(source), "footage": [str(p) for p in data], "frames": len(images),
                        "steps": steps, "change_steps": change_steps, "seed": seed}
    write_atomically(out / "config.json", json.dumps(told, indent=2) + "\n")
    return out


# -- the look, measured ------------------------------------------------------------------------------

def _histogram(frames: np.ndarray) -> np.ndarray:
    """(3, BINS): each channel's share of pixels per bin."""
    return channel_histograms(frames).reshape(3, BINS, -1).sum(-1)


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
