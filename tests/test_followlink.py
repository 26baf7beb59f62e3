"""Follow mode on Ableton Link: the wire's marks and what a follower makes of them (a timeline of our
own standing in for Link's), then a real leader and a real follower, two processes in a real Link
session on loopback, their frame starts compared on the machine's one monotonic clock while a third
peer changes the session's tempo mid-show."""

import asyncio
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter

import pytest
from test_follow import SMALL, free_tcp_port

from instrument.clock import MAX_BEAT
from instrument.control import ControlQueue
from instrument.control.follow import Follower
from instrument.control.followclock import FollowClock
from instrument.control.followlink import Marks
from instrument.control.followwire import beat_mark, hello, line
from instrument.files import strict_json
from instrument.report import Reporter


class Timeline:
    """A Link session as a follower sees it: its beat runs at `bpm` and counts `shift` beats off the
    leader's (peers share the phase, not the count)."""

    def __init__(self, bpm: float = 120.0, shift: float = 7.0, peers: int = 1) -> None:
        self.bpm, self.shift, self.peers, self.t0 = bpm, shift, peers, time.perf_counter()

    @property
    def tempo(self):
        return self.bpm if self.peers else None

    def leader(self, t: float) -> float:
        return (t - self.t0) * self.bpm / 60.0 + 100.0

    def timeline(self, t: float) -> float:
        return self.leader(t) + self.shift


def test_a_beat_mark_is_a_beat_and_nothing_else():
    assert beat_mark(0) == 0.0 and beat_mark(12.5) == 12.5 and beat_mark(MAX_BEAT) == MAX_BEAT
    for bad in (-0.001, -1e9, MAX_BEAT * 2, 1e300, True, "12", None, [1.0], {"b": 1}):
        with pytest.raises(ValueError):
            beat_mark(bad)
    with pytest.raises(ValueError):  # NaN and infinities are not JSON: the line itself is malformed
        strict_json(b'{"f": 3, "b": NaN}')
    assert strict_json(hello({}, -1, link=True))["link"] is True
    assert "link" not in strict_json(hello({}, -1))  # unmarked leaders say what version 1 always said


def test_marks_place_the_timelines_on_fresh_lines_and_only_when_they_agree():
    link, stats = Timeline(bpm=120.0, shift=7.0), Counter()
    marks = Marks(link, 1 / 30, stats)
    now = time.perf_counter()
    marks.arrived(1, link.leader(now - 0.004), now)  # a line 4 ms old
    assert marks.offset is None and marks.target(1) is None  # one line places nothing
    # a line held up 0.6 s (1.2 beats) reads like a fresh one a whole beat off (8, its age 0.2):
    # it cannot be told apart alone, which is why lines must agree; it breaks frame 1's count
    marks.arrived(2, link.leader(now - 0.6), now)
    marks.arrived(3, link.leader(now - 0.003), now)
    assert marks.offset is None
    marks.arrived(99, link.leader(now - 0.35), now)  # 0.7 beats old: 0.3 short of 8, early: ignored
    marks.arrived(4, link.leader(now - 0.002), now)
    assert marks.offset == 7 and stats["link placed"] == 1
    due = marks.target(4)
    assert due == pytest.approx(now - 0.002, abs=1e-4)  # when the leader began frame 4, on our clock
    lag = marks.lag(4, now + 0.001)
    assert lag == pytest.approx(0.003, abs=1e-4) and marks.target(4) is None  # measured and forgotten
    assert marks.lag(3, now + 0.03) == pytest.approx(0.033, abs=1e-4) and stats["late frames"] == 1
    # the session's tempo changes: a mark is a beat, converted at the tempo the session has now
    link.t0 -= 100 / 120 * 60 - 100 / 90 * 60  # the leader's beat stays continuous at `now`...
    link.bpm = 90.0  # ... and runs at 90 bpm from here
    later = time.perf_counter()
    marks.arrived(5, link.leader(later + 0.01), later)  # (a mark ahead of its line: not fresh)
    assert marks.target(5) == pytest.approx(later + 0.01, abs=1e-4)
    # a mark from a timeline that is not ours (the follower still in a session of its own)
    marks.arrived(6, link.leader(later) + 0.4, later)
    marks.arrived(7, link.leader(later) + 0.4, later)
    assert marks.offset == 7  # placed once, kept
    link.peers = 0  # alone in the session: no target, no lag, as without Link
    assert marks.target(6) is None and marks.lag(6, later) is None


def test_a_bad_mark_costs_the_mark_and_not_the_frames_events():
    queue, reporter = ControlQueue(), Reporter()
    f = Follower("127.0.0.1", 1, queue, reporter)
    f._greeted, f.header, f.live = True, {}, True
    f.marks = Marks(Timeline(), 1 / 30, f.stats)
    for n, b in enumerate((-5, 1e12, "soon", True, [1]), start=1):
        f._message(line({"f": n, "ev": [["osc", "fog", 0.1 * n]], "b": b})[:-1])
    f._message(b'{"f": 9, "ev": [["osc", "fog", 0.9]], "b": Infinity}')
    assert f.stats["bad mark"] == 5 and f.stats["malformed"] == 1
    assert sorted(f._due) == [1, 2, 3, 4, 5]  # every frame's events kept, the NaN line's dropped
    assert not f.marks._marks


