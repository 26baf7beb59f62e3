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
import os
import signal
import time
from pathlib import Path

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

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                base: torch.Tensor | None = None) -> torch.Tensor:
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



class _Counted(TinyDenoiser):
    """A TinyDenoiser that counts its calls: from call `slow_from` on each sleeps `pause` s (and
    touches $TINY_SLOW_MARK, so a test knows a slow call is under way); call `fail_at` raises once;
    call `die_at` kills its own process with SIGKILL, as the out-of-memory killer would."""

    slow_from, fail_at, die_at, pause = 0, -1, -1, 0.0

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                base: torch.Tensor | None = None) -> torch.Tensor:
        calls = getattr(self, "calls", 0)
        self.calls = calls + 1
        if calls == self.fail_at:
            raise RuntimeError("CUDA out of memory (injected)")
        if calls == self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if calls >= self.slow_from and self.pause:
            if os.environ.get("TINY_SLOW_MARK"):
                Path(os.environ["TINY_SLOW_MARK"]).touch()
            time.sleep(self.pause)
        return super().forward(x, t, cond)


def load_named(name: str, device: str | None = None) -> Backend:
    """`load_backend` for tests, by model name, so that a generator process (which cannot see a
    monkeypatch) loads the same thing: it is passed to the child by reference and called there.
    Names pass for hub ids (`noclip-tests/...`, never fetched: this loader answers first):
    `tiny`; `tiny-slow-S[-N]`: S seconds a denoiser call (from call N on); `tiny-fail-N`: call N
    (from 0) raises an injected out-of-memory error; `tiny-die-N`: call N kills the process;
    `tiny-broken`: does not load. The dreams are the tiny backend's, whatever the name."""
    kind, *args = name.rpartition("/")[2].split("-")[1:] or [""]
    if kind == "broken":
        raise FileNotFoundError(f"{name}: no weights here (injected)")
    backend = tiny_backend()
    if kind:
        den = _Counted(backend.autoencoder.channels).eval()  # seed 0: the same weights
        if kind == "slow":
            den.pause = float(args[0])
            den.slow_from = int(args[1]) if len(args) > 1 else 0
        elif kind == "fail":
            den.fail_at = int(args[0])
        elif kind == "die":
            den.die_at = int(args[0])
        else:
            raise ValueError(f"no tiny model {name!r}")
        backend = Backend("tiny", backend.autoencoder, backend.conditioner, den, backend.device,
                          backend.dtype, backend.size)
    return backend
