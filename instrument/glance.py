"""The show at a glance: what the HUD shows, a few times a second and never per frame.

The loop only notes what it applied (`applied`); the rest is read from the show's public parts
when the HUD asks (`state`), so keeping the glance costs a frame nothing.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from .clock import Beat
from .ports import is_deck
from .render.hud import HudState, dream_line

MOVED_SECONDS = 4.0  # a parameter set by a control stays on the HUD's glance this long


class Glance:
    def __init__(self) -> None:
        # the last applied events and when each parameter was last set (by name, so bounded by the
        # registry); formatted only when the HUD asks
        self.recent: deque[tuple[str, str, Any]] = deque(maxlen=4)
        self.moved: dict[str, float] = {}
        self.dreams: deque[tuple[float, int]] = deque(maxlen=12)

    def applied(self, source: str, target: str, value: Any, command: bool, wall: float) -> None:
        self.recent.append((source, target, value))
        if not command:
            self.moved[target] = wall

    def state(self, show, extra: dict[str, str] | None = None) -> HudState:
        """One look at `show` (a Show: its frame, generator, outputs, clock, reporter, stats)."""
        now, fp = time.perf_counter(), show.fp
        dreaming = show.generator.name != "none"
        dreams = None
        if dreaming:
            gen = show.generator.stats()
            self.dreams.append((now, int(gen.get("done", 0))))
            (t0, d0), (t1, d1) = self.dreams[0], self.dreams[-1]
            dreams = (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0
        takes = [out.status() for out in show.outputs if is_deck(out)]
        beat = fp.beat if fp.beat is not None else Beat(tempo=fp.get("tempo", 120.0))  # before a frame
        recent = tuple(f"{src} {target} {value:.3g}" if isinstance(value, float) else f"{src} {target} {value}"
                       for src, target, value in self.recent)
        moved = tuple((name, fp[name]) for name, t in sorted(self.moved.items(), key=lambda kv: -kv[1])
                      if now - t < MOVED_SECONDS and name in fp)[:8]
        errors = tuple(msg[:80] for t, msg in list(show.reporter.recent) if time.monotonic() - t < 10.0)
        return HudState(
            patch=show.patch.name, frame=fp.frame, fps=show.stats.fps(),
            rate=show.clock.fps, rate_note=show.rate_note, dreams=dreams,
            dream=dream_line(show.stats.dream) if dreaming else "",
            recording=next((t for t in takes if t is not None), None),
            clock=beat.source, tempo=beat.tempo, beat=beat.beat, numerator=beat.numerator, recent=recent,
            moved=moved, params=tuple((name, fp[name]) for name in sorted(fp)), errors=errors,
            extra=extra or {})
