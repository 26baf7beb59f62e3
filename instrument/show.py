"""The frame loop: drain controls → advance params → scene → generator → compositor → outputs.

Nothing here waits on a control source, and in live play nothing waits on the generator. Every
stage failure is reported and the show carries on with what it had. The writers are guarded the
same way: an output that throws is reported once per distinct error and asked again next frame (a
take stops itself inside the deck); an event sink (event log, performance file) that throws —
a full disk, a file-size limit — is reported once, closed without another write, and dropped.
Nothing on the output side ends the show.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import moderngl

from .clock import SYNC, BeatClock, OfflineClock, RealtimeClock, settle_memory
from .control import ControlEvent, ControlQueue
from .control.modulators import Modulators
from .events import CMD_TARGET
from .generate import Generator
from .glance import Glance
from .params import REGISTRY, FrameParams, ParamBank, ParamError
from .patch import ChainPreset, Patch
from .picture import Picture
from .ports import ControlSource, EventSink, Feedback, FileSink, Output, Stats, is_socket
from .render.compositor import Compositor
from .render.gl import finisher
from .render.hud import HudState
from .report import Reporter
from .scene import Scene
from .show_commands import ShowCommands

log = logging.getLogger("noclip")

STAGES = ("control", "scene", "generate", "composite", "output")
# commands that read files or rebuild GL: when a frame holds several, only the last of each runs
# (one patch/load replaces the next; 100 of them stalled the loop 0.18 s)
HEAVY = ("patch/load", "chain/reload")
IDLE_BATCH = 0.001  # s: packets wait at most this long in the socket while the loop is idle


class Show(ShowCommands):
    def __init__(self, ctx: moderngl.Context, patch: Patch, output_size: tuple[int, int], *,
                 clock: RealtimeClock | OfflineClock, queue: ControlQueue | None = None,
                 reporter: Reporter | None = None, outputs: list[Output] | None = None,
                 feedback: list[Feedback] | None = None, sinks: list[EventSink] | None = None,
                 sources: list[ControlSource] | None = None,
                 overrides: dict[str, Any] | None = None, sync_stages: bool = False) -> None:
        self.ctx, self.clock = ctx, clock
        self.queue = ControlQueue() if queue is None else queue
        self.reporter = Reporter() if reporter is None else reporter
        self.outputs: list[Output] = [] if outputs is None else outputs
        self.feedback: list[Feedback] = [] if feedback is None else feedback
        self.sources: list[ControlSource] = [] if sources is None else sources
        self.sinks: list[EventSink] = [] if sinks is None else sinks
        self.sync_stages = sync_stages  # finish GL work per stage so timings mean something (bench)
        self.finish = finisher(ctx)  # wait for the GL work drawn (on llvmpipe with the GIL let go)
        self.stats = Stats()
        self._good: dict[str, Any] = {}  # each stage's last good result
        self._settled = False
        self.running = True
        self.patch = patch
        self.chain_preset: ChainPreset | None = None  # a tape kept across patch loads (a follower's own)
        self.bank = ParamBank(REGISTRY)
        for name, value in {**patch.params, **(overrides or {})}.items():
            self.bank.set(name, value, immediate=True)  # (before the picture: a bad one leaves nothing open)
        self.picture = Picture(ctx, patch, output_size, self.reporter, live=clock.realtime)
        self.beat = BeatClock(self.bank.targets["tempo"])
        self.modulators: Modulators = self._modulators(patch)
        self._wall, self._show_time = 0.0, 0.0  # the frame being built: drain stamp, show time
        self.fp: FrameParams = self.bank.advance(-1, 0.0, 0.0)
        self.commands: dict[str, Callable[[ControlEvent], None]] = {
            "seed/next": lambda e: self.bank.nudge("seed", +1),
            "seed/prev": lambda e: self.bank.nudge("seed", -1),
            "patch/load": self._load_patch,
            "chain/reload": self._reload_chain,
            "tracking/jump": self._tracking_jump,
            "record/start": lambda e: self._record(True),
            "record/stop": lambda e: self._record(False),
            "record/toggle": lambda e: self._record(not self.recording),
            "quit": lambda e: self.stop(),
        }
        # commands stamped with when they happened: they return the value the performance file
        # records, so a replay puts the tap or the clock report at the same show time
        self.timed: dict[str, Callable[[ControlEvent], Any]] = {"tap": self._tap, SYNC: self._sync,
                                                                "audio": self._audio}
        self.audio: dict[str, float] = {}  # the latest audio features (modulation sources)
        self.rate_note = ""  # why the show plays at its rate (play says: the machine, or --fps)
        self.glance = Glance()  # what the HUD shows, noted as events apply
        self._on_patch: list[Callable[[Patch], None]] = []  # told of each patch loaded mid-show

    # -- the entry points its parts are handed in through (nothing below the show reaches further) --

    def add_source(self, source: ControlSource) -> None:
        """A control source, polled at the start of every frame (and in the slack, if a socket)."""
        self.sources.append(source)

    def add_feedback(self, feedback: Feedback) -> None:
        """Told each frame's parameters (OSC feedback, LEDs and motor faders)."""
        self.feedback.append(feedback)

    def add_sink(self, sink: EventSink) -> None:
        """Told every event as it applies (event logs, performance files, a MIDI mapper's takeover)."""
        self.sinks.append(sink)

    def add_output(self, output: Output) -> None:
        """Given every finished frame (a window, a deck of takes, an offline file)."""
        self.outputs.append(output)

    def on_patch(self, listener: Callable[[Patch], None]) -> None:
        """Called with each patch loaded mid-show, once it plays (MIDI brings the patch's bindings)."""
        self._on_patch.append(listener)

    @property
    def targets(self) -> dict[str, Any]:
        """Where each parameter is heading (soft takeover compares a knob with these; read-only)."""
        return self.bank.targets

    def resize(self, size: tuple[int, int]) -> None:
        """The output changes size (a window resized): from the next frame on."""
        self.compositor.resize(size)

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """Where the picture sits in the output (x, y, w, h; None before the first frame)."""
        return self.compositor.box

    @property
    def picture_fbo(self) -> moderngl.Framebuffer:
        """The frame just made, as the outputs were given it."""
        return self.compositor.fbo

    # the parts that make the picture (picture.py), by the names the HUD, the window and benches use
    @property
    def scene(self) -> Scene:
        return self.picture.scene

    @property
    def generator(self) -> Generator:
        return self.picture.generator

    @generator.setter
    def generator(self, generator: Generator) -> None:  # a bench's or a test's own in place of the patch's
        self.picture.generator = generator

    @property
    def compositor(self) -> Compositor:
        return self.picture.compositor

    # -- one frame -----------------------------------------------------------------------------

    def step(self) -> FrameParams:
        fp, events, t = self._controls()
        built = time.perf_counter()
        if self.stats.measure_latency:
            self.stats.latencies.extend(built - e.time for e in events)
        for f in self.feedback:
            f.publish(fp)
        self.stats.add("control", time.perf_counter() - t)

        fbo, base = self.picture.make(fp, self._stage)
        if base is not None:
            self.stats.dreamed(fp.frame, self.compositor.carry, self.generator.dream)
        t = time.perf_counter()
        for out in self.outputs:
            try:
                out.write(fbo, fp)
            except Exception as exc:
                name = type(out).__name__
                self.reporter.problem(f"output {name}", f"{type(exc).__name__}: {exc}", f"{name}: {exc}")
        if self.recording and self._takes_stopped():
            # a take that ended by itself (disk nearly full): REC goes off on the next frame, through
            # an event, so the performance file and its re-render show the same
            self.queue.put(ControlEvent("recorder", CMD_TARGET + "record/stop"))
        self.stats.add("output", time.perf_counter() - t)
        if self.clock.realtime:
            # the frame's GL work ends inside the frame: left to drain while the clock spins and
            # the next frame starts, llvmpipe's threads fight both for the two cores (measured:
            # frames over the 60 fps period 11 % -> 0.6 %, frame time p99 19-26 -> 14-17 ms)
            self.finish()
        self.stats.frame_times.append(time.perf_counter())
        return fp

    def skip(self) -> FrameParams:
        """Frame n's controls without its picture: the events applied, the parameters and the beat
        advanced, the scene's camera moved, nothing drawn or dreamed. A farm's chunk fast-forwards
        its controls this way to where its pre-roll starts (record/farm.py): they are the state that
        never forgets (a knob set an hour ago still holds), at 0.24 ms a frame (measured, docs/FARM.md)."""
        fp = self._controls()[0]
        self.picture.skip(fp)
        return fp

    def _controls(self) -> tuple[FrameParams, list[ControlEvent], float]:
        """Tick the clock, poll the sources, apply what they sent, advance the bank: frame n's
        parameters, the events that made them and when the frame began (after the clock's wait)."""
        tick = self.clock.tick(self._idle)
        t = time.perf_counter()
        for source in self.sources:
            source.poll()
        events = self.queue.drain(t)
        self._wall, self._show_time = t, tick.time
        self._apply(events, tick.frame)
        fp = self.fp = self._advance(tick.frame, tick.time, tick.dt)
        return fp, events, t

    def _idle(self, seconds: float) -> None:
        """The frame's slack: read the sources' sockets as packets come, in batches at most every
        IDLE_BATCH seconds, so a flood is parsed here rather than at the next frame's start; then
        poll every source once more, just before the clock's final spin, so the deadline's own poll
        has only the last moment's arrivals left and runs warm (straight after a sleep, the same
        poll took ten times as long on this VM)."""
        end = time.perf_counter() + seconds
        ready = [s for s in self.sources if is_socket(s)]
        if not ready:
            time.sleep(seconds)
        while (left := end - time.perf_counter()) > 0:
            for source in select.select(ready, [], [], left)[0]:
                source.poll(until=end)  # a socket's parsing may fill the slack, never pass its end
            time.sleep(min(IDLE_BATCH, max(0.0, end - time.perf_counter())))
        for each in self.sources:
            each.poll()

    def _advance(self, frame: int, t: float, dt: float) -> FrameParams:
        """The frame's beat, the commands due on it, then the parameters moved by the modulators."""
        targets = self.bank.targets
        beat = self.beat.advance(t, targets["tempo"], targets["clock_source"])
        mods = self.modulators
        if mods.triggers:
            for command, args in mods.due(beat, t):
                self._trigger(command, args)
        offsets = mods.offsets(beat, t, self.audio) if mods.mods else None
        return self.bank.advance(frame, t, dt, beat, offsets)

    def _trigger(self, command: str, args: tuple) -> None:
        """A modulator's command on its beat: not recorded (the replay's modulators fire it again)."""
        handler = self._command(command)
        try:
            if handler is not None:
                handler(ControlEvent("beat", CMD_TARGET + command, args))
        except Exception as exc:
            self.reporter.error(f"command {command}", str(exc))

    def _stage(self, name: str, fn: Callable, *args: Any) -> Any:
        """Run a stage; if it throws, report it (once per distinct error) and play on with its last
        good result. Only a stage that never once succeeded lets the error through."""
        t = time.perf_counter()
        try:
            result = self._good[name] = fn(*args)
        except Exception as exc:
            if name not in self._good:
                raise
            text = f"{type(exc).__name__}: {exc}"
            self.reporter.problem(f"{name} failed", text, f"{name} failed, showing its last good frame: {text}")
            result = self._good[name]
        if self.sync_stages:
            self.finish()
        self.stats.add(name, time.perf_counter() - t)
        return result

    def _apply(self, events: list[ControlEvent], frame: int) -> None:
        last = {e.command: i for i, e in enumerate(events) if e.is_command and e.command in HEAVY}
        for i, e in enumerate(events):
            if last and e.is_command and last.get(e.command, i) != i:
                self.reporter.problem("merged", e.command, f"{e.command}: several in a frame, the last runs")
                continue
            try:
                if e.is_command and e.command in self.timed:
                    value = self.timed[e.command](e)
                elif e.is_command:
                    handler = self._command(e.command)
                    if handler is None:
                        self.reporter.problem("unknown command", e.command, f"no command {e.command}")
                        continue
                    handler(e)
                    value = e.value
                else:
                    value = self.bank.set(e.target, e.value, norm=e.norm)
            except (KeyError, ParamError) as exc:
                self.reporter.problem("bad event", f"{e.source}:{e.target}", f"{e.target}: {exc}")
                continue
            except Exception as exc:  # a command that fails must not end the show
                self.reporter.error(f"command {e.target}", str(exc))
                continue
            self.glance.applied(e.source, e.target, value, e.is_command, self._wall)
            for sink in list(self.sinks):
                try:
                    sink.applied(e, frame, value)
                except Exception as exc:
                    self._drop_sink(sink, exc)

    def _drop_sink(self, sink: EventSink, exc: Exception) -> None:
        """A writer that failed (disk full, file too large, device gone) is reported once, closed
        without another write, and left out from now on: the show goes on without it."""
        self.sinks.remove(sink)
        where = sink.path if isinstance(sink, FileSink) else type(sink).__name__
        why = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
        self.reporter.error(f"writer {type(sink).__name__}", f"{where}: {why}; stopped, the show goes on")
        with contextlib.suppress(Exception):  # it failed once already: its first error is the one reported
            sink.abandon() if isinstance(sink, FileSink) else sink.close(self.fp.frame + 1)

    def _command(self, name: str) -> Callable[[ControlEvent], None] | None:
        """The show's own commands, then those its current stages offer (the scene's `noclip`)."""
        handler = self.commands.get(name)
        for stage in (self.scene, self.generator):
            if handler is None:
                handler = stage.commands.get(name)
        return handler

    def stop(self) -> None:
        self.running = False

    def hud_state(self, extra: dict[str, str] | None = None) -> HudState:
        """The show at a glance, for the HUD (glance.py)."""
        return self.glance.state(self, extra)

    # -- running -------------------------------------------------------------------------------

    def run(self, frames: int | None = None, until: Callable[[], bool] | None = None) -> int:
        """Play until quit, `frames` frames, or `until()`; returns frames played."""
        if self.clock.realtime and not self._settled:
            settle_memory()
            self._settled = True
        n = 0
        while self.running and (frames is None or n < frames) and not (until and until()):
            self.step()
            n += 1
        return n

    def close(self) -> None:
        frames = self.fp.frame + 1
        closers = [(o, o.close) for o in self.outputs] + [(s, partial(s.close, frames)) for s in self.sinks]
        for obj, close in closers:
            try:
                close()
            except Exception as exc:
                self.reporter.error(f"closing {type(obj).__name__}", str(exc))
        self.picture.release()

