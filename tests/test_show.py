"""The frame loop on a real EGL context: what it renders, what it logs, how it survives."""

import json

import numpy as np
import pytest

from instrument.clock import OfflineClock
from instrument.control import ControlEvent
from instrument.patch import load_patch
from instrument.record.eventlog import EventLog
from instrument.render.gl import read_rgb
from instrument.show import Show

SIZE = (320, 180)


def frames(ctx, n=3, **overrides):
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), overrides=overrides)
    out = []
    for _ in range(n):
        show.step()
        out.append(read_rgb(show.compositor.fbo).copy())
    show.close()
    return out


def test_headless_render_shows_the_scene(ctx):
    img = frames(ctx, 1, tracking=0.0)[0]
    assert img.shape == (180, 320, 3)
    # 4:3 pillarboxed into 16:9: black sides, colour bars in the middle
    assert img[:, :30].max() < 8 and img[:, -30:].max() < 8
    top = img[40, 40:280].astype(int)
    assert len({tuple(c // 40) for c in top}) >= 5  # several distinct bars


def test_offline_frames_are_deterministic(ctx):
    a, b = frames(ctx, 3, tracking=0.6), frames(ctx, 3, tracking=0.6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], a[2])  # tape noise moves frame to frame


def test_seed_changes_the_noise(ctx):
    a, b = frames(ctx, 2, tracking=0.6, seed=1)[1], frames(ctx, 2, tracking=0.6, seed=2)[1]
    assert not np.array_equal(a, b)


def test_fade_to_black_and_fit_modes(ctx):
    assert frames(ctx, 1, fade=0.0)[0].max() == 0
    stretched = frames(ctx, 1, fit="stretch", tracking=0.0)[0]
    assert stretched[:, :10].mean() > 40  # no pillarbox when stretched


def test_event_log_lines(ctx, tmp_path):
    path = tmp_path / "events.jsonl"
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), sinks=[EventLog(path)])
    show.step()
    show.queue.put(ControlEvent("osc", "bleed", 0.9))
    show.queue.put(ControlEvent("osc", "cmd/seed/next", ()))
    show.step()
    show.close()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["target"] for r in rows] == ["bleed", "cmd/seed/next"]
    for r in rows:
        assert r["frame"] == 1 and r["source"] == "osc" and r["applied"] >= r["arrival"]
    assert rows[0]["value"] == 0.9


def test_unknown_targets_are_counted_not_fatal(ctx):
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30))
    show.queue.put(ControlEvent("midi", "nonexistent", 1.0))
    show.queue.put(ControlEvent("midi", "cmd/explode", None))
    show.queue.put(ControlEvent("midi", "bleed", float("nan")))
    show.step()
    show.close()
    assert show.running
    assert show.reporter.totals() == {"bad event": 2, "unknown command": 1}


def test_broken_chain_keeps_the_last_good_one(ctx, tmp_path):
    (tmp_path / "broken.frag").write_text(
        "#version 330\nuniform sampler2D source;\nin vec2 uv;\nout vec4 color;\n"
        "void main() {\n    color = texture(source, uv) * undefined_thing;\n}\n")
    chain = tmp_path / "broken.toml"
    chain.write_text(f'version = 1\n[[pass]]\nname = "x"\nshader = "{tmp_path / "broken.frag"}"\n')
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), overrides={"tracking": 0.0})
    show.step()
    before = read_rgb(show.compositor.fbo).copy()
    assert show.compositor.load_chain(chain) is False
    show.clock = OfflineClock(30)  # same frame index again
    show.step()
    assert np.array_equal(read_rgb(show.compositor.fbo), before)
    message = show.reporter.recent[-1][1]
    assert "broken.frag:6" in message and "undefined_thing" in message
    show.close()


def test_window_keys_esc_twice_quits_space_steps_seed():
    """The key handler without a display: one stray Esc never ends a show."""
    import glfw

    from instrument.control import ControlQueue
    from instrument.render.window import Window

    w = object.__new__(Window)
    w.queue, w.hud, w._esc = ControlQueue(), None, -10.0
    w._key(None, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
    assert len(w.queue) == 0
    w._key(None, glfw.KEY_SPACE, 0, glfw.PRESS, 0)
    w._key(None, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
    assert [e.target for e in w.queue.drain()] == ["cmd/seed/next", "cmd/quit"]
    w._esc = -10.0
    w._key(None, glfw.KEY_ESCAPE, 0, glfw.RELEASE, 0)
    w._key(None, glfw.KEY_ESCAPE, 0, glfw.PRESS, 0)
    assert len(w.queue) == 0


def test_a_stage_that_throws_plays_on_with_its_last_good_frame(ctx):
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), overrides={"tracking": 0.0})
    show.step()
    good = read_rgb(show.compositor.fbo).copy()
    render = show.scene.render

    def broken(fp):
        raise RuntimeError("GL_OUT_OF_MEMORY")

    show.scene.render = broken
    for _ in range(5):
        show.step()
    assert show.running and show.reporter.totals() == {"scene failed": 5}
    assert read_rgb(show.compositor.fbo).mean() == pytest.approx(good.mean(), abs=2)
    show.scene.render = render
    show.step()
    show.close()


def test_a_live_show_settles_memory_before_it_plays(ctx):
    """A full collection over the libraries' objects costs ~10 frames: a live show collects once
    and freezes what is alive, so later collections only walk what the show allocates."""
    import gc

    from instrument.clock import RealtimeClock

    gc.unfreeze()
    offline = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30))
    offline.run(frames=2)
    offline.close()
    assert gc.get_freeze_count() == 0          # renders are not live: nothing to protect
    live = Show(ctx, load_patch("testcard"), SIZE, clock=RealtimeClock(1000.0, paced=False))
    live.run(frames=2)
    live.close()
    assert gc.get_freeze_count() > 1000
