"""MIDI mapping and ports: real mido.Message bytes through the fake rtmidi-like backend."""

import itertools
import random
import tomllib

import mido
import pytest

from instrument.clock import ClockFollower
from instrument.control import ControlEvent, ControlQueue
from instrument.control.midi import MidiControl
from instrument.control.midimap import device_matches, parse_bindings
from instrument.control.midiports import CLIENT
from instrument.control.midisim import FakeBackend
from instrument.params import REGISTRY
from instrument.patch import ConfigError, load_patch
from instrument.report import Reporter
from instrument.tomlfile import TomlFile

DEV = "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"


def rig(toml: str, *devices: str, targets=None):
    """A MidiControl on a fake backend with `devices` plugged in, bindings from `toml`."""
    tables = tomllib.loads(toml)["midi"]
    bindings = parse_bindings(tables, lambda p, m: ConfigError("t", None, str(p), m))
    be = FakeBackend(*(devices or (DEV,)))
    q, rep = ControlQueue(), Reporter()
    midi = MidiControl(q, rep, [bindings], backend=be, virtual=False)
    midi.mapper.targets = {} if targets is None else targets
    midi.scan()
    return midi, be, q, rep


def play(midi, *msgs, device=DEV):
    """Queue the messages at the port, as rtmidi would, then the frame loop's poll takes them."""
    sent = [midi.backend.devices[device].send(m.bytes() if isinstance(m, mido.Message) else m) for m in msgs]
    midi.poll()
    return all(sent)


def cc(n, v, ch=0):
    return mido.Message("control_change", channel=ch, control=n, value=v)


def values(q, name=None):
    return [(e.target, e.value) for e in q.drain() if name is None or e.target == name]


def test_absolute_range_curve_and_channel():
    midi, _be, q, _ = rig("""
[[midi]]
cc = 1
param = "aberration"
range = [2.0, 10.0]
takeover = "none"
[[midi]]
cc = 2
channel = 3
param = "bleed"
curve = "exp"
takeover = "none"
""")
    play(midi, cc(1, 0), cc(1, 127), cc(1, 64))
    assert [v for _, v in values(q)] == pytest.approx([2.0, 10.0, 2.0 + 8 * 64 / 127])
    play(midi, cc(2, 64, ch=0))  # wrong channel: nothing
    assert values(q) == []
    play(midi, cc(2, 64, ch=2), cc(2, 127, ch=2))
    got = [v for _, v in values(q)]
    assert got[0] < 0.2 and got[1] == pytest.approx(1.0)  # exp: half travel is far below half value


def test_pickup_waits_for_the_control_to_meet_the_value():
    targets = {"bleed": 0.5}
    midi, _be, q, _ = rig('[[midi]]\ncc = 3\nparam = "bleed"\n', targets=targets)
    play(midi, cc(3, 10), cc(3, 20), cc(3, 40))  # moving up, still below the patch's 0.5
    assert values(q) == []
    play(midi, cc(3, 70))  # crossed 0.5: picked up
    assert values(q) == [("bleed", pytest.approx(70 / 127))]
    play(midi, cc(3, 30))  # owned now: follows, both directions
    assert values(q) == [("bleed", pytest.approx(30 / 127))]
    # anything else (OSC) moves it: the fader lets go until it meets the new value
    ev = ControlEvent("osc", "bleed", 0.9)
    targets["bleed"] = 0.9
    midi.applied(ev, 5, 0.9)
    play(midi, cc(3, 40), cc(3, 100))
    assert values(q) == []
    play(midi, cc(3, 120))
    assert values(q) == [("bleed", pytest.approx(120 / 127))]


def test_scale_takeover_converges_without_a_jump():
    midi, _be, q, _ = rig('[[midi]]\ncc = 4\nparam = "bleed"\ntakeover = "scale"\n', targets={"bleed": 0.2})
    play(midi, *(cc(4, v) for v in range(64, 128, 8)), cc(4, 127))  # knob starts at 0.5, heads up
    got = [v for _, v in values(q)]
    steps = [b - a for a, b in zip([0.2, *got], got, strict=False)]
    assert got[0] < 0.35 and max(steps) < 0.15  # no jump from 0.2 to the knob's 0.5
    assert got[-1] == pytest.approx(1.0)  # they meet at the top
    assert all(b >= a for a, b in itertools.pairwise(got))


