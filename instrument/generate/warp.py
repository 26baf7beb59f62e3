"""Warping the engine's latents along the scene's motion (torch; the engine's process only)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def warp(x: torch.Tensor, motion: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear backward warp of (B, C, h, w) by a (h, w, 2) map of its grid → (warped, valid),
    valid (1, 1, h, w) being 1 where the source lay inside the previous frame."""
    h, w = x.shape[-2:]
    if motion is None or not motion.any():
        return x, torch.ones((1, 1, h, w), dtype=x.dtype, device=x.device)
    m = torch.from_numpy(motion).to(device=x.device, dtype=torch.float32)
    ys, xs = torch.meshgrid(torch.arange(h, device=x.device, dtype=torch.float32),
                            torch.arange(w, device=x.device, dtype=torch.float32), indexing="ij")
    sx, sy = xs - m[..., 0], ys - m[..., 1]
    valid = (sx > -0.5) & (sx < w - 0.5) & (sy > -0.5) & (sy < h - 0.5)
    grid = torch.stack([(sx + 0.5) / w * 2 - 1, (sy + 0.5) / h * 2 - 1], -1)[None]
    out = F.grid_sample(x.float(), grid.expand(x.shape[0], -1, -1, -1), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.to(x.dtype), valid[None, None].to(x.dtype)
