"""Offline renders are exact or they fail: each dream is waited for however long it takes, a
missing one stops the render (named, non-zero, the file closed and resumable) unless allowed, and
the process ends with its generator stopped and joined, also on Ctrl-C.

The models are the tiny test backend under names (tests/tiny_backend.py: `load_named`) that make it
slow, failing or dying; `load_backend` is swapped for it, and a generator process gets the swapped
one too (it is handed over by reference), so the default path (a process of its own) is what runs.
"""

import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import ROOT
from tiny_backend import load_named

import instrument.generate as generate
import instrument.generate.worker as worker
from instrument.cli import main

FPS = 10
ARGS = ["--patch", "level0", "--fps", str(FPS), "--size", "96x72", "--codec", "ffv1",
        "--set", "similarity_skip=0", "--set", "steps=1", "--set", "stream_batch=false"]


def render(out: Path, model: str, seconds: float, *extra: str) -> int:
    name = model if model == "none" else f"noclip-tests/{model}"
    return main(["render", *ARGS, "--model", name, "--seconds", str(seconds), "-o", str(out), *extra])


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture
def tiny(monkeypatch, caplog):
    monkeypatch.setattr(generate, "load_backend", load_named)
    caplog.set_level(logging.INFO, logger="noclip")
    return caplog


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    """The reference: 20 frames (2 s) of the tiny model dreaming at full speed, in this process."""
    mp = pytest.MonkeyPatch()
    mp.setattr(generate, "load_backend", load_named)
    mp.setenv("NOCLIP_GENERATOR", "thread")
    try:
        out = tmp_path_factory.mktemp("fast") / "fast.mkv"
        assert render(out, "tiny", 2.0) == 0
        scene = out.with_name("scene.mkv")
        assert render(scene, "none", 0.3) == 0
    finally:
        mp.undo()
    return decoded(out), decoded(scene)


