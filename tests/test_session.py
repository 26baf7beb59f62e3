"""The session builder (record/session.py): one way to build a show, live or offline, and to close
what was opened for it, the show first, whatever fails on the way."""

import pytest

from instrument.clock import OfflineClock
from instrument.events import ControlEvent, ControlQueue
from instrument.patch import load_patch
from instrument.record.session import Scheduled, Session, make_show


class Thing:
    def __init__(self, name, closed):
        self.name, self.closed = name, closed

    def close(self, *frames):
        self.closed.append(self.name)


def test_scheduled_events_reach_their_own_frame_once(ctx):
    clock, queue = OfflineClock(10), ControlQueue()
    plan = {1: [ControlEvent("perf", "bleed", 0.5)], 3: [ControlEvent("perf", "bleed", 0.9)]}
    source = Scheduled(lambda i: plan.get(i, []), clock, queue)
    show = make_show(ctx, load_patch("testcard"), (64, 48), clock=clock, queue=queue, sources=[source])
    seen = []
    for _ in range(5):
        fp = show.step()
        source.poll()  # a second poll in the same frame puts nothing more
        seen.append(show.targets["bleed"])
        assert len(queue.drain(0.0)) == 0, fp.frame
    show.close()
    assert seen[1] == 0.5 and seen[2] == 0.5 and seen[3] == 0.9


def test_a_session_closes_the_show_first_then_what_was_opened_last_first(ctx):
    closed = []
    with Session() as session:
        session.open(Thing("osc", closed))
        session.open(Thing("midi", closed))
        show = session.show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(10),
                            outputs=[Thing("deck", closed)], sinks=[Thing("performance", closed)])
        show.run(frames=2)
    # the show closes its outputs and sinks as it closes; then the sources, last opened first
    assert closed == ["deck", "performance", "midi", "osc"]


def test_a_start_that_fails_half_way_closes_what_it_opened(ctx):
    closed = []
    with pytest.raises(KeyError), Session() as session:
        session.open(Thing("osc", closed))
        session.show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(10),
                     overrides={"no_such_param": 1})
    assert closed == ["osc"]


def test_a_sink_that_cannot_open_is_reported_and_the_show_plays_on(ctx, tmp_path):
    with Session() as session:
        show = session.show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(10))

        def refuse():
            raise OSError(2, "No such file or directory")

        assert not session.sink(show, refuse, tmp_path / "gone" / "x.jsonl")
        show.run(frames=2)
    assert any("x.jsonl" in msg for _, msg in show.reporter.recent)
