"""Settings that last: a patch or performance file an older noclip wrote plays as it always did.

tests/data keeps version-1 files exactly as noclip wrote them before version 2: patches default and
tape480 as they shipped, and two performance files its writer made (testcard played for 8 frames,
its patch's dream_size null; tape480's, dream_size [256, 192]). Each format upgrades them as they
are read (MIGRATIONS, files.upgrade); what they meant is written out here, as version 1 read them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from instrument.files import upgrade
from instrument.patch import MIGRATIONS as PATCH_MIGRATIONS
from instrument.patch import VERSION as PATCH_VERSION
from instrument.patch import ConfigError, Patch, load_patch, save_patch
from instrument.record import performance
from instrument.record.performance import PerformanceError, PerformanceWriter, load_performance
from instrument.resources import data_dir

DATA = Path(__file__).parent / "data"
DEFAULT_PARAMS = {"level": "0", "level_seed": 0, "speed": 1.2, "wander": 0.5, "flicker": 0.3, "fog": 0.2,
                  "prompt": "level 0", "strength": 0.5, "steps": 1, "feedback": 0.3, "seed": 0, "bleed": 0.3,
                  "tracking": 0.05, "aberration": 1.5, "fade": 1.0}


def test_both_formats_are_version_2_with_one_step_per_older_version():
    assert PATCH_VERSION == performance.VERSION == 2
    for table, newest in ((PATCH_MIGRATIONS, PATCH_VERSION), (performance.MIGRATIONS, performance.VERSION)):
        assert sorted(table) == list(range(1, newest))


def test_version_1_patches_load_as_they_meant():
    default = load_patch(DATA / "default-v1.toml")
    assert (default.name, default.scene, default.model, default.chain) == (
        "default", "backrooms", "builtin", "vhs")
    assert default.size == (256, 192) and default.dream_size is None and default.dream == (256, 192)
    assert default.params == DEFAULT_PARAMS and default.midi == () and default.modulators == ()
    tape = load_patch(DATA / "tape480-v1.toml")
    assert tape.size == (640, 480) and tape.dream_size == (256, 192) and tape.dream == (256, 192)
    assert tape.params == DEFAULT_PARAMS
    # the shipped patches, now version 2, are the same instruments, but for what was changed in them
    # since: feedback 0.3 -> 0.6 when it came to carry only what the dream adds (session 10); the
    # default's scene drawn a field at a time at the tape's 640x240 under the same 256x192 dream
    # (session 17)
    since = {"feedback": 0.6}
    default = replace(default, size=(640, 240), fields=True, dream_size=(256, 192))
    for old, name in ((default, "default"), (tape, "tape480")):
        assert replace(old, path=None, params={**old.params, **since}) == replace(load_patch(name), path=None)


def test_a_version_1_patch_without_dream_size_dreams_at_the_scene_size_wherever_it_is_resized(tmp_path):
    path = tmp_path / "old.toml"
    path.write_text('version = 1\nname = "old"\n[params]\nseed = 3\n')
    old = load_patch(path)
    assert old.size == Patch.size and old.dream_size is None and old.params == {"seed": 3}
    assert replace(old, size=(128, 96)).dream == (128, 96)  # follows the scene, as before
    shipped = load_patch("testcard")  # version 2, dream_size = size: the same meaning
    assert shipped.dream_size is None and replace(shipped, size=(128, 96)).dream == (128, 96)


def test_a_migration_leaves_the_file_it_read_alone():
    d = {"version": 1, "size": [320, 240]}
    assert upgrade(d, PATCH_MIGRATIONS, PATCH_VERSION) == {"version": 2, "size": [320, 240],
                                                            "dream_size": [320, 240]}
    assert d == {"version": 1, "size": [320, 240]}
    with pytest.raises(RuntimeError, match="did not make version 2"):
        upgrade({"version": 1}, {1: lambda d: d}, 2)


def _performance(path: Path, *, size=(512, 384), dream=None, model="none", frames=8):
    perf = load_performance(path)
    assert perf.header["version"] == 2  # upgraded as it was read
    assert perf.complete and perf.frames == frames and perf.fps == 10.0 and perf.size == (64, 48)
    patch = perf.patch
    assert patch.size == size and patch.dream_size == dream and patch.model == model
    return perf


def test_version_1_performance_files_render_what_they_recorded():
    perf = _performance(DATA / "testcard-v1.performance.jsonl")
    assert perf.patch.dream == (512, 384) and perf.patch.scene == "testcard"
    assert perf.patch.params == {"seed": 0, "bleed": 0.3, "tracking": 0.05, "aberration": 1.5, "fade": 1.0}
    assert {f: [(e.source, e.target, e.value) for e in events] for f, events in perf.events.items()} == {
        2: [("osc", "tracking", 0.4)], 4: [("midi", "cmd/seed/next", None)], 5: [("osc", "bleed", 0.75)]}
    assert perf.header["start"]["bleed"] == 0.3 and perf.header["start"]["tape_speed"] == "SP"
    tape = _performance(DATA / "tape480-v1.performance.jsonl", size=(640, 480), dream=(256, 192),
                        model="builtin", frames=3)
    assert tape.patch.params == DEFAULT_PARAMS and tape.patch.dream == (256, 192)
    assert [(e.target, e.value) for e in tape.events[1]] == [("strength", 0.6)]


def test_a_version_1_header_from_before_dream_size_reads_as_the_scene_size(tmp_path):
    rows = (DATA / "testcard-v1.performance.jsonl").read_text().splitlines()
    head = json.loads(rows[0])
    del head["patch"]["dream_size"]  # headers written before patches had one
    older = tmp_path / "older.performance.jsonl"
    older.write_text("\n".join([json.dumps(head), *rows[1:]]) + "\n")
    assert _performance(older).patch.dream == (512, 384)


def test_writers_write_version_2_with_the_dream_size(tmp_path):
    patch = load_patch(DATA / "default-v1.toml")
    save_patch(patch, tmp_path / "saved.toml")
    saved = tomllib.loads((tmp_path / "saved.toml").read_text())
    assert saved["version"] == 2 and saved["size"] == saved["dream_size"] == [256, 192]
    assert replace(load_patch(tmp_path / "saved.toml"), path=None) == replace(patch, path=None)
    writer = PerformanceWriter(tmp_path / "p.jsonl", patch, {}, 10.0, (64, 48))
    writer.close(0)
    head = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert head["version"] == 2 and head["patch"]["dream_size"] == [256, 192]


def test_shipped_patches_are_written_as_version_2():
    shipped = sorted(data_dir("patches").glob("*.toml"))
    assert len(shipped) >= 10
    for path in shipped:
        d = tomllib.loads(path.read_text())
        assert d["version"] == 2 and "dream_size" in d, path.name
        patch = load_patch(path)
        assert patch.dream == tuple(d["dream_size"]), path.name


def test_a_version_2_patch_names_its_dream_size(tmp_path):
    path = tmp_path / "new.toml"
    path.write_text('version = 2\nname = "new"\nsize = [320, 240]\n')
    with pytest.raises(ConfigError, match="missing: version 2 patches carry dream_size") as err:
        load_patch(path)
    assert err.value.path == path and err.value.key == "dream_size"


@pytest.mark.parametrize("version, words", [
    ("3", "version 3 is not one this noclip reads (1 to 2) (a newer noclip wrote it)"),
    ("0", "version 0 is not one this noclip reads (1 to 2)"),
    ('"2"', "version '2' is not one this noclip reads"),
    ("true", "version True is not one this noclip reads"),
])
def test_a_patch_of_a_version_this_noclip_does_not_read_is_refused(tmp_path, version, words):
    path = tmp_path / "p.toml"
    path.write_text(f'name = "p"\nversion = {version}\n')
    with pytest.raises(ConfigError) as err:
        load_patch(path)
    e = err.value
    assert (e.path, e.line, e.key) == (path, 2, "version") and words in str(e)
    assert str(e).startswith(f"{path}:2: version: ")


def test_a_performance_file_from_a_newer_noclip_is_refused(tmp_path):
    rows = (DATA / "testcard-v1.performance.jsonl").read_text().splitlines()
    head = json.loads(rows[0])
    head["version"] = 3
    newer = tmp_path / "newer.performance.jsonl"
    newer.write_text("\n".join([json.dumps(head), *rows[1:]]) + "\n")
    with pytest.raises(PerformanceError, match=f"^{newer}:1: header: version 3 is not one this noclip reads "
                                               r"\(1 to 2\) \(a newer noclip wrote it\)$") as err:
        load_performance(newer)
    assert err.value.path == newer and err.value.line == 1