def test_relative_modes():
    midi, _be, q, _ = rig("""
[[midi]]
cc = 10
param = "bleed"
mode = "relative_2c"
[[midi]]
cc = 11
param = "tracking"
mode = "relative_64"
speed = 2
""", targets={"bleed": 0.5, "tracking": 0.0})
    play(midi, cc(10, 1), cc(10, 1), cc(10, 127), cc(10, 126 - 0))
    step = 1 / 127
    assert [v for _, v in values(q)] == pytest.approx([0.5 + step, 0.5 + 2 * step, 0.5 + step, 0.5 - step])
    play(midi, cc(11, 63), cc(11, 66))  # can't go below 0 (clamped, not sent twice), then +2 ticks at speed 2
    assert [v for _, v in values(q)] == pytest.approx([0.0, 4 / 127])


def test_14_bit_pairs_and_pitch_bend():
    midi, _be, q, _ = rig("""
[[midi]]
cc = 7
lsb = 39
param = "bleed"
takeover = "none"
[[midi]]
pitchbend = true
param = "tracking"
takeover = "none"
""")
    play(midi, cc(7, 64))  # before any LSB: coarse 7-bit
    assert values(q) == [("bleed", pytest.approx(64 / 127))]
    play(midi, cc(39, 100), cc(7, 32), cc(39, 5))  # the LSB completes each pair: no dip in between
    assert [v for _, v in values(q)] == pytest.approx([(64 * 128 + 100) / 16383, (32 * 128 + 5) / 16383])
    play(midi, mido.Message("pitchwheel", pitch=8191), mido.Message("pitchwheel", pitch=0))
    assert [v for _, v in values(q)] == pytest.approx([1.0, 8192 / 16383])


def test_notes_toggle_momentary_velocity_and_commands():
    midi, _be, q, _ = rig("""
[[midi]]
note = 36
param = "crt"
mode = "toggle"
[[midi]]
note = 37
param = "tracking"
mode = "momentary"
[[midi]]
note = 38
param = "bleed"
[[midi]]
note = 39
command = "seed/next"
[[midi]]
cc = 45
command = "record/toggle"
[[midi]]
program = true
param = "snow"
""", targets={"crt": True})
    on = lambda n, v=100: mido.Message("note_on", note=n, velocity=v)  # noqa: E731
    off = lambda n: mido.Message("note_off", note=n)  # noqa: E731
    play(midi, on(36), off(36), on(36), mido.Message("note_on", note=36, velocity=0))
    assert values(q) == [("crt", False), ("crt", True)]
    play(midi, on(37, 127), off(37))
    assert values(q) == [("tracking", 1.0), ("tracking", 0.0)]
    play(midi, on(38, 127), off(38), on(38, 32))  # velocity to value; note off keeps it
    assert [v for _, v in values(q)] == pytest.approx([1.0, 32 / 127])
    play(midi, on(39), off(39), on(39), cc(45, 127), cc(45, 127), cc(45, 0), cc(45, 127))
    assert values(q) == [("cmd/seed/next", ()), ("cmd/seed/next", ()), ("cmd/record/toggle", ()),
                         ("cmd/record/toggle", ())]
    play(midi, mido.Message("program_change", program=127))
    assert values(q) == [("snow", 1.0)]


def test_patch_bindings_win_over_controller_files_and_devices_match_by_pattern():
    assert device_matches("nanokontrol", DEV) and not device_matches("MIDI Mix", DEV)
    assert device_matches("nano*MIDI 1", DEV)  # glob, without ALSA's client:port numbers
    patch = parse_bindings([{"cc": 0, "param": "tracking", "takeover": "none"}], None)
    ctl = parse_bindings([{"cc": 0, "param": "fade", "takeover": "none"},
                          {"cc": 1, "param": "mix", "takeover": "none"}], None, device="nanoKONTROL2")
    q, be = ControlQueue(), FakeBackend(DEV, "Other device")
    midi = MidiControl(q, Reporter(), [patch, ctl], backend=be, virtual=False)
    midi.scan()
    play(midi, cc(0, 127), cc(1, 127))
    assert values(q) == [("tracking", 1.0), ("mix", 1.0)]
    play(midi, cc(1, 127), device="Other device")  # the controller file is for the nanoKONTROL2 only
    assert values(q) == []


