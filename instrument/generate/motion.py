"""Motion maps for the generator: composing them, bringing them to the latent grid, warping by them.

A motion map is float32 (H, W, 2) in pixels of its own grid, image orientation (+x right, +y down),
and a backward map: the content at p in this frame was at p - motion(p) in the previous one. That
is what the scenes render (flipped from GL), so warping a previous frame onto the current one is a
gather, never a scatter, and nothing is left unwritten.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def compose(older: np.ndarray, newer: np.ndarray) -> np.ndarray:
    """The single backward map from the frame before `older` to `newer`'s frame (same grid):
    p came from q = p - newer(p), which came from q - older(q) (sampled at the nearest pixel)."""
    h, w = newer.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    qx = np.clip(np.floor(xs - newer[..., 0] + 0.5).astype(np.int64), 0, w - 1)
    qy = np.clip(np.floor(ys - newer[..., 1] + 0.5).astype(np.int64), 0, h - 1)
    return (newer + older[qy, qx]).astype(np.float32)


def to_grid(motion: np.ndarray | None, grid: tuple[int, int]) -> np.ndarray | None:
    """Motion at any size → motion on a (w, h) grid in that grid's cells: block means (a latent
    cell moves as the pixels it covers do on average), vectors scaled by the size ratio."""
    if motion is None:
        return None
    H, W = motion.shape[:2]
    w, h = grid
    m = torch.from_numpy(np.ascontiguousarray(motion, dtype=np.float32)).permute(2, 0, 1)[None]
    pooled = F.adaptive_avg_pool2d(m, (h, w))[0].permute(1, 2, 0).numpy()
    return (pooled * np.array([w / W, h / H], np.float32)).astype(np.float32)


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
