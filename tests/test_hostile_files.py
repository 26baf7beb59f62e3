"""Broken files get named errors, `file: what is wrong`, never a traceback: `render` exits 2, a
show that meets one mid-play reports it and plays on. Patches, sources and performance files,
each broken the ways real files break (wrong encoding, truncation, junk, hand edits, inf/nan)."""

import json

import av
import numpy as np
import pytest
from conftest import noclip
from PIL import Image

from instrument.clock import OfflineClock
from instrument.control import ControlEvent
from instrument.patch import ConfigError, load_patch
from instrument.record.performance import PerformanceError, PerformanceWriter, load_performance
from instrument.report import Reporter
from instrument.scene.source import Footage, SourceError
from instrument.show import Show

SIZE = (64, 48)


def render(*args):
    r = noclip("render", *args, "--seconds", "0.2", "--fps", "10", "--size", "64x48")
    assert "Traceback" not in r.stderr, r.stderr
    return r


# -- patches ---------------------------------------------------------------------------------------

def test_a_patch_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('version = 1\n# caf\u00e9\nname = "x"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.toml:2: not UTF-8 text \(byte 0xe9\)"):
        load_patch(path)
    r = render("--patch", str(path), "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 2 and "latin1.toml:2: not UTF-8 text" in r.stderr


@pytest.mark.parametrize("text, line, key", [
    ("version = 1\n[params]\naberration = inf\n", 3, "params.aberration"),
    ("version = 1\n[params]\nbleed = -inf\n", 3, "params.bleed"),
    ('version = 1\n\n[[modulator]]\ntarget = "bleed"\nshape = "steps"\nsteps = [0, nan]\n', 6,
     "modulator.steps"),
    ("version = 1\n\n[[midi]]\ncc = 1\nparam = \"bleed\"\nrange = [0.0, inf]\n", 6, "midi.range"),
])
def test_non_finite_numbers_in_a_patch_are_named(tmp_path, text, line, key):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_patch(path)
    assert err.value.line == line and err.value.key == key and "not a finite number" in str(err.value)


def test_a_broken_patch_loaded_mid_show_is_reported_and_the_show_plays_on(ctx, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'version = 1\nname = "caf\xe9"\n')
    reporter = Reporter()
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), reporter=reporter)
    show.queue.put(ControlEvent("osc", "cmd/patch/load", (str(path),)))
    show.run(frames=3)
    assert show.running and show.fp.frame == 2 and show.patch.name == "testcard"
    assert any("latin1.toml:2: not UTF-8 text" in m for _, m in reporter.recent)
    show.close()


# -- sources ---------------------------------------------------------------------------------------

def good_video(path, frames=20, size=(64, 48)):
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            img = np.full((size[1], size[0], 3), (i * 12) % 256, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("name, make, words", [
    ("junk.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4), "not an image"),
    ("empty.jpg", lambda p: p.write_bytes(b""), "not an image"),
    ("cut.png", lambda p: p.write_bytes(_png_bytes(p)[:300]), "not an image"),
    ("junk.mp4", lambda p: p.write_bytes(bytes(range(256)) * 40), "not a video"),
    ("cut.mp4", lambda p: p.write_bytes(good_video(p).read_bytes()[:600]), "not a video"),
])
def test_a_corrupt_source_is_named_by_render_and_the_scene(ctx, tmp_path, name, make, words):
    path = tmp_path / name
    make(path)
    r = render("--source", str(path), "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 2 and f"noclip: {path}: {words}" in r.stderr, r.stderr
    with pytest.raises(SourceError, match=words):
        Footage(ctx, SIZE, path)


def _png_bytes(path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), np.uint8)).save(path)
    return path.read_bytes()


def test_a_video_broken_mid_file_plays_up_to_the_break_and_loops(ctx, tmp_path):
    """Junk over the middle of an MP4 (the decoder raises there): the show's scene stage reports
    the break once and the video loops over the part that decodes; the show never stops."""
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.options = {"g": "1"}
        rng = np.random.default_rng(0)
        for _ in range(40):
            for p in s.encode(av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64, 3), np.uint8),
                                                         format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = path.read_bytes()
    mid = len(data) // 2
    path.write_bytes(data[:mid] + bytes((i * 37) % 256 for i in range(2000)) + data[mid + 2000:])
    reporter = Reporter()
    from dataclasses import replace
    show = Show(ctx, replace(load_patch("testcard"), scene=str(path)), SIZE, clock=OfflineClock(10),
                reporter=reporter)
    show.run(frames=60)
    assert show.running and show.fp.frame == 59
    assert 0 < show.scene.picture.count < 40  # the part before the break is the loop
    broken = [k for k, n in reporter.counts.items() if k[0] == "scene failed"]
    assert len(broken) == 1 and any("broken after frame" in text for _, text in reporter.recent)
    show.close()


# -- performance files -----------------------------------------------------------------------------

@pytest.fixture
def performance(ctx, tmp_path):
    """A real performance file: a few events over 10 frames."""
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(10))
    path = tmp_path / "show.performance.jsonl"
    show.sinks.append(PerformanceWriter(path, show.patch, dict(show.bank.targets), 10, SIZE))
    for n in range(10):
        if n in (3, 6):
            show.queue.put(ControlEvent("osc", "tracking", n / 10))
        show.step()
    show.close()
    return path


def edited(path, header=None, lines=None, text=None, name="edited.jsonl"):
    rows = path.read_text().splitlines()
    if header is not None:
        head = json.loads(rows[0])
        header(head)
        rows[0] = json.dumps(head)
    if lines is not None:
        rows = lines(rows)
    out = path.with_name(name)
    out.write_text(text if text is not None else "\n".join(rows) + "\n")
    return out


