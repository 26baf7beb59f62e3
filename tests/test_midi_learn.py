"""MIDI learn: a control moved on the fake backend becomes a binding in the patch file, text preserved."""

import mido

from instrument.control import ControlQueue
from instrument.control.midi import MidiControl
from instrument.control.midisim import FakeBackend
from instrument.learn import Learn, device_name, infer
from instrument.patch import load_patch
from instrument.report import Reporter

DEV = "nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0"
HEAD = """# My set for Friday. Comments and layout must survive learning.
version = 1
name = "friday"
chain = "vhs"   # the usual tape

[params]
bleed = 0.4  # a bit smeary
"""


class Played:
    """The fake device, with the frame loop's poll after each message."""

    def __init__(self, dev, midi):
        self.dev, self.midi = dev, midi

    def send(self, data):
        sent = self.dev.send(data)
        self.midi.poll()
        return sent


def session(tmp_path, text=HEAD):
    path = tmp_path / "friday.toml"
    path.write_text(text)
    load_patch(path)
    be = FakeBackend(DEV)
    q = ControlQueue()
    midi = MidiControl(q, Reporter(), [[]], backend=be, virtual=False)
    midi.scan()
    midi.mapper.targets = {"bleed": 0.4}
    return path, Played(be.devices[DEV], midi), midi, q, Learn(midi, path)


def move(dev, learn, *msgs):
    for m in msgs:
        dev.send(m.bytes())
    return learn.poll(now=1e9)


def test_learn_round_trip_preserves_text_and_binds(tmp_path):
    path, dev, midi, q, learn = session(tmp_path)
    learn.arm("bleed")
    assert learn.active and "bleed" in learn.status
    dev.send(mido.Message("note_off", note=1).bytes())  # a release names nothing
    assert learn.poll(now=1e9) is None
    table = move(dev, learn, *(mido.Message("control_change", channel=2, control=16, value=v)
                               for v in (10, 20)))
    assert table == {"device": "nanoKONTROL2", "channel": 3, "cc": 16, "param": "bleed"}
    text = path.read_text()
    assert text.startswith(HEAD)  # everything the performer wrote, byte for byte
    assert text[len(HEAD):] == '\n[[midi]]\ndevice = "nanoKONTROL2"\nchannel = 3\ncc = 16\nparam = "bleed"\n'
    assert load_patch(path).midi[0]["cc"] == 16
    assert not learn.active and midi.learner is None
    dev.send(mido.Message("control_change", channel=2, control=16, value=51).bytes())  # meets 0.4: picked up
    assert [(e.target, round(e.value, 3)) for e in q.drain()] == [("bleed", round(51 / 127, 3))]

    # learn it again onto the same control: replaced where it stands, comments around it kept
    path.write_text(path.read_text() + "# my own note after the binding\n")
    before = path.read_text()
    learn.arm("bleed")
    move(dev, learn, mido.Message("control_change", channel=2, control=16, value=1),
         mido.Message("control_change", channel=2, control=16, value=1))
    after = path.read_text()
    assert after.count("[[midi]]") == 1 and 'mode = "relative_2c"' in after
    assert after.replace('mode = "relative_2c"\n', "") == before
    assert after.endswith("# my own note after the binding\n")


def test_learn_commands_notes_and_14_bit(tmp_path):
    path, dev, _midi, _q, learn = session(tmp_path)
    learn.arm("seed/next")
    dev.send(mido.Message("note_on", note=36, velocity=90).bytes())
    assert learn.poll(now=0.0) is not None  # a note binds at once
    learn.arm("crt")
    move(dev, learn, mido.Message("control_change", control=48, value=127),
         mido.Message("control_change", control=48, value=0))
    data = load_patch(path).midi
    assert data[0] == {"device": "nanoKONTROL2", "channel": 1, "note": 36, "command": "seed/next"}
    assert data[1]["mode"] == "toggle"
    msgs = [(DEV, 0xB0, 7, 64), (DEV, 0xB0, 39, 3), (DEV, 0xB0, 7, 65)]
    assert infer(msgs, "tracking")["lsb"] == 39
    assert infer([(DEV, 0xB0, 9, 65), (DEV, 0xB0, 9, 63)], "tracking")["mode"] == "relative_64"
    assert device_name("Launch Control XL:Launch Control XL MIDI 1 24:0") == "Launch Control XL"


def test_learn_cancel_and_choose(tmp_path):
    path, dev, midi, _q, learn = session(tmp_path)
    learn.toggle()
    first = learn.target
    learn.choose(1)
    assert learn.target != first and learn.active
    learn.toggle()
    assert not learn.active and midi.learner is None
    dev.send(mido.Message("control_change", control=1, value=5).bytes())
    assert learn.poll(now=1e9) is None and path.read_text() == HEAD
