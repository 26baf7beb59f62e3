"""Defaults that fit the machine: the live rate, a take's encode fitted to the CPU, a HUD you can read.

The HUD is drawn for real (EGL) onto a 1280x720 screen and read back; takes are encoded by libx264
and decoded by PyAV.
"""

from __future__ import annotations

import subprocess
import sys
import time

import av
import numpy as np

from instrument.clock import RealtimeClock
from instrument.control import ControlEvent
from instrument.generate import live_rate
from instrument.patch import load_patch
from instrument.record.deck import RecordDeck
from instrument.record.encoding import QUALITIES, choose_quality, encode_size
from instrument.render.hud import Hud, HudState, glance, pages
from instrument.report import Reporter
from instrument.show import Show


def test_live_rate_follows_the_generator():
    assert live_rate("none") == (60.0, "no generator")
    rate, why = live_rate("builtin")  # this machine and CI have no NVIDIA driver
    assert (rate, why) == (30.0, "CPU generator")
    assert live_rate("builtin", take=True, cores=2) == (24.0, "CPU generator, a take on 2 cores")
    assert live_rate("builtin", take=True, cores=8) == (30.0, "CPU generator")
    assert live_rate("none", take=True, cores=2) == (60.0, "no generator")


def test_play_says_the_rate_it_chose(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "instrument.cli", "play", "--headless", "--patch", "testcard",
                           "--model", "none", "--osc", "off", "--midi", "off", "--seconds", "0.5"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "playing at 60 fps (no generator; --fps to choose)" in proc.stderr
    assert not list(tmp_path.glob("*.performance.jsonl"))  # nothing recorded: no file left behind


def test_encode_size_keeps_the_aspect_at_tape_lines():
    assert encode_size((1280, 720), "best") == (1280, 720)
    assert encode_size((1280, 720), "fast") == (854, 480)
    assert encode_size((1920, 1080), "tape") == (854, 480)
    assert encode_size((640, 360), "fast") == (640, 360)  # never scaled up


def test_auto_quality_fits_the_cores_it_is_given():
    quality, why = choose_quality((1280, 720), 30.0, cores=64.0)
    assert quality == "best" and "best 1280x720" in why
    quality, why = choose_quality((1280, 720), 30.0, cores=0.0)  # nothing fits: the cheapest
    assert quality == list(QUALITIES)[-1] and "fast 854x480" in why


def test_reduced_take_has_every_frame_and_names_its_full_size_render(ctx, tmp_path):
    reporter = Reporter()
    perf = tmp_path / "show.performance.jsonl"
    deck = RecordDeck((320, 240), 30.0, reporter, folder=tmp_path, quality="fast", performance=perf)
    show = Show(ctx, load_patch("testcard"), (320, 240), clock=RealtimeClock(30.0), outputs=[deck],
                reporter=reporter)
    show.run(frames=15)
    show.queue.put(ControlEvent("test", "cmd/record/start"))
    show.run(frames=45)
    assert deck.status() is not None and deck.status()[1] == 0
    show.close()
    assert deck.status() is None
    [take] = deck.takes
    with av.open(str(take)) as f:
        stream = f.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (320, 240)  # 240 <= 480 lines
        assert sum(1 for _ in f.decode(video=0)) == 45
    assert deck.reduced == []  # not reduced: nothing to re-render

    deck = RecordDeck((1280, 720), 30.0, reporter, folder=tmp_path, quality="fast", performance=perf)
    show = Show(ctx, load_patch("testcard"), (1280, 720), clock=RealtimeClock(30.0), outputs=[deck],
                reporter=reporter)
    show.run(frames=6)
    show.queue.put(ControlEvent("test", "cmd/record/start"))
    show.run(frames=24)
    show.close()
    [take] = deck.takes
    with av.open(str(take)) as f:
        assert (f.streams.video[0].codec_context.width, f.streams.video[0].codec_context.height) == (854, 480)
        assert sum(1 for _ in f.decode(video=0)) == 24
    [command] = deck.reduced
    hd = take.with_name(take.stem + "-hd.mp4")
    assert command == f"noclip render {perf} -o {hd} --range 0.2:1 --size 1280x720"


def hud_screen(ctx, hud: Hud, state: HudState, size=(1280, 720), box=None) -> np.ndarray:
    fbo = ctx.simple_framebuffer(size, components=4)
    fbo.use()
    fbo.clear(0.0, 0.0, 0.0, 1.0)
    hud.draw(lambda: state, fbo, box)
    pixels = np.frombuffer(fbo.read(components=3), dtype=np.uint8).reshape(size[1], size[0], 3)[::-1]
    fbo.release()
    return pixels


def test_hud_glance_and_pages_are_legible_and_never_cut_off(ctx):
    show = Show(ctx, load_patch("testcard"), (1280, 720), clock=RealtimeClock(1000.0, paced=False))
    show.run(frames=5)
    show.queue.put(ControlEvent("osc", "aberration", 4.0))
    show.queue.put(ControlEvent("midi", "bleed", 0.7))
    show.run(frames=2)
    state = show.hud_state()
    show.close()
    assert any("osc aberration 4" in m for m in state.recent)
    assert {name for name, _ in state.moved} >= {"bleed", "aberration"}
    text = [line for line, _ in glance(state)]
    assert any("fps" in t for t in text) and any("BPM" in t for t in text) and any("bar" in t for t in text)

    hud = Hud(ctx)
    pixels = hud_screen(ctx, hud, state)
    x, y, w, h = hud.rect
    assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720
    assert hud._font_px >= 14  # legible at 720 lines
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 160)
    assert yellow[y:y + h, x:x + w].sum() > 500 and yellow.sum() == yellow[y:y + h, x:x + w].sum()
    assert hud.drawn == [t.replace("\t", " ") for t in text][:len(hud.drawn)]
    assert "P: all parameters · H: hide" in hud.drawn

    # every parameter on some page, each page inside the screen, then back to the glance
    seen: list[str] = []
    book = pages(state, 100)
    for _ in range(len(pages(state, 40)) + 1):
        hud.next_page()
        hud._next = 0.0
        hud_screen(ctx, hud, state)
        if hud.page == 0:
            break
        x, y, w, h = hud.rect
        assert x + w <= 1280 and y + h <= 720
        seen += [line.split()[0] for line in hud.drawn[1:]]
    assert hud.page == 0
    assert sorted(seen) == sorted(name for name, _ in state.params) and len(book) >= 1

    # a pillarbox bar wide enough takes the panel, off the picture
    hud._next = 0.0
    hud_screen(ctx, hud, state, size=(1920, 1080), box=(240 * 3, 0, 480, 1080))
    assert hud.rect[0] + hud.rect[2] <= 720
    hud.release()


def test_hud_state_counts_dreams_and_the_take(ctx, tmp_path):
    class Dreamer:
        name, done, dream, base_frame, commands = "fake", 0, None, None, {}

        def submit(self, *a, **k):
            self.done += 1

        def latest(self):
            return None

        def stats(self):
            return {"done": self.done}

        def release(self):
            pass

    deck = RecordDeck((320, 240), 30.0, Reporter(), folder=tmp_path, quality="best")
    show = Show(ctx, load_patch("testcard"), (320, 240), clock=RealtimeClock(30.0), outputs=[deck])
    show.generator = Dreamer()
    show.hud_state()
    show.queue.put(ControlEvent("test", "cmd/record/start"))
    t = time.perf_counter()
    show.run(frames=30)
    state = show.hud_state()
    show.close()
    # one dream a frame: the dream rate is the frame rate, whatever a busy machine makes of it
    assert 0.6 * state.fps < state.dreams < 1.5 * state.fps and time.perf_counter() - t < 10
    assert state.recording is not None and 0.9 < state.recording[0] < 1.1 and state.recording[1] == 0
    assert state.rate == 30.0
