"""The beat clock: sources by priority, smooth phase between jittery reports, tap tempo, and beats
that a performance file replays exactly."""

import itertools
import math

import pytest

from instrument.clock import SYNC, BeatClock, OfflineClock, RealtimeClock
from instrument.control import ControlEvent
from instrument.patch import load_patch
from instrument.record.performance import PerformanceWriter, load_performance
from instrument.show import Show

FPS = 60


def run(clock, seconds, fps=FPS, tempo=120.0, choice="auto", feed=None):
    beats = []
    for n in range(int(seconds * fps)):
        t = n / fps
        if feed:
            feed(clock, t)
        beats.append(clock.advance(t, tempo, choice))
    return beats


def test_internal_clock_is_exact_on_the_offline_clock():
    beats = run(BeatClock(), 4.0)
    b = beats[30]  # 0.5 s at 120 bpm
    assert b.beat == 1.0 and b.phase == 0.0 and b.source == "internal"
    assert beats[120].bar == 1 and beats[120].bar_phase == 0.0  # 2 s = 4 beats = one 4/4 bar


def test_tempo_change_keeps_the_phase_continuous():
    c = BeatClock()
    before = [c.advance(n / FPS, 120.0) for n in range(30)]
    after = [c.advance(n / FPS, 60.0) for n in range(30, 60)]
    step = after[0].beat - before[-1].beat
    assert step == pytest.approx(1 / FPS)  # 60 bpm: one beat a second, no jump
    assert after[-1].tempo == 60.0


def jittery_report(source, tempo, lag=0.1, jitter=0.03, start=0.0, until=math.inf, numerator=4):
    """An outside clock that reports every ~100 ms with jitter, its beat measured `lag` late."""
    state = {"next": start}

    def feed(clock, t):
        if state["next"] <= t < until:
            true = (t - start) * tempo / 60.0
            k = int(t * 1000) % 7 - 3  # deterministic jitter
            clock.sync({"source": source, "tempo": tempo, "beat": true, "numerator": numerator}, t)
            state["next"] = t + lag + jitter * k / 3
    return feed


def test_outside_clock_wins_and_phase_stays_smooth_and_monotonic():
    c = BeatClock()
    beats = run(c, 4.0, feed=jittery_report("ableton", 128.0, numerator=3))
    assert all(b.source == "ableton" for b in beats)
    steps = [b.beat - a.beat for a, b in itertools.pairwise(beats)]
    assert min(steps) > 0
    assert max(steps) == pytest.approx(min(steps), rel=1e-6)  # exact reports: a perfectly even ramp
    assert beats[-1].numerator == 3 and beats[-1].tempo == 128.0


def test_a_disagreeing_report_is_eased_in_not_jumped():
    c = BeatClock()
    c.sync({"source": "midi", "tempo": 120.0, "beat": 0.0}, 0.0)
    first = [c.advance(n / FPS) for n in range(30)]
    c.sync({"source": "midi", "tempo": 120.0, "beat": 1.03, "playing": True}, 0.5)  # 15 ms ahead
    eased = [c.advance(n / FPS) for n in range(30, 90)]
    steps = [b.beat - a.beat for a, b in itertools.pairwise([first[-1], *eased])]
    assert max(steps) < 2 * (2 / FPS)  # never more than twice the normal step
    assert eased[-1].beat == pytest.approx(1.03 + 59 / FPS * 2, abs=1e-3)  # caught up within 1 s
    c.sync({"source": "midi", "tempo": 120.0, "beat": 8.0, "playing": True}, 1.5)  # Live located
    assert c.advance(1.5).beat == 8.0


def test_priority_staleness_and_forced_source():
    c = BeatClock()
    c.sync({"source": "midi", "tempo": 100.0, "beat": 0.0}, 0.0)
    c.sync({"source": "link", "tempo": 140.0, "beat": 0.0}, 0.0)
    assert c.advance(0.1).source == "link"
    assert c.advance(0.2, choice="midi").source == "midi"
    assert c.advance(0.3, choice="ableton").source == "link"  # chosen but absent: the best alive
    c.sync({"source": "midi", "tempo": 100.0, "beat": 5.0}, 2.5)
    assert c.advance(3.0).source == "midi"  # link went quiet for > 2 s
    c.sync({"source": "midi", "gone": True}, 3.1)
    assert c.advance(3.2).source == "internal"
    with pytest.raises(ValueError):
        c.sync({"source": "sundial", "tempo": 100.0, "beat": 0.0}, 3.3)


def test_stopped_transport_holds_the_beat():
    c = BeatClock()
    c.sync({"source": "ableton", "tempo": 120.0, "beat": 8.0, "playing": False}, 0.0)
    assert {c.advance(t).beat for t in (0.1, 0.5, 1.0)} == {8.0}
    assert not c.now.playing


def test_tap_tempo_sets_tempo_and_lands_the_beat_on_the_tap():
    c = BeatClock()
    c.advance(0.0)
    assert c.tap(1.0) is None
    for t in (1.5, 2.0):
        tempo = c.tap(t)
    assert tempo == pytest.approx(120.0)
    b = c.advance(2.0, tempo)
    assert b.source == "tap" and b.phase == pytest.approx(0.0, abs=1e-9)
    assert c.tap(10.0) is None  # a long pause starts a new tap
    assert c.tap(10.0) is None and c.tap(9.5) is None  # the same instant, or older: not a tempo (no 1/0)
    assert c.tap(10.5) == pytest.approx(120.0)


def test_live_clock_reports_and_taps_replay_to_the_same_beats(ctx, tmp_path):
    """Reports arrive stamped on the wall clock; the performance file keeps how late each one
    landed, so the replay (offline, no wall clock) computes identical beats."""
    import time

    def ago(seconds):
        return time.perf_counter() - seconds

    script = {
        3: [lambda: ControlEvent("key", "cmd/tap", time=ago(0.010))],
        12: [lambda: ControlEvent("key", "cmd/tap", time=ago(0.003))],
        20: [lambda: ControlEvent("ableton", "cmd/" + SYNC, {"source": "ableton", "tempo": 126.0, "beat": 16.25,
                                                             "playing": True, "numerator": 4}, time=ago(0.02))],
    }
    path = tmp_path / "p.jsonl"
    live = Show(ctx, load_patch("testcard"), (64, 36), clock=RealtimeClock(FPS, paced=False))
    writer = PerformanceWriter(path, live.patch, dict(live.bank.targets), FPS, (64, 36))
    live.sinks.append(writer)
    beats = []
    for n in range(40):
        for make in script.get(n, []):
            live.queue.put(make())
        beats.append(live.step().beat)
    live.close()
    assert beats[15].source == "tap" and beats[-1].source == "ableton"
    assert beats[-1].tempo == 126.0

    perf = load_performance(path)
    replay = Show(ctx, perf.patch, (64, 36), clock=OfflineClock(FPS))
    again = []
    for n in range(perf.frames):
        for e in perf.events_at(n):
            replay.queue.put(e)
        again.append(replay.step().beat)
    replay.close()
    assert again == beats


def test_key_t_taps():
    import glfw

    from instrument.control import ControlQueue
    from instrument.render.window import Window

    w = object.__new__(Window)
    w.queue, w.hud, w._esc = ControlQueue(), None, -10.0
    w._key(None, glfw.KEY_T, 0, glfw.PRESS, 0)
    assert [e.target for e in w.queue.drain()] == ["cmd/tap"]
