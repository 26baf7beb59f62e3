"""What every bench shares: a readback output, a summary of timings, a show on a realtime clock, and
the spawned process that plays a controller from outside the show's interpreter."""

from __future__ import annotations

import multiprocessing

import numpy as np

from ..clock import RealtimeClock
from ..render.gl import read_rgb
from ..show import Show


class Readback:
    """An output that reads the frame to memory, as a recorder does, and drops it."""

    def write(self, fbo, fp) -> None:
        read_rgb(fbo)

    def close(self) -> None:
        pass


def _sender(target, *args) -> multiprocessing.Process:
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def _summary(values: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def _show(ctx, patch, size, fps: float, paced: bool, **kw) -> Show:
    return Show(ctx, patch, size, clock=RealtimeClock(fps, paced=paced), **kw)
