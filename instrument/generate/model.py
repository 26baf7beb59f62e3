"""The three small interfaces every diffusion backend fills, and the one noise schedule they share.

The stream engine (`generate/stream.py`) knows nothing of diffusers or of our builtin model: it
encodes the base image with an `Autoencoder`, asks a `Conditioner` for what the prompt means, and
denoises with a `Denoiser` on the timesteps of a `Schedule`. A backend is these three plus a name.
Tensors are torch, NCHW; images are RGB in [-1, 1]; latents are already scaled to roughly unit
variance (the backend folds in e.g. SD's 0.18215), so the engine can mix them with unit noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

# what a denoiser outputs: the noise, DDPM's v, the clean latent, or rectified flow's velocity
# (eps - x0: SD3's transformer, on a `Schedule.flow`)
PREDICTIONS = ("epsilon", "v_prediction", "sample", "flow", "edit")


class Autoencoder(Protocol):
    factor: int     # image pixels per latent cell, per side (8 for SD's VAE and TAESD)
    channels: int   # latent channels

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, channels, H/factor, W/factor), unit-variance scale."""

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """The inverse: latents → (B, 3, H, W) in [-1, 1] (not clamped)."""


class Conditioner(Protocol):
    def __call__(self, prompt: str) -> torch.Tensor:
        """What the denoiser is asked to see, as one tensor with a leading batch of 1 (text
        embeddings, a class embedding, …). Tensors of one conditioner can be blended linearly,
        which is how a new prompt cross-fades in."""


class Denoiser(Protocol):
    prediction: str   # one of PREDICTIONS: what the network outputs
    schedule: Schedule

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C, h, w) noisy latents; t: (B,) integer timesteps; cond: (B, ...) → (B, C, h, w).
        base: the clean latents of the frames dreamed on; a denoiser trained to read them (the
        builtin one) keeps the scene's geometry from them, the others ignore them."""


@dataclass(frozen=True)
class Backend:
    name: str
    autoencoder: Autoencoder
    conditioner: Conditioner
    denoiser: Denoiser
    device: torch.device
    dtype: torch.dtype
    size: tuple[int, int]   # the working size (width, height) the models play at
    # The denoiser keeps the base's geometry (it reads `base`), so the engine may answer the base image
    # plus what the dream changed (decoded dream less the decoded base): the decoder's own softness
    # cancels instead of blurring the picture (the builtin autoencoder keeps a tenth of a frame's
    # Laplacian energy at 256x192). A model that moves the geometry would leave ghosts this way.
    edits: bool = False
    # An editing backend's cheap decoder of that change, (x0, base latents) -> the picture's change
    # (the builtin's Change: a tenth of decoding both); None: both are decoded.
    change: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # what runs the parts, in words for the log and the HUD: torch, or the engines' runtime (accel/)
    runtime: str = "torch"
    # the picture holds with its convolutions in int8 on a CPU (accel/quantize.py; measured per model: the
    # builtin's dream figures unchanged, MODEL_CARD.md), so `--accel auto` may choose it
    int8: bool = False
    # the live LoRAs' scales setter (lora1, lora2, ... values; generate/lora.py), None without LoRAs
    loras: Callable[[tuple[float, ...]], None] | None = None
    # what loading noticed and the show should say once (a LoRA that could not play, and why)
    notes: tuple[str, ...] = ()


class Schedule:
    """The noise levels of a model's T training timesteps, and the few-step, LCM-style sampling on
    them: x0 is predicted at each step and re-noised to the next timestep. A noisy latent at
    timestep t is signal(t) * x0 + sigma(t) * eps: DDPM's family from its alphas_cumprod (sqrt(ab),
    sqrt(1 - ab)), or rectified flow (`flow`: 1 - sigma, sigma), SD3's."""

    def __init__(self, alphas_cumprod: torch.Tensor) -> None:
        self.alphas_cumprod = alphas_cumprod.to(torch.float64)
        self.T = len(alphas_cumprod)
        self.signal, self.sigma = self.alphas_cumprod.sqrt(), (1 - self.alphas_cumprod).sqrt()

    @classmethod
    def scaled_linear(cls, T: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> Schedule:
        """Stable Diffusion's schedule (diffusers' "scaled_linear")."""
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, T, dtype=torch.float64) ** 2
        return cls(torch.cumprod(1.0 - betas, 0))

    @classmethod
    def flow(cls, T: int = 1000, shift: float = 3.0) -> Schedule:
        """Rectified flow as SD3 and SD3.5 train it (diffusers' FlowMatchEulerDiscreteScheduler):
        sigma of timestep t is (t + 1) / T, shifted towards noise by `shift` (shift s / (1 + (shift
        - 1) s)); the latent goes straight from x0 to the noise. `alphas_cumprod` is the DDPM
        schedule of the same signal-to-noise ratios (the flow latent divided by sqrt(signal^2 +
        sigma^2)), for what reads one; the flow's own levels are `signal` and `sigma`."""
        s = torch.arange(1, T + 1, dtype=torch.float64) / T
        sigma = shift * s / (1 + (shift - 1) * s)
        signal = 1 - sigma
        sched = cls(signal**2 / (signal**2 + sigma**2))
        sched.signal, sched.sigma = signal, sigma
        return sched

    def timesteps(self, strength: float, steps: int) -> list[int]:
        """Descending timesteps for img2img: the first at `strength` of the way to pure noise,
        the rest evenly below it (strength 0.5, 2 steps → [499, 249] with T = 1000)."""
        steps = max(1, int(steps))
        top = max(1, min(self.T - 1, round(strength * (self.T - 1))))
        return [max(0, round(top * (steps - i) / steps)) for i in range(steps)]

    def ab(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """signal(t) and sigma(t) (sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t) for DDPM's family),
        shaped to broadcast over `like`."""
        shape = (-1,) + (1,) * (like.dim() - 1)
        a, s = (v.to(like.device)[t.long()].to(like.dtype).reshape(shape) for v in (self.signal, self.sigma))
        return a, s

    def noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, s = self.ab(t, x0)
        return a * x0 + s * eps

    def x0(self, x: torch.Tensor, out: torch.Tensor, t: torch.Tensor, prediction: str,
           base: torch.Tensor | None = None) -> torch.Tensor:
        """The clean latent implied by the network's output at timestep t (for an `edit`, what it adds
        to the clean latent of the frame it dreams on, `base`)."""
        if prediction == "edit":
            if base is None:
                raise ValueError("an edit is of a base latent: none was given")
            return base + out
        a, s = self.ab(t, x)
        if prediction == "epsilon":
            return (x - s * out) / a
        if prediction == "v_prediction":
            return a * x - s * out
        if prediction == "sample":
            return out
        if prediction == "flow":  # out = eps - x0, and x = (1 - s) x0 + s eps
            return x - s * out
        raise ValueError(f"unknown prediction type {prediction!r} (have: {', '.join(PREDICTIONS)})")
