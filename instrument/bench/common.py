"""What every bench shares: a readback output, a summary of timings, a show on a realtime clock, and
the spawned process that plays a controller from outside the show's interpreter."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence

import numpy as np

from ..clock import RealtimeClock
from ..record.session import make_show
from ..render.gl import read_rgb
from ..show import Show


class Readback:
    """An output that reads the frame to memory, as a recorder does, and drops it."""

    def write(self, fbo, fp) -> None:
        read_rgb(fbo)

    def close(self) -> None:
        pass


def spawn(target, *args) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def summary(values: Sequence[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def past(t: float, clock: Callable[[], float] = time.time) -> Callable[[], bool]:
    """`show.run(until=...)`: true once `clock` passes `t`."""
    return lambda: clock() > t


def realtime_show(ctx, patch, size, fps: float, paced: bool, **kw) -> Show:
    return make_show(ctx, patch, size, clock=RealtimeClock(fps, paced=paced), **kw)


def alternate(show: Show, start: float, windows: int, window: float, count: Callable[[], int],
              switch: Callable[[bool], None] | None = None) -> tuple[list[list[float]], int]:
    """The loop's rate in each `window`-second window from wall-clock `start` on, quiet (even) and
    flooded (odd) apart, and `count()`'s growth over the flooded ones. On a shared machine the rate
    drifts by more than a flood costs over a few seconds, so one idle phase then one flooded phase
    would measure the drift; alternating windows compared by their medians do not. `switch(on)`, when
given, is called as each window starts (for what the show itself turns on and off)."""
    rates: list[list[float]] = [[], []]
    received = 0
    for k in range(windows):
        # each window's middle: 0.2 s margins keep the sender's start and stop out of it
        t0, t1 = start + k * window + 0.2, start + (k + 1) * window - 0.2
        if switch is not None:
            show.run(until=past(start + k * window))
            switch(bool(k % 2))
        show.run(until=past(t0))
        n0, c0, m0 = show.clock.frame, time.perf_counter(), count()
        show.run(until=past(t1))
        rates[k % 2].append((show.clock.frame - n0) / (time.perf_counter() - c0))
        if k % 2:
            received += count() - m0
    return rates, received
