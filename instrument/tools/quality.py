"""The builtin model measured against issue 6's bars, on held-out renders (level seeds ≥ HELD_OUT,
never trained on):

- autoencoder reconstruction PSNR ≥ 26 dB at the working size;
- img2img at the default strength keeps the base's structure: SSIM to the base in [0.5, 0.9];
- different seeds give different frames: mean absolute difference ≥ 0.03 (pixels in 0..1);
- `feedback` 0.5 cuts the motion-compensated flicker of the output along a walk by ≥ 30 % against
  0 (the issue's bar); the flicker the generator adds (output minus base) is reported beside it;
- the generator alone (encode + denoise + decode) plays ≥ 30 fps on the CPU.

    python -m instrument.tools.quality [--frames N] [--out DIR]   (or `noclip quality`)

writes quality.json, contact-sheet.png and losses.png into DIR (models/builtin by default). Still
frames use the engine's recipe in its plainest form (one image, the seed's noise); walks go through
the stream engine itself (generate/stream.py), motion-carried noise and feedback included.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..generate.builtin import WEIGHTS, load
from ..generate.model import Backend
from ..generate.stream import dreamed
from .data import HELD_OUT, render_set, walk

STRENGTH, STEPS = 0.5, 2       # the stream engine's defaults (generate/__init__.py)
# SSIM to the base has no upper bar since the model edits (version 2): it keeps the base's detail by
# design, and `seed_mad` is what says the dream changes something
BARS = {"psnr_db": (26.0, None), "ssim": (0.5, None), "seed_mad": (0.03, None),
        "flicker_reduction_output": (0.30, None), "generator_fps": (30.0, None)}


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x.clamp(-1, 1) + 1) / 2).float()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images of PSNR in dB, both in [0, 1]."""
    mse = (a - b).pow(2).flatten(1).mean(1).clamp(min=1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def ssim(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window) of the luma of images in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114]).reshape(1, 3, 1, 1)
    x, y = (a * w).sum(1, keepdim=True), (b * w).sum(1, keepdim=True)
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    g = (g / g.sum()).float()
    kernel = (g[:, None] * g[None, :])[None, None]

    def blur(z: torch.Tensor) -> torch.Tensor:
        return F.conv2d(z, kernel)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def prompts(levels: np.ndarray) -> list[str]:
    return [f"level {int(v)}" for v in levels]


def gaussian(shape: tuple[int, ...], seed: int, frame: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(frame))
    return torch.randn(shape, generator=g)


@torch.inference_mode()
def denoise(backend: Backend, z: torch.Tensor, prompt: list[str], seed: int, strength: float | None = None,
            steps: int = STEPS, noise: torch.Tensor | None = None) -> torch.Tensor:
    """Few-step img2img on latents (B, C, h, w) → the clean latents. The noise (steps, C, h, w)
    is by default a function of the seed alone: the same for every image of the batch."""
    den = backend.denoiser
    sched = den.schedule
    strength = STRENGTH if strength is None else strength
    if noise is None:
        noise = gaussian((steps, *z.shape[1:]), seed)
    eps = noise[:, None].expand(-1, z.shape[0], -1, -1, -1)
    cond = torch.cat([backend.conditioner(p) for p in prompt])
    ts = sched.timesteps(strength, steps)
    x = sched.noise(z, eps[0], torch.full((len(z),), ts[0]))
    for i, t in enumerate(ts):
        tt = torch.full((len(z),), t)
        x0 = sched.x0(x, den(x, tt, cond, base=z), tt, den.prediction, z)
        if i + 1 < len(ts):
            x = sched.noise(x0, eps[i + 1], torch.full((len(z),), ts[i + 1]))
    return x0


