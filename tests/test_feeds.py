"""Feeds to other programs (record/feed.py and its kinds): the frame loop never waits on one, a slow
receiver loses its oldest frames (counted), a failing one is said once and the show plays on; the
virtual camera where there is no device, and Syphon and Spout off their systems."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from instrument.clock import RealtimeClock
from instrument.patch import load_patch
from instrument.record.feed import Feed
from instrument.record.session import make_show
from instrument.render.uyvy import UyvyPack, packs
from instrument.report import Reporter

ROOT = Path(__file__).resolve().parent.parent


class Slow(Feed):
    """A receiver that takes `delay` seconds a frame, keeping what it was sent."""

    kind = "slow"

    def __init__(self, reporter: Reporter, delay: float, fail_at: int | None = None, **kw) -> None:
        self.delay, self.fail_at = delay, fail_at
        self.frames: list[np.ndarray] = []
        self.opened: list[tuple[int, int]] = []
        self.layouts: list[int] = []  # components a pixel, as each open was told
        super().__init__(reporter, **kw)

    def open(self, size, components):
        self.opened.append(size)
        self.layouts.append(components)

    def send(self, frame):
        if self.fail_at is not None and len(self.frames) >= self.fail_at:
            raise OSError("the receiver went away")
        time.sleep(self.delay)
        self.frames.append(frame.copy())


def _patterned(ctx, size):
    """A framebuffer whose top half is red and bottom half blue (as the picture is seen)."""
    w, h = size
    tex = ctx.texture(size, 4)
    rows = np.zeros((h, w, 4), np.uint8)
    rows[: h // 2] = (0, 0, 255, 255)   # GL rows bottom-up: the first rows are the picture's bottom
    rows[h // 2:] = (255, 0, 0, 255)
    tex.write(rows.tobytes())
    return tex, ctx.framebuffer(color_attachments=[tex])


def test_a_slow_receiver_never_holds_the_frame(ctx):
    reporter = Reporter()
    tex, fbo = _patterned(ctx, (160, 120))
    feed = Slow(reporter, delay=0.05)
    try:
        times = []
        for _ in range(40):
            t = time.perf_counter()
            feed.write(fbo, None)
            times.append(time.perf_counter() - t)
        # a loop that waited on the receiver would take >= 37 x 50 ms for these writes
        assert sum(times) < 0.5, f"40 writes took {sum(times) * 1000:.0f} ms beside a 50 ms receiver"
        assert feed.offered == 39  # the ring hands a frame on one frame late
        assert feed.dropped > 20 and feed.sent + feed.dropped + len(feed._queue) <= feed.offered + 1
        assert reporter.counts[("slow", "slow")] == feed.dropped
    finally:
        feed.close()
    assert feed.offered == feed.sent + feed.dropped  # what was queued at the end was sent
    frame = feed.frames[0]
    assert frame.shape == (120, 160, 4) and frame.flags.c_contiguous
    assert (frame[:60] == (255, 0, 0, 255)).all() and (frame[60:] == (0, 0, 255, 255)).all()  # top row first
    tex.release()
    fbo.release()


def test_a_feed_sends_what_pick_names_and_reopens_at_a_new_size(ctx):
    small, small_fbo = _patterned(ctx, (64, 48))
    big, big_fbo = _patterned(ctx, (96, 72))
    chosen = [small]
    feed = Slow(Reporter(), delay=0.0, pick=lambda fbo: chosen[0], depth=8)  # deep: nothing dropped
    try:
        for _ in range(3):
            feed.write(big_fbo, None)  # the output is big; the pick, the small texture, is what goes
        chosen[0] = big
        for _ in range(3):
            feed.write(big_fbo, None)
    finally:
        feed.close()
    assert feed.opened == [(64, 48), (96, 72)]
    assert {f.shape for f in feed.frames} == {(48, 64, 4), (72, 96, 4)}
    for obj in (small, small_fbo, big, big_fbo):
        obj.release()


def _uyvy(top: np.ndarray) -> np.ndarray:
    """The UYVY frame (h, w, 2) of an RGB picture (top row first), by the book: BT.709, video range,
    each pair's chroma from its mean."""
    rgb = top.astype(np.float64) / 255.0
    k = np.array([0.2126, 0.7152, 0.0722])
    y = rgb @ k
    m = 0.5 * (rgb[:, 0::2] + rgb[:, 1::2])
    ym = m @ k
    cb, cr = (m[..., 2] - ym) / 1.8556, (m[..., 0] - ym) / 1.5748
    out = np.zeros((*top.shape[:2], 2))
    out[:, 0::2, 0], out[:, 1::2, 0] = 128 + 224 * cb, 128 + 224 * cr
    out[..., 1] = 16 + 219 * y
    return out


