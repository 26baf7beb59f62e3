"""The stream engine: few-step img2img on a stream of base frames, for any Backend.

Per frame: base image → [-1, 1] at the working size → encode → z0 = encoded + `feedback` * what the
last output added to its own base latent, warped onto this frame → noised to the first timestep
with the warped, seed-morphed noise (generate/noise.py) → k LCM-style steps (predict x0, re-noise it
to the next timestep with that step's own warped noise) → held towards this frame's base latent plus
the last output's addition moved along the motion (`HOLD`·`feedback`) → decode (a backend that
edits: its base image plus the decoded change, the decoder's softness cancelling out) → uint8 at
the scene's size.

Stream Batch (`stream_batch`): the k frames in flight each take one step per frame, all k in one
batched denoiser call (frame n at its first timestep, frame n-1 at its second, …), so a frame costs
one denoiser call instead of k. The price is latency: frame n's result comes out with frame n+k-1,
a lag of k-1 frames (0 at one step, 1 at two). Each frame in flight keeps its own noise, timesteps
and conditioning, so the results are those of plain mode shifted by that lag (with `feedback` 0;
feedback can only use the newest finished output, which is k-1 frames older in batch mode). While
the pipe fills the engine shows its last output, or after a start or a cut the base image: never a
half-denoised latent. Changing `steps` mid-stream needs no flush: each frame finishes on its own
schedule. A cut (the scene says so) drops everything carried: frames in flight, feedback, noise.

The conditioning of each prompt is encoded once (on the worker thread, cached), and a new prompt
cross-fades in over `prompt_fade` seconds of show time. Similarity skip: when the base image has
changed less than `similarity_skip` (mean absolute difference, 0..1) since the last generated frame
and nothing else changed, the last result is shown again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..params import FrameParams
from . import LORA_PARAMS, PARAMS
from .model import Backend
from .motion import compose, to_grid
from .noise import WarpedNoise, slerp
from .warp import warp
from .worker import BaseFrame


def share_cpu(backend: Backend) -> int:
    """On a CPU backend, give torch half the cores and leave the rest to the frame loop (llvmpipe
    draws the scene and the tape on them). Measured on 2 shared cores, tiny test model at 512x384,
    engine alone: 4.5 fps with torch on both cores (its threads spin against everything else),
    130 fps on one."""
    if backend.device.type != "cpu":
        return torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    return torch.get_num_threads()


# the `steps` parameter's maximum, from its spec (generate/__init__.py): the noise and the engine's
# batch are sized for it
MAX_STEPS = int(next(spec for spec in PARAMS if spec.name == "steps").bounds[1])
# How much of `feedback` also holds the finished latent to the last one shown (moved along the
# motion): the start-latent blend alone cannot hold details the model re-dreams from fresh noise
# each frame (cells revealed as the camera walks in), and below 1 a fresh dream always shows through.
# Feedback and hold carry only what the dream added (its latent less its base's), never the old
# frame itself: the geometry is always this frame's. Carrying whole latents dragged the last
# frame's edges in wherever the latent-grid warp is off (depth edges, 4x4-pixel cells), which smeared
# walls into each other and lagged the picture behind its scene (default walk: detail 0.92x -> 0.97x).
HOLD = 0.75


def dreamed(backend: Backend, x0: torch.Tensor, base: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The picture finished latents `x0` give, (B, 3, H, W) in [-1, 1], not clamped: decoded, or for
    a backend that edits (model.py) its base `image` plus the change from the `base` latent: by the
    backend's change decoder where it has one, else both latents decoded in one call."""
    ae = backend.autoencoder
    if not backend.edits:
        return ae.decode(x0)
    if backend.change is not None:
        return image + backend.change(x0, base)
    both = ae.decode(torch.cat([x0, base]))
    return image + both[:len(x0)] - both[len(x0):]


class Conditioning:
    """Prompt → conditioning tensor, encoded once per prompt; a new prompt cross-fades in."""

    def __init__(self, conditioner, device: torch.device, dtype: torch.dtype, keep: int = 16) -> None:
        self.conditioner, self.device, self.dtype, self.keep = conditioner, device, dtype, keep
        self.cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.encodes = 0
        self.prompt: str | None = None
        self.source: torch.Tensor | None = None  # what the fade starts from, and goes to
        self.target: torch.Tensor | None = None
        self.start, self.fade = 0.0, 0.0

    def encode(self, prompt: str) -> torch.Tensor:
        cond = self.cache.get(prompt)
        if cond is None:
            cond = self.conditioner(prompt).to(self.device, self.dtype)
            self.encodes += 1
            self.cache[prompt] = cond
            while len(self.cache) > self.keep:
                self.cache.popitem(last=False)
        self.cache.move_to_end(prompt)
        return cond

    def progress(self, time: float) -> float:
        return 1.0 if self.fade <= 0 else min(max((time - self.start) / self.fade, 0.0), 1.0)

    def __call__(self, prompt: str, fade: float, time: float) -> torch.Tensor:
        if prompt != self.prompt:
            new = self.encode(prompt)
            old = None if self.target is None else self.at(time)
            self.source = old if old is not None and old.shape == new.shape else new
            self.prompt, self.target, self.start, self.fade = prompt, new, time, fade
        return self.at(time)

    def at(self, time: float) -> torch.Tensor:
        assert self.source is not None and self.target is not None  # set by the first prompt
        u = self.progress(time)
        return self.target if u >= 1.0 else torch.lerp(self.source, self.target, u)


