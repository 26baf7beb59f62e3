"""`noclip play --lead [HOST:]PORT` and `noclip play --follow HOST:PORT`: one show on several machines.

The leader is an ordinary show with one more part (record/lead.py); a follower is a show whose
patch, start state, events and clock all come from the leader (control/follow.py), with its own
output size, window, monitor and takes. Apart from play.py so the live show's own assembly stays
as it was.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from ..clock import RealtimeClock
from ..control import ControlQueue
from ..control.follow import Follower
from ..control.followclock import FollowClock
from ..control.followlink import Marks
from ..control.followwire import PORT, FollowError
from ..control.link import LinkFollower, LinkUnavailable
from ..control.oscroute import is_loopback, parse_hostport
from ..events import CMD_TARGET
from ..patch import ChainPreset, ConfigError, Patch, chain_preset, load_patch
from ..record.cuts import last_clean_cut, survey
from ..record.deck import RecordDeck, free_take, performance_path
from ..record.eventlog import EventLog
from ..record.frametimes import frame_times
from ..record.lead import Leader
from ..record.performance import PerformanceWriter, check_header, header_patch, make_header
from ..record.session import Session
from ..render.chain import load_chain_spec
from ..report import Reporter
from ..show import Show
from .play import sigint_quits

log = logging.getLogger("noclip")
SURVEY_FROM = 2.0  # s of show before a joiner looks for a cut to start from (the survey costs ~1 s)
JOIN_WAIT = 30.0  # s a follower waits for its leader's hello (started first, it waits for the leader)


def lead_address(text: str) -> tuple[str, int]:
    """`[HOST:]PORT` (loopback when no host is named); ValueError for anything else."""
    if text.isdigit():
        return "127.0.0.1", int(text)
    host, port = parse_hostport(text, PORT)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port}")
    return host, port


def lead(args: argparse.Namespace, show: Show, fps: float, size: tuple[int, int],
         link: LinkFollower | None = None) -> Leader | None:
    """The show's leader on `--lead`, handed in as a sink, feedback and a source (the show closes
    it); None when the port cannot be had (said; the show plays unfollowed). With `link` (`--link`:
    the show is in a Link session) its frames go out marked on the session's timeline."""
    host, port = lead_address(args.lead)
    header = make_header(show.patch, dict(show.targets), fps, size)
    clock = show.clock
    began = (lambda: clock.began) if isinstance(clock, RealtimeClock) else None
    try:
        leader = Leader(host, port, header, show.reporter, allow=args.osc_allow, link=link, began=began)
    except OSError as exc:
        log.error("--lead %s:%d cannot listen (%s); the show plays without followers", host, port,
                  exc.strerror or exc)
        return None
    show.add_sink(leader)
    show.add_feedback(leader)
    show.add_source(leader)
    log.info("leading on %s:%d: followers join with noclip play --follow %s:%d%s", *leader.address,
             *leader.address, ", its frames marked on the Link timeline" if leader.link else "")
    return leader


def join_link(follower: Follower, fps: float, want: bool) -> LinkFollower | None:
    """This follower in the Link session when its leader marks frames on it (its hello says so:
    no flag to forget on each tile) or `--link` asks; None without Link (aalink not installed:
    said), when the show is followed on its lines' arrival, as without a leader's marks. The Link
    peer only reads the session (control/link.py): it never moves the tempo."""
    if not (follower.linked or want):
        return None
    try:
        link = LinkFollower()
    except LinkUnavailable as exc:
        log.warning("the leader marks its frames on Ableton Link, and this follower cannot join: %s; "
                    "following on the frames' arrival", exc)
        return None
    follower.marks = Marks(link, 1.0 / fps, follower.stats)
    if not follower.linked:
        log.warning("--link: the leader does not mark its frames on Link (give it --link too); "
                    "following on the frames' arrival")
    return link


def own_targets(leader: Patch, preset: ChainPreset) -> frozenset[str]:
    """What a follower with a tape of its own keeps from its leader: the parameters of both chains
    (the leader's tape is not played here) and the tape's tracking jolt (a command that moves only
    the chain's `tracking_jump`)."""
    names = {p.name for p in load_chain_spec(leader.chain).params} | set(preset.values)
    return frozenset(names | {CMD_TARGET + "tracking/jump"})


def catch_up(show: Show, follower: Follower, start: dict, patch: Patch, fps: float,
             size: tuple[int, int]) -> int:
    """A late joiner's start: the show so far surveyed for its clean cuts (record/cuts.py) from the
    leader's history, then fast-forwarded (Show.skip: controls, nothing drawn) to the last one far
    enough back; the frames from there are drawn as they come. Exact by construction (a cut drops
    what the picture carries), and it draws seconds of the show instead of all of it. Returns the
    frame drawing starts at (0: no cut, the whole show is drawn, as from the start)."""
    newest = follower.newest
    if newest < SURVEY_FROM * fps:  # drawing a second of show costs less than the survey's own show
        return 0
    t = time.perf_counter()
    cuts = survey(patch, start, fps, size, newest + 1, [follower.known], show.ctx)
    cut = last_clean_cut(cuts, newest) or 0
    for _ in range(cut):
        show.skip()
    log.info("following: the show is at frame %d; fast-forwarded to its cut at frame %d in %.2f s, "
             "drawing %d frames to catch up", newest, cut, time.perf_counter() - t, newest - cut + 1)
    return cut


