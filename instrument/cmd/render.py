"""`noclip render`: a patch, a performance file or a MIDI file rendered offline on a fixed-step clock."""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import replace

from ..record.render import Job, render_offline
from ..report import Reporter
from . import resolve_patch
from .play import audio_factory

log = logging.getLogger("noclip")
DEFAULT_FPS, DEFAULT_SIZE = 60.0, (1280, 720)  # a render of a patch, not of a performance


def cmd_render(args: argparse.Namespace) -> int:
    from ..record.performance import PerformanceError, load_performance

    perf = None
    if args.performance:
        try:
            perf = load_performance(args.performance, salvage=args.salvage)
        except (PerformanceError, OSError) as exc:
            print(f"noclip: {exc}" + ("" if args.salvage else " (--salvage renders up to it)"),
                  file=sys.stderr)
            return 2
        if not perf.complete:
            log.warning("%s ends early (crash or --salvage): rendering its %d frames", perf.path, perf.frames)
        from ..record.performance import check_loras

        problems = check_loras(perf.header)
        if problems:
            print(f"noclip: {perf.path}: the re-render would not play the show's LoRAs: " + "; ".join(problems),
                  file=sys.stderr)
            return 2
        patch = replace(perf.patch, model=args.model) if args.model else perf.patch
        overrides = perf.header["start"]
        seconds = args.seconds or perf.frames / perf.fps
        # an exact re-render by default: the rate and size the performance was played at
        args.fps = args.fps or perf.fps
        args.size = args.size or perf.size
    else:
        patch, overrides = resolve_patch(args)
        seconds = args.seconds
    args.fps, args.size = args.fps or DEFAULT_FPS, args.size or DEFAULT_SIZE
    player = None
    if args.midi:
        if perf is not None:
            print("noclip: --midi plays a MIDI file over a patch, not over a performance", file=sys.stderr)
            return 2
        from ..control.midi import default_tiers
        from ..control.midifile import MidiFilePlayer

        reporter = Reporter()
        try:
            tiers = default_tiers(patch.midi, str(patch.path or patch.name), reporter)
            player = MidiFilePlayer(args.midi, tiers, args.fps, device=args.midi_device)
        except ValueError as exc:
            print(f"noclip: --midi {exc}", file=sys.stderr)
            return 2
        seconds = seconds or player.frames / args.fps
    if seconds is None:
        print("noclip: render needs --seconds, a performance file or --midi FILE", file=sys.stderr)
        return 2
    start, end = args.range or (0.0, seconds)
    job = Job(args.output, min(end, seconds), args.fps, args.size, start=start, codec=args.codec,
              resume=args.resume, allow_missing=args.allow_missing_dreams)
    if args.farm:
        return farm(args, perf, job)
    return render_offline(patch, overrides, job, performance=perf, audio=audio_factory(args), midi=player)


def farm(args: argparse.Namespace, perf, job: Job) -> int:
    """The render on a Ray cluster (record/farm.py): a performance file's, not resumed (the chunks
    are what a farm keeps)."""
    from ..record.farm import FarmError, render_farm

    why = ("renders a performance file" if perf is None else
           "keeps its own chunks: run it again instead of --resume" if args.resume else None)
    if why:
        print(f"noclip: --farm {why}", file=sys.stderr)
        return 2
    try:
        return render_farm(perf, args.model, job, address=args.farm, workers=args.workers,
                           chunk=args.chunk, preroll=args.preroll, folder=args.farm_dir,
                           sound=getattr(args, "audio", None))
    except FarmError as exc:
        print(f"noclip: {exc}", file=sys.stderr)
        return 2


def time_range(text: str) -> tuple[float, float]:
    a, sep, b = text.partition(":")
    try:
        start, end = float(a or 0), float(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range is START:END in seconds, not {text!r}") from None
    if not sep or not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"--range {text}: START:END in seconds, 0 <= START < END")
    return start, end
