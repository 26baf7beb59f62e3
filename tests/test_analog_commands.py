"""cmd/tracking/jump reaches the chain: it kicks `tracking_jump`, which settles back to rest on its
own, frame by frame (so a replayed performance jolts on the same frames)."""

from __future__ import annotations

import itertools
import math

import pytest

from instrument.clock import OfflineClock
from instrument.commands import COMMANDS
from instrument.control import ControlEvent
from instrument.params import REGISTRY
from instrument.patch import load_patch
from instrument.show import Show


@pytest.fixture(scope="module")
def show():
    from instrument.render.gl import headless_context

    ctx = headless_context()
    s = Show(ctx, load_patch("testcard"), (320, 240), clock=OfflineClock(60))
    s.compositor.render = lambda scene, generated, fp: None  # the values are under test here
    yield s
    s.close()
    ctx.release()


def jump_curve(show: Show, frames: int, *args) -> list[float]:
    show.queue.put(ControlEvent("test", "cmd/tracking/jump", args))
    return [show.step().tracking_jump for _ in range(frames)]


def test_tracking_jump_is_a_command():
    assert "tracking/jump" in COMMANDS


def first_step() -> float:
    """What is left of a kick after the frame it lands in: one 60 fps step of the decay."""
    return math.exp(-1 / 60 / REGISTRY["tracking_jump"].smooth)


def test_jump_kicks_and_decays_to_rest(show):
    curve = jump_curve(show, 600)
    assert curve[0] == pytest.approx(first_step())
    assert all(b < a for a, b in itertools.pairwise(curve[:40])), "settles monotonically"
    assert curve[60] < 0.1
    assert curve[-1] == 0.0, "back to exactly 0: a clean deck again"


def test_jump_takes_a_strength(show):
    assert jump_curve(show, 1, 0.4)[0] == pytest.approx(0.4 * first_step())
    assert jump_curve(show, 1, 7.0)[0] == pytest.approx(first_step()), "clamped to its range"


def test_bad_strength_is_reported_not_raised(show):
    before = show.reporter.totals().get("bad event", 0)
    jump_curve(show, 1, "hard")
    assert show.reporter.totals().get("bad event", 0) == before + 1


class Grab:
    """An output that keeps the last frame it was given."""

    def __init__(self) -> None:
        self.frame = None

    def write(self, fbo, fp) -> None:
        from instrument.render.gl import read_rgb

        self.frame = read_rgb(fbo)

    def close(self) -> None:
        pass


def test_jump_reaches_the_picture():
    """Two identical shows, one jolted at frame 2: their frame 3 differs (end to end, real GL)."""
    from instrument.render.gl import headless_context

    ctx = headless_context()
    quiet = {
        "luma_noise": 0.0,
        "chroma_noise": 0.0,
        "snow": 0.0,
        "dropouts": 0.0,
        "chroma_loss": 0.0,
        "head_switch": 0.0,
        "edge_wave": 0.0,
        "tracking": 0.0,
    }
    frames = []
    for jolt in (False, True):
        grab = Grab()
        s = Show(
            ctx,
            load_patch("testcard"),
            (320, 240),
            clock=OfflineClock(60),
            outputs=[grab],
            overrides=quiet,
        )
        try:
            for n in range(4):
                if jolt and n == 2:
                    s.queue.put(ControlEvent("test", "cmd/tracking/jump"))
                s.step()
        finally:
            s.close()
        frames.append(grab.frame)
    ctx.release()
    assert abs(frames[0].astype(int) - frames[1].astype(int)).mean() > 5
