"""Performance files: a live show re-renders exactly, twice, at another size, or after a crash."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from conftest import free_udp_port, noclip
from pythonosc.udp_client import SimpleUDPClient

from instrument.clock import RealtimeClock
from instrument.control import ControlEvent
from instrument.patch import load_patch
from instrument.record.performance import PerformanceError, PerformanceWriter, load_performance
from instrument.render.gl import read_rgb
from instrument.show import Show

SIZE = (192, 108)


class Frames:
    """An output that keeps every frame (lossless, to compare live with re-rendered)."""

    def __init__(self):
        self.frames = []

    def write(self, fbo, fp):
        self.frames.append(read_rgb(fbo).copy())

    def close(self):
        pass


def hashes(path):
    with av.open(str(path)) as c:
        return [hashlib.sha1(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in c.decode(video=0)]


@pytest.fixture
def live_performance(ctx, tmp_path):
    """A live show at 60 fps with events arriving mid-show, recorded losslessly and as a performance."""
    kept = Frames()
    show = Show(ctx, load_patch("testcard"), SIZE, clock=RealtimeClock(60), outputs=[kept])
    path = tmp_path / "show.performance.jsonl"
    writer = PerformanceWriter(path, show.patch, dict(show.bank.targets), 60, SIZE)
    show.sinks.append(writer)
    script = {5: [("osc", "tracking", 0.7)], 9: [("midi", "cmd/seed/next", ())],
              14: [("osc", "aberration", 6.0), ("osc", "bleed", 0.9)], 20: [("key", "cmd/quit", ())]}
    for n in range(30):
        for src, target, value in script.get(n, []):
            show.queue.put(ControlEvent(src, target, value))
        show.step()
        if not show.running:
            break
    show.close()
    return tmp_path / "show.performance.jsonl", kept.frames


def render_frames(ctx, perf_path, size=SIZE, fps=None):
    from instrument.clock import OfflineClock

    perf = load_performance(perf_path)
    fps = fps or perf.fps
    kept = Frames()
    show = Show(ctx, perf.patch, size, clock=OfflineClock(fps), outputs=[kept],
                overrides=perf.header["start"])
    for n in range(round(perf.frames * fps / perf.fps)):
        for e in perf.events_at(n, fps):
            show.queue.put(e)
        show.step()
    show.close()
    return kept.frames


def test_file_records_patch_start_and_every_event(live_performance):
    path, frames = live_performance
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    head = rows[0]
    assert head["kind"] == "noclip performance" and head["version"] == 2 and head["fps"] == 60
    assert head["patch"]["name"] == "testcard" and head["start"]["bleed"] == pytest.approx(0.3)
    assert [(r["f"], r["t"]) for r in rows[1:-1]] == [
        (5, "tracking"), (9, "cmd/seed/next"), (14, "aberration"), (14, "bleed"), (20, "cmd/quit")]
    assert rows[-1] == {"end": 21} and len(frames) == 21


def test_rerender_matches_the_live_show_frame_for_frame(ctx, live_performance):
    path, live = live_performance
    again = render_frames(ctx, path)
    assert len(again) == len(live) == 21
    assert all(np.array_equal(a, b) for a, b in zip(live, again, strict=True))


def test_rerender_at_another_size_keeps_events_at_their_frames(ctx, live_performance):
    path, live = live_performance
    big = render_frames(ctx, path, size=(384, 216))
    assert len(big) == len(live) and big[0].shape == (216, 384, 3)
    # the seed step at frame 9 changes the tape noise from that frame on, at any size
    small_changes = [not np.array_equal(live[i], live[i + 1]) for i in range(len(live) - 1)]
    assert all(small_changes[5:])


def test_cli_rerenders_twice_identically(live_performance, tmp_path):
    path, live_frames = live_performance
    outs = [tmp_path / "a.mkv", tmp_path / "b.mkv"]
    for out in outs:
        r = noclip("render", str(path), "-o", str(out), "--size", "192x108", "--fps", "60", "--codec", "ffv1")
        assert r.returncode == 0, r.stderr
    a, b = hashes(outs[0]), hashes(outs[1])
    assert len(a) == 21 and a == b
    live = [hashlib.sha1(f.tobytes()).hexdigest() for f in live_frames]
    assert a == live  # lossless re-render = what the live show composited, frame for frame
    r = noclip("render", str(path), "-o", str(tmp_path / "c.mkv"), "--size", "192x108", "--fps", "60",
               "--range", "0.1:0.3", "--codec", "ffv1")
    assert r.returncode == 0, r.stderr
    assert hashes(tmp_path / "c.mkv") == a[6:18]  # the range is the same frames, pre-rolled exactly


def test_corrupt_file_names_the_line_and_salvages(live_performance, tmp_path):
    path, _ = live_performance
    lines = path.read_text().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join([*lines[:3], '{"f": 12, "src": "osc", "t"', *lines[3:]]) + "\n")
    with pytest.raises(PerformanceError, match=r"broken.jsonl:4:"):
        load_performance(broken)
    perf = load_performance(broken, salvage=True)
    assert not perf.complete and sorted(perf.events) == [5, 9]
    r = noclip("render", str(broken), "-o", str(tmp_path / "x.mkv"), "--size", "64x36")
    assert r.returncode == 2 and "broken.jsonl:4" in r.stderr and "--salvage" in r.stderr
    r = noclip("render", str(broken), "-o", str(tmp_path / "x.mkv"), "--size", "64x36", "--salvage")
    assert r.returncode == 0, r.stderr


def test_killed_show_keeps_its_performance(tmp_path):
    port = free_udp_port()
    perf = tmp_path / "live.performance.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "instrument.cli", "play", "--headless", "--size", "64x36",
                             "--patch", "testcard", "--osc", f"127.0.0.1:{port}", "--performance", str(perf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = SimpleUDPClient("127.0.0.1", port)
    # a first value, sent until the performance has it: the show listens (a loaded machine takes seconds)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (perf.exists() and '"tracking"' in perf.read_text()):
        client.send_message("/noclip/tracking", 0.1)
        time.sleep(0.2)
    for v in (0.2, 0.4, 0.6):
        client.send_message("/noclip/tracking", v)
        time.sleep(0.1)
    while time.monotonic() < deadline and "0.6" not in perf.read_text():  # written frame by frame
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    p = load_performance(perf)
    assert not p.complete
    values = [e.value for evs in p.events.values() for e in evs]
    first = values.index(pytest.approx(0.2))
    assert values[:first] == pytest.approx([0.1] * first) and values[first:] == pytest.approx([0.2, 0.4, 0.6])
