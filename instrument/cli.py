"""The `noclip` command: play · render · params · devices · bench."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .clock import OfflineClock, RealtimeClock
from .commands import COMMANDS
from .control import ControlQueue
from .params import REGISTRY
from .patch import ConfigError, Patch, load_patch
from .record.eventlog import EventLog
from .record.performance import PerformanceWriter
from .record.video import CODECS
from .report import Reporter

log = logging.getLogger("noclip")
DEMO_FILE = "noclip-demo.mp4"
DEMO_SECONDS = 10.0


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size is WIDTHxHEIGHT, not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} out of range")
    return w, h


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes NAME=VALUE, not {text!r}")
    return name.strip(), value.strip()


def resolve_patch(args: argparse.Namespace) -> tuple[Patch, dict[str, Any]]:
    """The patch named on the command line, with --model and --set applied (validated like a patch)."""
    patch = load_patch(args.patch)
    if getattr(args, "model", None):
        from .generate import BACKENDS

        if args.model not in BACKENDS:
            raise SystemExit(f"noclip: unknown model '{args.model}' (have: {', '.join(BACKENDS)})")
        patch = replace(patch, model=args.model)
    source = getattr(args, "source", None)
    if source is not None:
        from .scene.source import SOURCE_SUFFIXES

        if not source.is_file() or source.suffix.lower() not in SOURCE_SUFFIXES:
            raise SystemExit(f"noclip: --source {source}: not a video or image file "
                             f"({', '.join(sorted(SOURCE_SUFFIXES))})")
        patch = replace(patch, scene=str(source))
    overrides = {}
    for name, value in getattr(args, "set", None) or []:
        spec = REGISTRY.get(name)
        if spec is None:
            raise SystemExit(f"noclip: --set {name}: unknown parameter (see `noclip params`)")
        try:
            overrides[name] = spec.coerce(value)
        except ValueError as exc:
            raise SystemExit(f"noclip: --set {name}: {exc}") from None
    return patch, overrides


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patch", default="default", help="patch name (in patches/) or path")
    p.add_argument("--model", help="generator backend (overrides the patch)")
    p.add_argument("--source", type=Path, metavar="PATH",
                   help="a video (looped) or still image as the base instead of the patch's scene")
    p.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                   help="set a parameter at start (repeatable)")
    p.add_argument("--fps", type=float, default=60.0)
    p.add_argument("--codec", choices=sorted(CODECS), default="h264",
                   help="video codec for files written (ffv1 is lossless)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="noclip", description=__doc__)
    ap.add_argument("--version", action="version", version=f"noclip {__version__}")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("play", help="play live: fullscreen window, or headless without a display")
    _common(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--headless", action="store_true", help="no window (EGL), same render path")
    mode.add_argument("--windowed", action="store_true", help="a window, not fullscreen")
    p.add_argument("--monitor", type=int, default=0, help="monitor index for fullscreen")
    p.add_argument("--size", type=_size, default=(1280, 720), help="output size headless/windowed")
    p.add_argument("--seconds", type=float, help="stop after this many seconds")
    p.add_argument("--record", type=Path, metavar="OUT", help="record the output to a video file")
    p.add_argument("--log", type=Path, metavar="FILE", help="JSON line per applied control event")
    p.add_argument("--performance", type=Path, metavar="FILE",
                   help="write the performance (patch + every control event) for exact re-renders; "
                        "--record writes one beside the video anyway")
    p.add_argument("--osc", default="127.0.0.1:9000", metavar="HOST:PORT",
                   help="OSC listen address; 'off' disables")
    p.add_argument("--osc-allow", action="append", default=[], metavar="CIDR",
                   help="accept OSC only from these networks (when --osc listens beyond loopback)")
    p.add_argument("--no-vsync", action="store_true")

    r = sub.add_parser("render", help="render offline on a fixed-step clock to a video file")
    _common(r)
    r.add_argument("performance", nargs="?", type=Path,
                   help="a performance file to re-render (its patch, start state and events)")
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("--seconds", type=float, help="length (default: the whole performance)")
    r.add_argument("--range", type=_range, metavar="START:END", help="seconds of the performance to keep")
    r.add_argument("--salvage", action="store_true",
                   help="render a damaged performance file up to its first bad line")
    r.add_argument("--size", type=_size, default=(1280, 720))

    q = sub.add_parser("params", help="list every parameter, its range and OSC addresses")
    q.add_argument("--patch", default="default", help="include the parameters of this patch's chain")
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true", help="the table in docs/PARAMS.md")

    sub.add_parser("devices", help="monitors, MIDI ports and audio devices")

    b = sub.add_parser("bench", help="measure stage timings, control latency and flood resilience")
    b.add_argument("--json", action="store_true")
    b.add_argument("--size", type=_size, default=(1280, 720))
    b.add_argument("--seconds", type=float, default=5.0, help="length of each timed phase")
    b.add_argument("--patch", default="default")

    sub.add_parser("quality", add_help=False,
                   help="measure the builtin model against its quality bars (--help for options)")

    t = sub.add_parser("train", help="train the builtin model from scratch (resumable)")
    t.add_argument("--out", type=Path, default=Path("models/builtin"), help="where the weights go")
    t.add_argument("--work", type=Path, default=Path(".cache/builtin-train"),
                   help="rendered data set and checkpoints")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoints in --work")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="torch device (default: cuda where present, else cpu)")
    t.add_argument("--ae-steps", type=int)
    t.add_argument("--unet-steps", type=int)
    t.add_argument("--clips", type=int, help="buildings rendered per level")
    t.add_argument("--per-clip", type=int, help="frames per building")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["quality"]:
        from .generate.builtin.quality import main as quality

        return quality(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="noclip: %(levelname)s: %(message)s")
    try:
        return {"play": cmd_play, "render": cmd_render, "params": cmd_params,
                "devices": cmd_devices, "bench": cmd_bench, "train": cmd_train}[args.command](args)
    except ConfigError as exc:
        print(f"noclip: {exc}", file=sys.stderr)
        return 2


# -- play ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def _sigint_quits(queue: ControlQueue) -> Iterator[None]:
    """Ctrl-C ends the show cleanly (recordings get finished) instead of a traceback."""
    from .control import ControlEvent

    old = signal.signal(signal.SIGINT, lambda *a: queue.put(ControlEvent("signal", "cmd/quit")))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def cmd_play(args: argparse.Namespace) -> int:
    from .control.osc import OscControl, parse_hostport
    from .render.gl import headless_context
    from .render.window import Window, WindowError
    from .show import Show

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
            return render_offline(patch, overrides, record, seconds, args.fps, args.size, codec=args.codec)
    ctx = window.ctx if window else headless_context()
    size = window.framebuffer_size if window else args.size

    osc = None
    if args.osc != "off":
        host, port = parse_hostport(args.osc)
        osc = OscControl(queue, reporter, host, port, allow=args.osc_allow).start()
        log.info("OSC on %s:%d", *osc.address)
    outputs: list = [window] if window else []
    if record:
        from .record.video import VideoRecorder

        outputs.append(VideoRecorder(record, size, args.fps, live=True, reporter=reporter,
                                     codec=args.codec))
    show = Show(ctx, patch, size, clock=RealtimeClock(args.fps), queue=queue, reporter=reporter,
                outputs=outputs, feedback=[osc] if osc else [], overrides=overrides)
    if args.log:
        show.sinks.append(EventLog(args.log))
    perf_path = args.performance or (record.with_suffix(".performance.jsonl") if record else None)
    if perf_path:
        writer = PerformanceWriter(perf_path, patch, dict(show.bank.targets), args.fps, size)
        show.sinks.append(writer)
    if window:
        window.attach(show, lambda: osc.last_message if osc else "")
    frames = round(seconds * args.fps) if seconds else None
    try:
        with _sigint_quits(queue):
            n = show.run(frames=frames)
    finally:
        show.close()
        if osc:
            osc.close()
    log.info("played %d frames at %.1f fps%s%s", n, show.stats.fps(),
             f"; recorded {record}" if record else "", f"; performance in {perf_path}" if perf_path else "")
    return 0


# -- render --------------------------------------------------------------------------------------

def cmd_render(args: argparse.Namespace) -> int:
    from .record.performance import PerformanceError, load_performance

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
        patch = replace(perf.patch, model=args.model) if args.model else perf.patch
        overrides = perf.header["start"]
        seconds = args.seconds or perf.frames / perf.fps
    else:
        if args.seconds is None:
            print("noclip: render needs --seconds, or a performance file", file=sys.stderr)
            return 2
        patch, overrides = resolve_patch(args)
        seconds = args.seconds
    start, end = args.range or (0.0, seconds)
    return render_offline(patch, overrides, args.output, min(end, seconds), args.fps, args.size,
                          performance=perf, start=start, codec=args.codec)


def _range(text: str) -> tuple[float, float]:
    a, sep, b = text.partition(":")
    try:
        start, end = float(a or 0), float(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range is START:END in seconds, not {text!r}") from None
    if not sep or end <= start:
        raise argparse.ArgumentTypeError(f"--range {text}: END must follow START")
    return start, end


def render_offline(patch: Patch, overrides: dict[str, Any], output: Path, seconds: float, fps: float,
                   size: tuple[int, int], performance=None, start: float = 0.0, codec: str = "h264") -> int:
    """Fixed-step render: every frame waits for its own work, so the file is exact and repeatable.

    A performance replays its events at their frames. Frames before `start` are played but not
    kept: feedback and smoothing make a frame depend on all the frames before it.
    """
    from .record.video import VideoRecorder
    from .render.gl import headless_context
    from .show import Show

    frames, first = round(seconds * fps), round(start * fps)
    ctx = headless_context()
    recorder = VideoRecorder(output, size, fps, live=False, codec=codec)
    show = Show(ctx, patch, size, clock=OfflineClock(fps), overrides=overrides)
    try:
        for i in range(frames):
            if performance is not None:
                for e in performance.events_at(i, fps):
                    show.queue.put(e)
            show.step()
            if i >= first:
                recorder.write(show.compositor.fbo, show.fp)
            if sys.stderr.isatty() and (i % 10 == 0 or i == frames - 1):
                done = (i + 1) / frames
                print(f"\rrender [{'#' * int(30 * done):<30}] {i + 1}/{frames}", end="", file=sys.stderr)
    finally:
        show.close()
        recorder.close()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    log.info("rendered %d frames to %s", recorder.frames, output)
    return 0


# -- params, devices -----------------------------------------------------------------------------

def cmd_params(args: argparse.Namespace) -> int:
    from . import show  # noqa: F401  (declares the show's commands)
    from .control import osc  # noqa: F401  (declares the OSC reply commands)

    load_patch(args.patch)  # declares the chain's parameters
    specs = [s.describe() for s in REGISTRY]
    if args.json:
        print(json.dumps({"params": specs, "commands": {f"/noclip/cmd/{k}": v
                                                        for k, v in sorted(COMMANDS.items())}}, indent=2))
        return 0
    if args.markdown:
        print(params_markdown(specs))
        return 0
    print(f"{'name':<12} {'type':<6} {'range':<22} {'default':<10} {'unit':<5} {'group':<26} description")
    for d in specs:
        rng = (f"{d['min']}..{d['max']}" if "min" in d else "|".join(d.get("choices", [])) or "-")
        print(f"{d['name']:<12} {d['type']:<6} {rng:<22} {d['default']!s:<10} {d['unit'] or '-':<5} "
              f"{d['group']:<26} {d['description']}")
    print("\nOSC: /noclip/<name> takes natural units, /noclip/norm/<name> takes 0..1. Commands:")
    for name, desc in sorted(COMMANDS.items()):
        print(f"  /noclip/cmd/{name:<14} {desc}")
    return 0


def params_markdown(specs: list[dict[str, Any]]) -> str:
    """docs/PARAMS.md, generated from the registry (a test keeps the file in step with it)."""
    rows = ["# Parameters", "", "Generated by `noclip params --markdown` from the parameter registry.",
            "Every parameter is `/noclip/<name>` (natural units) and, except strings, "
            "`/noclip/norm/<name>` (0..1) over OSC.", "",
            "| name | type | range | default | unit | smoothing s | group | description |",
            "|---|---|---|---|---|---|---|---|"]
    for d in specs:
        rng = f"{d['min']}..{d['max']}" if "min" in d else " / ".join(d.get("choices", [])) or "-"
        rows.append(f"| `{d['name']}` | {d['type']} | {rng} | {d['default']} | {d['unit'] or '-'} "
                    f"| {d['smooth']} | {d['group']} | {d['description']} |")
    rows += ["", "## Commands", "", "| address | what it does |", "|---|---|"]
    rows += [f"| `/noclip/cmd/{k}` | {v} |" for k, v in sorted(COMMANDS.items())]
    return "\n".join(rows) + "\n"


def cmd_devices(args: argparse.Namespace) -> int:
    print("Monitors:")
    try:
        from .render.window import WindowError, monitors

        mons = monitors()
        print("\n".join(f"  {m}" for m in mons) if mons else "  none connected")
    except WindowError as exc:
        print(f"  none: {exc} (noclip plays headless)")
    print("MIDI inputs:")
    try:
        import mido

        names = mido.get_input_names()
        print("\n".join(f"  {n}" for n in names) if names else "  none found")
    except Exception as exc:
        print(f"  unavailable: {exc}")
    print("Audio inputs:")
    try:
        import sounddevice as sd

        inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
        print("\n".join(f"  {d['index']}: {d['name']}" for d in inputs) if inputs else "  none found")
    except Exception as exc:  # OSError when PortAudio itself is missing
        print(f"  unavailable: {exc}")
    from .generate import BACKENDS

    print(f"Generator backends: {', '.join(BACKENDS)}")
    try:
        from .generate.builtin import describe

        print(f"  {describe()}")
    except Exception as exc:  # torch missing or broken: say so, the rest still plays
        print(f"  builtin: unavailable: {exc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(args)


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace as with_

    import torch

    from .generate.builtin.train import Plan, Trainer

    if args.work.exists() and not args.resume:
        for old in ("ae.pt", "unet.pt"):   # a fresh run: keep the rendered data, drop the weights
            (args.work / old).unlink(missing_ok=True)
    given = {"seed": args.seed, "ae_steps": args.ae_steps, "unet_steps": args.unet_steps,
             "clips": args.clips, "per_clip": args.per_clip, "threads": args.threads}
    plan = with_(Plan(), **{k: v for k, v in given.items() if v is not None})
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Trainer(args.work, args.out, plan, device=device).run()
    print(f"noclip: weights and loss log in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
