"""The generator's noise: seeded, pure, and carried along the scene's motion.

`gaussian(shape, seed, frame, purpose)` is a pure function: a torch.Generator seeded from a hash of
its arguments, so noise never depends on call order or wall-clock time.

`WarpedNoise` keeps one noise field per seed on the latent grid (the stream engine's field stacks
one noise per denoising step: the first noises the start, step i re-noises with the i-th, so no
step's noise is stuck to the screen either) and moves it with the geometry,
so texture the generator hallucinates from the noise travels with the walls instead of staying
stuck to the screen. A field must stay independent N(0, 1) per cell, or the denoiser sees
something it was never trained on (interpolating noise values blurs it: lower variance,
correlated neighbours). So whole cells move, never fractions of them:

- each destination cell q takes the source cell nearest to where its content was, q - motion(q);
- every cell also carries a sub-cell residual (where its noise "really" is), so motion slower than
  a cell per frame still accumulates and moves the noise a whole cell once it adds up;
- a source cell claimed by several destinations (the image expands) goes to the one nearest it;
  the others, and cells whose source lies outside the previous frame (newly revealed), get fresh
  noise from (seed, frame, cell).

Selection depends on motion and residuals only, never on noise values, so the field stays i.i.d.
N(0, 1) however long the camera moves. A cut resets the field. All seeds share one selection, so
`slerp` between the fields of `seed` and `seed + 1` (the `seed_morph` knob) moves just as well.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch


def gaussian(shape: tuple[int, ...], seed: int, frame: int, purpose: str) -> torch.Tensor:
    """Standard normal float32 noise (on the CPU, so every device gets the same numbers)."""
    digest = hashlib.blake2b(repr((int(seed), int(frame), purpose)).encode(), digest_size=8).digest()
    g = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
    return torch.randn(shape, generator=g, dtype=torch.float32)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation: keeps the norm (and so the variance) of Gaussian noise, which a
    straight lerp would shrink by up to 1/sqrt(2) halfway. Exact at t = 0 and t = 1."""
    if t <= 0.0:
        return a
    if t >= 1.0:
        return b
    cos = torch.dot(a.flatten().double(), b.flatten().double()) / (a.double().norm() * b.double().norm())
    theta = math.acos(float(cos.clamp(-1.0, 1.0)))
    if theta < 1e-4:
        return a + t * (b - a)
    s = math.sin(theta)
    return (math.sin((1 - t) * theta) / s) * a + (math.sin(t * theta) / s) * b


class WarpedNoise:
    """Noise fields of shape `shape` (…, h, w) for a few seeds, moved by whole cells each frame."""

    def __init__(self) -> None:
        self.shape: tuple[int, ...] | None = None
        self.fields: dict[int, torch.Tensor] = {}
        self.residual = np.zeros((0, 0, 2))
        self.carried = 0.0  # fraction of cells carried over (not fresh) by the last move

    def reset(self) -> None:
        self.shape, self.fields = None, {}

    def advance(self, frame: int, seeds: tuple[int, ...], shape: tuple[int, ...],
                motion: np.ndarray | None, cut: bool = False) -> dict[int, torch.Tensor]:
        """The fields of `seeds` at `frame`: last frame's moved by `motion` ((h, w, 2) backward map in
        cells, +x right, +y down), new seeds and a cut or new shape start from fresh noise."""
        h, w = shape[-2:]
        if cut or shape != self.shape:
            self.shape, self.fields = shape, {}
            self.residual = np.zeros((h, w, 2))
        elif motion is not None and motion.any():
            src, fresh = self._select(motion)
            # one gather and one select per seed (fancy indexing on both sides cost twice as much:
            # 35 % of this method in a profile of the engine)
            index, mask = torch.from_numpy(src), torch.from_numpy(fresh)
            moved = {}
            for seed in seeds:
                old = self.fields.get(seed)
                if old is None:
                    continue
                flat = old.reshape(-1, h * w).index_select(1, index)
                new = gaussian(shape, seed, frame, "noise").reshape(-1, h * w)
                moved[seed] = torch.where(mask, new, flat).reshape(shape)
            self.fields = moved
        self.fields = {s: self.fields[s] if s in self.fields else gaussian(shape, s, frame, "noise")
                       for s in seeds}
        return self.fields

    def _select(self, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source cell (flat index) of every destination cell and which ones need fresh noise."""
        h, w = motion.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        q = np.stack([xs, ys], -1).astype(np.float64)
        p = q - motion  # where each cell's content was
        near = np.floor(p + 0.5).astype(np.int64)
        nx, ny = np.clip(near[..., 0], 0, w - 1), np.clip(near[..., 1], 0, h - 1)
        s = np.floor(p - self.residual[ny, nx] + 0.5).astype(np.int64)  # nearest noise sample
        inside = (s[..., 0] >= 0) & (s[..., 0] < w) & (s[..., 1] >= 0) & (s[..., 1] < h)
        sx, sy = np.clip(s[..., 0], 0, w - 1), np.clip(s[..., 1], 0, h - 1)
        residual = np.clip(np.stack([sx, sy], -1) + self.residual[sy, sx] - p, -0.5, 0.5)
        src = (sy * w + sx).reshape(-1)
        # each source cell goes to one destination only: the one it lands nearest
        order = np.lexsort(((residual**2).sum(-1).reshape(-1), src))
        first = np.ones(order.size, bool)
        first[1:] = src[order][1:] != src[order][:-1]
        keep = np.zeros(order.size, bool)
        keep[order[first]] = True
        keep &= inside.reshape(-1)
        residual.reshape(-1, 2)[~keep] = 0.0
        self.residual = residual
        self.carried = float(keep.mean())
        return src, ~keep
