"""`noclip play`: the live show with its window, controllers, outside clocks and takes.

With no display and no --windowed it renders a short demo offline instead, so nothing is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av

from ..clock import RealtimeClock
from ..control import ControlEvent, ControlQueue
from ..events import CMD_TARGET
from ..files import free_name
from ..generate import generator_device, live_rate
from ..patch import ConfigError
from ..record.deck import RecordDeck, free_take, performance_path
from ..record.eventlog import EventLog
from ..record.frametimes import frame_times
from ..record.performance import PerformanceWriter
from ..record.render import Job, render_offline
from ..record.session import Session
from ..report import Reporter
from ..scene import live_source
from . import resolve_patch

log = logging.getLogger("noclip")
DEMO_FILE = "noclip-demo.mp4"
DEMO_SECONDS = 10.0


@contextlib.contextmanager
def sigint_quits(queue: ControlQueue) -> Iterator[None]:
    """Ctrl-C ends the show cleanly (recordings get finished) instead of a traceback."""
    old = signal.signal(signal.SIGINT, lambda *a: queue.put(ControlEvent("signal", CMD_TARGET + "quit")))
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
        from ..control.oscroute import parse_hostport
        from ..control.tempo import AbletonOSC

        host, port = parse_hostport(args.ableton if ":" in args.ableton else f"{args.ableton}:11000")
        try:
            sources["ableton"] = AbletonOSC(host, port).start()
        except OSError as exc:  # the reply port is taken
            log.error("AbletonOSC: cannot listen for Live's replies: %s", exc)
    closers: list = [ClockFeed(queue, sources).start(), *sources.values()] if sources else []
    if getattr(args, "audio_in", None):  # the input recorded is the input listened to (the show polls it)
        from ..control.audio import AudioControl

        device = int(args.audio_in) if args.audio_in.isdigit() else args.audio_in
        try:
            closers.append(AudioControl(queue, device).start())
        except Exception as exc:  # no PortAudio, no such device: play on without reacting
            log.error("audio input %s: %s", args.audio_in, exc)
    return closers


def oscquery_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """Where OSCQuery listens: --oscquery, else ("auto") loopback at the OSC port + 1 (any free
    port when OSC's is chosen by the system, none when OSC is off); ValueError for an address
    that is not HOST:PORT."""
    from ..control.oscroute import parse_hostport

    choice = getattr(args, "oscquery", "off")
    if choice == "off" or (choice == "auto" and args.osc == "off"):
        return None
    if choice == "auto":
        port = parse_hostport(args.osc)[1]
        return "127.0.0.1", port + 1 if port else 0
    return parse_hostport(choice, 9001)


def _exposure(args: argparse.Namespace) -> str | None:
    """Open by choice (DESIGN, principle 4): an OSC or OSCQuery port beyond loopback must name who
    may talk (the same --osc-allow for both: the web remote can do what OSC can)."""
    from ..control.oscroute import is_loopback, parse_hostport

    for cidr in args.osc_allow:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            return f"--osc-allow {cidr}: not a network (e.g. 192.168.1.0/24, 10.0.0.5, 0.0.0.0/0)"
    try:
        host = None if args.osc == "off" else parse_hostport(args.osc)[0]
    except ValueError:
        return f"--osc {args.osc}: HOST:PORT, e.g. 127.0.0.1:9000"
    try:
        query = oscquery_address(args)
    except ValueError:
        return f"--oscquery {args.oscquery}: HOST:PORT, e.g. 127.0.0.1:9001, or off"
    lead = getattr(args, "lead", None)
    if lead and getattr(args, "follow", None):
        return "--lead and --follow: a follower plays its leader's show, it does not lead one"
    if getattr(args, "chain_from", None) and not getattr(args, "follow", None):
        return "--chain-from is a follower's own tape (with --follow); a show of its own plays its patch's"
    try:
        from .follow import lead_address

        led = lead_address(lead)[0] if lead else None
    except ValueError:
        return f"--lead {lead}: [HOST:]PORT, e.g. 9100 (this machine) or 0.0.0.0:9100"
    for flag, value, bound in (("--osc", args.osc, host), ("--oscquery", getattr(args, "oscquery", ""),
                                                           query[0] if query else None),
                               ("--lead", lead, led)):
        if bound is None or is_loopback(bound) or args.osc_allow:
            continue
        return (f"{flag} {value} listens beyond this machine, so it needs --osc-allow naming who may "
                f"talk to it: e.g. --osc-allow 192.168.1.0/24 for a local network, or --osc-allow "
                f"0.0.0.0/0 to accept anyone who can reach the port (a deliberate choice; "
                f"see README, Security)")
    return None


def _oscquery(args: argparse.Namespace, queue: ControlQueue, reporter: Reporter, osc) -> tuple:
    """The OSCQuery server and its mDNS advert (each None when off or when it cannot start: a
    port that is taken is logged and the show plays without it)."""
    from ..control.oscroute import is_loopback

    where = oscquery_address(args)
    if where is None:
        return None, None
    try:
        from ..control.oscquery import OscQueryServer

        server = OscQueryServer(queue, reporter, *where, osc=osc.address if osc else None,
                                allow=args.osc_allow, allow_quit=getattr(args, "osc_allow_quit", False)).start()
    except (OSError, ImportError) as exc:
        log.error("OSCQuery on %s:%d cannot start (%s); the show plays without it", *where, exc)
        return None, None
    host, port = server.address
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    log.info("OSCQuery on %s:%d, web remote at http://%s:%d/remote", host, port, shown, port)
    advert = None
    if not is_loopback(host):
        from ..control.mdns import Advert

        advert = Advert("noclip", host, port, osc.address if osc else None).start()
    return server, advert


def _platform(args: argparse.Namespace) -> str | None:
    """Syphon off macOS, Spout off Windows: refused before the show, by name."""
    from ..record.texshare import refuse

    for flag in ("syphon", "spout"):
        if getattr(args, flag, None):
            why = refuse(flag)
            if why:
                return why
    return None


def _feeds(args: argparse.Namespace, show, size: tuple[int, int], fps: float, reporter: Reporter) -> list:
    """The feeds to other programs asked for (NDI, a virtual camera, Syphon, Spout), added to the
    show's outputs; one that cannot start (no extra, no device) is logged and the show plays on
    without it."""
    made: list = []
    wanted: list[tuple[str, Callable[[], Any]]] = []
    if getattr(args, "ndi", None):
        from ..record.ndi import NdiOutput

        clean = getattr(args, "ndi_source", "output") == "clean"
        pick = (lambda fbo: show.compositor.clean) if clean else None
        wanted.append((f"--ndi {args.ndi}", lambda: NdiOutput(args.ndi, fps, reporter, pick=pick)))
    if getattr(args, "virtualcam", None) is not None:
        from ..record.virtualcam import VirtualCamera

        wanted.append(("--virtualcam", lambda: VirtualCamera(size, fps, reporter, args.virtualcam or None)))
    if getattr(args, "syphon", None):
        from ..record.texshare import SyphonOutput

        wanted.append((f"--syphon {args.syphon}", lambda: SyphonOutput(args.syphon, reporter)))
    if getattr(args, "spout", None):
        from ..record.texshare import SpoutOutput

        wanted.append((f"--spout {args.spout}", lambda: SpoutOutput(args.spout, reporter)))
    for flag, make in wanted:
        try:
            feed = make()
        except Exception as exc:  # no extra, no device, a bad name: said, and the show plays on
            log.error("%s: %s; the show plays on without it", flag, exc)
            continue
        show.add_output(feed)
        made.append(feed)
        log.info("%s: sending", flag)
    return made


def cmd_play(args: argparse.Namespace) -> int:
    from ..control.audio import AudioControl
    from ..control.osc import OscControl
    from ..control.oscroute import parse_hostport
    from ..render.gl import headless_context
    from ..render.window import Window, WindowError

    refused = _exposure(args) or _platform(args)
    if refused:
        print(f"noclip: {refused}", file=sys.stderr)
        return 2
    if getattr(args, "follow", None):
        from .follow import cmd_follow  # the leader's show, played here

        return cmd_follow(args)
    patch, overrides = resolve_patch(args)
    queue, reporter = ControlQueue(), Reporter()
    fps, why = (args.fps, "--fps") if args.fps else live_rate(patch.model, take=args.record is not None)
    log.info("playing at %g fps (%s)", fps, why if args.fps else f"{why}; --fps to choose")
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
            record = free_take(record) if record else Path(DEMO_FILE)  # a demo file is remade each time
            print(f"noclip: {exc}; rendering a {seconds:g} s headless demo to {record}", file=sys.stderr)
            return render_offline(patch, overrides, Job(record, seconds, fps, args.size, codec=args.codec),
                                  audio=audio_factory(args))
    ctx = window.ctx if window else headless_context()
    size = window.framebuffer_size if window else args.size

    # whatever opens is closed, the show first, even when a later step fails (a Show that cannot be
    # built leaves no socket, port or stream behind)
    with Session() as opened:
        osc = None
        if args.osc != "off":
            host, port = parse_hostport(args.osc)
            osc = opened.open(OscControl(queue, reporter, host, port, allow=args.osc_allow,
                                         allow_quit=getattr(args, "osc_allow_quit", False)))
            log.info("OSC on %s:%d", *osc.address)
        oscquery, advert = _oscquery(args, queue, reporter, osc)
        for server in (advert, oscquery):
            if server:
                opened.open(server)
        wanted = record
        if record:
            record = free_take(record)  # the deck's first take: an earlier one is never overwritten
            if record != wanted:
                log.info("%s is taken: recording to %s", wanted, record)
        # the show's performance is always written, so any take re-renders exactly (full size too);
        # without --record or --performance it goes beside the takes and is kept only if one was made
        perf_path = args.performance or (performance_path(record) if record else None)
        if args.performance and free_name(args.performance) != args.performance:
            perf_path = free_name(args.performance)
            log.info("%s is taken: writing the performance to %s", args.performance, perf_path)
        provisional = perf_path is None
        if perf_path is None:
            perf_path = free_name(args.takes / f"noclip-{time.strftime('%Y%m%d-%H%M%S')}.performance.jsonl")
        spare = (os.cpu_count() or 2) - 1 - (generator_device(patch.model) == "cpu")
        deck = RecordDeck(size, fps, reporter, first=record, base=wanted, folder=args.takes, codec=args.codec,
                          audio=audio_factory(args), quality=args.record_quality,
                          cores=max(0.25, 0.5 * spare), performance=perf_path)
        outputs: list = [window, deck] if window else [deck]
        midi = None
        if "off" not in args.midi:
            from ..control.midi import MidiControl, default_tiers

            tiers = default_tiers(patch.midi, str(patch.path or patch.name), reporter)
            midi = opened.open(MidiControl(queue, reporter, tiers, patterns=args.midi or [""]).start())
        clocks = _clock_feed(args, queue, midi.clock if midi else None)
        for c in clocks:
            opened.open(c)
        heard = [c for c in clocks if isinstance(c, AudioControl)]  # analysed by the show's loop, each frame
        if record:
            queue.put(ControlEvent("cli", CMD_TARGET + "record/start"))  # frame 0, and in the performance file
        # first of all to close: the show, then its sources (last opened first)
        clock = RealtimeClock(fps)
        show = opened.show(ctx, patch, size, clock=clock, queue=queue, reporter=reporter,
                           outputs=outputs, feedback=[f for f in (osc, oscquery) if f],
                           sources=([osc] if osc else []) + heard, overrides=overrides)
        show.rate_note = why
        feeds = _feeds(args, show, size, fps, reporter)
        if args.log:
            opened.sink(show, lambda: EventLog(args.log), args.log)
        written = perf_path  # the lambda's: perf_path itself is cleared below when the file fails
        if not opened.sink(show, lambda: PerformanceWriter(written, patch, dict(show.targets), fps, size),
                           written):
            deck.performance = None
            perf_path = None
        leader = None
        if getattr(args, "lead", None):
            from ..control.link import LinkFollower
            from .follow import lead

            link = next((c for c in clocks if isinstance(c, LinkFollower)), None)
            leader = lead(args, show, fps, size, link)
        times = frame_times(getattr(args, "frame_times", None), lambda: clock.began, reporter)
        if times is not None:
            show.add_feedback(opened.open(times))
        if midi:
            midi.attach(show)
        if window:
            learn = None
            if midi and patch.path:
                from ..learn import Learn

                learn = Learn(midi, patch.path)
            window.attach(show, lambda: show.hud_state({"learn": learn.status} if learn and learn.active
                                                       else None), learn=learn)
        frames = round(seconds * fps) if seconds else None
        try:
            started = time.perf_counter()
            with sigint_quits(queue):
                n = show.run(frames=frames)
        finally:
            elapsed = time.perf_counter() - started
            dreamed = show.generator.stats().get("done")
    if dreamed is not None:
        log.info("generator %s dreamed %d frames (%.1f a second)", show.patch.model, dreamed,
                 dreamed / max(1e-9, elapsed))
    age = show.stats.dream_summary()
    if age:
        log.info("dream age %.2f frames on average (carried %.2f; generator lag: Stream Batch %.2f, "
                 "hop %.2f) over the last %d frames", age["age"], age["carried"], age["batch_lag"],
                 age["hop"], age["frames"])
    if leader is not None:
        log.info("lead: %s", leader.summary())
    if provisional and perf_path is not None and not deck.takes:
        perf_path.unlink(missing_ok=True)  # nothing was recorded: no file left behind
        perf_path = None
    log.info("played %d frames at %.1f fps%s%s", n, show.stats.fps(),
             f"; recorded {', '.join(map(str, deck.takes))}" if deck.takes else "",
             f"; performance in {perf_path}" if perf_path else "")
    for feed in feeds:
        if hasattr(feed, "summary"):
            log.info("%s", feed.summary())
    for command in deck.reduced if not live_source(show.patch.scene) else ():  # a camera plays once
        log.info("a take was recorded at reduced size; full size, exactly: %s", command)
    return 0


def audio_factory(args: argparse.Namespace):
    """What each take records as sound: the input device, else the given file, else nothing."""
    from ..record.audio import FileSoundtrack, LiveSoundtrack

    if getattr(args, "audio_in", None):
        device = int(args.audio_in) if args.audio_in.isdigit() else args.audio_in

        def live_input() -> LiveSoundtrack:
            source = LiveSoundtrack(device)
            source.start()
            return source
        return live_input
    if getattr(args, "audio", None):
        try:
            sound = FileSoundtrack(args.audio)  # decoded once, cut per take
        except (ValueError, OSError, av.FFmpegError) as exc:  # junk, truncated, no audio stream
            why = getattr(exc, "strerror", None) or str(exc).removeprefix(f"{args.audio}: ")
            raise ConfigError(args.audio, None, "", f"not a sound file that can be decoded ({why})") from None
        return lambda: sound
    return None
