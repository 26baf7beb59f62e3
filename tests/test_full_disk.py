"""A full disk never ends the show: every writer (event log, performance file, takes) fails alone,
reported once, and the show plays to its end. Real failures, no mocks: /dev/full (ENOSPC on every
write), a file-size limit in a subprocess (EFBIG), a small tmpfs (a disk that really fills)."""

import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT, free_udp_port
from pythonosc.udp_client import SimpleUDPClient

from instrument.clock import OfflineClock
from instrument.control import ControlEvent
from instrument.patch import load_patch
from instrument.record.deck import RecordDeck
from instrument.record.eventlog import EventLog
from instrument.record.performance import PerformanceWriter, load_performance
from instrument.record.video import TakeStopped, VideoRecorder
from instrument.report import Reporter
from instrument.show import Show

NOISY = ["--set", "luma_noise=1", "--set", "snow=1", "--set", "chroma_noise=1"]  # ~0.6 MB/s at 320x240


def play(*args, fsize=None, env=None, timeout=120, osc=None):
    """`noclip play --headless` in a subprocess, optionally under a file-size limit (RLIMIT_FSIZE:
    a write past it fails with EFBIG; Python ignores SIGXFSZ, so it is an OSError, as on a disk)."""
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    cmd = [sys.executable, "-m", "instrument.cli", "play", "--headless", "--patch", "testcard", "--midi", "off",
           "--osc", f"127.0.0.1:{osc}" if osc else "off", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, **(env or {})}, preexec_fn=limit)


def finish(proc, timeout=120, before=""):
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, before + err


def listening(proc) -> str:
    """Read the show's log until its OSC socket is bound (packets sent from then on are queued)."""
    seen = ""
    while "OSC on" not in seen:
        line = proc.stderr.readline()
        assert line, seen
        seen += line
    return seen


def decoded(path):
    """Frames PyAV decodes from `path` before the file ends (or breaks off)."""
    n = 0
    try:
        with av.open(str(path)) as c:
            for _ in c.decode(video=0):
                n += 1
    except av.FFmpegError:
        pass
    return n


def test_log_and_performance_on_a_full_device(tmp_path):
    """/dev/full: the performance file fails at its header, the log at its first line; the take
    (on a good disk) and the show go on to the end."""
    proc = play("--size", "64x48", "--fps", "30", "--seconds", "1", "--record", str(tmp_path / "take.mp4"),
                "--log", "/dev/full", "--performance", "/dev/full")
    rc, err = finish(proc)
    assert rc == 0, err
    assert "Traceback" not in err
    assert "/dev/full: No space left on device; the show plays without it" in err   # the performance file
    assert "writer EventLog: /dev/full: No space left on device; stopped, the show goes on" in err
    assert err.count("No space left on device") == 2  # once each, however many events followed
    assert "played 30 frames" in err and decoded(tmp_path / "take.mp4") == 30


def test_writers_over_a_file_size_limit_stop_mid_show(tmp_path):
    """Log and performance file grow past RLIMIT_FSIZE while OSC events arrive: each stops (EFBIG),
    once; the show plays its 3 seconds; the performance file keeps every event before the limit."""
    port = free_udp_port()
    perf, log = tmp_path / "p.jsonl", tmp_path / "l.jsonl"
    proc = play("--size", "64x48", "--fps", "30", "--seconds", "3", "--performance", str(perf),
                "--log", str(log), fsize=6000, osc=port)
    client = SimpleUDPClient("127.0.0.1", port)
    before = listening(proc)
    sent = [round(0.001 * i, 3) for i in range(200)]
    for v in sent:
        client.send_message("/noclip/tracking", v)
        time.sleep(0.003)
    rc, err = finish(proc, before=before)
    assert rc == 0, err
    assert "Traceback" not in err
    assert err.count("File too large") == 2 and "played 90 frames" in err
    assert perf.stat().st_size <= 6000 and log.stat().st_size <= 6000
    p = load_performance(perf, salvage=True)
    got = [e.value for evs in p.events.values() for e in evs]
    assert not p.complete and 10 < len(got) < len(sent)
    # a run of what was sent, in order, up to the limit (OSC carries float32); on a loaded machine
    # the show's first frames take seconds and the bounded queue drops the oldest of what waits
    k = min(range(len(sent)), key=lambda i: abs(sent[i] - got[0]))
    assert got == pytest.approx(sent[k:k + len(got)], abs=1e-6)


def test_a_take_over_a_file_size_limit_stops_and_the_show_goes_on(tmp_path):
    """The take hits EFBIG after two fragments: reported once, stopped; what it wrote decodes; the
    show plays its 4 seconds and exits 0, with REC off from then on."""
    take = tmp_path / "take.mp4"
    proc = play("--size", "160x120", "--fps", "30", "--seconds", "4", "--record", str(take), *NOISY,
                fsize=400_000)
    rc, err = finish(proc)
    assert rc == 0, err
    assert "Traceback" not in err and "played 120 frames" in err
    assert err.count("File too large") == 1, err
    frames = decoded(take)
    assert 10 <= frames < 120  # whole seconds up to the limit (fewer if a loaded machine dropped some)
    perf = load_performance(take.with_suffix(".performance.jsonl"))
    stops = [(f, e.source) for f, evs in perf.events.items() for e in evs if e.target == "cmd/record/stop"]
    assert len(stops) == 1 and stops[0][1] == "recorder" and 30 <= stops[0][0] < 120