def test_a_mark_far_ahead_is_not_waited_for():
    """A leader whose marks say frame n is seconds away (a session re-formed under it, or a hostile
    one) makes the follower wait at most a period: the frame starts at once and it is counted."""
    link = Timeline(shift=3.0)
    f = Follower("127.0.0.1", 1, ControlQueue(), Reporter())
    clock = FollowClock(30.0, f)
    f.marks = Marks(link, clock.period, f.stats)
    f.marks.offset = 3
    f._sock = object()  # "connected": the clock waits for the leader's lines
    f.receive = lambda: None
    f.live, f.heard = True, time.perf_counter()
    clock.tick()  # frame 0 (newest is -1: the leader quiet, so it waits STALL; keep it short)
    f.heard = time.perf_counter()
    now = time.perf_counter()
    f.newest = 5
    f.marks.arrived(1, link.leader(now) + 20.0, now)  # 10 s ahead at 120 bpm
    t = time.perf_counter()
    assert clock.tick().frame == 1 and time.perf_counter() - t < 0.01 and f.stats["mark ahead"] == 1
    f.marks.arrived(2, link.leader(time.perf_counter()) + 0.04, time.perf_counter())  # 20 ms ahead
    t = time.perf_counter()
    assert clock.tick().frame == 2 and 0.015 < time.perf_counter() - t < 0.03  # waited for it
    f._sock = None


def frame_starts(path) -> dict[int, float]:
    return {int(a): float(b) for a, b in (x.split() for x in path.read_text().splitlines())}


def test_a_follower_on_link_begins_each_frame_within_a_frame_of_its_leader(tmp_path):
    aalink = pytest.importorskip("aalink", reason="aalink (the optional noclip[link] extra) is not installed")
    fps = 30
    (tmp_path / "small.toml").write_text(SMALL)
    port = free_tcp_port()
    base = [sys.executable, "-m", "instrument.cli", "play", "--headless", "--midi", "off", "--osc", "off",
            "--oscquery", "off"]
    leader = subprocess.Popen([*base, "--patch", "small.toml", "--fps", str(fps), "--seconds", "9", "--lead",
                               str(port), "--link", "--frame-times", "lead.times"],
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    tile = subprocess.Popen([*base, "--size", "128x96", "--follow", f"127.0.0.1:{port}",
                             "--frame-times", "tile.times"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    said: list[str] = []
    reading = threading.Thread(target=lambda: said.extend(tile.stderr), daemon=True)
    reading.start()
    deadline = time.monotonic() + 40
    while not any("caught up" in x for x in said) and time.monotonic() < deadline:
        time.sleep(0.05)
    loop = asyncio.new_event_loop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        live = aalink.Link(120.0, loop)  # Live, say: it joins the show's session...
    live.enabled = True
    try:
        time.sleep(2.5)
        live.tempo = 87.0  # ... and changes its tempo in the middle of the show
        time.sleep(1.0)
        assert live.num_peers >= 2 and live.tempo == pytest.approx(87.0, abs=0.01), "".join(said)
        _, lead_err = leader.communicate(timeout=60)
    finally:
        time.sleep(0.3)
        tile.send_signal(signal.SIGINT)
        tile.wait(timeout=60)
        reading.join(10)
        live.enabled = False
        loop.close()
    err = "".join(said)
    assert leader.returncode == 0 and tile.returncode == 0, lead_err + err
    assert "its frames marked on the Link timeline" in lead_err
    joined = int(re.search(r"caught up at frame (\d+)", err).group(1))
    lead, ours = frame_starts(tmp_path / "lead.times"), frame_starts(tmp_path / "tile.times")
    # from a few frames after catching up (its last catch-up frames are built as fast as it can)
    common = [f for f in sorted(set(lead) & set(ours)) if f >= joined + 5]
    assert len(common) >= 5 * fps
    apart = sorted(1000 * (ours[f] - lead[f]) for f in common)
    median, p99, worst = statistics.median(apart), apart[int(0.99 * (len(apart) - 1))], apart[-1]
    print(f"\nfollower behind its leader over {len(apart)} frames at {fps} fps, Link: median {median:.2f} ms, "
          f"p99 {p99:.2f} ms, max {worst:.2f} ms, min {apart[0]:.2f} ms")
    period = 1000 / fps
    assert apart[0] > -1.0  # it never began a frame before the leader had
    # on an idle machine every frame is within a period (max 8-26 ms seen); with both cores taken by
    # another job the leader itself misses its deadlines and the follower, drawing too, falls behind
    # for a second at a time (seen: 366 ms): the bulk is what this asserts
    assert median < period / 4 and apart[len(apart) * 9 // 10] < period, (median, p99, worst)
    summary = re.search(r"behind the leader by ([\d.]+) ms \(median\).* on the Link timeline; (.*)$", err, re.M)
    assert summary, err
    assert abs(float(summary.group(1)) - median) < 2.0  # what it measured of itself on Link, and what it did
    # (its own count of late frames is not asserted: with another job on both cores, Link's own
    # measurement of the peers' clocks wandered by ~10 ms and it counted 19 frames late that the
    # monotonic clock saw start within 7.3 ms of the leader's)
    assert "link placed" in summary.group(2), err
