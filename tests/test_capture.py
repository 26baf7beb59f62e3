"""A capture device as the base (`--source /dev/video0`, scene/capture.py): specs are parsed to
FFmpeg's device and options, a device that is not there is named before the show, a live source
(FFmpeg's lavfi testsrc, through the same threaded reader a camera uses) delivers frames on a show
without the show waiting for them, and a source that goes away leaves its last frame, said once,
while the show plays on. A real camera is tested where one exists."""

import argparse
import glob
import time
from dataclasses import replace

import av
import numpy as np
import pytest

from instrument.cli import resolve_patch
from instrument.clock import OfflineClock
from instrument.params import REGISTRY, FrameParams
from instrument.patch import ConfigError
from instrument.scene import make_scene, source
from instrument.scene.capture import Capture, Device, parse_device
from instrument.scene.source import SourceError
from instrument.show import Show

SIZE = (96, 72)
FP = FrameParams(0, 0.0, 1 / 30, REGISTRY.defaults())


def test_device_specs():
    assert parse_device("/dev/video0") == Device("/dev/video0", "v4l2", "/dev/video0")
    d = parse_device("v4l2:/dev/video2?size=1280x720&fps=30&input_format=mjpeg")
    assert (d.format, d.url) == ("v4l2", "/dev/video2")
    assert d.options == {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}
    assert parse_device("avfoundation:0").format == "avfoundation"
    assert parse_device("dshow:video=USB Camera").url == "video=USB Camera"
    for spec in ("clip.mp4", "backrooms", "C:/videos/clip.mp4"):
        assert parse_device(spec) is None
    with pytest.raises(SourceError, match="not an option"):
        parse_device("v4l2:/dev/video0?filename=/etc/passwd")
    with pytest.raises(SourceError, match="names no device"):
        parse_device("v4l2:")


def test_a_device_that_is_not_there_is_named_before_the_show():
    def resolve(spec):
        return resolve_patch(argparse.Namespace(patch="testcard", model=None, set=None, source=spec))

    with pytest.raises(ConfigError, match="no such device"):
        resolve("/dev/video97")
    if "avfoundation" not in av.formats_available:  # macOS's camera input: named where it is absent
        with pytest.raises(ConfigError, match="cannot open"):
            resolve("avfoundation:0")
    with pytest.raises(SystemExit):
        resolve("nothing-here.mp4")
    patch, _ = resolve("lavfi:testsrc=size=64x48:rate=10")
    assert patch.scene == "lavfi:testsrc=size=64x48:rate=10"


def pixels(scene):
    w, h = scene.size
    return np.frombuffer(scene.texture.read(), np.uint8).reshape(h, w, 4)


def test_live_source_delivers_frames_on_a_show(ctx):
    spec = "lavfi:testsrc=size=160x120:rate=30"
    patch = replace(resolve_patch(argparse.Namespace(patch="testcard", model=None, set=None, source=spec))[0],
                    size=SIZE)
    show = Show(ctx, patch, SIZE, clock=OfflineClock(30))
    capture = show.picture.scene.picture
    assert isinstance(capture, Capture)
    seen, steps = set(), []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        t = time.perf_counter()
        show.step()
        steps.append(time.perf_counter() - t)
        seen.add(pixels(show.picture.scene).tobytes())
        time.sleep(0.01)
    show.close()
    assert capture.count >= 15            # ~30 a second came in (paced by their time stamps, not the CPU)
    assert capture.count <= 45
    assert len(seen) >= 10                # and were shown as they came (testsrc's counter moves)
    assert max(steps) < 0.5               # no step waited for the device


def test_source_that_disappears_keeps_the_show_playing(ctx):
    """A testsrc that ends after 0.3 s: its last frame stays, the loss is said once, the show plays on,
    and the reader opens it again (a second's wait) and frames come again."""
    patch = replace(resolve_patch(argparse.Namespace(patch="testcard", model=None, set=None,
                                                     source="lavfi:testsrc=size=96x72:rate=30:duration=0.3"))[0],
                    size=SIZE)
    show = Show(ctx, patch, SIZE, clock=OfflineClock(30))
    capture = show.picture.scene.picture
    frames_before, last, t0 = 0, None, time.monotonic()
    while time.monotonic() - t0 < 0.8:  # past the end
        show.step()
        frames_before, last = capture.count, pixels(show.picture.scene).copy()
        time.sleep(0.02)
    assert 5 <= frames_before <= 10
    for _ in range(5):                   # held: the last frame, no motion
        show.step()
        assert np.array_equal(pixels(show.picture.scene), last)
        assert not np.frombuffer(show.picture.scene.motion.read(), np.float32).any()
    while time.monotonic() - t0 < 2.4 and capture.count == frames_before:  # reopened after RETRY_S
        show.step()
        time.sleep(0.02)
    assert capture.count > frames_before
    show.step()
    assert show.reporter.totals().get("scene failed") == 1  # said once, not every frame
    show.close()


def test_reopening_is_bounded(ctx, tmp_path):
    """A device whose node is gone for good (a file played as a device, then deleted): said lost,
    then given up after the bounded tries, the last frame kept."""
    path = tmp_path / "cam.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "bgr0"
        for n in range(3):
            img = np.full((48, 64, 3), 60 * n + 40, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    capture = Capture(ctx, (64, 48), Device("cam", "matroska", str(path)), retries=3, retry_s=0.05)
    path.unlink()
    said, deadline = [], time.monotonic() + 3
    while time.monotonic() < deadline and len(said) < 2:
        try:
            capture.render(FP)
        except SourceError as exc:
            said.append(str(exc))
        time.sleep(0.02)
    assert "lost (the stream ended)" in said[0] and "gave up after 3 tries" in said[-1]
    assert np.frombuffer(capture.texture.read(), np.uint8)[0] >= 150  # the last frame stays
    capture.release()


@pytest.mark.skipif(not glob.glob("/dev/video*"), reason="no capture device on this machine (/dev/video*)")
def test_real_camera(ctx):
    spec = sorted(glob.glob("/dev/video*"))[0]
    assert source(spec) is not None
    scene = make_scene(spec, ctx, SIZE)
    time.sleep(0.5)
    scene.render(FP)
    assert scene.picture.count > 0
    scene.release()


def test_a_performance_over_a_live_source_is_refused_by_name(tmp_path):
    from instrument.record.performance import PerformanceError, PerformanceWriter, load_performance

    spec = "lavfi:testsrc=size=64x48:rate=10"
    patch = replace(resolve_patch(argparse.Namespace(patch="testcard", model=None, set=None, source=spec))[0],
                    size=SIZE)
    writer = PerformanceWriter(tmp_path / "cam.jsonl", patch, {}, 30.0, SIZE)
    writer.close(10)
    with pytest.raises((PerformanceError, ValueError), match=r"live source.*cannot be re-rendered"):
        load_performance(tmp_path / "cam.jsonl")
