"""Modulators from patches: on the beat exactly, around the hand's value, clamped, repeatable, and
reported with file, line and key when a table is wrong."""

import time

import pytest

from instrument.clock import Beat, OfflineClock
from instrument.control import ControlEvent
from instrument.control.modulators import Modulator, build
from instrument.params import REGISTRY
from instrument.patch import ConfigError, load_patch
from instrument.show import Show

HEAD = 'version = 1\nscene = "testcard"\nmodel = "none"\n[params]\naberration = 2.0\n'


def patch_file(tmp_path, body):
    p = tmp_path / "mod.toml"
    p.write_text(HEAD + body)
    return p


def play(ctx, patch, frames, script=None):
    show = Show(ctx, patch, (64, 36), clock=OfflineClock(60))
    out = []
    for n in range(frames):
        for e in (script or {}).get(n, []):
            show.queue.put(e)
        out.append(show.step())
    show.close()
    return show, out


def test_lfo_is_on_the_beat_exactly_and_swings_around_the_hand(ctx, tmp_path):
    p = patch_file(tmp_path, '[[modulator]]\ntarget = "aberration"\nshape = "triangle"\n'
                             'every = 1\ndepth = 1.5\n'
                             '[[modulator]]\ntarget = "bleed"\nshape = "sine"\nevery = 2\ndepth = 0.1\n')
    script = {60: [ControlEvent("osc", "aberration", 4.0)]}
    show, fps = play(ctx, load_patch(p), 91, script)
    # 120 bpm at 60 fps: a beat every 30 frames; the triangle peaks on the beat, dips between
    assert fps[30].beat.beat == 1.0 and fps[30]["aberration"] == 2.0 + 1.5
    assert fps[45]["aberration"] == pytest.approx(2.0 - 1.5)
    hand = show.bank.values["aberration"]  # gliding to 4.0 by the parameter's own smoothing
    assert 3.9 < hand < 4.0 and show.bank.targets["aberration"] == 4.0  # untouched by the swing
    assert fps[90]["aberration"] == pytest.approx(hand + 1.5)  # the swing follows the hand
    base = REGISTRY["bleed"].default
    assert fps[60]["bleed"] == pytest.approx(base)  # sine: zero crossing on beat 2, its period
    assert fps[30]["bleed"] == pytest.approx(base, abs=1e-12)  # half period: zero too
    assert fps[15]["bleed"] == pytest.approx(base + 0.1)  # a quarter period: the crest


def test_modulation_clamps_to_the_range():
    spec = REGISTRY["aberration"]
    mods = build([{"target": "aberration", "shape": "square", "every": 1, "depth": 1000.0}])
    offsets = mods.offsets(Beat(beat=0.25), 0.0)
    assert spec.coerce(2.0 + offsets["aberration"]) == spec.max
    assert spec.coerce(2.0 + mods.offsets(Beat(beat=0.75), 0.0)["aberration"]) == spec.min


def test_sample_and_hold_is_a_function_of_seed_and_step():
    m = Modulator("sh", "bleed", 1.0, every=0.5, seed=7)
    steps = [m.shape_at(Beat(beat=b / 4), 0.0) for b in range(32)]
    assert steps[0] == steps[1] and steps[2] == steps[3]  # held for the step
    held = steps[::2]
    assert len(set(held)) == len(held) and all(-1 <= v <= 1 for v in held)
    again = Modulator("sh", "bleed", 1.0, every=0.5, seed=7)
    assert [again.shape_at(Beat(beat=b / 4), 0.0) for b in reversed(range(32))] == steps[::-1]
    other = Modulator("sh", "bleed", 1.0, every=0.5, seed=8)
    assert other.shape_at(Beat(beat=0.0), 0.0) != steps[0]


def test_envelope_steps_and_hz():
    env = Modulator("envelope", "bleed", 1.0, every="bar", attack=0.0, decay=1.0)
    assert env.shape_at(Beat(beat=4.0), 0.0) == 1.0  # the downbeat of bar 2 (4/4)
    assert env.shape_at(Beat(beat=5.0), 0.0) == pytest.approx(0.36787944)  # one beat later
    assert env.shape_at(Beat(beat=3.0, numerator=3), 0.0) == 1.0  # bars follow the signature
    seq = Modulator("steps", "bleed", 1.0, every=0.5, steps=(0.0, 1.0, 0.5))
    assert [seq.shape_at(Beat(beat=b / 2), 0.0) for b in range(4)] == [0.0, 1.0, 0.5, 0.0]
    hz = Modulator("square", "bleed", 1.0, hz=2.0)
    assert [hz.shape_at(Beat(beat=99.0), t) for t in (0.0, 0.3, 0.5)] == [1.0, -1.0, 1.0]


