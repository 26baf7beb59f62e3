"""`noclip play`: the live show with its window, controllers, outside clocks and takes.

With no display and no --windowed it renders a short demo offline instead, so nothing is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..clock import RealtimeClock
from ..control import ControlEvent, ControlQueue
from ..record.deck import RecordDeck
from ..record.eventlog import EventLog
from ..record.performance import PerformanceWriter
from ..record.render import render_offline
from ..report import Reporter
from . import resolve_patch

log = logging.getLogger("noclip")
DEMO_FILE = "noclip-demo.mp4"
DEMO_SECONDS = 10.0


@contextlib.contextmanager
def _sigint_quits(queue: ControlQueue) -> Iterator[None]:
    """Ctrl-C ends the show cleanly (recordings get finished) instead of a traceback."""
    old = signal.signal(signal.SIGINT, lambda *a: queue.put(ControlEvent("signal", "cmd/quit")))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _clock_feed(args: argparse.Namespace, queue: ControlQueue, midi_clock=None) -> list:
    """Outside clocks and the audio input asked for on the command line, reporting to the show;
    closers, in order. One that cannot start is logged and the show plays on without it."""
    from ..control.tempo import ClockFeed, MidiClock

    sources: dict = {} if midi_clock is None else {"midi": MidiClock(midi_clock)}
    if getattr(args, "link", False):
        from ..control.link import LinkFollower, LinkUnavailable
        try:
            sources["link"] = LinkFollower()
        except LinkUnavailable as exc:
            log.error("%s", exc)
    if getattr(args, "ableton", None):
        from ..control.osc import parse_hostport
        from ..control.tempo import AbletonOSC

        host, port = parse_hostport(args.ableton if ":" in args.ableton else f"{args.ableton}:11000")
        try:
            sources["ableton"] = AbletonOSC(host, port).start()
        except OSError as exc:  # the reply port is taken
            log.error("AbletonOSC: cannot listen for Live's replies: %s", exc)
    closers: list = [ClockFeed(queue, sources).start(), *sources.values()] if sources else []
    if getattr(args, "audio_in", None):  # the input recorded is the input listened to (the show polls it)
        from ..control.audio import AudioInput

        device = int(args.audio_in) if args.audio_in.isdigit() else args.audio_in
        try:
            closers.append(AudioInput(queue, device).start())
        except Exception as exc:  # no PortAudio, no such device: play on without reacting
            log.error("audio input %s: %s", args.audio_in, exc)
    return closers


def cmd_play(args: argparse.Namespace) -> int:
    from ..control.audio import AudioInput
    from ..control.osc import OscControl, parse_hostport
    from ..render.gl import headless_context
    from ..render.window import Window, WindowError
    from ..show import Show

    patch, overrides = resolve_patch(args)
    queue, reporter = ControlQueue(), Reporter()
    window = None
    seconds, record = args.seconds, args.record
    if not args.headless:
        try:
            window = Window(queue, args.size, fullscreen=not args.windowed, monitor=args.monitor,
                            vsync=not args.no_vsync)
        except WindowError as exc:
            if args.windowed:
                print(f"noclip: --windowed: {exc}", file=sys.stderr)
                return 2
            # nobody is watching: render the demo exactly on the offline clock, no dropped frames
            seconds = seconds or DEMO_SECONDS
            record = record or Path(DEMO_FILE)
            print(f"noclip: {exc}; rendering a {seconds:g} s headless demo to {record}", file=sys.stderr)
            return render_offline(patch, overrides, record, seconds, args.fps, args.size, codec=args.codec,
                                  audio=_audio_factory(args))
    ctx = window.ctx if window else headless_context()
    size = window.framebuffer_size if window else args.size

    osc = None
    if args.osc != "off":
        host, port = parse_hostport(args.osc)
        osc = OscControl(queue, reporter, host, port, allow=args.osc_allow)
        log.info("OSC on %s:%d", *osc.address)
    deck = RecordDeck(size, args.fps, reporter, first=record, folder=args.takes, codec=args.codec,
                      audio=_audio_factory(args))
    outputs: list = [window, deck] if window else [deck]
    midi = None
    if "off" not in args.midi:
        from ..control.midi import MidiControl, default_tiers

        midi = MidiControl(queue, reporter, default_tiers(patch.midi, str(patch.path or patch.name), reporter),
                           patterns=args.midi or [""]).start()
    clocks = _clock_feed(args, queue, midi.clock if midi else None)
    heard = [c for c in clocks if isinstance(c, AudioInput)]  # analysed by the show's loop, each frame
    if record:
        queue.put(ControlEvent("cli", "cmd/record/start"))  # frame 0, and in the performance file
    show = Show(ctx, patch, size, clock=RealtimeClock(args.fps), queue=queue, reporter=reporter,
                outputs=outputs, feedback=[osc] if osc else [], sources=([osc] if osc else []) + heard,
                overrides=overrides)
    if args.log:
        show.sinks.append(EventLog(args.log))
    perf_path = args.performance or (record.with_suffix(".performance.jsonl") if record else None)
    if perf_path:
        writer = PerformanceWriter(perf_path, patch, dict(show.bank.targets), args.fps, size)
        show.sinks.append(writer)
    if midi:
        midi.attach(show)
    if window:
        learn = None
        if midi and patch.path:
            from ..control.learn import Learn

            learn = Learn(midi, patch.path)
        window.attach(show, lambda: "  ".join(m for m in (osc.last_message if osc else "",
                                                          midi.last_message if midi else "") if m),
                      learn=learn)
    frames = round(seconds * args.fps) if seconds else None
    try:
        started = time.perf_counter()
        with _sigint_quits(queue):
            n = show.run(frames=frames)
    finally:
        elapsed = time.perf_counter() - started
        dreamed = getattr(show.generator, "stats", dict)().get("done")
        show.close()
        if osc:
            osc.close()
        if midi:
            midi.close()
        for c in clocks:
            c.close()
    if dreamed is not None:
        log.info("generator %s dreamed %d frames (%.1f a second)", show.patch.model, dreamed,
                 dreamed / max(1e-9, elapsed))
    age = show.stats.dream_summary()
    if age:
        log.info("dream age %.2f frames on average (carried %.2f; generator lag: Stream Batch %.2f, "
                 "hop %.2f) over the last %d frames", age["age"], age["carried"], age["batch_lag"],
                 age["hop"], age["frames"])
    log.info("played %d frames at %.1f fps%s%s", n, show.stats.fps(),
             f"; recorded {', '.join(map(str, deck.takes))}" if deck.takes else "",
             f"; performance in {perf_path}" if perf_path else "")
    return 0


def _audio_factory(args: argparse.Namespace):
    """What each take records as sound: the input device, else the given file, else nothing."""
    from ..record.audio import FileAudio, InputAudio

    if getattr(args, "audio_in", None):
        device = int(args.audio_in) if args.audio_in.isdigit() else args.audio_in

        def live_input() -> InputAudio:
            source = InputAudio(device)
            source.start()
            return source
        return live_input
    if getattr(args, "audio", None):
        sound = FileAudio(args.audio)  # decoded once, cut per take
        return lambda: sound
    return None