def cmd_follow(args: argparse.Namespace) -> int:
    """Play the show of the leader at `--follow`, from its first frame, until --seconds after
    catching up, Ctrl-C or the window's quit (the leader's quit is its own)."""
    from ..render.gl import headless_context
    from ..render.window import Window, WindowError

    try:
        host, port = lead_address(args.follow)
    except ValueError:
        print(f"noclip: --follow {args.follow}: HOST:PORT, e.g. 192.168.1.10:{PORT}", file=sys.stderr)
        return 2
    preset = None
    if args.chain_from:
        try:
            preset = chain_preset(load_patch(args.chain_from))
        except (ConfigError, FileNotFoundError) as exc:
            print(f"noclip: --chain-from: {exc}", file=sys.stderr)
            return 2
    queue, local, reporter = ControlQueue(), ControlQueue(), Reporter()
    follower = Follower(host, port, queue, reporter, local=local, remote=not is_loopback(host))
    try:
        header = check_header(follower.join(JOIN_WAIT))
        patch = header_patch(header["patch"])
    except (FollowError, ValueError) as exc:
        follower.close()
        print(f"noclip: --follow: {exc}", file=sys.stderr)
        return 2
    start = header["start"]
    if preset is not None:
        follower.own = own_targets(patch, preset)
        patch, start = preset.apply(patch), {**start, **preset.values}
        log.info("following with a tape of its own: %s (%d parameters, the leader's events at them "
                 "not applied)", preset.chain, len(preset.values))
    fps = float(header["fps"])
    if args.fps and args.fps != fps:
        log.warning("--fps %g ignored: a follower plays at its leader's %g fps", args.fps, fps)
    log.info("following %s:%d: patch %s at %g fps", host, port, patch.name, fps)
    window = None
    if not args.headless:
        try:
            window = Window(local, args.size, fullscreen=not args.windowed, monitor=args.monitor,
                            vsync=not args.no_vsync)
        except WindowError as exc:
            follower.close()
            print(f"noclip: --follow: {exc} (--headless to follow without a window)", file=sys.stderr)
            return 2
    ctx = window.ctx if window else headless_context()
    size = window.framebuffer_size if window else args.size
    record = free_take(args.record) if args.record else None
    perf_path = args.performance or (performance_path(record) if record else None)
    live_from = -1

    with Session() as opened:
        link = join_link(follower, fps, args.link)
        if link is not None:
            opened.open(link)
        opened.open(follower)
        # the leader's record/start and stop start and stop this follower's takes (its own size)
        deck = RecordDeck(size, fps, reporter, first=record, base=args.record, folder=args.takes,
                          codec=args.codec, quality=args.record_quality, performance=perf_path)
        clock = FollowClock(fps, follower)
        show = opened.show(ctx, patch, size, clock=clock, queue=queue,
                           reporter=reporter, sources=[follower], overrides=start)
        show.chain_preset = preset  # kept across the leader's patch loads
        if args.log:
            opened.sink(show, lambda: EventLog(args.log), args.log)
        if perf_path is not None:
            written = perf_path
            opened.sink(show, lambda: PerformanceWriter(written, patch, dict(show.targets), fps, size), written)
        if window:
            window.attach(show, lambda: show.hud_state({"follow": f"{host}:{port}"}))
        times = frame_times(args.frame_times, lambda: clock.began, reporter)
        if times is not None:
            show.add_feedback(opened.open(times))

        def live(frame: int) -> None:
            """Caught up: from this frame on, the outputs are given what the show makes."""
            nonlocal live_from
            live_from = frame
            deck.at(frame)
            for out in (window, deck):
                if out is not None:
                    show.add_output(out)
            if show.recording:  # the leader records: so does this tile, from here
                deck.record(True)

        follower.on_live = live
        catch_up(show, follower, start, patch, fps, size)
        frames = round(args.seconds * fps) if args.seconds else None
        started = time.perf_counter()
        with sigint_quits(local):
            n = show.run(until=lambda: frames is not None and live_from >= 0
                         and show.fp.frame - live_from + 1 >= frames)
        elapsed = time.perf_counter() - started
    log.info("followed %s:%d: played %d frames (%s) in %.1f s; %s", host, port, n,
             f"live from frame {live_from}" if live_from >= 0 else "never caught up", elapsed,
             follower.summary())
    if deck.takes:
        log.info("recorded %s", ", ".join(map(str, deck.takes)))
    return 0
