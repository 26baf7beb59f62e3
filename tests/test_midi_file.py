"""A standard MIDI file (written here with mido) rendered through the patch's bindings."""

import json

import mido
import pytest

from instrument.control.midi import default_tiers
from instrument.control.midifile import MidiFilePlayer
from instrument.patch import load_patch
from instrument.record.performance import load_performance
from instrument.record.render import Job, render_offline
from instrument.report import Reporter

PATCH = """version = 1
name = "video"
chain = "vhs"
size = [64, 48]

[params]
bleed = 0.1

[[midi]]
device = "file"
cc = 74
param = "bleed"

[[midi]]
note = 60
command = "seed/next"

[[midi]]
cc = 1
channel = 2
param = "tracking"
mode = "relative_64"
"""


def write_midi(path):
    """120 → 60 BPM after one beat, 480 ticks a beat: times depend on the tempo map."""
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("set_tempo", tempo=500_000, time=0))
    tr.append(mido.Message("control_change", control=74, value=127, time=0))        # 0.0 s
    tr.append(mido.Message("note_on", note=60, velocity=100, time=240))             # 0.25 s
    tr.append(mido.Message("note_off", note=60, time=240))                          # 0.5 s
    tr.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    tr.append(mido.Message("control_change", control=74, value=0, time=480))        # 1.5 s
    tr.append(mido.Message("control_change", channel=1, control=1, value=70, time=0))  # 1.5 s
    tr.append(mido.Message("sysex", data=[1, 2, 3], time=0))
    tr.append(mido.MetaMessage("end_of_track", time=240))                            # 2.0 s
    mid.save(path)


@pytest.fixture
def files(tmp_path):
    patch = tmp_path / "video.toml"
    patch.write_text(PATCH)
    mid = tmp_path / "song.mid"
    write_midi(mid)
    return load_patch(patch), mid


def test_events_land_on_their_frames(files):
    patch, mid = files
    player = MidiFilePlayer(mid, default_tiers(patch.midi, "t", Reporter()), fps=10)
    player.mapper.targets = {"bleed": 0.1, "tracking": 0.0}
    got = {f: [(e.target, e.value) for e in player.events(f)] for f in range(player.frames)}
    assert got[0] == [("bleed", 1.0)]  # no takeover: a file is the only hand on the controls
    assert got[3] == [("cmd/seed/next", ())]  # 0.25 s → first frame at or after it
    assert got[15] == [("bleed", 0.0), ("tracking", pytest.approx(6 / 127))]
    assert sum(map(len, got.values())) == 4 and player.skipped == 1 and player.frames == 21


def test_render_records_midi_events_in_the_performance(files, tmp_path):
    patch, mid = files
    out = tmp_path / "video.mp4"
    player = MidiFilePlayer(mid, default_tiers(patch.midi, "t", Reporter()), fps=10)
    render_offline(patch, {}, Job(out, player.frames / 10, 10, (64, 48)), midi=player)
    perf = load_performance(out.with_suffix(".performance.jsonl"))
    rows = [json.loads(line) for line in out.with_suffix(".performance.jsonl").read_text().splitlines()[1:-1]]
    assert [(r["f"], r["src"], r["t"]) for r in rows] == [
        (0, "midi", "bleed"), (3, "midi", "cmd/seed/next"), (15, "midi", "bleed"), (15, "midi", "tracking")]
    assert perf.frames == 21 and out.stat().st_size > 0


def test_cli_render_midi(files, tmp_path):
    from conftest import noclip

    patch, mid = files
    out = tmp_path / "cli.mp4"
    r = noclip("render", "--patch", str(patch.path), "--midi", str(mid), "-o", str(out), "--fps", "8",
               "--size", "64x48")
    assert r.returncode == 0, r.stderr
    assert out.with_suffix(".performance.jsonl").is_file()
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not midi")
    r = noclip("render", "--patch", str(patch.path), "--midi", str(bad), "-o", str(out))
    assert r.returncode == 2 and "not a readable MIDI file" in r.stderr
