"""The Reporter: counted problems in a bounded table, log lines rate-limited per kind."""

from __future__ import annotations

import logging

from instrument.report import KEY_CHARS, LINES, MAX_KEYS, OTHER, WINDOW, Reporter


def test_two_thousand_identical_errors_are_a_few_lines_and_a_summary(caplog):
    now = [0.0]
    r = Reporter(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="noclip"):
        for _ in range(2000):
            r.error("command cmd/patch/load", "no patch 'x'")
            now[0] += 0.001  # two seconds in all: inside one window
        assert len(caplog.records) == LINES
        now[0] += WINDOW
        r.error("command cmd/patch/load", "no patch 'y'")
    assert len(caplog.records) == LINES + 1
    last = caplog.records[-1].getMessage()
    assert "no patch 'y'" in last and f"and {2000 - LINES} more" in last
    assert r.counts[("error", "command cmd/patch/load")] == 2001  # every one counted
    assert r.suppressed == 2000 - LINES


def test_kinds_are_limited_apart(caplog):
    r = Reporter(clock=lambda: 0.0)
    with caplog.at_level(logging.INFO, logger="noclip"):
        for i in range(50):
            r.problem("osc unknown", f"/noclip/x{i}", f"unknown address /noclip/x{i}")
            r.error("patch", f"broken {i}")
    kinds = [rec.levelname for rec in caplog.records]
    assert kinds.count("WARNING") == LINES and kinds.count("ERROR") == LINES


def test_the_problem_table_is_capped_and_keys_are_cut():
    r = Reporter()
    for i in range(5000):
        r.problem("osc unknown", f"/noclip/{i}/" + "x" * 500, "unknown")
    assert len(r.counts) == MAX_KEYS + 1  # and one "(other)" per kind
    assert all(len(key) <= KEY_CHARS for _, key in r.counts)
    assert r.counts[("osc unknown", OTHER)] == 5000 - MAX_KEYS
    assert r.totals()["osc unknown"] == 5000