def test_uyvy_is_packed_by_the_book_top_row_first(ctx):
    """NDI's UYVY (render/uyvy.py) through a feed: half the bytes, the rows top first and
    contiguous as read back (no flip, no copy on the way out), the values BT.709 video range."""
    colours = np.array([(0, 0, 0), (255, 255, 255), (255, 0, 0), (0, 255, 0), (0, 0, 255),
                        (128, 128, 128), (200, 40, 60), (20, 180, 220)], np.uint8)
    top = np.zeros((6, 8, 4), np.uint8)
    top[..., 3] = 255
    top[:3, :, :3], top[3:, :, :3] = colours, colours[::-1]
    tex = ctx.texture((8, 6), 4)
    tex.write(top[::-1].tobytes())  # GL rows bottom up
    pack = UyvyPack(ctx)

    class Uyvy(Slow):
        def pack(self, picture):
            return pack(picture), 2, False

    feed = Uyvy(Reporter(), delay=0.0, depth=8)
    try:
        for _ in range(3):
            feed.write(tex, None)
    finally:
        feed.close()
    assert feed.opened == [(8, 6)] and feed.layouts == [2] and len(feed.frames) == 2  # the ring: one late
    frame = feed.frames[0]
    assert frame.shape == (6, 8, 2) and frame.flags.c_contiguous
    error = np.abs(frame - _uyvy(top[..., :3]))
    assert error.max() <= 1.0, f"packed {frame.tolist()}"
    assert frame[0, 0, 1] == 16 and frame[0, 1, 1] == 235 and frame[0, 0, 0] == frame[0, 1, 0] == 128
    assert packs((8, 6)) and not packs((7, 6))
    with pytest.raises(ValueError, match="even width"):
        pack(ctx.texture((7, 6), 4))
    pack.release()
    tex.release()


def test_a_failing_feed_is_said_once_and_the_show_plays_on(ctx, caplog):
    reporter = Reporter()
    feed = Slow(reporter, delay=0.0, fail_at=3)
    patch = replace(load_patch("default"), model="none", scene="testcard")
    show = make_show(ctx, patch, (160, 120), clock=RealtimeClock(1000.0, paced=False), reporter=reporter,
                     outputs=[feed])
    try:
        assert show.run(frames=30) == 30
    finally:
        show.close()
    assert len(feed.frames) == 3 and isinstance(feed.error, OSError)
    said = [r.getMessage() for r in caplog.records if "slow: stopped" in r.getMessage()]
    assert len(said) == 1 and "the receiver went away" in said[0] and "plays on" in said[0]
    assert threading.active_count() < 50 and not feed._thread.is_alive()


def _play(*flags: str, seconds: str = "1") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "instrument.cli", "play", "--headless", "--model", "none",
                           "--seconds", seconds, "--fps", "30", "--osc", "off", "--midi", "off", *flags],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120)


LOOPBACK = sorted(glob.glob("/dev/video*"))


@pytest.mark.skipif(bool(LOOPBACK), reason="this machine has a video device: the test below plays to it")
def test_virtualcam_without_a_device_is_said_and_the_show_plays_on():
    run = _play("--virtualcam", "--size", "320x240")
    assert run.returncode == 0, run.stderr
    assert "--virtualcam:" in run.stderr and "v4l2 loopback device" in run.stderr, run.stderr
    assert "the show plays on without it" in run.stderr and "played 30 frames" in run.stderr


@pytest.mark.skipif(not LOOPBACK, reason="no /dev/video* here (modprobe v4l2loopback); .ci machines have none")
def test_virtualcam_plays_to_a_loopback_device():
    run = _play("--virtualcam", LOOPBACK[0], "--size", "320x240", seconds="2")
    assert run.returncode == 0, run.stderr
    assert "virtual camera: sent" in run.stderr and "stopped" not in run.stderr, run.stderr


@pytest.mark.skipif(sys.platform in ("darwin", "win32"),
                    reason="refused only where Syphon and Spout do not exist")
@pytest.mark.parametrize("flag, system", [("--syphon", "macOS"), ("--spout", "Windows")])
def test_syphon_and_spout_are_refused_elsewhere(flag, system, capsys):
    from instrument.cli import main

    assert main(["play", "--headless", "--osc", "off", flag, "noclip"]) == 2
    err = capsys.readouterr().err
    assert f"{flag} exists only on {system}" in err and "--ndi anywhere" in err, err
