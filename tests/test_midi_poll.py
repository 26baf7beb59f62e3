"""MIDI read by the frame loop: what waits in a port's queue reaches the next frame, stamped honestly."""

import itertools
import os
import sys
import time

import pytest

from instrument.clock import OfflineClock
from instrument.control import ControlEvent, ControlQueue
from instrument.control.midi import MidiControl
from instrument.control.midimap import parse_bindings
from instrument.control.midisim import FakeBackend, PipeBackend, pack
from instrument.patch import load_patch
from instrument.report import Reporter
from instrument.show import Show

DEV = "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"


class Timer:
    """A source polled beside the MIDI port: when the loop got there."""

    def __init__(self):
        self.times = []

    def poll(self):
        self.times.append(time.perf_counter())


class Events:
    """An EventSink: every event the show applied, with its frame."""

    def __init__(self):
        self.seen = []

    def applied(self, event, frame, value):
        self.seen.append((frame, event))

    def close(self, frames):
        pass


@pytest.fixture
def show_midi(ctx):
    queue, reporter = ControlQueue(), Reporter()
    show = Show(ctx, load_patch("testcard"), (160, 120), clock=OfflineClock(60), queue=queue, reporter=reporter)
    bindings = parse_bindings([{"cc": 1, "param": "bleed", "takeover": "none"},
                               {"cc": 2, "param": "tracking", "takeover": "none"}], None)
    be = FakeBackend(DEV)
    midi = MidiControl(queue, reporter, [bindings], backend=be, virtual=False)
    midi.scan()
    before, after, events = Timer(), Timer(), Events()
    show.sources.append(before)
    midi.attach(show)
    show.sources.append(after)
    show.sinks.append(events)
    show.step()
    yield show, midi, be.devices[DEV], before, after, events
    show.close()
    midi.close()


def test_queued_messages_reach_the_next_frame_stamped_before_its_poll(show_midi):
    show, _midi, dev, before, after, events = show_midi
    time.sleep(0.015)  # the fader moves after the last poll
    t = time.perf_counter()
    for i in range(5):  # a fader moved over the last 10 ms, by the device's clock
        dev.send([0xB0, 1, 20 * i + 10], at=t - 0.010 + 0.002 * i)
    dev.send([0xB0, 2, 127], at=t)
    fp = show.step()
    assert show.bank.targets["bleed"] == pytest.approx(90 / 127) and show.bank.targets["tracking"] == 1.0
    assert fp["tracking"] > 0.0  # moved in this very frame
    got = [e for frame, e in events.seen if frame == fp.frame]
    assert [e.target for e in got] == ["bleed"] * 5 + ["tracking"]
    stamps = [e.time for e in got]
    assert all(before.times[-2] <= s <= after.times[-1] for s in stamps)  # within this poll's window
    assert [b - a for a, b in itertools.pairwise(stamps[:-1])] == pytest.approx([0.002] * 4)
    # nothing waits for a later frame, and a quiet frame changes nothing
    show.step()
    assert [e for frame, e in events.seen if frame > fp.frame] == []


def test_an_unplugged_port_is_not_read_and_others_play_on(show_midi):
    show, midi, dev, *_ = show_midi
    backend = midi.backend
    backend.plug("Other")
    midi.patterns = [""]
    midi.scan()
    backend.devices["Other"].send([0xB0, 2, 64])
    backend.unplug(DEV)
    assert not dev.send([0xB0, 1, 127])
    show.step()
    assert show.bank.targets["tracking"] == pytest.approx(64 / 127)
    midi.scan()
    assert set(midi.ports) == {"Other"}


def test_pipe_port_reads_another_writer_without_blocking(tmp_path):
    path = str(tmp_path / "midi.fifo")
    os.mkfifo(path)
    backend = PipeBackend("pipe dev", path)
    port = backend.open_input("pipe dev")
    writer = os.open(path, os.O_WRONLY)
    try:
        assert port.get_message() is None
        record = pack(50.0, [0x90, 60, 100])
        os.write(writer, record[:5])  # half a message: not yet
        assert port.get_message() is None
        os.write(writer, record[5:] + pack(50.004, [0xB0, 7, 1]) + pack(50.005, [0xF8]))
        assert port.get_message() == ([0x90, 60, 100], 0.0)  # the first has no delta, as rtmidi's
        msg, delta = port.get_message()
        assert msg == [0xB0, 7, 1] and delta == pytest.approx(0.004)
        assert port.get_message()[0] == [0xF8] and port.get_message() is None
        assert port.truth == [50.0, 50.004, 50.005]
    finally:
        os.close(writer)
        port.close()


class StubMidi:
    """python-rtmidi's MidiIn/MidiOut as documented (no ALSA sequencer here): records the calls."""

    def __init__(self, rtapi=0, name="RtMidi Client", queue_size_limit=1024):
        self.calls, self.queue, self.limit = [], [([0xB0, 1, 5], 0.0), ([0xB0, 1, 6], 0.001)], queue_size_limit

    def get_current_api(self):
        return 1

    def get_ports(self):
        return ["dev 20:0"]

    def open_port(self, port=0, name=None):
        self.calls.append(("open_port", port))

    def ignore_types(self, sysex=True, timing=True, active_sense=True):
        self.calls.append(("ignore_types", sysex, timing, active_sense))

    def get_message(self):
        return self.queue.pop(0) if self.queue else None

    def close_port(self):
        self.calls.append(("close_port",))

    def delete(self):
        self.calls.append(("delete",))


def test_rtmidi_inputs_are_polled_queues_with_nothing_filtered(monkeypatch):
    import types

    from instrument.control.midiports import QUEUE, RtMidiBackend

    stub = types.SimpleNamespace(MidiIn=StubMidi, MidiOut=StubMidi, API_WINDOWS_MM=7, API_RTMIDI_DUMMY=9)
    monkeypatch.setitem(sys.modules, "rtmidi", stub)
    port = RtMidiBackend().open_input("dev 20:0")
    midi = port.midi
    assert midi.limit == QUEUE and ("ignore_types", False, False, False) in midi.calls
    assert port.get_message() == ([0xB0, 1, 5], 0.0) and port.get_message()[1] == 0.001
    assert port.get_message() is None
    port.close()
    assert midi.calls[-2:] == [("close_port",), ("delete",)]
    assert port.get_message() is None  # a closed port is never read (rtmidi would crash after delete)


def test_a_patch_loaded_mid_show_brings_its_own_bindings(show_midi, tmp_path):
    """MIDI hears of the load through the show's `on_patch`, not by watching the show's patch."""
    show, _midi, dev, *_ = show_midi
    path = tmp_path / "knobs.toml"
    path.write_text((load_patch("testcard").path.read_text(encoding="utf-8")
                     + '\n[[midi]]\ncc = 7\nparam = "bleed"\ntakeover = "none"\n'), encoding="utf-8")
    dev.send([0xB0, 7, 127])
    show.step()
    assert show.fp["bleed"] < 1.0  # cc 7 is bound to nothing yet
    show.queue.put(ControlEvent("test", "cmd/patch/load", str(path)))
    show.step()
    assert show.patch.path == path
    dev.send([0xB0, 7, 127])
    for _ in range(30):  # the parameter's smoothing takes it there over a few frames
        show.step()
    assert show.targets["bleed"] == pytest.approx(1.0)
