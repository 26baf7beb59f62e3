"""AbletonOSC against a fake Live on loopback that speaks its protocol (getters answered, listeners
sent, all only on Live's ~100 ms script ticks with jitter), and the feed that reports followers."""

import random
import socket
import threading
import time

import pytest
from conftest import free_udp_port
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from instrument.clock import SYNC
from instrument.control import ControlQueue
from instrument.control.tempo import AbletonOSC, ClockFeed


class FakeLive:
    """Live with AbletonOSC: song time runs at `tempo` while playing; requests are handled and
    listeners fire only on script ticks every ~100 ms (jittered), like the real control surface."""

    def __init__(self, port, reply_port, tempo=120.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.005)
        self.reply = ("127.0.0.1", reply_port)
        self.tempo, self.playing, self.numerator = tempo, True, 4
        self.t0, self.b0 = time.perf_counter(), 0.0
        self.listening = set()
        self.heard = []
        self._last_beat = 0
        self._rng = random.Random(1)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def song_time(self, t=None):
        t = time.perf_counter() if t is None else t
        return self.b0 + (t - self.t0) * self.tempo / 60.0 if self.playing else self.b0

    def set_tempo(self, tempo):
        self.b0, self.t0, self.tempo = self.song_time(), time.perf_counter(), tempo
        self._changed = "tempo"

    def set_playing(self, playing):
        self.b0, self.t0, self.playing = self.song_time(), time.perf_counter(), playing
        self._changed = "is_playing"

    def send(self, address, *args):
        b = OscMessageBuilder(address)
        for a in args:
            b.add_arg(a)
        self.sock.sendto(b.build().dgram, self.reply)

    def value(self, prop):
        return {"tempo": self.tempo, "is_playing": self.playing, "signature_numerator": self.numerator,
                "current_song_time": self.song_time()}[prop]

    def _run(self):
        pending, next_tick = [], time.perf_counter()
        self._changed = None
        while not self._stop.is_set():
            try:
                pending.append(OscPacket(self.sock.recv(4096)).messages[0].message.address)
            except (TimeoutError, OSError):
                pass
            if time.perf_counter() < next_tick:
                continue
            next_tick += 0.1 + self._rng.uniform(-0.03, 0.03)
            for address in pending:  # Live's tick: the script handles what came in
                self.heard.append(address)
                kind, _, prop = address.rpartition("/")
                if address == "/live/test":
                    self.send("/live/test", "ok")
                elif kind == "/live/song/get":
                    self.send(address, self.value(prop))
                elif kind == "/live/song/start_listen":
                    self.listening.add(prop)
                    if prop != "beat":
                        self.send(f"/live/song/get/{prop}", self.value(prop))
            pending.clear()
            if self._changed in self.listening:
                self.send(f"/live/song/get/{self._changed}", self.value(self._changed))
            self._changed = None
            beat = int(self.song_time())
            if "beat" in self.listening and beat != self._last_beat:
                self.send("/live/song/get/beat", beat)
            self._last_beat = beat

    def close(self):
        self._stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def ports():
    return free_udp_port(), free_udp_port()


def follow(ports, **kw):
    return AbletonOSC("127.0.0.1", ports[0], ports[1], bind="127.0.0.1", ping=0.2, timeout=0.6, **kw).start()


def wait(cond, limit):
    end = time.perf_counter() + limit
    while time.perf_counter() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def phase_error_ms(live, ableton):
    t = time.perf_counter()
    return abs(ableton.beat(t) - live.song_time(t)) * 60.0 / live.tempo * 1000.0


def test_locks_tempo_and_phase_within_5ms_after_two_beats(ports):
    live = FakeLive(*ports, tempo=123.0)
    ableton = follow(ports)
    try:
        time.sleep(2 * 60.0 / 123.0 + 0.2)
        assert ableton.connected and ableton.tempo == pytest.approx(123.0, rel=1e-6)
        assert ableton.running and ableton.numerator == 4
        errors = []
        for _ in range(10):
            errors.append(phase_error_ms(live, ableton))
            time.sleep(0.03)
        assert max(errors) < 5.0, errors
        assert {"tempo", "is_playing", "signature_numerator", "beat"} <= live.listening
    finally:
        ableton.close()
        live.close()


