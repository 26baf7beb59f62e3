"""Where a show starts afresh: the frames at which its scene cuts (a level change, a new scene),
found by fast-forwarding the controls over the show (Show.skip: no drawing, no dreaming, about
0.24 ms a frame).

Why: a frame depends on every frame before it, and most of what carries (the generator's fed-back
latents, its warped noise field, its frames in flight, the reprojection ring) forgets slowly or
never to the same bits. A cut drops all of that at once (generate/stream.py: feedback, noise, the
pipe; render/reproject.py: nothing is carried across it). So a render that fast-forwards the
controls to a cut and draws from there is exact by construction a few frames on, where a pre-roll
anywhere else is only checked (record/farm.py) and a late follower would replay the whole show
(control/follow.py). What still carries across a cut, and for how long:

- the controls (targets, smoothing, the beat, modulators, the camera's walk): restored by the
  fast-forward, whatever their age;
- the tape's interlaced `keep` pass (shaders/vhs.toml `frame`): the other field of the frame before
  the cut shows in the cut frame itself, so the cut frame differs and the next does not (AFTER);
- a prompt still cross-fading at the cut (generate/stream.py Conditioning): its fade is the
  generator's state, not the controls'; a cut inside a prompt's fade is not clean (`clean_cuts`
  leaves it out).

AFTER was measured, not assumed: frames drawn from a cut against the same frames of the whole show,
on the builtin model with feedback and on Stream Batch (tests/test_farm.py renders chunks that
start AFTER + CHECK frames past a cut and asserts none is drawn again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import moderngl

from ..control import ControlEvent, ControlQueue
from ..patch import Patch
from ..show import Show

AFTER = 1  # frames after a cut (the cut frame itself) still showing what came before it: the tape's field
CHECK = 2  # frames past those that a chunk starting at a cut still fingerprints (the seam is checked)


def clean_cuts(show: Show, frames: int) -> list[int]:
    """Fast-forward `show` (Show.skip) over its next `frames` frames: the frames at which its scene
    cut with nothing but the tape carried across (no prompt cross-fading)."""
    cuts: list[int] = []
    prompt: Any = None
    changed, fade = float("-inf"), 0.0  # show time of the last prompt change, and its fade
    for _ in range(frames):
        fp = show.skip()
        now = fp["prompt"]
        if prompt is not None and now != prompt:
            changed, fade = fp.time, float(fp["prompt_fade"])
        prompt = now
        if show.scene.cut and fp.time - changed >= fade:
            cuts.append(fp.frame)
    return cuts


def survey(patch: Patch, overrides: dict[str, Any], fps: float, size: tuple[int, int], frames: int,
           events: Sequence[Callable[[int], Iterable[ControlEvent]]],
           ctx: moderngl.Context | None = None) -> list[int]:
    """The clean cuts of the first `frames` frames of the show that `patch` (with `overrides`) plays
    under `events` (each frame's, as a performance's, a sound file's features or a leader's history
    give them: render.replayed), fast-forwarded in a show of its own without a model (the cut is the
    scene's; a generator would only cost its load), in `ctx` (a show's own: a second context made
    here would leave the caller's no longer current, and its frames black) or a headless one."""
    from ..clock import OfflineClock
    from ..render.gl import headless_context
    from .session import Scheduled, Session

    own = ctx is None
    ctx = headless_context() if ctx is None else ctx
    try:
        with Session() as session:
            clock, queue = OfflineClock(fps), ControlQueue()
            sources = [Scheduled(each, clock, queue) for each in events]
            show = session.show(ctx, replace(patch, model="none"), size, clock=clock, queue=queue,
                                overrides=overrides, sources=sources)
            return clean_cuts(show, frames)
    finally:
        if own:
            ctx.release()


def last_clean_cut(cuts: list[int], before: int) -> int | None:
    """The newest cut from which frame `before` is exact (None: none is far enough back)."""
    usable = [c for c in cuts if c + AFTER <= before]
    return usable[-1] if usable else None