@pytest.fixture
def tmpfs():
    """A real 4 MB filesystem that fills up (mount needs root; CI and this VM run as root)."""
    folder = Path(tempfile.mkdtemp(prefix="noclip-tmpfs-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_take_stops_cleanly_at_the_disk_reserve(tmpfs):
    """On a disk that fills, the take stops while NOCLIP_DISK_RESERVE is still free: the file is
    finished and decodes to its last frame; the performance file beside it on the same disk is
    whole (its end line is there) and says when REC went off; the show plays to its end."""
    take = tmpfs / "take.mp4"
    proc = play("--size", "320x240", "--fps", "30", "--seconds", "8", "--record", str(take), *NOISY,
                env={"NOCLIP_DISK_RESERVE": "1.5"})
    rc, err = finish(proc)
    assert rc == 0, err
    assert "Traceback" not in err and "played 240 frames" in err
    assert "disk nearly full" in err and "take stopped and finished" in err
    assert shutil.disk_usage(tmpfs).free > 200_000  # it stopped and finished its file before the disk filled
    with av.open(str(take)) as c:
        times = [f.time for f in c.decode(video=0)]  # no error: the file is finished, not cut
    last = round(max(times) * 30)  # the show frame of the take's last picture (it began at frame 0)
    assert len(times) >= 10 and last < 240
    perf = load_performance(take.with_suffix(".performance.jsonl"))
    assert perf.complete and perf.frames == 240
    stops = [f for f, evs in perf.events.items() for e in evs if e.target == "cmd/record/stop"]
    # REC goes off on the frame after the loop hears of it: the read-back ring (2 frames) and the
    # encoder's queue (up to 8) lie between the loop and the file
    assert len(stops) == 1 and last < stops[0] <= last + 12


def tasks() -> int:
    """Threads of this process, native ones too (the codec's), from the kernel."""
    gc.collect()
    return len(os.listdir("/proc/self/task"))


def test_failed_takes_leave_no_threads_behind(ctx, tmp_path):
    """Three takes onto a full device: each fails, is reported, and releases its encoder thread,
    the codec's threads and its file; the show plays on."""
    full = tmp_path / "take.mp4"
    full.symlink_to("/dev/full")
    reporter = Reporter()
    deck = RecordDeck((160, 120), 30, reporter, first=full, reserve=0)
    show = Show(ctx, load_patch("testcard"), (160, 120), clock=OfflineClock(30), outputs=[deck],
                reporter=reporter)
    show.run(frames=2)
    before = tasks()
    for _ in range(3):
        deck.first = deck.base = full   # every take onto the full device
        deck.takes.clear()
        show.queue.put(ControlEvent("test", "cmd/record/start"))
        show.run(frames=40)  # a keyframe's fragment is written after a second: it fails there
        # the encoder thread hears of it when it writes: on a loaded machine, after the loop's 40
        # frames (seen in CI); REC goes off one frame after the take, through the stop event
        deadline = time.monotonic() + 20
        while (deck.recorder is not None or show.fp["recording"]) and time.monotonic() < deadline:
            show.run(frames=1)
            time.sleep(0.01)
        assert deck.recorder is None and show.fp["recording"] is False
    assert tasks() == before
    show.close()
    errors = [m for _, m in reporter.recent if "No space left on device" in m]
    assert len(errors) == 3


def test_recorder_close_releases_everything_after_a_failed_write(tmp_path):
    full = tmp_path / "x.mp4"
    full.symlink_to("/dev/full")
    before = tasks()
    rec = VideoRecorder(full, (160, 120), 30, live=False, reserve=0)
    noise = np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8)
    with pytest.raises(TakeStopped, match="No space left on device"):
        for _ in range(90):
            rec.push(noise)
    with pytest.raises(TakeStopped, match="No space left on device"):
        rec.close()
    assert not rec._thread.is_alive() and rec.container is None
    rec.close()  # twice is harmless
    del rec
    assert tasks() == before


def test_render_onto_a_full_device_is_a_named_error(tmp_path):
    out = tmp_path / "out.mp4"
    out.symlink_to("/dev/full")
    r = subprocess.run([sys.executable, "-m", "instrument.cli", "render", "--patch", "testcard",
                        "--seconds", "2", "--fps", "30", "--size", "160x120", "-o", str(out), *NOISY],
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "NOCLIP_DISK_RESERVE": "0"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "render stopped:" in r.stderr and "No space left on device" in r.stderr


def test_a_sink_that_fails_is_dropped_once_and_closed(ctx, tmp_path):
    """In the loop itself: an event log whose disk fills (here: its file is /dev/full) is
    reported once, closed, and left out; the performance file beside it keeps every event."""
    reporter = Reporter()
    show = Show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(30), reporter=reporter)
    log = EventLog("/dev/full")
    perf = PerformanceWriter(tmp_path / "p.jsonl", show.patch, dict(show.bank.targets), 30, (64, 48))
    show.sinks += [log, perf]
    for i in range(10):
        show.queue.put(ControlEvent("test", "tracking", i / 10))
        show.step()
    assert show.sinks == [perf] and log.file.closed
    assert reporter.counts[("error", "writer EventLog")] == 1
    show.close()
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [row["v"] for row in lines[1:-1]] == pytest.approx([i / 10 for i in range(10)])
    assert lines[-1] == {"end": 10}