@dataclass
class InFlight:
    """One frame on its way through the k steps."""

    frame: int
    x: torch.Tensor                # its latent at the current step's timestep
    timesteps: list[int]
    noise: torch.Tensor            # (MAX_STEPS, C, h, w): step i re-noises with noise[i]
    cond: torch.Tensor
    base: torch.Tensor             # the clean latent of its base image (a denoiser may read it)
    image: torch.Tensor            # its base image at the working size (an editing backend adds to it)
    motion: np.ndarray | None      # its motion on the latent grid, to carry older results forward
    size: tuple[int, int]          # (width, height) of the base image, to answer at
    step: int = 0
    x0: torch.Tensor | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.step >= len(self.timesteps)


class StreamEngine:
    """An Engine (see generate/worker.py) around a Backend. Runs on the generator's thread."""

    def __init__(self, backend: Backend, size: tuple[int, int] | None = None) -> None:
        self.backend, self.runtime = backend, backend.runtime
        self.ae, self.den = backend.autoencoder, backend.denoiser
        self.schedule = backend.denoiser.schedule
        self.size = size or backend.size
        f = self.ae.factor
        if self.size[0] % f or self.size[1] % f:
            raise ValueError(f"working size {self.size} is not a multiple of the autoencoder's {f}")
        self.grid = self.motion_grid = (self.size[0] // f, self.size[1] // f)
        self.cond = Conditioning(backend.conditioner, backend.device, backend.dtype)
        self.notes = backend.notes  # said once by the worker (a LoRA that could not play)
        self.noise = WarpedNoise()
        # base_frame: the frame the image last returned is a dream of (Stream Batch answers k-1 frames
        # late; a skipped frame answers with the last dream): the compositor carries it from there
        self.stats = {"generated": 0, "skipped": 0, "base_frame": -1}
        self.recover()

    def recover(self) -> None:
        """Forget everything carried between frames (after an error, or an out-of-memory)."""
        self.pipe: list[InFlight] = []
        # what the last finished latent added to its base latent, and where that is valid, on the newest frame
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None
        self.shown: torch.Tensor | None = None  # what the last finished latent added, on its own frame
        self.last: np.ndarray | None = None
        self.reference: tuple[torch.Tensor, tuple] | None = None  # input and settings last generated
        self.held: np.ndarray | None = None  # motion of skipped frames, still to apply
        self.noise.reset()
        if self.backend.device.type == "cuda":
            torch.cuda.empty_cache()

    def __call__(self, base: BaseFrame, fp: FrameParams) -> np.ndarray:
        with torch.inference_mode():
            return self._frame(base, fp)

    # -- one frame -----------------------------------------------------------------------------

    def _frame(self, base: BaseFrame, fp: FrameParams) -> np.ndarray:
        b = self.backend
        image = self._tensor(base.image)
        cut = base.cut or not self.noise.fields
        motion = to_grid(base.motion, self.grid)
        if self.held is not None and not cut:
            motion = self.held if motion is None else compose(self.held, motion)
        self.held = None
        cond = self.cond(str(fp["prompt"]), float(fp["prompt_fade"]), fp.time)
        steps = max(1, min(int(fp["steps"]), MAX_STEPS))
        timesteps = self.schedule.timesteps(float(fp["strength"]), steps)
        seed, morph = int(fp["seed"]), float(fp["seed_morph"])
        loras = tuple(float(fp[name]) for name in LORA_PARAMS) if b.loras is not None else ()
        settings = (timesteps, seed, morph, self.cond.prompt, self.cond.progress(fp.time) < 1.0,
                    bool(fp["stream_batch"]), base.image.shape, loras)
        if not cut and self.last is not None and self._similar(image, settings, float(fp["similarity_skip"])):
            self.held = motion
            self.stats["skipped"] += 1
            return self.last  # its base_frame stays that of the dream it is
        self.reference = (image, settings)
        if b.loras is not None:
            b.loras(loras)  # this frame's denoiser calls play the LoRAs at the knobs' values

        shape = (MAX_STEPS, self.ae.channels, self.grid[1], self.grid[0])
        fields = self.noise.advance(fp.frame, (seed, seed + 1), shape, motion, cut)
        eps = slerp(fields[seed], fields[seed + 1], morph).to(b.device, b.dtype)
        z = base_latent = self.ae.encode(image)
        amount = float(fp["feedback"])
        if cut:  # nothing from before a cut may leak into what follows: not feedback, not the pipe
            self.previous, self.pipe, self.last, self.shown = None, [], None, None
        elif self.previous is not None:
            self.previous = self._carry(self.previous, motion)
            latent, valid = self.previous
            if amount > 0:
                z = z + (amount * valid) * latent
        t0 = torch.tensor([timesteps[0]], device=b.device)
        frame = InFlight(fp.frame, self.schedule.noise(z, eps[:1], t0), timesteps, eps, cond, base_latent,
                         image, motion, (base.image.shape[1], base.image.shape[0]))

        if fp["stream_batch"]:
            self.pipe.append(frame)
            self._step(self.pipe)
        else:
            self.pipe = [frame]
            while not frame.done:
                self._step(self.pipe)
        done = [i for i, f in enumerate(self.pipe) if f.done]
        out = None
        if done:
            i = done[-1]
            newest = self.pipe[i]
            x0 = newest.x0
            assert x0 is not None  # done: denoised
            if self.shown is not None and amount > 0:  # hold: the output follows the last one along the motion
                held, inside = self._carry((self.shown, torch.ones_like(self.shown[:, :1])), newest.motion)
                newest.x0 = x0 = x0 + (HOLD * amount * inside) * (newest.base + held - x0)
            self.shown = x0 - newest.base
            latent, valid = self.shown, torch.ones_like(x0[:, :1])
            for later in self.pipe[i + 1:]:  # bring it onto the newest frame (batch mode lags)
                latent, valid = self._carry((latent, valid), later.motion)
            self.previous = (latent, valid)
            out = self._image(newest)
            self.last = out
            self.stats["generated"] += 1
            self.stats["base_frame"] = newest.frame
        self.pipe = [f for f in self.pipe if not f.done]
        if out is not None:
            return out
        if self.last is None:  # warming up: the scene itself, never raw latents
            self.stats["base_frame"] = fp.frame
            return base.image
        return self.last

    def _step(self, frames: list[InFlight]) -> None:
        """One denoising step for each frame in flight, as one batch."""
        dev = self.backend.device
        x = torch.cat([f.x for f in frames])
        t = torch.tensor([f.timesteps[f.step] for f in frames], device=dev)
        base = torch.cat([f.base for f in frames])
        out = self.den(x, t, torch.cat([f.cond for f in frames]), base=base)
        x0 = self.schedule.x0(x, out, t, self.den.prediction, base)
        for i, f in enumerate(frames):
            f.step += 1
            if f.done:
                f.x0 = x0[i:i + 1]
            else:
                nxt = torch.tensor([f.timesteps[f.step]], device=dev)
                f.x = self.schedule.noise(x0[i:i + 1], f.noise[f.step:f.step + 1], nxt)

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _carry(previous: tuple[torch.Tensor, torch.Tensor], motion: np.ndarray | None):
        """A latent and where it is valid, moved one frame along `motion` (one warp for both)."""
        latent, valid = previous
        moved, inside = warp(torch.cat([latent, valid.expand(latent.shape[0], -1, -1, -1)], 1), motion)
        return moved[:, :-1], moved[:, -1:] * inside

    def _similar(self, image: torch.Tensor, settings: tuple, threshold: float) -> bool:
        if threshold <= 0 or self.reference is None or self.last is None:
            return False
        ref, ref_settings = self.reference
        if settings != ref_settings or ref.shape != image.shape:
            return False
        return float((image - ref).abs().mean()) * 0.5 < threshold

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        """uint8 (H, W, 3) → (1, 3, h, w) in [-1, 1] at the working size."""
        b = self.backend
        x = torch.from_numpy(np.ascontiguousarray(image)).to(b.device).permute(2, 0, 1)[None].float()
        x = x / 127.5 - 1.0
        w, h = self.size
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        return x.to(b.dtype)

    def _image(self, frame: InFlight) -> np.ndarray:
        """A finished frame → uint8 (H, W, 3) at the base image's size: its decoded latent, or for a
        backend that edits (model.py) its base image plus the decoded change."""
        assert frame.x0 is not None  # a finished frame
        x = dreamed(self.backend, frame.x0, frame.base, frame.image).float()
        size = frame.size
        if x.shape[-2:] != (size[1], size[0]):
            x = F.interpolate(x, size=(size[1], size[0]), mode="bilinear", align_corners=False)
        x = ((x[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        return x.permute(1, 2, 0).contiguous().cpu().numpy()
