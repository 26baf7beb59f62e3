"""NDI out and in between two processes, as two programs on a network meet: `noclip play --ndi`
sends a known picture (the clean feed: the still before the tape, exact up to NDI's codec) and the
`ndi:` source in this process finds it over mDNS, receives it and keeps its last frame once the
sender is gone. Needs avahi-daemon running (.ci/run starts it; `avahi-daemon --check`)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from instrument.params import REGISTRY, ParamBank
from instrument.record.ndi import NdiOutput
from instrument.report import Reporter
from instrument.scene import make_scene
from instrument.scene.ndi_source import NdiSource, matches, ndi_name

ROOT = Path(__file__).resolve().parent.parent
SIZE = (256, 192)
# quadrants: red, green / blue, white (top row first), flat so NDI's SpeedHQ keeps them. Through the
# runtime (4:2:2 Y'CbCr, SpeedHQ, back to RGBA) a saturated primary moves by up to ~16 levels sent as
# RGBX (blue came back at 240: the runtime's own conversion) and ~13 as UYVY packed here (blue at 242,
# green with 9 of blue: the runtime's decoding, the same for UYVY written to it by hand; the exact
# packing is tests/test_feeds.py's); a flipped or swapped picture moves by 255, a BT.601 matrix where
# BT.709 is decoded by ~25 (red's green)
TOLERANCE = 20
COLOURS = np.array([[(255, 0, 0), (0, 255, 0)], [(0, 0, 255), (255, 255, 255)]], np.float64)


def _quad_rgb(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    a = np.zeros((h, w, 3), np.uint8)
    for i in range(2):
        for j in range(2):
            a[i * h // 2:(i + 1) * h // 2, j * w // 2:(j + 1) * w // 2] = COLOURS[i, j]
    return a


def _quad(path: Path, size: tuple[int, int]) -> Path:
    Image.fromarray(_quad_rgb(size)).save(path)
    return path


def _quadrants(rgba: np.ndarray) -> np.ndarray:
    """Each quadrant's mean colour away from its edges (top row first)."""
    h, w = rgba.shape[:2]
    out = np.zeros((2, 2, 3))
    for i in range(2):
        for j in range(2):
            y0, x0 = i * h // 2, j * w // 2
            out[i, j] = rgba[y0 + h // 8:y0 + 3 * h // 8, x0 + w // 8:x0 + 3 * w // 8, :3].mean(axis=(0, 1))
    return out


def _pixels(texture) -> np.ndarray:
    """An RGBA texture's pixels, top row first."""
    return np.frombuffer(texture.read(), np.uint8).reshape(texture.height, texture.width, 4)[::-1]


def _frame(bank: ParamBank, n: int):
    return bank.advance(n, n / 30.0, 1 / 30.0)


def _render_until(source: NdiSource, bank: ParamBank, done, seconds: float) -> bool:
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        source.render(_frame(bank, n))
        n += 1
        if done():
            return True
        time.sleep(0.03)
    return False


def test_names():
    assert ndi_name("ndi:noclip") == "noclip" and ndi_name("clip.mp4") is None
    with pytest.raises(ValueError, match="names the source"):
        ndi_name("ndi: ")
    assert matches("noclip", "VM (noclip)") and matches("VM (noclip)", "VM (noclip)")
    assert not matches("clip", "VM (noclip)") and not matches("noclip", "noclip-2")


def test_ndi_out_of_one_process_into_another(ctx, tmp_path, caplog):
    name = f"noclip-test-{os.getpid()}"
    picture = _quad(tmp_path / "quad.png", (512, 384))
    bank = ParamBank(REGISTRY)
    caplog.set_level(logging.INFO, logger="noclip")
    scene = make_scene(f"ndi:{name}", ctx, SIZE)  # the picture, its motion estimated (scene/flow.py)
    source = scene.picture
    assert isinstance(source, NdiSource)
    sender = None
    try:
        # nobody sends yet: a blank base, said once
        tex = source.render(_frame(bank, 0))
        assert source.state == "waiting" and not np.frombuffer(tex.read(), np.uint8).any()
        source.render(_frame(bank, 1))
        assert sum("no such NDI source yet" in r.getMessage() for r in caplog.records) == 1

        sender = subprocess.Popen(
            [sys.executable, "-m", "instrument.cli", "play", "--headless", "--model", "none", "--source",
             str(picture), "--ndi", name, "--ndi-source", "clean", "--seconds", "60", "--fps", "30",
             "--osc", "off", "--midi", "off"],
            cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert _render_until(source, bank, lambda: source.state == "live" and source.received >= 5, 30.0), \
            f"no NDI frames from the sender (avahi-daemon running?): {source.error}"
        assert source.found is not None and matches(name, source.found)
        got = _pixels(source.texture)
        error = np.abs(_quadrants(got) - COLOURS)
        assert error.max() < TOLERANCE, f"arrived as {_quadrants(got).round()} (error {error.max():.1f})"

        # the sender goes away: the last frame stays, said once
        sender.send_signal(signal.SIGINT)  # the show ends as a performer ends it (Ctrl-C)
        out = sender.communicate(timeout=20)[0]
        assert "NDI: sent" in out, out
        assert _render_until(source, bank, lambda: source.state == "lost", 5.0)
        held = _pixels(source.render(_frame(bank, 999)))
        assert np.abs(_quadrants(held) - COLOURS).max() < TOLERANCE
        assert sum("lost" in r.getMessage() for r in caplog.records) == 1
    finally:
        if sender is not None and sender.poll() is None:
            sender.kill()
            sender.wait()
        scene.release()


def test_ndi_out_packed_as_uyvy_arrives_in_its_colours(ctx):
    """The frame packed as UYVY on the GPU (what a GPU machine sends; on llvmpipe the show sends
    RGBX, the test above): the receiver's runtime decodes it to the colours sent."""
    name = f"noclip-uyvy-{os.getpid()}"
    w, h = 320, 240
    top = np.dstack([_quad_rgb((w, h)), np.full((h, w), 255, np.uint8)])
    tex = ctx.texture((w, h), 4)
    tex.write(np.ascontiguousarray(top[::-1]).tobytes())  # GL rows bottom up
    fbo = ctx.framebuffer(color_attachments=[tex])
    out = NdiOutput(name, 30.0, Reporter(), uyvy=True)
    bank = ParamBank(REGISTRY)
    scene = make_scene(f"ndi:{name}", ctx, SIZE)
    source = scene.picture
    assert isinstance(source, NdiSource)

    def sent_and_received() -> bool:
        out.write(fbo, None)
        return source.state == "live" and source.received >= 5

    try:
        assert _render_until(source, bank, sent_and_received, 30.0), f"nothing received: {source.error}"
        assert out.shape == (h, w, 2) and out.error is None  # opened as UYVY
        got = _quadrants(_pixels(source.texture))
        assert np.abs(got - COLOURS).max() < TOLERANCE, f"arrived as {got.round()}"
    finally:
        out.close()
        scene.release()
        fbo.release()
        tex.release()
