"""Render farms on Ray (record/farm.py): a performance played from a MIDI file and dreamed by the
builtin model (latents fed back, noise carried along the walk: state across frames) renders on a
local Ray cluster of 2 workers to the same decoded frames as in one process; and still does when
the worker drawing a chunk is killed half-way (Ray draws the chunk again).

One local cluster serves the module (Ray's start costs seconds). The chunks are about 1.7 s at 8 fps
and the show has a level change in each: the farm finds the cuts by fast-forwarding the show
(record/cuts.py) and starts chunks 1 and 2 three frames after them, their pre-roll drawn from the
cut, after which nothing from before carries but the tape's field, so every seam must agree and no
chunk be drawn again.
"""

import hashlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import av
import mido
import pytest

from instrument.cli import main

FPS = 8
PATCH = """version = 2
name = "farmed"
scene = "backrooms"
model = "builtin"
chain = "vhs"
size = [160, 120]
dream_size = [160, 120]

[params]
level = "0"
speed = 3.0
bleed = 0.3

[[midi]]
device = "file"
cc = 74
param = "bleed"

[[midi]]
cc = 75
param = "feedback"

[[midi]]
cc = 76
param = "level"

[[midi]]
note = 60
command = "seed/next"
"""


def write_midi(path: Path) -> None:
    """5 s at 120 BPM (480 ticks a beat, 960 a second): a level change at 0.1 s (its cut lands at
    0.9 s, frame 8) and one at 2.5 s (its cut at frame 26), the feedback up, two seed steps, the
    bleed down."""
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    tr.append(mido.Message("control_change", control=74, value=100, time=0))
    tr.append(mido.Message("control_change", control=76, value=127, time=96))        # 0.1 s: level
    tr.append(mido.Message("control_change", control=75, value=80, time=864))        # 1.0 s: feedback
    tr.append(mido.Message("note_on", note=60, velocity=100, time=960))              # 2.0 s
    tr.append(mido.Message("note_off", note=60, time=240))
    tr.append(mido.Message("control_change", control=76, value=0, time=240))         # 2.5 s: level
    tr.append(mido.Message("control_change", control=74, value=10, time=240))        # 2.75 s
    tr.append(mido.Message("note_on", note=60, velocity=100, time=480))              # 3.25 s
    tr.append(mido.Message("note_off", note=60, time=240))
    tr.append(mido.MetaMessage("end_of_track", time=1200))                           # 5.0 s
    mid.save(path)


