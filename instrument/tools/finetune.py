"""`noclip finetune`: teach a diffusers model (SD 1.x/2.x, SDXL, SD3) a look from your own footage,
as a LoRA that `--lora DIR` then plays live.

The data: image files and video files (frames sampled evenly through each), or folders of them; a
file's caption is the text file beside it with the same stem (`clip.txt` for `clip.mp4`), else
`--prompt`. Every frame is fitted to the model's working size (centre crop), encoded once, and the
training pairs a random frame with a random noise level each step: the denoiser, with a rank-R LoRA
on its attention projections (to_q, to_k, to_v, to_out.0), learns to answer what its prediction
type asks (noise, v, the clean latent, or rectified flow's velocity) under the usual squared error.
Only the LoRA trains; the model stays frozen.

Seeded: the frame, noise level and noise of step n are a function of (seed, n), so a run resumed
from its checkpoint (`DIR/checkpoint.pt`, written every `--every` steps and at the end) goes on
exactly as an unbroken one. The result: `DIR/pytorch_lora_weights.safetensors` (diffusers' layout,
alpha = rank) and a short card, `DIR/README.md`, with the data, the steps, a loss plot and a
before/after sample (`DIR/loss.png`, `DIR/sample.png`).

Runs on CUDA where there is one, slowly on a CPU (the tests train a tiny random model for a few
steps). Bad input is named: a folder with no usable images or videos is an error; a video that
stops decoding part-way keeps the frames before the break, with a warning.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import nn

log = logging.getLogger("noclip")

IMAGES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEOS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections a LoRA learns on


class FinetuneError(ValueError):
    """Data or settings a fine-tune cannot use; the message names what and where."""


@dataclass
class Finetune:
    model: str                      # a model name as --model takes it (not builtin / none)
    data: list[Path]                # image and video files, or folders of them
    out: Path                       # where the LoRA, its card and the checkpoint go
    steps: int = 500                # optimiser steps in all (a resumed run goes on to this many)
    prompt: str = ""                # the caption of every frame without a .txt of its own
    rank: int = 8                   # the LoRA's rank (its size: rank x (in + out) per layer)
    lr: float = 1e-4                # AdamW's learning rate
    seed: int = 0                   # frames, noise levels and noise are a function of (seed, step)
    frames: int = 32                # frames sampled evenly from each video
    every: int = 100                # a checkpoint every this many steps
    device: str | None = None       # torch device (default: cuda where present, else cpu)
    losses: list[float] = field(default_factory=list, repr=False)


# -- data -------------------------------------------------------------------------------------------

def gather(paths: list[Path]) -> list[Path]:
    """The image and video files named, folders opened (sorted); a path that is neither is named."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGES + VIDEOS)
        elif path.is_file() and path.suffix.lower() in IMAGES + VIDEOS:
            found.append(path)
        elif not path.exists():
            raise FinetuneError(f"{path}: no such file or folder")
        else:
            raise FinetuneError(f"{path}: not an image ({', '.join(IMAGES)}) or video ({', '.join(VIDEOS)})")
    return found


def video_frames(path: Path, count: int) -> list[Image.Image]:
    """`count` frames sampled evenly through a video (fewer if it is shorter); a video that stops
    decoding part-way gives what came before the break, with a warning."""
    import av

    frames: list[Image.Image] = []
    keep: set[int] | None = None
    try:
        with av.open(str(path)) as box:
            stream = box.streams.video[0]
            total = stream.frames or 0
            if total >= count:
                keep = set(np.linspace(0, total - 1, count).round().astype(int).tolist())
            for i, frame in enumerate(box.decode(stream)):
                if keep is None or i in keep:
                    frames.append(frame.to_image().convert("RGB"))
    except Exception as exc:  # a cut or damaged file: what decoded is still footage
        log.warning("%s: stops decoding after %d frames kept (%s: %s)", path, len(frames),
                    type(exc).__name__, exc)
    if keep is None and len(frames) > count:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, count).round().astype(int)]
    return frames