def test_command_on_each_bar_and_on_beat_n(ctx, tmp_path):
    p = patch_file(tmp_path, '[[modulator]]\ncommand = "seed/next"\nevery = "bar"\n'
                             '[[modulator]]\ncommand = "tracking/jump"\nevery = "bar"\nat = 2\nargs = [0.5]\n')
    _, fps = play(ctx, load_patch(p), 241)
    seeds = [fp["seed"] for fp in fps]
    # bars start at frames 120 and 240 (4 beats at 120 bpm); frame 0 fires nothing
    assert seeds[119] == seeds[0] and seeds[120] == seeds[0] + 1 and seeds[240] == seeds[0] + 2
    jumps = [n for n in range(1, len(fps)) if fps[n]["tracking_jump"] > fps[n - 1]["tracking_jump"]]
    assert jumps == [60, 180]  # beat 3 of each bar


@pytest.mark.parametrize("table, key, message", [
    ('target = "nope"\nshape = "sine"', "modulator.target", "not a parameter"),
    ('target = "aberration"\nshape = "wobble"', "modulator.shape", "shape is one of"),
    ('target = "fit"\nshape = "sine"', "modulator.target", "only numbers"),
    ('target = "aberration"\nshape = "sine"\nhz = 1\nevery = 2', "modulator.hz", "not both"),
    ('command = "explode"', "modulator.command", "not a command"),
    ('target = "aberration"\nshape = "steps"', "modulator.shape", "one per cycle"),
    ('target = "aberration"\nshape = "steps"\nsteps = ["a"]', "modulator.steps", "one per cycle"),
    ('target = "aberration"\nshape = "sine"\ndepht = 1', "modulator.depht", "unknown key"),
    ('target = "aberration"\nshape = "audio"\nsource = "treble"', "modulator.source", "needs source"),
])
def test_bad_tables_name_file_line_and_key(tmp_path, table, key, message):
    first = '[[modulator]]\ntarget = "bleed"\nshape = "sine"\n\n'
    p = patch_file(tmp_path, first + "[[modulator]]\n" + table + "\n")
    with pytest.raises(ConfigError) as err:
        load_patch(p)
    e = err.value
    assert e.key == key and message in e.message and e.path == p
    lines = p.read_text().splitlines()
    assert e.line is not None and e.line > 7 and lines[e.line - 1].split("=")[0].strip() in key


def test_modulation_costs_little_per_frame():
    """Beat-locked modulation is a handful of float ops per modulator (budget: 0.2 ms a frame)."""
    mods = build([{"target": "aberration", "shape": s, "every": 1, "depth": 1.0}
                  for s in ("sine", "triangle", "saw", "square", "sh", "envelope")]
                 + [{"command": "seed/next", "every": "bar"}])
    t0 = time.perf_counter()
    for n in range(2000):
        b = Beat(beat=n / 30)
        mods.offsets(b, n / 60)
        mods.due(b, n / 60)
    per_frame = (time.perf_counter() - t0) / 2000
    assert per_frame < 0.2e-3


def test_the_shipped_patch_and_the_readme_example_load(tmp_path):
    from pathlib import Path

    assert len(load_patch("on_the_beat").modulators) == 5
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = readme.split("## In time with the music")[1].split("```toml\n")[1].split("```")[0]
    (tmp_path / "readme.toml").write_text("version = 1\n" + example)
    mods = build(load_patch(tmp_path / "readme.toml").modulators)
    assert len(mods) == 5 and len(mods.triggers) == 1


def test_modulators_survive_save_and_load(tmp_path):
    from instrument.patch import save_patch

    patch = load_patch("on_the_beat")
    save_patch(patch, tmp_path / "again.toml")
    assert load_patch(tmp_path / "again.toml").modulators == patch.modulators