def test_follows_a_tempo_change_within_a_beat_and_the_transport(ports):
    live = FakeLive(*ports, tempo=120.0)
    ableton = follow(ports)
    try:
        assert wait(lambda: ableton.tempo == 120.0, 2.0)
        live.set_tempo(90.0)
        assert wait(lambda: ableton.tempo == 90.0, 60.0 / 90.0)
        assert wait(lambda: phase_error_ms(live, ableton) < 5.0, 60.0 / 90.0)
        live.set_playing(False)
        assert wait(lambda: not ableton.running, 0.5)
        assert wait(lambda: abs(ableton.beat(0.0) - live.song_time()) < 1e-3, 0.5)  # held where it stopped
    finally:
        ableton.close()
        live.close()


def test_live_starting_late_and_restarting_gets_the_listeners_again(ports):
    ableton = follow(ports)
    try:
        time.sleep(0.3)
        assert not ableton.connected and ableton.tempo is None  # no Live yet: nothing, no error
        live = FakeLive(*ports, tempo=100.0)
        assert wait(lambda: ableton.tempo == 100.0, 2.0)
        live.close()  # Live quits
        assert wait(lambda: not ableton.connected, 1.5)
        assert ableton.tempo is None
        live = FakeLive(*ports, tempo=140.0)  # and comes back with no listeners
        assert wait(lambda: ableton.tempo == 140.0, 2.0)
        assert wait(lambda: "beat" in live.listening, 1.0) and ableton.hellos == 2
        live.close()
    finally:
        ableton.close()


class Stub:
    """A follower with the MIDI ClockFollower's interface."""

    def __init__(self):
        self.tempo, self.running = None, False

    def beat(self, t):
        return 2.0 * t


def test_feed_reports_changes_at_once_else_every_so_often():
    q = ControlQueue()
    stub = Stub()
    feed = ClockFeed(q, {"midi": stub}, every=0.5)
    assert feed.poll(0.0) == []
    stub.tempo, stub.running = 120.0, True
    (e,) = feed.poll(0.01)
    assert e.target == "cmd/" + SYNC and e.time == 0.01
    assert e.value == {"source": "midi", "tempo": 120.0, "beat": 0.02, "playing": True, "numerator": 4}
    assert feed.poll(0.2) == [] and len(feed.poll(0.52)) == 1
    stub.tempo = 126.0
    assert len(feed.poll(0.53)) == 1  # a tempo change goes at once
    stub.tempo = None
    (gone,) = feed.poll(0.6)
    assert gone.value == {"source": "midi", "gone": True}
    assert len(q.drain()) == 4


