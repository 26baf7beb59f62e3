"""Motion maps for the generator: composing them and bringing them to the latent grid (warping by
them is the engine's: generate/warp.py).

A motion map is float32 (H, W, 2) in pixels of its own grid, image orientation (+x right, +y down),
and a backward map: the content at p in this frame was at p - motion(p) in the previous one. That
is what the scenes render (flipped from GL), so warping a previous frame onto the current one is a
gather, never a scatter, and nothing is left unwritten.

numpy only: the show's process prepares each frame's motion for a generator in another process, and
torch there cost a spinning OpenMP team (a third of a core of the show's two, measured by perf on
the default show) and its import.
"""

from __future__ import annotations

import numpy as np


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
    cell moves as the pixels it covers do on average; cell i covers pixels floor(i*H/h) up to
    ceil((i+1)*H/h), as torch's adaptive average pooling does), vectors scaled by the size ratio."""
    if motion is None:
        return None
    H, W = motion.shape[:2]
    w, h = grid
    table = np.zeros((H + 1, W + 1, 2))   # summed-area table: any block's sum in four reads
    table[1:, 1:] = np.cumsum(np.cumsum(motion, 0, dtype=np.float64), 1)
    ys, xs = _windows(H, h), _windows(W, w)
    (y0, y1), (x0, x1) = ys, xs
    sums = (table[y1][:, x1] - table[y0][:, x1] - table[y1][:, x0] + table[y0][:, x0])
    area = ((y1 - y0)[:, None] * (x1 - x0)[None, :])[..., None]
    return (sums / area * np.array([w / W, h / H])).astype(np.float32)


def _windows(n: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(cells)
    return (i * n) // cells, -((-(i + 1) * n) // cells)
