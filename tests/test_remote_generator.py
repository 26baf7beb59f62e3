"""Live, the generator runs in a process of its own; a process that dies is started again."""

import time
from dataclasses import replace

import pytest

from instrument.clock import RealtimeClock
from instrument.patch import load_patch
from instrument.show import Show


def step_until(show, cond, seconds=60.0):
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        show.step()
    return cond()


@pytest.fixture
def live_builtin(ctx, monkeypatch):
    monkeypatch.setenv("NOCLIP_GENERATOR", "process")
    show = Show(ctx, replace(load_patch("default"), size=(128, 96)), (160, 120),
                clock=RealtimeClock(30.0), overrides={"similarity_skip": 0.0})
    yield show
    show.close()


def test_the_builtin_model_dreams_in_its_own_process(live_builtin):
    show = live_builtin
    assert step_until(show, lambda: show.generator.latest() is not None)
    engine = show.generator.engine
    assert engine.proc.is_alive() and engine.proc.pid != __import__("os").getpid()
    done = show.generator.stats()["done"]
    assert step_until(show, lambda: show.generator.stats()["done"] >= done + 3)
    assert engine.stats.get("generated", 0) >= 3  # the child's own count comes back with each frame


def test_a_generator_process_that_dies_is_started_again(live_builtin):
    show = live_builtin
    assert step_until(show, lambda: show.generator.latest() is not None)
    engine = show.generator.engine
    first = engine.proc.pid
    engine.proc.kill()  # a crash in a native library, the OOM killer
    assert step_until(show, lambda: engine.proc.pid != first and engine.proc.is_alive())
    failures = show.generator.stats()["failures"]
    assert failures >= 1 and show.running
    done = show.generator.stats()["done"]
    assert step_until(show, lambda: show.generator.stats()["done"] >= done + 2)  # dreaming again
    assert any("generator" in msg for _, msg in show.reporter.recent)


def test_a_model_that_cannot_load_is_reported_and_the_scene_plays(ctx, monkeypatch):
    monkeypatch.setenv("NOCLIP_GENERATOR", "process")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the child inherits it: no network in tests
    show = Show(ctx, replace(load_patch("testcard"), model="noclip-tests/no-such-model"), (160, 120),
                clock=RealtimeClock(30.0))
    try:
        assert step_until(show, lambda: not show.generator.worker.loading, 30)
        show.run(frames=3)
        assert show.generator.latest() is None and show.running
        assert any("did not load" in msg for _, msg in show.reporter.recent)
    finally:
        show.close()