def fit(image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop to the aspect of `size` (w, h), resize, → (3, h, w) in [-1, 1]."""
    w, h = size
    scale = max(w / image.width, h / image.height)
    image = image.resize((max(w, round(image.width * scale)), max(h, round(image.height * scale))),
                         Image.Resampling.LANCZOS)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    a = np.asarray(image.crop((left, top, left + w, top + h)), dtype=np.float32)
    return torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1.0


def picture(image: torch.Tensor) -> np.ndarray:
    """A (3, h, w) image in [-1, 1] (as `fit` makes it) as (h, w, 3) uint8."""
    return ((image.permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def load_data(paths: list[Path], size: tuple[int, int], frames: int,
              prompt: str) -> list[tuple[torch.Tensor, str]]:
    """(image, caption) pairs from the files; a FinetuneError when none is usable."""
    pairs = []
    for path in gather(paths):
        caption = path.with_suffix(".txt").read_text().strip() if path.with_suffix(".txt").is_file() else prompt
        if path.suffix.lower() in VIDEOS:
            images = video_frames(path, frames)
        else:
            try:
                with Image.open(path) as im:
                    images = [im.convert("RGB")]
            except Exception as exc:
                log.warning("%s: not an image that opens (%s), skipped", path, exc)
                images = []
        pairs += [(fit(im, size), caption) for im in images]
    if not pairs:
        raise FinetuneError(f"{', '.join(map(str, paths))}: no usable images or videos in it")
    return pairs


# -- the LoRA being trained ------------------------------------------------------------------------

class TrainableLora(nn.Module):
    """Rank-r additions to a network's attention projections, trained while the network stays
    frozen: down starts small and random, up at zero, so step 0 is the model itself."""

    def __init__(self, net: nn.Module, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        self.names: list[str] = []
        self.down, self.up = nn.ParameterList(), nn.ParameterList()
        self._handles = []
        for name, module in net.named_modules():
            if isinstance(module, nn.Linear) and name.endswith(TARGETS):
                dev = module.weight.device
                d = torch.randn(rank, module.in_features, generator=generator) / rank
                self.down.append(nn.Parameter(d.to(dev)))
                self.up.append(nn.Parameter(torch.zeros(module.out_features, rank, device=dev)))
                self._handles.append(module.register_forward_hook(self._hook(len(self.names))))
                self.names.append(name)
        if not self.names:
            raise FinetuneError("the model has no attention projections (to_q, to_k, to_v, to_out.0) to train")

    def _hook(self, i: int):
        def add(module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
            x = inputs[0]
            return out + F.linear(F.linear(x, self.down[i].to(x.dtype)), self.up[i].to(x.dtype))
        return add

    def weights(self, prefix: str) -> dict[str, torch.Tensor]:
        """diffusers' layout (alpha = rank: the factor is 1): what --lora DIR reads."""
        out = {}
        for name, d, u in zip(self.names, self.down, self.up, strict=True):
            out[f"{prefix}.{name}.lora_A.weight"] = d.detach().float().cpu().contiguous()
            out[f"{prefix}.{name}.lora_B.weight"] = u.detach().float().cpu().contiguous()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def target(prediction: str, x0: torch.Tensor, eps: torch.Tensor, a: torch.Tensor,
           s: torch.Tensor) -> torch.Tensor:
    """What a denoiser of this prediction type should answer for x = a x0 + s eps."""
    return {"epsilon": eps, "v_prediction": a * eps - s * x0, "sample": x0, "flow": eps - x0}[prediction]


# -- the run ----------------------------------------------------------------------------------------

def run(job: Finetune, *, progress: bool = True) -> Path:
    """Train (or resume) the LoRA; returns the weights file."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    from ..generate import load_backend

    if job.model in ("none", "builtin"):
        raise FinetuneError(f"--model {job.model}: finetune trains a LoRA for a diffusers model; the builtin "
                            "one learns a look with `noclip train --from builtin --data ...`")
    device = job.device or ("cuda" if torch.cuda.is_available() else "cpu")
    backend = load_backend(job.model, device)
    den, ae, sched = backend.denoiser, backend.autoencoder, backend.denoiser.schedule
    prefix = next((p for p in ("unet", "transformer") if getattr(den, p, None) is not None), None)
    if prefix is None:
        raise FinetuneError(f"{job.model}: no UNet or transformer to train a LoRA on")
    net = getattr(den, prefix)
    data = load_data(job.data, backend.size, job.frames, job.prompt)
    with torch.no_grad():
        latents = [ae.encode(img[None].to(backend.device, backend.dtype)) for img, _ in data]
        conds = [backend.conditioner(caption).to(backend.device, backend.dtype) for _, caption in data]
    lora = TrainableLora(net, job.rank, torch.Generator().manual_seed(job.seed))
    opt = torch.optim.AdamW(lora.parameters(), lr=job.lr, weight_decay=0.0)
    job.out.mkdir(parents=True, exist_ok=True)
    ckpt, start = job.out / "checkpoint.pt", 0
    if ckpt.is_file():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if state["names"] != lora.names or state["rank"] != job.rank:
            raise FinetuneError(f"{ckpt}: a checkpoint of another model or rank; remove it to start over")
        lora.load_state_dict(state["lora"])
        opt.load_state_dict(state["opt"])
        start, job.losses = int(state["step"]), list(state["losses"])
        log.info("finetune: resuming %s at step %d", ckpt, start)

    def save(step: int) -> None:
        torch.save({"lora": lora.state_dict(), "opt": opt.state_dict(), "step": step, "losses": job.losses,
                    "names": lora.names, "rank": job.rank}, ckpt.with_suffix(".tmp"))
        ckpt.with_suffix(".tmp").replace(ckpt)   # never a half-written checkpoint

    bar = tqdm(range(start, job.steps), initial=start, total=job.steps, desc="finetune", disable=not progress)
    for step in bar:
        g = torch.Generator().manual_seed(job.seed * 1_000_003 + step)
        i = int(torch.randint(len(data), (1,), generator=g))
        t = torch.randint(sched.T, (1,), generator=g)
        x0 = latents[i]
        eps = torch.randn(x0.shape, generator=g).to(x0.device, x0.dtype)
        a, s = sched.ab(t, x0)
        out = den(sched.noise(x0, eps, t), t.to(x0.device), conds[i], base=x0)
        loss = F.mse_loss(out.float(), target(den.prediction, x0, eps, a, s).float())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        job.losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{np.mean(job.losses[-20:]):.4f}")
        if (step + 1) % job.every == 0 or step + 1 == job.steps:
            save(step + 1)
    weights = job.out / "pytorch_lora_weights.safetensors"
    meta = {"noclip": json.dumps({"model": job.model, "rank": job.rank, "steps": job.steps})}
    save_file(lora.weights(prefix), weights, metadata=meta)
    lora.remove()
    card(job, data, backend.size)
    return weights


def card(job: Finetune, data: list[tuple[torch.Tensor, str]], size: tuple[int, int]) -> None:
    """DIR/README.md, DIR/loss.png and DIR/sample.png (a data frame dreamed without and with the LoRA)."""
    plot(job.losses, job.out / "loss.png")
    before_after(job, data[0][0], data[0][1] or job.prompt, job.out / "sample.png")
    files = gather(job.data)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(job).items()
                if k not in ("losses", "data", "out")}
    tail = job.losses[-max(1, len(job.losses) // 10):]
    names = ", ".join(p.name for p in files[:12]) + (" …" if len(files) > 12 else "")
    lines = [f"# LoRA for {job.model}", "",
             f"Trained by `noclip finetune` on {len(data)} frames from {len(files)} files "
             f"({size[0]}x{size[1]}): {names}.", "",
             f"Steps: {len(job.losses)}; loss {np.mean(job.losses[:max(1, len(job.losses) // 10)]):.4f} at the "
             f"start, {np.mean(tail):.4f} at the end.", "",
             "Settings: " + ", ".join(f"{k} = {v}" for k, v in settings.items()), "",
             f"Play it: `noclip play --model {job.model} --lora {job.out}` (parameter lora1: 0 off, 1 as "
             "trained).", "",
             "![loss](loss.png)", "", "Before / after (a data frame dreamed without and with the LoRA):", "",
             "![sample](sample.png)", ""]
    (job.out / "README.md").write_text("\n".join(lines))


def plot(losses: list[float], path: Path, size: tuple[int, int] = (480, 200)) -> None:
    """The loss per step (grey) and its running mean (black), on a plain white chart."""
    w, h = size
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    if losses:
        v = np.asarray(losses, dtype=np.float64)
        k = max(1, len(v) // 20)
        mean = np.convolve(v, np.ones(k) / k, mode="valid")
        lo, hi = float(v.min()), float(v.max()) or 1.0
        span = hi - lo or 1.0

        def pts(a: np.ndarray, off: int) -> list[tuple[float, float]]:
            n = max(1, len(v) - 1)
            return [(10 + (i + off) * (w - 20) / n, h - 10 - (y - lo) * (h - 20) / span)
                    for i, y in enumerate(a)]

        if len(v) > 1:
            d.line(pts(v, 0), fill=(180, 180, 180))
        if len(mean) > 1:
            d.line(pts(mean, k - 1), fill=(0, 0, 0), width=2)
        d.text((12, 4), f"loss {lo:.4f} .. {hi:.4f}, {len(v)} steps", fill=(0, 0, 0))
    im.save(path)


def before_after(job: Finetune, frame: torch.Tensor, prompt: str, path: Path) -> None:
    """A data frame dreamed by the model with the LoRA off and on, side by side (the engine as a
    show plays it: strength 0.6, 2 steps)."""
    from ..generate import load_backend
    from ..generate.stream import StreamEngine
    from ..generate.worker import BaseFrame
    from ..params import REGISTRY, FrameParams

    backend = load_backend(job.model, job.device or ("cuda" if torch.cuda.is_available() else "cpu"),
                           loras=(str(job.out),))
    image = picture(frame)
    shots = [image]
    for scale in (0.0, 1.0):
        values: dict[str, Any] = {**REGISTRY.defaults(), "prompt": prompt or REGISTRY.defaults()["prompt"],
                                  "strength": 0.6, "steps": 2, "stream_batch": False, "lora1": scale,
                                  "similarity_skip": 0.0, "prompt_fade": 0.0, "seed": job.seed}
        shots.append(StreamEngine(backend)(BaseFrame(image), FrameParams(0, 0.0, 1 / 30, values)))
    Image.fromarray(np.concatenate(shots, axis=1)).save(path)