def test_show_beats_follow_live_through_the_feed(ctx, ports):
    """Live → AbletonOSC → ClockFeed → control queue → the show's beat clock, on a paced show."""
    from instrument.clock import RealtimeClock
    from instrument.patch import load_patch
    from instrument.show import Show

    live = FakeLive(*ports, tempo=128.0)
    ableton = follow(ports)
    show = Show(ctx, load_patch("testcard"), (64, 36), clock=RealtimeClock(30))
    feed = ClockFeed(show.queue, {"ableton": ableton}).start()
    try:
        assert wait(lambda: ableton.tempo == 128.0, 2.0)
        errors, late = [], []
        for _ in range(75):
            fp = show.step()
            errors.append(abs(fp.beat.beat - live.song_time(show._wall)) * 60 / 128.0 * 1000)
            late.append(show.clock.late)
        assert fp.beat.source == "ableton" and fp.beat.tempo == 128.0
        # show time stands still while a late frame catches up, the music does not: judge the
        # frames whose last 150 ms (a report and a half) kept time; a frame drained a few ms late
        # (2 shared cores) is off by that much, so we ask for the picture's precision, not the
        # follower's (that is the 5 ms test above): typically within a quarter frame, 90% within half
        steady = sorted(e for n, e in enumerate(errors) if n >= 15 and late[n] == late[n - 5])
        assert len(steady) > 20, late
        frame_ms = 1000 / 30
        assert steady[len(steady) // 2] < frame_ms / 4 and steady[int(0.9 * len(steady))] < frame_ms / 2, steady
    finally:
        feed.close()
        show.close()
        ableton.close()
        live.close()


def test_midi_clock_follower_is_a_source_until_its_ticks_stop():
    """The MIDI ClockFollower (control/midi.py's) through MidiClock and the feed into a BeatClock."""
    from instrument.clock import BeatClock, ClockFollower
    from instrument.control.tempo import MidiClock

    follower = ClockFollower()
    follower.start()
    t0 = time.perf_counter() - 1.0
    for i in range(49):  # two beats of 24 PPQN at 125 bpm, the last one 40 ms ago
        follower.tick(t0 + i * 60 / 125 / 24)
    src = MidiClock(follower, stale=0.5)
    q = ControlQueue()
    feed = ClockFeed(q, {"midi": src})
    (e,) = feed.poll()
    assert e.value["tempo"] == pytest.approx(125.0, rel=1e-3) and e.value["playing"]
    clock = BeatClock()
    clock.sync(e.value, 0.0)
    assert clock.advance(0.0).source == "midi"
    src.stale = 0.0  # its ticks stopped: gone, and the clock falls back
    (gone,) = feed.poll()
    assert src.tempo is None and gone.value == {"source": "midi", "gone": True}
    clock.sync(gone.value, 0.1)
    assert clock.advance(0.1).source == "internal"


def test_infinite_and_absurd_clock_values_never_reach_the_modulators(ctx):
    """AbletonOSC's song time of +inf reached math.floor in the modulators (OverflowError, exit 1).
    It is refused at every step: the listener, the feed, the beat clock; and the modulators hold."""
    import math

    from instrument.clock import Beat, BeatClock
    from instrument.control.modulators import build

    def osc(address, value):
        b = OscMessageBuilder(address)
        b.add_arg(value, "d" if isinstance(value, float) else "i")
        return b.build().dgram

    live = AbletonOSC("127.0.0.1", 9, 0, bind="127.0.0.1")
    try:
        t = time.perf_counter()
        live.handle(osc("/live/song/get/tempo", 120.0), t)
        live.handle(osc("/live/song/get/is_playing", 1), t)
        live.handle(osc("/live/song/get/current_song_time", 4.0), t)
        before = list(live._offsets)
        for bad in (math.inf, -math.inf, math.nan, 1e300):
            live.handle(osc("/live/song/get/current_song_time", bad), t)
            live.handle(osc("/live/song/get/tempo", bad), t)
        assert list(live._offsets) == before and live.tempo == 120.0
        assert live.stats["non-finite"] == 8 and math.isfinite(live.beat(t + 1))
    finally:
        live.sock.close()

    class Broken:
        running = True
        tempo = 120.0

        def beat(self, t):
            return math.inf

    queue = ControlQueue()
    feed = ClockFeed(queue, {"midi": Broken()})
    assert feed.poll() == [] and feed.refused == 1
    Broken.tempo = math.nan
    assert feed.poll() == [] and feed.refused == 2

    clock = BeatClock()
    for beat in (math.inf, math.nan, 1e12):
        with pytest.raises(ValueError):
            clock.sync({"source": "ableton", "tempo": 120.0, "beat": beat}, 0.0)
    mods = build([{"target": "aberration", "shape": s, "every": 1, "depth": 1.0}
                  for s in ("sine", "sh", "square", "envelope")]
                 + [{"command": "seed/next", "every": 1}])
    for beat in (math.inf, -math.inf, math.nan):
        b = Beat(120.0, beat, True, "ableton", 4)
        assert all(v == 0.0 for v in mods.offsets(b, 1.0).values())
        assert mods.due(b, 1.0) == []
