"""A real glfw window on a real X server (Xvfb), drawing through the same path as headless.

The window runs in its own process, as on stage (one process never mixes GLX and the suite's EGL
context), and the test looks at the X screen while it plays.
"""

import os
import subprocess
import sys
import time

import numpy as np
from PIL import ImageGrab


def play(xvfb, tmp_path, *args):
    return subprocess.Popen([sys.executable, "-m", "instrument.cli", "play", "--osc", "off",
                             "--patch", "testcard", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "DISPLAY": xvfb})


def test_window_shows_frames_and_hud(xvfb, tmp_path):
    proc = play(xvfb, tmp_path, "--windowed", "--size", "640x360", "--seconds", "3")
    time.sleep(2.0)
    shot = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB")).astype(int)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lit = shot.max(axis=2) > 60
    assert lit.sum() > 640 * 360 * 0.3  # the window's picture is on the X screen
    yellow = (shot[..., 0] > 200) & (shot[..., 1] > 200) & (shot[..., 2] < 160)
    assert yellow.sum() > 50  # HUD text (yellow) over it
    assert "played" in err


def test_play_opens_fullscreen_when_a_display_exists(xvfb, tmp_path):
    proc = play(xvfb, tmp_path, "--seconds", "2.5")
    time.sleep(1.8)
    shot = np.asarray(ImageGrab.grab(xdisplay=xvfb).convert("RGB")).astype(int)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "headless" not in err and not (tmp_path / "noclip-demo.mp4").exists()
    _h, w, _ = shot.shape
    # fullscreen 16:9 screen with the 4:3 frame pillarboxed: dark sides, picture across the middle
    assert shot[:, : w // 10].max(axis=2).mean() < 10
    assert (shot[:, w // 4: 3 * w // 4].max(axis=2) > 60).mean() > 0.6
