"""A tiny Backend built from torch modules in a blink, no weights, no downloads: for the engine tests.

The autoencoder is an exact pixel (un)shuffle (or, for timing, SD's geometry: 4 channels at 1/8);
the conditioner turns a prompt into a seeded vector. The denoiser behaves in the one way the tests
need like a trained one: it removes most of the noise (a local mean of the noisy latent, rescaled)
and pulls the result towards a "manifold" of saturated images (a tanh), so structure already in
its input (the previous output fed back) wins over the noise, while the noise still decides where
the input is undecided (which is why two seeds dream differently). A random-init conv net adds a
little prompt-dependent detail.
"""

from __future__ import annotations

import hashlib
import time

import torch
import torch.nn.functional as F
from torch import nn

from instrument.generate.model import Backend, Schedule

SCALE = 2.0
GAIN, DETAIL, BLUR = 4.0, 0.05, 5


class PixelAutoencoder:
    def __init__(self, factor: int = 2) -> None:
        self.factor, self.channels = factor, 3 * factor * factor

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(image, self.factor) * SCALE

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latent / SCALE, self.factor)


class PoolAutoencoder:
    """SD's latent geometry (4 channels at 1/8 size) for timing, not for looks: block means and
    their luminance, decoded by repeating the blocks."""

    channels = 4

    def __init__(self, factor: int = 8) -> None:
        self.factor = factor

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        rgb = F.avg_pool2d(image, self.factor)
        return torch.cat([rgb, rgb.mean(1, keepdim=True)], 1) * SCALE

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return F.interpolate(latent[:, :3] / SCALE, scale_factor=self.factor, mode="nearest")


class HashConditioner:
    def __init__(self, dim: int = 16) -> None:
        self.dim, self.calls = dim, []

    def __call__(self, prompt: str) -> torch.Tensor:
        self.calls.append(prompt)
        seed = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "little") >> 1
        return torch.randn((1, self.dim), generator=torch.Generator().manual_seed(seed))


class TinyDenoiser(nn.Module):
    prediction = "sample"

    def __init__(self, channels: int = 12, cond_dim: int = 16, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.schedule = Schedule.scaled_linear()
        self.inp = nn.Conv2d(channels, 32, 3, padding=1)
        self.cond = nn.Linear(cond_dim, 32)
        self.out = nn.Conv2d(32, channels, 3, padding=1)
        self.delay = 0.0
        self.fail = False
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("CUDA out of memory (injected)")
        if self.delay:
            time.sleep(self.delay)
        self.batches.append(x.shape[0])
        a, _ = self.schedule.ab(t, x)
        u = F.avg_pool2d(x, BLUR, stride=1, padding=BLUR // 2, count_include_pad=False) / (a * SCALE)
        h = F.silu(self.inp(x) + self.cond(cond)[:, :, None, None])
        return SCALE * (torch.tanh(GAIN * u) + DETAIL * torch.tanh(self.out(h)))


def tiny_backend(size: tuple[int, int] = (128, 96), seed: int = 0, factor: int = 2) -> Backend:
    """factor 2 for the tests (exact, fine cells on small frames); 8 has SD's latent geometry."""
    ae = PixelAutoencoder(factor) if factor == 2 else PoolAutoencoder(factor)
    return Backend("tiny", ae, HashConditioner(), TinyDenoiser(ae.channels, seed=seed).eval(),
                   torch.device("cpu"), torch.float32, size)
