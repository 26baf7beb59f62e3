"""A re-render of a performance file takes the performance's own rate and size unless told otherwise,
and a header whose rate or size is not a sane number is refused by line, before anything renders."""

import json

import av
import pytest
from conftest import noclip

from instrument.patch import load_patch
from instrument.record.performance import PerformanceError, PerformanceWriter, load_performance


def performance(path, fps=20.0, size=(96, 72), frames=6):
    writer = PerformanceWriter(path, load_patch("testcard"), {"tracking": 0.0}, fps, size)
    writer.close(frames)
    return path


def stream(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.codec_context.width, v.codec_context.height, float(v.average_rate or v.guessed_rate), \
            sum(1 for _ in c.decode(v))


def test_a_rerender_defaults_to_the_performances_rate_and_size(tmp_path):
    perf = performance(tmp_path / "show.performance.jsonl")
    r = noclip("render", str(perf), "-o", str(tmp_path / "same.mkv"), "--codec", "ffv1")
    assert r.returncode == 0, r.stderr
    assert stream(tmp_path / "same.mkv") == (96, 72, 20.0, 6)
    r = noclip("render", str(perf), "-o", str(tmp_path / "other.mkv"), "--codec", "ffv1",
               "--fps", "40", "--size", "64x48")
    assert r.returncode == 0, r.stderr
    assert stream(tmp_path / "other.mkv") == (64, 48, 40.0, 12)  # told otherwise: same time, more frames


@pytest.mark.parametrize("field,value", [("fps", 0), ("fps", "60"), ("fps", 1e9), ("size", [0, 72]),
                                         ("size", [96]), ("size", [96, 1e6]), ("size", "96x72")])
def test_a_header_with_no_sane_rate_or_size_is_refused_by_line(tmp_path, field, value):
    path = performance(tmp_path / "bad.performance.jsonl")
    lines = path.read_text().splitlines()
    head = json.loads(lines[0])
    head[field] = value
    path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    with pytest.raises(PerformanceError, match=rf":1: header: {field}"):
        load_performance(path)
