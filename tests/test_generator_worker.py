"""The generator thread: live never waits, offline is exact, failures never stop the show."""

import time

import numpy as np

from instrument.clock import OfflineClock, RealtimeClock
from instrument.generate.worker import ThreadedGenerator
from instrument.patch import load_patch
from instrument.show import Show

SIZE = (128, 96)


def flat(frame: int) -> int:
    return (frame * 37) % 256


def engine_flat(base, fp):
    """An 'engine' whose output says which frame it dreamed."""
    return np.full_like(base.image, flat(fp.frame))


def generated_value(gen) -> int:
    tex = gen.latest()
    return int(np.frombuffer(tex.read(), dtype=np.uint8)[0])


def show_with(ctx, engine, *, live, clock):
    patch = load_patch("default")
    show = Show(ctx, patch, (160, 120), clock=clock)
    show.generator.release()
    show.generator = ThreadedGenerator("test", engine, ctx, patch.size, show.reporter, live=live)
    return show


def test_offline_waits_for_each_frame(ctx):
    def slowish(base, fp):
        time.sleep(0.01)
        return engine_flat(base, fp)

    show = show_with(ctx, slowish, live=False, clock=OfflineClock(30))
    for n in range(8):
        show.step()
        assert generated_value(show.generator) == flat(n)
    show.close()


def test_live_loop_keeps_its_rate_while_the_generator_is_slower(ctx):
    calls = []

    def slow(base, fp):
        calls.append(fp.frame)
        time.sleep(0.08)  # ~12 fps engine under a 60 fps loop
        return engine_flat(base, fp)

    show = show_with(ctx, slow, live=True, clock=RealtimeClock(60))
    t = time.perf_counter()
    show.run(frames=60)
    elapsed = time.perf_counter() - t
    shown = generated_value(show.generator)
    stats = show.generator.stats()
    show.close()
    # waiting on 80 ms generations would take >= 4.8 s; at 60 fps it is 1 s (more on a busy machine)
    assert elapsed < 3.0
    assert 3 <= len(calls) <= elapsed / 0.08 + 2  # the engine ran flat out, one frame at a time
    assert stats["replaced"] >= 60 - 2 * len(calls)  # stale inputs were replaced, not queued
    assert shown in {flat(f) for f in calls}  # it composites a finished generation


def test_engine_failure_keeps_the_show_on_the_last_good_frame(ctx):
    def flaky(base, fp):
        if fp.frame in (3, 4):
            raise RuntimeError("CUDA out of memory (injected)")
        return engine_flat(base, fp)

    show = show_with(ctx, flaky, live=False, clock=OfflineClock(30))
    seen = []
    for _ in range(7):
        show.step()
        seen.append(generated_value(show.generator))
    show.close()
    assert show.running
    assert seen == [flat(0), flat(1), flat(2), flat(2), flat(2), flat(5), flat(6)]
    assert show.generator.stats()["failures"] == 2
    assert any("out of memory" in msg for _, msg in show.reporter.recent)


def test_nothing_dreamed_yet_shows_the_scene(ctx):
    def never(base, fp):
        raise ValueError("broken weights")

    show = show_with(ctx, never, live=False, clock=OfflineClock(30))
    show.step()
    assert show.generator.latest() is None  # the compositor falls back to the base scene
    show.close()