def test_validation_names_file_line_and_key(tmp_path):
    path = tmp_path / "p.toml"
    good = load_patch("testcard").path.read_text()
    path.write_text(good + '\n[[midi]]\ncc = 1\nparam = "bleed"\n\n'
                    '[[midi]]\ncc = 2\nparam = "bleed"\ncurve = "cubic"\n')
    with pytest.raises(ConfigError) as err:
        load_patch(path)
    lines = path.read_text().splitlines()
    assert err.value.line == lines.index('curve = "cubic"') + 1 and err.value.key == "midi.curve"
    for bad, key in (('cc = 200\nparam = "bleed"', "midi.cc"), ('cc = 1\nparam = "nope"', "midi.param"),
                     ('cc = 1\ncommand = "seed/next"\nmode = "toggle"', "midi.mode"),
                     ('note = 1\nparam = "bleed"\nmode = "relative_2c"', "midi.mode"),
                     ('cc = 1\nparam = "bleed"\nrange = [0.5, 0.5]', "midi.range"),
                     ('cc = 1\nparam = "bleed"\nchannel = 17', "midi.channel"),
                     ('cc = 1\nnote = 2\nparam = "bleed"', "midi")):
        path.write_text(good + "\n[[midi]]\n" + bad + "\n")
        with pytest.raises(ConfigError) as err:
            load_patch(path)
        assert err.value.key == key and err.value.line is not None, bad


def test_controller_files_load():
    from instrument.control.midimap import controller_files, load_controller

    files = controller_files()
    assert {f.stem for f in files} >= {"nanokontrol2", "midimix", "launchcontrol_xl", "beatstep"}
    for f in files:
        _name, bindings = load_controller(f)
        assert len(bindings) >= 16 and all(b.device for b in bindings), f
        assert any(b.command == "seed/next" for b in bindings)
        assert TomlFile(f).data["device"]


def test_bad_bytes_never_crash_and_are_counted_once(caplog):
    midi, _be, q, rep = rig('[[midi]]\ncc = 1\nparam = "bleed"\ntakeover = "none"\n')
    play(midi, [0xB0, 1, 10, 1, 20, 1, 30])  # running status inside one message from rtmidi
    play(midi, [1, 40])  # running status across messages
    assert [v for _, v in values(q)] == pytest.approx([10 / 127, 20 / 127, 30 / 127, 40 / 127])
    play(midi, [0xF0, 0x7E, 0x7F, 0x06, 0x01, 0xF7])  # SysEx (identity request)
    play(midi, [0xB0, 1, 0xF8, 50])  # a clock byte inside a message is legal
    assert values(q) == [("bleed", pytest.approx(50 / 127))]
    for _ in range(3):
        play(midi, [0xB0, 1, 200],  # out of range data byte: dropped whole
             [0xB0, 1],             # device vanished mid-message
             [0xF4, 0xF5, 0xFD],    # undefined types
             [0xF0, 1, 2])          # unterminated SysEx
    play(midi, [])
    assert values(q) == []
    s = midi.stats
    assert s["bad data"] == 3 and s["truncated"] == 3 and s["unknown"] == 9 and s["sysex"] == 4
    assert s["running status"] == 3
    counts = rep.totals()
    assert counts["midi bad data"] == 3 and counts["midi truncated"] == 3
    assert sum("cut short" in r.message for r in caplog.records) <= 1  # logged once
    rng = random.Random(7)
    # fuzz: random bytes, never an exception, never out of range
    play(midi, *([rng.randrange(256) for _ in range(rng.randrange(1, 8))] for _ in range(3000)))
    assert midi.stats["errors"] == 0
    assert all(0.0 <= v <= 1.0 for _, v in values(q, "bleed"))


def test_storm_is_counted_and_values_stay_in_range():
    midi, _be, q, rep = rig('[[midi]]\ncc = 1\nparam = "bleed"\ntakeover = "none"\n')
    import instrument.control.midi as m

    port = midi.ports[DEV]
    port.window = float("inf")
    play(midi, *([0xB0, 1, i % 128] for i in range(m.STORM + 10)))  # more than one poll takes
    assert len(port.input.queue) == m.STORM + 10 - m.BATCH  # the rest waits for the next frames
    while port.input.queue:
        midi.poll()
    port.window = 0.0  # close the one-second window now
    play(midi, [0xB0, 1, 0])
    assert midi.stats["storms"] == 1 and rep.totals()["midi storm"] == 1
    assert len(q) > 0 and all(0 <= e.value <= 1 for e in q.drain())


def test_hot_plug_recovery_reports_once_and_keeps_others_playing():
    other = "MIDI Mix:MIDI Mix MIDI 1 24:0"
    midi, be, q, rep = rig('[[midi]]\ncc = 1\nparam = "bleed"\ntakeover = "none"\n'
                           '[[midi]]\ncc = 2\nparam = "tracking"\ntakeover = "none"\nfeedback = true\n',
                           DEV, other)
    assert set(midi.ports) == {DEV, other}
    be.unplug(DEV)
    assert not be.devices.get(DEV)
    midi.scan()
    assert set(midi.ports) == {other} and rep.totals()["midi unplugged"] == 1
    play(midi, cc(1, 127), device=other)  # the other controller plays on
    assert values(q) == [("bleed", 1.0)]
    be.plug(DEV)
    midi.scan()
    assert set(midi.ports) == {DEV, other}
    play(midi, cc(1, 0))
    assert values(q) == [("bleed", 0.0)]
    # unplugged and back between two scans: the stale port is noticed and reopened
    be.unplug(DEV)
    be.plug(DEV)
    assert not play(midi, cc(1, 5)) and values(q) == []
    midi.scan()
    play(midi, cc(1, 64))
    assert values(q) == [("bleed", pytest.approx(64 / 127))]
    assert rep.totals()["midi unplugged"] == 2 and len(rep.recent) <= 2