def hashes(path: Path) -> list[str]:
    with av.open(str(path)) as c:
        return [hashlib.sha1(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in c.decode(video=0)]


FARM = ["--codec", "ffv1", "--farm", "local", "--workers", "2", "--chunk", "1.7", "--preroll", "2"]


@pytest.fixture(scope="module")
def cluster():
    ray = pytest.importorskip("ray", reason="the farm needs noclip[farm] (in the test extra)")
    from instrument.record.farm import connect

    assert connect("local", 2)  # the farm renders below find it started and use it
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def show(tmp_path_factory):
    """The MIDI file played through the patch, rendered in one process: the frames, and the
    performance file the render wrote beside them (what the farm re-renders)."""
    d = tmp_path_factory.mktemp("farm")
    (d / "farmed.toml").write_text(PATCH)
    write_midi(d / "song.mid")
    assert main(["render", "--patch", str(d / "farmed.toml"), "--midi", str(d / "song.mid"), "--fps",
                 str(FPS), "--size", "160x120", "--codec", "ffv1", "-o", str(d / "plain.mkv")]) == 0
    plain = hashes(d / "plain.mkv")
    assert len(plain) == 39 and len(set(plain)) > 30  # it moves: frames differ
    return d / "plain.performance.jsonl", plain


def test_farm_renders_what_one_process_renders(cluster, show, tmp_path, caplog):
    perf, plain = show
    out = tmp_path / "farmed.mkv"
    with caplog.at_level(logging.INFO, logger="noclip"):
        assert main(["render", str(perf), "-o", str(out), *FARM]) == 0
    assert hashes(out) == plain
    said = caplog.text
    assert "3 clean cuts in 39 frames" in said  # frames 0 (the first arrival), 8 and 26
    assert "3 chunks" in said and "2 start at a cut" in said  # frames 11 and 29: each cut + 3
    assert "3 chunks joined" in said
    assert "0 drawn again with a longer pre-roll" in said  # exact by construction: no seam missed
    assert not out.with_name("farmed.mkv.farm").exists()  # the intermediates are gone once joined


def _writer(path: Path) -> int | None:
    """The process that has `path` open (a Ray worker drawing a chunk), from /proc."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                    return int(pid)
            except OSError:
                continue
    return None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the worker through /proc")
def test_a_worker_killed_mid_chunk_changes_nothing(cluster, show, tmp_path):
    perf, plain = show
    out, folder = tmp_path / "killed.mkv", tmp_path / "chunks"
    result: list[int] = []
    render = threading.Thread(target=lambda: result.append(
        main(["render", str(perf), "-o", str(out), "--farm-dir", str(folder), *FARM])))
    render.start()
    part, killed = (folder / "chunk-00001.part.mkv").resolve(), None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and render.is_alive():
        pid = _writer(part) if part.exists() and part.stat().st_size > 0 else None
        if pid is not None:
            time.sleep(0.5)  # a few frames into the chunk
            os.kill(pid, signal.SIGKILL)
            killed = pid
        time.sleep(0.05)
    render.join(timeout=300)
    assert killed is not None, "never saw chunk 1 being drawn"
    assert result == [0]
    assert hashes(out) == plain


def test_without_ray_the_farm_says_what_it_needs(show, tmp_path, monkeypatch, capsys):
    perf, _ = show
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert main(["render", str(perf), "-o", str(tmp_path / "x.mkv"), "--farm", "local"]) == 2
    assert "needs noclip[farm]" in capsys.readouterr().err
    assert not (tmp_path / "x.mkv").exists()


def test_plan_cuts_chunks_with_their_preroll():
    from instrument.record.farm import longer, plan

    chunks = plan(0, 100, 10.0, 3.0, 1.0)
    assert [(c.start, c.end) for c in chunks] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    assert chunks[0].preroll is None and all(c.preroll == 10 and c.seam == 5 for c in chunks[1:])
    assert longer(chunks[1]).preroll == 20 and longer(longer(chunks[1])).preroll is None  # 40 >= 30
    assert longer(chunks[3]).drawn == 30
    assert [c.drawn for c in chunks] == [30, 40, 40, 20]
    ranged = plan(25, 60, 10.0, 2.0, 1.0)  # --range 2.5:6: the first chunk plays from frame 0
    assert ranged[0].start == 25 and ranged[0].preroll is None and ranged[0].drawn == 45


def test_plan_starts_chunks_just_after_cuts_near_their_boundaries():
    from instrument.record.farm import longer, plan

    # cuts at 24 (chunk 1 starts at 27, near 30), 50 (chunk 2 at 53, near 57) and 98 (101: past the end)
    chunks = plan(0, 100, 10.0, 3.0, 1.0, cuts=[0, 24, 50, 98])
    assert [(c.start, c.end, c.preroll, c.seam, c.cut) for c in chunks] == [
        (0, 27, None, 0, None), (27, 53, 3, 2, 24), (53, 83, 3, 2, 50), (83, 100, 10, 5, None)]
    assert [c.tail for c in chunks] == [2, 2, 5, 0]  # each fingerprints its successor's seam
    assert longer(chunks[1]).preroll == 6 and longer(chunks[1]).cut is None
    far = plan(0, 100, 10.0, 3.0, 1.0, cuts=[5, 60])  # 8 and 63: further than half a chunk from 30, 60
    assert [c.start for c in far] == [0, 30, 63, 93] and far[2].cut == 60
    ranged = plan(40, 100, 10.0, 3.0, 1.0, cuts=[24])  # --range from 4 s: drawn from the cut, not frame 0
    assert ranged[0].start == 40 and ranged[0].preroll == 16 and ranged[0].drawn == 46


def test_stitch_lines_up_h264_parts_of_any_length(tmp_path):
    """h264 chunks are joined on their keyframes; a short chunk has less of the encoder's B-frame
    delay than a long one, and must still land on its own frames (seen: a 1-frame last chunk two
    frames early)."""
    import numpy as np

    from instrument.record.render import stitch
    from instrument.record.video import CONTAINER_OPTIONS

    def encode(path: Path, first: int, n: int) -> None:  # as the recorder writes .mp4: fragmented
        with av.open(str(path), "w", options=CONTAINER_OPTIONS[".mp4"]) as c:
            v = c.add_stream("libx264", rate=FPS)
            v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
            for i in range(first, first + n):
                img = np.full((48, 64, 3), (i * 9) % 256, np.uint8)
                for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in v.encode():
                c.mux(p)

    encode(tmp_path / "a.mp4", 0, 20)
    encode(tmp_path / "b.mp4", 20, 1)
    encode(tmp_path / "c.mp4", 21, 5)
    out = tmp_path / "out.mp4"
    assert stitch([(tmp_path / "a.mp4", None), (tmp_path / "b.mp4", None), (tmp_path / "c.mp4", None)],
                  out, FPS) == 26
    with av.open(str(out)) as c:
        decoded = [(f.time, int(f.to_ndarray(format="rgb24")[24, 32, 0])) for f in c.decode(video=0)]
    assert len(decoded) == 26
    assert all(abs(s - (i * 9) % 256) <= 3 for i, (_, s) in enumerate(decoded)), decoded
    t0 = decoded[0][0]
    assert [round((t - t0) * FPS, 3) for t, _ in decoded] == list(range(26))  # each at its own time
