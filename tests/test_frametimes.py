"""`noclip play --frame-times FILE` (record/frametimes.py): one line a frame, and a writer like any
other: a file that cannot be made or a disk that fills is said once, and the show plays on."""

from __future__ import annotations

from pathlib import Path

import pytest

from instrument.params import FrameParams
from instrument.record.frametimes import frame_times
from instrument.report import Reporter


def said(reporter: Reporter) -> int:
    return reporter.counts[("error", "frame times")]


def test_each_frame_and_when_it_began(tmp_path):
    reporter, clock = Reporter(), iter([10.5, 10.533333, 10.566667])
    times = frame_times(tmp_path / "t.txt", lambda: next(clock), reporter)
    assert times is not None
    for n in range(3):
        times.publish(FrameParams(n, n / 30, 1 / 30, {}))
    times.close()
    rows = [line.split() for line in (tmp_path / "t.txt").read_text().splitlines()]
    assert [(int(a), float(b)) for a, b in rows] == [(0, 10.5), (1, 10.533333), (2, 10.566667)]
    assert said(reporter) == 0


def test_a_file_that_cannot_be_made_is_said_and_skipped(tmp_path):
    reporter = Reporter()
    assert frame_times(tmp_path / "no" / "such" / "t.txt", lambda: 0.0, reporter) is None
    assert said(reporter) == 1
    assert frame_times(None, lambda: 0.0, reporter) is None


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here (Linux has one)")
def test_a_full_disk_is_said_once_and_the_frames_go_on():
    full = Path("/dev/full")   # every write to it fails as a full disk does (ENOSPC)
    reporter = Reporter()
    times = frame_times(full, lambda: 1.0, reporter)
    assert times is not None
    for n in range(20_000):   # past the file's buffer: the writes themselves fail
        times.publish(FrameParams(n, n / 30, 1 / 30, {}))
    times.close()
    assert said(reporter) == 1
    short = frame_times(full, lambda: 1.0, reporter)   # within its buffer: the close fails
    assert short is not None
    short.publish(FrameParams(0, 0.0, 1 / 30, {}))
    short.close()
    assert said(reporter) == 2
