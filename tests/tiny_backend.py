"""A tiny Backend built from torch modules in a blink, no weights, no downloads: for the engine tests.

The autoencoder is an exact pixel (un)shuffle; the conditioner turns a prompt into a seeded vector;
the denoiser predicts the clean latent the way a trained one roughly does (a smoothed, rescaled
input, so the noise is mostly removed) plus a random-init conv net's detail that depends on the
noise and the prompt, which is what makes two seeds dream differently.
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
    factor, channels = 2, 12

    def __init__(self) -> None:
        self.encodes = 0

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        self.encodes += 1
        return F.pixel_unshuffle(image, 2) * SCALE

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latent / SCALE, 2)


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


def tiny_backend(size: tuple[int, int] = (128, 96), seed: int = 0) -> Backend:
    return Backend("tiny", PixelAutoencoder(), HashConditioner(), TinyDenoiser(seed=seed).eval(),
                   torch.device("cpu"), torch.float32, size)
