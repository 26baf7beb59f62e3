"""One way to build a show, live or offline: its parts handed in through its entry points, and
everything opened for it closed in reverse order (the show first) however the show ends, or fails
to begin.

`noclip play`, `noclip render` (a patch, a performance's exact re-render, a MIDI file played over
a patch) and the bench build their shows here, so a source, an output or a sink is attached the
same way everywhere and a start that fails half-way leaves no socket, port, stream or file open.
What an offline render replays (a performance file, a MIDI file, a sound file's features) comes in
as a control source like the live ones: `Scheduled`, polled by the loop at each frame's start.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import moderngl

from ..clock import OfflineClock, RealtimeClock
from ..events import ControlEvent, ControlQueue
from ..patch import Patch
from ..ports import ControlSource, EventSink, Feedback, Output
from ..report import Reporter
from ..show import Show


class Closable(Protocol):
    def close(self) -> Any: ...


T = TypeVar("T", bound=Closable)


class FrameClock(Protocol):
    frame: int  # the frame being built, once the loop has ticked


class Scheduled:
    """Events known ahead of the show, each for its frame (a performance file, a MIDI file, a sound
    file's features): a control source that puts frame n's on the queue when the loop builds frame
    n, exactly as a live source's arrivals get there. Each frame's are put once."""

    def __init__(self, events_at: Callable[[int], Iterable[ControlEvent]], clock: FrameClock,
                 queue: ControlQueue) -> None:
        self.events_at, self.clock, self.queue = events_at, clock, queue
        self._polled = -1  # the last frame whose events were put

    def poll(self) -> None:
        frame = self.clock.frame
        if frame == self._polled:
            return
        self._polled = frame
        for event in self.events_at(frame):
            self.queue.put(event)


def make_show(ctx: moderngl.Context, patch: Patch, size: tuple[int, int], *,
              clock: RealtimeClock | OfflineClock, queue: ControlQueue | None = None,
              reporter: Reporter | None = None, overrides: dict[str, Any] | None = None,
              sources: Sequence[ControlSource] = (), outputs: Sequence[Output] = (),
              feedback: Sequence[Feedback] = (), sinks: Sequence[EventSink] = (),
              sync_stages: bool = False) -> Show:
    """A show with its parts handed in, in the order given (sources are polled in that order)."""
    show = Show(ctx, patch, size, clock=clock, queue=queue, reporter=reporter, overrides=overrides,
                sync_stages=sync_stages)
    for source in sources:
        show.add_source(source)
    for output in outputs:
        show.add_output(output)
    for f in feedback:
        show.add_feedback(f)
    for sink in sinks:
        show.add_sink(sink)
    return show


class Session(contextlib.ExitStack):
    """What a show is made of, opened in order and closed in reverse: `open` each thing as it is
    made, then `show`; leaving the `with` closes the show first, then its sources and outputs."""

    def open(self, thing: T) -> T:
        """`thing`, to be closed when the session ends (after everything opened later)."""
        self.callback(thing.close)
        return thing

    def show(self, ctx: moderngl.Context, patch: Patch, size: tuple[int, int], **parts: Any) -> Show:
        """The show (make_show's arguments), closed first of all when the session ends."""
        show = make_show(ctx, patch, size, **parts)
        self.callback(show.close)
        return show

    @staticmethod
    def sink(show: Show, make: Callable[[], EventSink], path: Path) -> bool:
        """An event sink that writes `path` (an event log, a performance file), added to the show; one
        that cannot be opened (no such folder, a full disk) is reported and the show plays without
        it. The show closes its sinks."""
        try:
            show.add_sink(make())
            return True
        except OSError as exc:
            show.reporter.error("writer", f"{path}: {exc.strerror or exc}; the show plays without it")
            return False