def _set(key, value):
    return lambda h: h.__setitem__(key, value)


def _event(row):
    """Insert `row` as the first event line."""
    return lambda r: [r[0], row, *r[1:]]


def _head(old, new):
    return lambda r: [r[0].replace(old, new), *r[1:]]


def _start(name, value):
    return lambda h: h["start"].__setitem__(name, value)


@pytest.mark.parametrize("change, line, words", [
    (dict(header=_set("colour", "red")), 1, "header: unknown key 'colour'"),
    (dict(header=lambda h: h.pop("start")), 1, "header: no 'start'"),
    (dict(header=lambda h: h.pop("patch")), 1, "header: no 'patch'"),
    (dict(header=_set("fps", 0)), 1, "header: fps must be a number above 0"),
    (dict(header=_set("fps", -30)), 1, "header: fps must be a number above 0"),
    (dict(header=_set("fps", "60")), 1, "header: fps must be a number above 0"),
    (dict(header=_set("start", [1, 2])), 1, "header: start must be a table"),
    (dict(header=_start("no_such_param", 1.0)), 1, "header: start.no_such_param: unknown parameter"),
    (dict(header=_start("bleed", "lots")), 1, "header: start.bleed"),
    (dict(header=lambda h: h["patch"].__setitem__("colour", 1)), 1, "patch has an unknown key 'colour'"),
    (dict(header=lambda h: h["patch"].__setitem__("scene", "gone.mp4")), 1, "patch.scene: 'gone.mp4'"),
    (dict(header=lambda h: h["patch"].__setitem__("dream_size", [9999, 8])), 1, "patch.dream_size must be"),
    (dict(lines=_head('"fps": 10', '"fps": Infinity')), 1, "Infinity is not a number"),
    (dict(lines=_head('"fps": 10', '"fps": 1e999')), 1, "not a finite number"),
    (dict(lines=_event('{"f": 2, "src": "osc", "t": "bleed", "v": NaN}')), 2, "NaN is not a number"),
    (dict(lines=_event('{"f": 2, "src": "osc", "t": "bleed", "v": [1, -Infinity]}')), 2,
     "-Infinity is not a number"),
    (dict(lines=_event('{"f": 2.5, "src": "osc", "t": "bleed", "v": 1}')), 2, "f must be a frame number"),
    (dict(lines=_event('{"f": 1e400, "src": "osc", "t": "bleed", "v": 1}')), 2, "not a finite number"),
    (dict(lines=_event('[1, 2]')), 2, "a line is a table"),
    (dict(lines=lambda r: [*r[:-1], '{"end": -4}']), None, "end must be a frame number"),
    (dict(text="\ufeffnot json\n"), 1, "Unexpected UTF-8 BOM"),
    (dict(text="{}\n"), 1, "not a noclip performance file"),
])
def test_a_broken_performance_file_is_named(performance, change, line, words):
    path = edited(performance, **change)
    n = line or len(path.read_text().splitlines())
    with pytest.raises(PerformanceError, match=f"edited.jsonl:{n}: .*{_re(words)}"):
        load_performance(path)


def _re(words):
    import re
    return re.escape(words)


def test_broken_performance_files_exit_2_from_render(performance, tmp_path):
    cases = {
        "unknown key": (edited(performance, header=_set("colour", "red"), name="a.jsonl"), 1),
        "no start": (edited(performance, header=lambda h: h.pop("start"), name="b.jsonl"), 1),
        "fps 0": (edited(performance, header=_set("fps", 0), name="c.jsonl"), 1),
        "Infinity": (edited(performance, lines=_event('{"f": 2, "src": "osc", "t": "bleed", "v": Infinity}'),
                            name="d.jsonl"), 2),
        "not UTF-8": (performance.with_name("e.jsonl"), 1),
    }
    cases["not UTF-8"][0].write_bytes(performance.read_bytes().replace(b'"testcard"', b'"test\xe9"', 1))
    for what, (path, line) in cases.items():
        r = noclip("render", str(path), "-o", str(tmp_path / "x.mp4"), "--size", "64x48")
        assert r.returncode == 2, (what, r.stderr)
        assert "Traceback" not in r.stderr and f"noclip: {path}:{line}: " in r.stderr, (what, r.stderr)


def test_a_good_performance_still_loads(performance):
    p = load_performance(performance)
    assert p.complete and p.frames == 10 and sorted(p.events) == [3, 6] and p.fps == 10


@pytest.mark.parametrize("args", [["--fps", "0"], ["--fps", "inf"], ["--fps", "nan"], ["--seconds", "nan"],
                                  ["--seconds", "-1"], ["--seconds", "1e999"], ["--range", "1:inf"],
                                  ["--range", "nan:2"]])
def test_non_finite_and_zero_numbers_on_the_command_line_are_usage_errors(args, capsys):
    from instrument.cli import parser

    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(["render", "--patch", "testcard", "-o", "x.mp4", "--seconds", "1", *args])
    assert exit_.value.code == 2 and f"argument {args[0]}" in capsys.readouterr().err


def test_a_sound_file_that_does_not_decode_is_named(tmp_path):
    junk = tmp_path / "song.wav"
    junk.write_bytes(bytes(range(256)) * 8)
    r = render("--patch", "testcard", "--audio", str(junk), "-o", str(tmp_path / "x.mp4"))
    assert r.returncode == 2 and f"noclip: {junk}: not a sound file that can be decoded" in r.stderr