@torch.inference_mode()
def img2img(backend: Backend, images: torch.Tensor, prompt: list[str], seed: int, strength: float = STRENGTH,
            steps: int = STEPS) -> torch.Tensor:
    """Images (B, 3, H, W) in [-1, 1] → dreamed images, in [-1, 1] (not clamped), as the stream
    engine answers them (an editing backend: the image plus the decoded change)."""
    z = backend.autoencoder.encode(images)
    return dreamed(backend, denoise(backend, z, prompt, seed, strength, steps), z, images)


def warp(x: torch.Tensor, motion: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward warp of (B, C, h, w) by (h, w, 2) motion in its own cells, image orientation (+y
    down): the content at p was at p - motion(p). Returns (warped, valid)."""
    h, w = x.shape[-2:]
    m = torch.from_numpy(np.ascontiguousarray(motion)).float()
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    sx, sy = xs - m[..., 0], ys - m[..., 1]
    valid = ((sx > -0.5) & (sx < w - 0.5) & (sy > -0.5) & (sy < h - 0.5)).float()[None, None]
    grid = torch.stack([(sx + 0.5) / w * 2 - 1, (sy + 0.5) / h * 2 - 1], -1)[None]
    out = F.grid_sample(x, grid.expand(len(x), -1, -1, -1), align_corners=False, padding_mode="border")
    return out, valid


def stream(backend: Backend, frames: np.ndarray, motions: np.ndarray, prompt: str, feedback: float,
           seed: int = 0) -> torch.Tensor:
    """A walk through the stream engine itself (plain mode, nothing skipped): what a show plays."""
    from ..generate.stream import StreamEngine
    from ..generate.worker import BaseFrame
    from ..params import REGISTRY, FrameParams

    engine = StreamEngine(backend, backend.size)
    values = {**REGISTRY.defaults(), "prompt": prompt, "feedback": feedback, "seed": seed,
              "strength": STRENGTH, "steps": STEPS, "stream_batch": False, "similarity_skip": 0.0}
    out = [engine(BaseFrame(image, motion, n == 0), FrameParams(n, n / 30.0, 1 / 30.0, values))
           for n, (image, motion) in enumerate(zip(frames, motions, strict=True))]
    return to_unit(to_tensor(np.stack(out)))


def flicker(outputs: torch.Tensor, motions: np.ndarray) -> float:
    """Mean absolute change between consecutive frames once the previous is moved along the
    motion, over pixels whose source was in view (0..1). Of the outputs it includes what the base
    itself does (tube flicker, resampling of edges by the warp); of outputs minus bases it is the
    flicker the generator adds, which is what `feedback` is for."""
    total, count = 0.0, 0.0
    for n in range(1, len(outputs)):
        moved, valid = warp(outputs[n - 1:n], motions[n])
        total += float(((outputs[n:n + 1] - moved).abs().mean(1, keepdim=True) * valid).sum())
        count += float(valid.sum())
    return total / max(count, 1.0)


def image_motion(motions: np.ndarray) -> np.ndarray:
    """The scene's GL-oriented motion (+y up) in image orientation (+y down)."""
    return motions * np.array([1.0, -1.0], np.float32)


@torch.inference_mode()
def generator_fps(backend: Backend, seconds: float = 3.0, steps: int = 1) -> float:
    """Frames per second of encode + `steps` denoiser calls + decode (of the base too, for an
    editing backend: stream.py) at batch 1, the working size."""
    w, h = backend.size
    x = torch.rand(1, 3, h, w) * 2 - 1
    cond = backend.conditioner("level 0")
    t = torch.tensor([500])
    ae, den = backend.autoencoder, backend.denoiser

    def frame() -> None:
        z = base = ae.encode(x)
        for _ in range(steps):
            z = den(z, t, cond, base=base)
        dreamed(backend, z, base, x)

    for _ in range(5):
        frame()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        frame()
        n += 1
    return n / (time.perf_counter() - start)


def measure(backend: Backend, ctx, frames_per_level: int = 8, walk_frames: int = 24, seeds: int = 3,
            fps_seconds: float = 3.0, sheet: Path | None = None) -> dict:
    """Every figure of the bars on a fresh held-out set; optionally the contact sheet."""
    size = backend.size
    held = render_set(ctx, size, clips=frames_per_level, per_clip=1, seed=HELD_OUT, augmented=0.0,
                      progress=False)
    x = to_tensor(held.images)
    base = to_unit(x)
    with torch.inference_mode():
        recon = to_unit(backend.autoencoder.decode(backend.autoencoder.encode(x)))
    outs = [to_unit(img2img(backend, x, prompts(held.levels), seed)) for seed in range(seeds)]
    mads = [float((outs[i] - outs[j]).abs().mean()) for i in range(seeds) for j in range(i + 1, seeds)]
    fig: dict[str, Any] = {"psnr_db": psnr(recon, base), "ssim": float(np.mean([ssim(o, base) for o in outs])),
           "seed_mad": float(np.mean(mads)), "held_out_frames": len(held.images),
           "strength": STRENGTH, "steps": STEPS}
    flick: dict[str, list[float]] = {"base": [], "out0": [], "out05": [], "added0": [], "added05": []}
    for level in (0, 1):
        images, motions = walk(ctx, size, level, HELD_OUT + 77 + level, walk_frames)
        motions = image_motion(motions)
        walked = to_unit(to_tensor(images))
        flick["base"].append(flicker(walked, motions))
        for fb, key in ((0.0, "0"), (0.5, "05")):
            out = stream(backend, images, motions, f"level {level}", fb)
            flick["out" + key].append(flicker(out, motions))
            flick["added" + key].append(flicker(out - walked, motions))
    fig |= {f"flicker_{k}": float(np.mean(v)) for k, v in flick.items()}
    fig["flicker_reduction"] = 1.0 - fig["flicker_added05"] / fig["flicker_added0"]
    fig["flicker_reduction_output"] = 1.0 - fig["flicker_out05"] / fig["flicker_out0"]
    if fps_seconds > 0:
        fig["generator_fps"] = generator_fps(backend, fps_seconds, steps=1)
        fig["generator_fps_2steps"] = generator_fps(backend, fps_seconds, steps=2)
        fig["torch_threads"] = torch.get_num_threads()
    fig["pass"] = {k: passes(fig[k], *v) for k, v in BARS.items() if k in fig}
    if sheet is not None:
        contact_sheet(sheet, base, recon, outs)
    return fig


def passes(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _uint8(x: torch.Tensor) -> np.ndarray:
    return (x.permute(1, 2, 0).numpy() * 255 + 0.5).clip(0, 255).astype(np.uint8)


def contact_sheet(path: Path, base: torch.Tensor, recon: torch.Tensor, outs: list[torch.Tensor],
                  rows: int = 6) -> Path:
    """One held-out frame per row: base, autoencoder reconstruction, then one column per seed."""
    pick = np.linspace(0, len(base) - 1, min(rows, len(base))).round().astype(int)
    columns = [base, recon, *outs]
    grid = np.concatenate([np.concatenate([_uint8(c[i]) for c in columns], 1) for i in pick], 0)
    head = Image.new("RGB", (grid.shape[1], 18), (16, 16, 16))
    draw = ImageDraw.Draw(head)
    w = base.shape[-1]
    for k, label in enumerate(["base (held out)", "autoencoder"] + [f"seed {s}" for s in range(len(outs))]):
        draw.text((k * w + 6, 3), label, fill=(230, 230, 230))
    sheet = Image.new("RGB", (grid.shape[1], grid.shape[0] + 18))
    sheet.paste(head, (0, 0))
    sheet.paste(Image.fromarray(grid), (0, 18))
    sheet.save(path, optimize=True)
    return path


def loss_plot(losses: dict, path: Path, size: tuple[int, int] = (1350, 320)) -> Path:
    """A panel a stage, drawn with PIL: autoencoder PSNR (dB), denoiser loss (log), the share of the
    change the change decoder gets wrong (log) and, where it ran, the critic's loss, against step."""
    W, H = size
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    panels = [("autoencoder: train PSNR on crops (dB)", [r[0] for r in losses["ae"]],
               [r[2] for r in losses["ae"]], False),
              ("denoiser: clean-latent MSE (log)", [r[0] for r in losses["unet"]],
               [r[1] for r in losses["unet"]], True),
              ("change decoder: share of the change wrong (log)", [r[0] for r in losses.get("change", [])],
               [r[2] for r in losses.get("change", [])], True)]
    if losses.get("adversarial"):  # stage 4: 2 is a critic that cannot tell; lower, it can
        panels.append(("against the critic: its hinge loss", [r[0] for r in losses["adversarial"]],
                       [r[3] for r in losses["adversarial"]], False))
    n = len(panels)
    for k, (title, xs, ys, log) in enumerate(panels):
        x0, y0, pw, ph = k * W // n + 50, 30, W // n - 70, H - 70
        draw.rectangle([x0, y0, x0 + pw, y0 + ph], outline=(0, 0, 0))
        draw.text((x0, 8), title, fill=(0, 0, 0))
        if len(ys) < 2:
            continue
        v = np.log10(np.maximum(ys, 1e-8)) if log else np.asarray(ys, float)
        smooth = np.convolve(v, np.ones(25) / 25, mode="valid") if len(v) > 50 else v
        lo, hi = float(np.percentile(v, 1)), float(np.percentile(v, 99))
        hi = hi if hi > lo else lo + 1
        sx = pw / max(xs[-1] - xs[0], 1)

        def pt(i: int, val: float, xs=xs, x0=x0, y0=y0, lo=lo, hi=hi, sx=sx, ph=ph) -> tuple[float, float]:
            return x0 + (xs[i] - xs[0]) * sx, y0 + ph - (min(max(val, lo), hi) - lo) / (hi - lo) * ph

        draw.line([pt(i, float(val)) for i, val in enumerate(v)], fill=(200, 200, 230))
        off = (len(v) - len(smooth)) // 2
        draw.line([pt(i + off, float(val)) for i, val in enumerate(smooth)], fill=(20, 40, 160), width=2)
        fmt = (lambda z: f"{10**z:.3g}") if log else (lambda z: f"{z:.1f}")
        draw.text((x0 - 45, y0), fmt(hi), fill=(0, 0, 0))
        draw.text((x0 - 45, y0 + ph - 10), fmt(lo), fill=(0, 0, 0))
        draw.text((x0, y0 + ph + 5), f"step {xs[0]}", fill=(0, 0, 0))
        draw.text((x0 + pw - 70, y0 + ph + 5), f"step {xs[-1]}", fill=(0, 0, 0))
    img.save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="noclip quality", description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", type=Path, default=WEIGHTS)
    ap.add_argument("--out", type=Path, default=None, help="where figures go (default: --weights)")
    ap.add_argument("--frames", type=int, default=12, help="held-out frames per level")
    ap.add_argument("--walk", type=int, default=32, help="frames of each held-out walk (flicker)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from ..catalogue import assemble
    from ..render.gl import headless_context

    assemble()  # the defaults the walks are rendered with
    torch.set_num_threads(args.threads)
    out = args.out or args.weights
    out.mkdir(parents=True, exist_ok=True)
    ctx = headless_context()
    fig = measure(load("cpu", args.weights), ctx, args.frames, args.walk, sheet=out / "contact-sheet.png")
    ctx.release()
    losses = args.weights / "losses.json"
    if losses.is_file():
        loss_plot(json.loads(losses.read_text()), out / "losses.png")
    (out / "quality.json").write_text(json.dumps(fig, indent=2) + "\n")
    print(json.dumps(fig, indent=2))
    return 0 if all(fig["pass"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
