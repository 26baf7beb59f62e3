"""Footage as the base (`--source`): a still image passes through exactly, a video loops, both
report zero motion and unknown depth; the CLI validates the path."""

import argparse

import av
import numpy as np
import pytest
from PIL import Image

from instrument.cli import resolve_patch
from instrument.clock import OfflineClock
from instrument.params import REGISTRY, FrameParams
from instrument.patch import load_patch
from instrument.scene import make_scene
from instrument.show import Show

SIZE = (64, 48)
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (20, 20, 20)]


def frame(scene, n, fps=10.0):
    scene.render(FrameParams(n, n / fps, 1 / fps, REGISTRY.defaults()))
    w, h = scene.size
    return np.frombuffer(scene.texture.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]


def test_still_image_passes_through_exactly(ctx, tmp_path):
    rng = np.random.default_rng(1)
    pattern = rng.integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    path = tmp_path / "pattern.png"
    Image.fromarray(pattern).save(path)
    scene = make_scene(str(path), ctx, SIZE)
    for n in range(3):
        assert np.array_equal(frame(scene, n), pattern)
    assert not np.frombuffer(scene.motion.read(), np.float32).any()
    assert not np.frombuffer(scene.depth.read(), np.float32).any()
    scene.release()


def test_video_loops_frame_by_frame(ctx, tmp_path):
    path = tmp_path / "bars.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "bgr0"
        for c in COLOURS:
            img = np.zeros((SIZE[1], SIZE[0], 3), np.uint8) + np.array(c, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    scene = make_scene(str(path), ctx, SIZE)
    seen = [tuple(int(v) for v in frame(scene, n)[10, 10]) for n in range(13)]
    expected = [COLOURS[n % len(COLOURS)] for n in range(13)]
    assert all(max(abs(a - b) for a, b in zip(s, e, strict=True)) <= 2
               for s, e in zip(seen, expected, strict=True)), seen
    assert tuple(frame(scene, 1)[10, 10]) != seen[0]  # and it can go back (a replay, a seek)
    scene.release()


def test_source_replaces_the_scene_in_cli_and_show(ctx, tmp_path):
    path = tmp_path / "still.png"
    Image.new("RGB", (80, 60), (10, 200, 90)).save(path)
    args = argparse.Namespace(patch="level0", model=None, set=None, source=path)
    patch, _ = resolve_patch(args)
    assert patch.scene == str(path)
    show = Show(ctx, patch, (64, 48), clock=OfflineClock(30))
    show.step()
    assert np.array_equal(frame(show.scene, 0)[5, 5], [10, 200, 90])
    show.close()
    with pytest.raises(SystemExit):
        resolve_patch(argparse.Namespace(patch="default", model=None, set=None,
                                         source=tmp_path / "missing.mp4"))
    assert load_patch("level1").scene == "backrooms"
