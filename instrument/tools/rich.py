"""What the dream adds to a frame, drawn from its own noise: the builtin model's teacher.

The live scene cannot afford damp stains, light that pools and falls off, grime, a tube's colour
drifting warm or cold. Training shows the denoiser each frame twice: as the scene renders it (its
clean `base`, which it always sees) and richened by fields cut from the very noise it is given
(Gaussian-blurred channels of eps, each at its own scale). What to add is then a function of what
the model sees, so a single step learns it sharp instead of averaging over guesses (the blur that
MSE gives a guess), and at play time the seed chooses the stains and the light, and they stay on the
walls because the stream engine carries the noise along the motion.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

# (noise channel, blur sigma in latent cells): each field has unit variance before it is shaped
STAIN, LIGHT, GRIME, WARMTH = (0, 2.5), (1, 5.0), (2, 0.9), (3, 8.0)
STAIN_COLOUR = (0.55, 0.45, 0.25)   # damp: multiplies linear light


def _kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def field(eps: torch.Tensor, channel: int, sigma: float, size: tuple[int, ...]) -> torch.Tensor:
    """One noise channel blurred at `sigma` cells, scaled to unit variance, at `size` (h, w)."""
    k = _kernel(sigma).to(eps.device)
    x = eps[:, channel:channel + 1].float()
    r = (len(k) - 1) // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1))
    x = x / float(k.pow(2).sum())     # white noise blurred twice (separably) has std sum(k^2)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def _smoothstep(a: float, b: float, x: torch.Tensor) -> torch.Tensor:
    t = ((x - a) / (b - a)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def richen(images: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) frames in [-1, 1] and their latent noise (B, C, h, w) → the frames as the dream
    should see them: light pooled and fallen off, warmer or colder, damp stains with darker tide
    lines at their rims, grime. The amounts were chosen on a held-out walk with the noise carried as
    the engine carries it: tide lines give the detail (1.5x the scene's Laplacian energy), while
    light that swings by a large area flickers (0.45 EV doubled the walk's frame-to-frame change;
    0.1 EV adds 1.4x with everything else)."""
    size = images.shape[-2:]
    lin = ((images.float() + 1) * 0.5).clamp(0, 1) ** 2.2
    lin = lin * torch.exp2(0.1 * field(eps, *LIGHT, size).clamp(-3, 3))
    warm = 0.12 * field(eps, *WARMTH, size).clamp(-3, 3)
    lin = lin * torch.cat([1 + warm, torch.ones_like(warm), 1 - warm], 1)
    damp = field(eps, *STAIN, size)
    stain = 0.5 * _smoothstep(0.9, 1.7, damp)
    colour = torch.tensor(STAIN_COLOUR, device=images.device).view(1, 3, 1, 1)
    lin = lin * (1 - stain + stain * colour)
    rim = _smoothstep(0.7, 0.9, damp) * (1 - _smoothstep(0.9, 1.1, damp))   # where the water stopped
    lin = lin * (1 - 0.6 * rim)
    grime = 0.5 * _smoothstep(1.1, 2.2, field(eps, *GRIME, size))
    lin = lin * (1 - grime * torch.tensor((0.75, 0.8, 0.9), device=images.device).view(1, 3, 1, 1))
    return (lin.clamp(0, 1) ** (1 / 2.2)) * 2 - 1