class HourLaterClock:
    """`time` as the worker sees it, where every look at the clock is an hour after the last: a
    deadline of any length has passed by the time it is checked."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        self.now += 3600.0
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def test_a_slow_dream_is_waited_for_and_the_frames_equal_a_fast_run(tmp_path, tiny, fast, monkeypatch):
    frames, scene = fast
    monkeypatch.setattr(worker, "time", HourLaterClock())
    out = tmp_path / "slow.mkv"
    t = time.perf_counter()
    assert render(out, "tiny-slow-1.0", 0.3) == 0  # 3 frames, a second each, in a generator process
    assert time.perf_counter() - t >= 3.0
    slow = decoded(out)
    assert len(slow) == 3
    assert all(np.array_equal(a, b) for a, b in zip(slow, frames[:3], strict=False))
    assert not any(np.array_equal(a, b) for a, b in zip(slow, scene, strict=True))  # the dreams are in
    last = [r.getMessage() for r in tiny.records if "3/3 frames" in r.getMessage()][-1]
    per_frame = float(re.search(r"([\d.]+)s/frame", last).group(1))
    assert per_frame >= 0.9 and " left " in last, last  # seconds per frame and the time left
    assert "not ready" not in tiny.text and tiny.text.count("ERROR") == 0


def test_a_failing_dream_stops_the_render_and_resume_finishes_it(tmp_path, tiny, fast):
    frames, _ = fast
    out = tmp_path / "part.mkv"
    assert render(out, "tiny-fail-14", 2.0) == 1  # the 15th dream runs out of memory
    assert "render failed: frame 14 has no dream: RuntimeError: CUDA out of memory (injected)" in tiny.text
    assert "holds the first 14 frames: the same command with --resume continues it" in tiny.text
    part = decoded(out)  # closed, decodable, and exact as far as it goes
    assert len(part) == 14 and all(np.array_equal(a, b) for a, b in zip(part, frames, strict=False))
    tiny.clear()
    assert render(out, "tiny", 2.0, "--resume") == 0
    keep = int(re.search(r"keeping its first (\d+) frames", tiny.text).group(1))
    assert 0 < keep < 14  # up to its last keyframe: the rest was rendered again and joined on
    whole = decoded(out)
    assert len(whole) == 20 and all(np.array_equal(a, b) for a, b in zip(whole, frames, strict=True))


def test_a_generator_process_killed_mid_render_is_named(tmp_path, tiny):
    out = tmp_path / "oom.mkv"
    assert render(out, "tiny-die-3", 1.0) == 1
    gone = r"the generator process is gone \(killed by SIGKILL \(out of memory\?\)\)"
    assert re.search(r"render failed: frame 3 has no dream: " + gone, tiny.text), tiny.text
    assert len(decoded(out)) == 3


def test_missing_dreams_can_be_allowed_and_are_counted(tmp_path, tiny, fast, monkeypatch):
    frames, _ = fast
    monkeypatch.setenv("NOCLIP_GENERATOR", "thread")
    out = tmp_path / "gaps.mkv"
    assert render(out, "tiny-fail-2", 0.6, "--allow-missing-dreams") == 0
    assert "frame 2 rendered without its dream (--allow-missing-dreams): RuntimeError" in tiny.text
    assert "1 of 6 frames rendered without their dream: 2" in tiny.text
    got = decoded(out)
    assert len(got) == 6 and np.array_equal(got[1], frames[1]) and not np.array_equal(got[2], frames[2])


def test_a_model_that_does_not_load_fails_the_render_unless_allowed(tmp_path, tiny, monkeypatch):
    monkeypatch.setenv("NOCLIP_GENERATOR", "thread")
    out = tmp_path / "none.mkv"
    assert render(out, "tiny-broken", 0.3) == 1
    assert ("render failed: frame 0 has no dream: the model did not load "
            "(FileNotFoundError: noclip-tests/tiny-broken: no weights here (injected))") in tiny.text
    assert not out.exists()  # nothing rendered, nothing left behind
    assert render(out, "tiny-broken", 0.3, "--allow-missing-dreams") == 0
    assert "3 of 3 frames rendered without their dream: 0, 1, 2" in tiny.text
    assert len(decoded(out)) == 3
    tiny.clear()
    assert render(out, "none", 0.3) == 0 and "without" not in tiny.text  # no dream by choice


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid`, from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SCRIPT = ("import sys, tiny_backend, instrument.generate as g; g.load_backend = tiny_backend.load_named; "
          "from instrument.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.mark.parametrize("mode,sig,pause", [("process", signal.SIGINT, 60.0), ("thread", signal.SIGINT, 3.0),
                                            ("process", signal.SIGTERM, 60.0)])
def test_a_stopped_render_closes_its_file_and_ends_cleanly(tmp_path, mode, sig, pause):
    """Ctrl-C (or SIGTERM) while frame 12 is being dreamed: the 12 frames done are in a closed file,
    the generator is stopped and joined (a process is killed at once, a thread finishes the frame in
    hand), and the process exits with no `terminate called`, no traceback, and no child left."""
    out, mark = tmp_path / "stopped.mkv", tmp_path / "slow-call-started"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "NOCLIP_GENERATOR": mode, "TINY_SLOW_MARK": str(mark)}
    model = f"noclip-tests/tiny-slow-{pause}-12"  # from the 13th frame on, `pause` s a frame
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "render", *ARGS, "--model", model, "--seconds", "2",
                             "-o", str(out)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), proc.stderr.read() if proc.poll() is not None else "no slow call"
        kids = children(proc.pid)
        proc.send_signal(sig)
        t = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + sig, err
    assert "terminate called" not in err and "Traceback" not in err, err
    assert ("interrupted" if sig == signal.SIGINT else "terminated") + " at frame 12" in err
    assert "holds the first 12 frames: the same command with --resume continues it" in err
    assert len(decoded(out)) == 12
    assert took < (10.0 if mode == "process" else pause + 10.0), took  # not the 60 s frame
    assert mode == "thread" or kids, "the generator runs in a child process"
    assert not [k for k in kids if running(k)], "a child outlived the render"


def test_the_bar_on_a_terminal_shows_seconds_per_frame_and_time_left_and_keeps_its_clock_running():
    import io

    from instrument.record.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with Progress(4, screen) as p:
        p.update()
        time.sleep(2.3)  # a long frame: the bar is redrawn meanwhile, its clock moving
        p.update()
    draws = screen.getvalue().split("\r")
    waiting = [re.search(r"1/4 \[(00:0\d)<(00:\d\d), +([\d.]+)s/frame\]", d) for d in draws]
    waiting = [m.groups() for m in waiting if m]
    assert len({elapsed for elapsed, _, _ in waiting}) >= 2, draws  # redrawn while the frame took long
    assert re.search(r"2/4 \[00:0[23]<00:0\d, +1\.\d+s/frame\]", draws[-1]), draws[-1]  # the estimate
