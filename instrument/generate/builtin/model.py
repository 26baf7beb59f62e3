"""The builtin model's networks: a tiny autoencoder and a small UNet denoiser, sized for 2 CPU cores.

Both work at 1/4 of the image: the encoder folds 4x4 pixel blocks into channels (pixel unshuffle)
before its first conv and the decoder unfolds them after its last, so no conv ever runs at full
resolution. That is what buys ≥ 30 fps on a laptop CPU, and VHS keeps little more detail than
that anyway (≈ 333 luma lines across). The denoiser is a two-level UNet on the latents,
conditioned on the timestep (sinusoidal) and the level (a learned class embedding) by FiLM.

Since version 2 the denoiser also sees the clean latent of the frame it dreams on (`base`, stacked
with its input): the geometry is given, never guessed from a noisy latent, so one step keeps the
scene's edges where they are, and the noise only has to choose what the dream adds (stains, light,
grime: see tools/rich.py). A denoiser that guessed the geometry back from noise regressed to its
mean, which is blur: that is what smeared walls into each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

M = TypeVar("M", bound=nn.Module)


def channels_last(module: M, device: torch.device) -> M:
    """`module` on `device`, its weights channels-last (measured: 1.1-6x faster convs on CPU)."""
    # Module.to takes memory_format (torch's docs); the overloads in its stubs leave it out
    return module.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]


def _zero(conv: nn.Conv2d) -> None:
    """A layer that starts as nothing: a residual branch adds 0 until it learns otherwise."""
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


@dataclass(frozen=True)
class Config:
    width: int = 256          # working size the model plays at (4:3 like tape)
    height: int = 192
    factor: int = 4           # pixels per latent cell, per side
    latent: int = 8           # latent channels
    ae_ch: int = 64           # autoencoder width
    ae_blocks: int = 2        # residual blocks in the decoder (the encoder has one fewer)
    unet_ch: int = 48         # denoiser width at latent resolution; twice that one level down
    classes: int = 2          # levels the denoiser knows ("level 0", "level 1")
    emb: int = 128            # timestep + class embedding width
    T: int = 1000             # training timesteps
    # "edit" (since session 18): x0 = base + what the network draws, so the base passes exactly; a
    # network asked for x0 or v outright must copy the base through its convolutions, and what it
    # copied imprecisely was the base's finest detail (the dream erased a little wherever it added)
    prediction: str = "edit"
    shift: float = 4.0        # playing schedule = training schedule with SNR / shift^2 (see shifted)
    base: bool = True         # the denoiser sees the clean base latent beside its noisy input
    change: int = 32          # width of the change decoder (0: none, the engine decodes both latents)
    # the dream measured to hold with its convolutions in int8 (generate/accel/quantize.py) on a
    # CPU (`noclip bench --only dream` with NOCLIP_ACCEL=onnxruntime NOCLIP_CPU_PRECISION=int8): set
    # in config.json by whoever measured it, so `--accel auto` may choose int8
    int8: bool = False
    version: int = 2

    def to_dict(self) -> dict:
        return asdict(self)


def cosine_alphas(T: int, s: float = 0.008) -> torch.Tensor:
    """alphas_cumprod of the cosine schedule (Nichol & Dhariwal), ending just short of pure noise."""
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    ab = (f / f[0])[1:]
    return ab.clamp(min=1e-4)


def shifted(alphas: torch.Tensor, shift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The schedule the model plays on, and where each of its timesteps lies on the training one.

    Dividing the signal-to-noise ratio by shift^2 (as SD3 does for resolution) puts more noise at
    every timestep, so a given `strength` dreams further from the base: the seed gets room to
    choose. The network only knows noise levels by its timestep input, so it plays the shifted
    schedule exactly by reading the training timestep of the same noise level (fractional)."""
    snr = alphas / (1 - alphas) / shift**2
    played = snr / (1 + snr)
    steps = torch.arange(len(alphas), dtype=torch.float64)
    where = np.interp(-played.numpy(), -alphas.numpy(), steps.numpy())
    return played, torch.from_numpy(where).float()