def test_feedback_drives_leds_and_faders_without_fighting_the_hand():
    from instrument.params import FrameParams

    midi, be, _q, _ = rig("""
[[midi]]
cc = 2
param = "tracking"
takeover = "none"
feedback = true
[[midi]]
note = 40
param = "crt"
mode = "output"
""")
    vals = {**REGISTRY.defaults(), "tracking": 0.5, "crt": True}
    midi.publish(FrameParams(0, 0.0, 0.0, vals))
    sent = be.devices[DEV].sent
    assert sorted(sent) == [(0x90, 40, 127), (0xB0, 2, 64)]
    midi.publish(FrameParams(1, 0.0, 0.0, vals))  # unchanged: nothing sent
    assert len(sent) == 2
    play(midi, cc(2, 100))  # the performer moves the motor fader: no echo back
    midi.publish(FrameParams(2, 0.0, 0.0, {**vals, "tracking": 100 / 127, "crt": False}))
    assert sent[2:] == [(0x90, 40, 0)]
    be.unplug(DEV)  # sending to a vanished device is reported, not raised
    midi.publish(FrameParams(3, 0.0, 0.0, {**vals, "tracking": 0.1}))


def test_virtual_port_where_offered():
    be = FakeBackend(virtual=True)
    midi = MidiControl(ControlQueue(), Reporter(), [[]], backend=be, virtual=True)
    midi.scan()
    assert CLIENT in midi.ports
    be2 = FakeBackend(virtual=False)
    midi2 = MidiControl(ControlQueue(), Reporter(), [[]], backend=be2, virtual=True)
    midi2.scan()
    assert CLIENT not in midi2.ports


def jittered_clock(bpm, beats, jitter, seed=1, t0=10.0):
    rng = random.Random(seed)
    period = 60.0 / bpm / 24
    return [t0 + i * period + rng.gauss(0.0, jitter) for i in range(int(beats * 24))]


@pytest.mark.parametrize("bpm", [90.0, 128.0, 174.0])
def test_clock_tempo_from_jittered_ticks(bpm):
    c = ClockFollower()
    c.start()
    times = sorted(jittered_clock(bpm, 2, 0.001, seed=int(bpm)))  # ±1 ms, USB-like
    for t in times:
        c.tick(t)
    assert c.tempo == pytest.approx(bpm, abs=0.5)
    assert c.beat(times[-1]) == pytest.approx(47 / 24, abs=0.05)
    c.stop()
    frozen = c.beat(times[-1] + 1.0)
    assert c.beat(times[-1] + 5.0) == frozen  # a stopped clock does not run on
    c.song_position(16)  # 16 sixteenths = 4 beats
    c.cont()
    for t in jittered_clock(bpm, 1, 0.001, t0=times[-1] + 2.0):  # after the gap: a fresh estimate
        c.tick(t)
    assert c.tempo == pytest.approx(bpm, abs=0.5) and c.beat(t) == pytest.approx(5.0 - 1 / 24, abs=0.05)


def test_clock_through_the_port():
    import time

    from instrument.control.stamps import ArrivalClock

    midi, be, _, _ = rig('[[midi]]\ncc = 1\nparam = "bleed"\n')
    t0 = time.perf_counter()
    midi.ports[DEV].clock = ArrivalClock(t0 - 1.0)  # the port has been open a while
    dev = be.devices[DEV]
    dev.send([0xFA], at=t0 - 0.7)
    dev.send([0xF2, 0, 1], at=t0 - 0.7)  # song position 128 sixteenths
    for i in range(30):
        dev.send([0xF8], at=t0 - 0.6 + i * 60 / 120 / 24)  # 120 BPM (the device's clock)
    midi.poll()  # all in one poll: the ticks keep their spacing from rtmidi's deltas
    assert midi.clock.running and midi.clock.ticks == 128 * 6 + 30
    assert midi.clock.tempo == pytest.approx(120.0, abs=0.5)
    play(midi, [0xFC])
    assert not midi.clock.running
