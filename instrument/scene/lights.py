"""Fluorescent tubes: which hum, which are dead, which stutter, and how bright each is this frame.

Computed once per frame on the CPU for a window of tubes around the camera and handed to the
shader as a uniform array, so shading a pixel costs a load per nearby tube instead of a handful of
hashes (on llvmpipe a uniform load is much cheaper than a texture fetch; measured). A pure function
of (level seed, tube id, time, flicker).
"""

from __future__ import annotations

import numpy as np

WINDOW = 32  # tubes per side of the window around the camera (even: the shader packs four a vec4)

_M1, _M2, _M3 = np.uint32(747796405), np.uint32(2891336453), np.uint32(277803737)


def _pcg(v: np.ndarray) -> np.ndarray:
    s = v * _M1 + _M2
    w = ((s >> ((s >> np.uint32(28)) + np.uint32(4))) ^ s) * _M3
    return (w >> np.uint32(22)) ^ w


def hash01(x: np.ndarray, z: np.ndarray, salt: int, seed: int) -> np.ndarray:
    """Uniform in [0, 1) per integer (x, z), salt and seed: the same hash as common.glsl's."""
    h = (x.astype(np.uint32) * np.uint32(1597334677) + z.astype(np.uint32) * np.uint32(3812015801)
         + np.uint32((salt * 2654435761) & 0xFFFFFFFF) + np.uint32(seed & 0xFFFFFFFF))
    return _pcg(h).astype(np.float64) / 4294967296.0


def window_origin(x: float, z: float, grid: tuple[float, float],
                  offset: tuple[float, float]) -> tuple[int, int]:
    """Id of the window's first tube, so the camera stands in the middle of the window."""
    return (int(np.floor((x - offset[0]) / grid[0])) - WINDOW // 2,
            int(np.floor((z - offset[1]) / grid[1])) - WINDOW // 2)


def tubes(origin: tuple[int, int], seed: int, time: float, flicker: float) -> np.ndarray:
    """float32 (WINDOW rows along z, WINDOW columns along x): brightness of each tube now."""
    with np.errstate(over="ignore"):
        ix = (np.arange(WINDOW, dtype=np.int64) + origin[0])[None, :].repeat(WINDOW, 0)
        iz = (np.arange(WINDOW, dtype=np.int64) + origin[1])[:, None].repeat(WINDOW, 1)
        kind = hash01(ix, iz, 101, seed)
        b = 0.88 + 0.24 * hash01(ix, iz, 102, seed)
        b[kind < 0.06] = 0.0
        stutters = (kind >= 0.06) & (kind < 0.06 + 0.3 * flicker)
        rate = 5.0 + 14.0 * hash01(ix, iz, 103, seed)
        slot = np.floor(time * rate).astype(np.int64)
        burst = hash01(slot >> 4, ix * 31 + iz, 104, seed)
        off = hash01(slot, ix * 17 - iz, 105, seed)
        b[stutters & (burst < 0.5) & (off < 0.55)] *= 0.08
        hum = hash01(np.array([int(time * 60.0)]), np.array([7]), 106, seed)[0]
    return (b * (1.0 - 0.05 * flicker * hum)).astype("f4")