class Res(nn.Module):
    """conv-act-conv with a skip; optional FiLM (scale, shift) from an embedding."""

    def __init__(self, ch: int, emb: int = 0) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)
        self.film = nn.Linear(emb, 2 * ch) if emb else None
        _zero(self.c2)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        h = F.silu(self.c1(x))
        if self.film is not None:
            scale, shift = self.film(e)[:, :, None, None].chunk(2, 1)
            h = h * (1 + scale) + shift
        return x + self.c2(h)


class Encoder(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.f = c.factor
        self.stem = nn.Conv2d(3 * c.factor**2, c.ae_ch, 3, padding=1)
        self.blocks = nn.ModuleList(Res(c.ae_ch) for _ in range(max(c.ae_blocks - 1, 0)))
        self.out = nn.Conv2d(c.ae_ch, c.latent, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.stem(F.pixel_unshuffle(x, self.f)))
        for b in self.blocks:
            h = b(h)
        return self.out(h)


class Decoder(nn.Module):
    def __init__(self, c: Config) -> None:
        super().__init__()
        self.f = c.factor
        self.stem = nn.Conv2d(c.latent, c.ae_ch, 3, padding=1)
        self.blocks = nn.ModuleList(Res(c.ae_ch) for _ in range(c.ae_blocks))
        self.out = nn.Conv2d(c.ae_ch, 3 * c.factor**2, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.stem(z))
        for b in self.blocks:
            h = b(h)
        return F.pixel_shuffle(self.out(F.silu(h)), self.f)


class Change(nn.Module):
    """What the picture gains between two latents, D(x) - D(base), in one pass at latent resolution
    (then unfolded like the decoder's): an engine that edits its base image adds this instead of
    decoding both latents, which cost half of each dream. The change is the dream's stains, light
    and grime, coarse by nature; the base's own detail stays the base image's."""

    def __init__(self, c: Config) -> None:
        super().__init__()
        self.f = c.factor
        self.stem = nn.Conv2d(2 * c.latent, c.change, 3, padding=1)
        self.block = Res(c.change)
        self.out = nn.Conv2d(c.change, 3 * c.factor**2, 3, padding=1)

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.stem(torch.cat([x - base, base], 1)))
        return F.pixel_shuffle(self.out(F.silu(self.block(h))), self.f)


class UNet(nn.Module):
    """Two levels (latent size and half of it), FiLM-conditioned residual blocks."""

    def __init__(self, c: Config) -> None:
        super().__init__()
        ch, e = c.unet_ch, c.emb
        self.emb_dim = e
        self.t_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
        self.classes = nn.Embedding(c.classes + 1, e)  # the last row: unconditional
        self.base = c.base
        self.inp = nn.Conv2d(c.latent * (2 if c.base else 1), ch, 3, padding=1)
        self.d1 = Res(ch, e)
        self.down = nn.Conv2d(ch, 2 * ch, 3, stride=2, padding=1)
        self.m1 = Res(2 * ch, e)
        self.m2 = Res(2 * ch, e)
        self.up = nn.Conv2d(2 * ch, 4 * ch, 1)   # → pixel shuffle x2 → ch
        self.u1 = Res(ch, e)
        self.out = nn.Conv2d(ch, c.latent, 3, padding=1)
        _zero(self.out)

    def timestep_embedding(self, t: torch.Tensor) -> torch.Tensor:
        half = self.emb_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        a = t.float()[:, None] * freqs[None]
        return torch.cat([a.sin(), a.cos()], 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                base: torch.Tensor | None = None) -> torch.Tensor:
        e = F.silu(self.t_mlp(self.timestep_embedding(t)) + cond)
        if self.base:
            x = torch.cat([x, x if base is None else base], 1)   # no base: the input stands in for it
        h1 = self.d1(self.inp(x), e)
        h = self.m2(self.m1(self.down(F.silu(h1)), e), e)
        h = F.pixel_shuffle(self.up(F.silu(h)), 2) + h1
        return self.out(F.silu(self.u1(h, e)))
