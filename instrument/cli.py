"""The `noclip` command: play · render · params · devices · bench · learn · fetch."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import __version__
from .clock import RealtimeClock
from .commands import COMMANDS
from .control import ControlEvent, ControlQueue
from .params import REGISTRY
from .patch import ConfigError, Patch, load_patch
from .record.deck import RecordDeck
from .record.eventlog import EventLog
from .record.performance import PerformanceWriter
from .record.render import render_offline
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
        from .generate import check_model

        try:
            check_model(args.model)
        except ValueError as exc:
            raise SystemExit(f"noclip: --model: {exc}") from None
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
    _accel(p)
    p.add_argument("--source", type=Path, metavar="PATH",
                   help="a video (looped) or still image as the base instead of the patch's scene")
    p.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                   help="set a parameter at start (repeatable)")
    p.add_argument("--fps", type=float, default=60.0)
    p.add_argument("--codec", choices=sorted(CODECS), default="h264",
                   help="video codec for files written (ffv1 is lossless)")
    p.add_argument("--audio", type=Path, metavar="FILE",
                   help="a sound file muxed into the video, in sync from the show's first frame")


def _accel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accel", choices=("auto", "tensorrt", "torch"),
                   help="run the generator on TensorRT engines (built on first use) or torch; "
                        "auto: TensorRT where it can run (default; also NOCLIP_ACCEL)")


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
    p.add_argument("--record", type=Path, metavar="OUT",
                   help="record from the start (.mp4/.mov fragmented, .mkv; later takes OUT-2, OUT-3, …)")
    p.add_argument("--takes", type=Path, default=Path(), metavar="DIR",
                   help="where takes started by record/start or the R key go without --record")
    p.add_argument("--audio-in", metavar="DEVICE",
                   help="record sound from this input device (see `noclip devices`) into every take")
    p.add_argument("--log", type=Path, metavar="FILE", help="JSON line per applied control event")
    p.add_argument("--performance", type=Path, metavar="FILE",
                   help="write the performance (patch + every control event) for exact re-renders; "
                        "--record writes one beside the video anyway")
    p.add_argument("--osc", default="127.0.0.1:9000", metavar="HOST:PORT",
                   help="OSC listen address; 'off' disables")
    p.add_argument("--osc-allow", action="append", default=[], metavar="CIDR",
                   help="accept OSC only from these networks (when --osc listens beyond loopback)")
    p.add_argument("--midi", action="append", default=[], metavar="PATTERN",
                   help="open MIDI inputs whose name has PATTERN (repeatable; default: all); 'off' disables")
    p.add_argument("--ableton", metavar="HOST[:PORT]", nargs="?", const="127.0.0.1:11000",
                   help="follow Live's tempo and beat through AbletonOSC (replies come to UDP 11001)")
    p.add_argument("--link", action="store_true",
                   help="follow an Ableton Link session (needs the noclip[link] extra)")
    p.add_argument("--no-vsync", action="store_true")

    r = sub.add_parser("render", help="render offline on a fixed-step clock to a video file")
    _common(r)
    r.add_argument("performance", nargs="?", type=Path,
                   help="a performance file to re-render (its patch, start state and events)")
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("--seconds", type=float, help="length (default: the whole performance)")
    r.add_argument("--range", type=_range, metavar="START:END", help="seconds of the performance to keep")
    r.add_argument("--resume", action="store_true",
                   help="continue a render that was cut short: keep what OUT holds, render the rest")
    r.add_argument("--salvage", action="store_true",
                   help="render a damaged performance file up to its first bad line")
    r.add_argument("--size", type=_size, default=(1280, 720))
    r.add_argument("--midi", type=Path, metavar="FILE.mid",
                   help="play a standard MIDI file through the patch's MIDI bindings (length: the file's)")
    r.add_argument("--midi-device", default="file", metavar="NAME",
                   help="the device name the file's messages come from (selects controller files)")

    q = sub.add_parser("params", help="list every parameter, its range and OSC addresses")
    q.add_argument("--patch", default="default", help="include the parameters of this patch's chain")
    fmt = q.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--markdown", action="store_true", help="the table in docs/PARAMS.md")

    sub.add_parser("devices", help="monitors, MIDI ports and audio devices")

    le = sub.add_parser("learn", help="bind MIDI controls: choose a parameter, move a control")
    le.add_argument("--patch", required=True, help="the patch file the bindings are written into")
    le.add_argument("--param", action="append", default=[], metavar="NAME",
                    help="parameter or command to bind (repeatable; default: ask)")
    le.add_argument("--midi", action="append", default=[], metavar="PATTERN",
                    help="listen only to MIDI inputs whose name contains PATTERN")

    f = sub.add_parser("fetch", help="download a model into the Hugging Face cache, to play it offline later")
    f.add_argument("model", help="sd-turbo, sdxl-turbo, sd15-lcm or a hub id org/name")
    f.add_argument("--no-taesd", action="store_true", help="not the tiny autoencoder (TAESD) too")

    e = sub.add_parser("build-engines", help="build a model's TensorRT engines ahead of a show (cached)")
    e.add_argument("--model", help="generator backend (default: the patch's)")
    e.add_argument("--patch", default="default")
    e.add_argument("--precision", choices=("fp16", "fp32", "int8", "fp8"), default="fp16",
                   help="int8/fp8: experimental, for models quantized with Q/DQ nodes")
    e.add_argument("--force", action="store_true", help="build even where the cache has the engines")

    b = sub.add_parser("bench", help="measure stages, control latency, flood resilience and the generator")
    b.add_argument("--json", action="store_true")
    b.add_argument("--size", type=_size, default=(1280, 720))
    b.add_argument("--seconds", type=float, default=5.0, help="length of each timed phase")
    b.add_argument("--patch", default="default")
    b.add_argument("--model", help="generator backend to measure (default: the patch's, else builtin)")
    b.add_argument("--only", metavar="A,B",
                   help="sections: scene,stages,chain,big,latency,flood,midi,recording,generator")
    _accel(b)
    b.add_argument("--record-seconds", type=float,
                   help="length of each recording phase (60 for the issue's run)")

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
    if getattr(args, "accel", None):
        os.environ["NOCLIP_ACCEL"] = args.accel   # read where the generator is made (generate/accel)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="noclip: %(levelname)s: %(message)s")
    try:
        return {"play": cmd_play, "render": cmd_render, "params": cmd_params,
                "devices": cmd_devices, "bench": cmd_bench, "learn": cmd_learn,
                "fetch": cmd_fetch, "build-engines": cmd_build_engines, "train": cmd_train}[args.command](args)
    except ConfigError as exc:
        print(f"noclip: {exc}", file=sys.stderr)
        return 2


# -- play ----------------------------------------------------------------------------------------

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
    from .control.tempo import ClockFeed, MidiClock

    sources: dict = {} if midi_clock is None else {"midi": MidiClock(midi_clock)}
    if getattr(args, "link", False):
        from .control.link import LinkFollower, LinkUnavailable
        try:
            sources["link"] = LinkFollower()
        except LinkUnavailable as exc:
            log.error("%s", exc)
    if getattr(args, "ableton", None):
        from .control.osc import parse_hostport
        from .control.tempo import AbletonOSC

        host, port = parse_hostport(args.ableton if ":" in args.ableton else f"{args.ableton}:11000")
        try:
            sources["ableton"] = AbletonOSC(host, port).start()
        except OSError as exc:  # the reply port is taken
            log.error("AbletonOSC: cannot listen for Live's replies: %s", exc)
    closers: list = [ClockFeed(queue, sources).start(), *sources.values()] if sources else []
    if getattr(args, "audio_in", None):  # the input recorded is the input listened to
        from .control.audio import AudioInput

        device = int(args.audio_in) if args.audio_in.isdigit() else args.audio_in
        try:
            closers.append(AudioInput(queue, device).start())
        except Exception as exc:  # no PortAudio, no such device: play on without reacting
            log.error("audio input %s: %s", args.audio_in, exc)
    return closers


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
            return render_offline(patch, overrides, record, seconds, args.fps, args.size, codec=args.codec,
                                  audio=_audio_factory(args))
    ctx = window.ctx if window else headless_context()
    size = window.framebuffer_size if window else args.size

    osc = None
    if args.osc != "off":
        host, port = parse_hostport(args.osc)
        osc = OscControl(queue, reporter, host, port, allow=args.osc_allow).start()
        log.info("OSC on %s:%d", *osc.address)
    deck = RecordDeck(size, args.fps, reporter, first=record, folder=args.takes, codec=args.codec,
                      audio=_audio_factory(args))
    outputs: list = [window, deck] if window else [deck]
    midi = None
    if "off" not in args.midi:
        from .control.midi import MidiControl, default_tiers

        midi = MidiControl(queue, reporter, default_tiers(patch.midi, str(patch.path or patch.name), reporter),
                           patterns=args.midi or [""]).start()
    clocks = _clock_feed(args, queue, midi.clock if midi else None)
    if record:
        queue.put(ControlEvent("cli", "cmd/record/start"))  # frame 0, and in the performance file
    show = Show(ctx, patch, size, clock=RealtimeClock(args.fps), queue=queue, reporter=reporter,
                outputs=outputs, feedback=[osc] if osc else [], overrides=overrides)
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
            from .control.learn import Learn

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
    log.info("played %d frames at %.1f fps%s%s", n, show.stats.fps(),
             f"; recorded {', '.join(map(str, deck.takes))}" if deck.takes else "",
             f"; performance in {perf_path}" if perf_path else "")
    return 0


def _audio_factory(args: argparse.Namespace):
    """What each take records as sound: the input device, else the given file, else nothing."""
    from .record.audio import FileAudio, InputAudio

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
        patch, overrides = resolve_patch(args)
        seconds = args.seconds
    player = None
    if args.midi:
        if perf is not None:
            print("noclip: --midi plays a MIDI file over a patch, not over a performance", file=sys.stderr)
            return 2
        from .control.midi import default_tiers
        from .control.midifile import MidiFilePlayer

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
    return render_offline(patch, overrides, args.output, min(end, seconds), args.fps, args.size,
                          performance=perf, start=start, codec=args.codec, audio=_audio_factory(args),
                          midi=player, resume=args.resume)


def _range(text: str) -> tuple[float, float]:
    a, sep, b = text.partition(":")
    try:
        start, end = float(a or 0), float(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--range is START:END in seconds, not {text!r}") from None
    if not sep or end <= start:
        raise argparse.ArgumentTypeError(f"--range {text}: END must follow START")
    return start, end




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
    try:
        from .control.midi import port_names

        ins, outs, virtual = port_names()
        for title, names in (("MIDI inputs:", ins), ("MIDI outputs:", outs)):
            print(title)
            print("\n".join(f"  {n}" for n in names) if names else "  none found")
        print(f"  a virtual input 'noclip' is {'opened by play' if virtual else 'not offered here'}")
    except Exception as exc:  # no ALSA sequencer (/dev/snd/seq), no MIDI system at all
        print(f"MIDI inputs:\n  unavailable: {exc}")
    print("Audio inputs:")
    try:
        import sounddevice as sd

        inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
        print("\n".join(f"  {d['index']}: {d['name']}" for d in inputs) if inputs else "  none found")
    except Exception as exc:  # OSError when PortAudio itself is missing
        print(f"  unavailable: {exc}")
    from .generate import BACKENDS

    print(f"Generator backends: {', '.join(BACKENDS)}, or a diffusers folder, .safetensors file or hub id")
    try:
        from .generate.builtin import describe

        print(f"  {describe()}")
    except Exception as exc:  # torch missing or broken: say so, the rest still plays
        print(f"  builtin: unavailable: {exc}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from .generate import check_model

    try:
        check_model(args.model)
    except ValueError as exc:
        raise SystemExit(f"noclip fetch: {exc}") from None
    if args.model in ("none", "builtin"):
        print(f"{args.model}: nothing to fetch (it ships with noclip)")
        return 0
    from .generate.diffusers_backend import ModelUnavailable, locate

    try:
        src = locate(args.model, taesd=False if args.no_taesd else None)
    except ModelUnavailable as exc:
        raise SystemExit(f"noclip fetch: {exc}") from None
    for what, path in (("model", src.model), ("LoRA", src.lora), ("tiny autoencoder", src.tiny)):
        if path is not None:
            print(f"{what}: {path}")
    return 0


def cmd_build_engines(args: argparse.Namespace) -> int:
    from .generate.accel import build_engines

    model = args.model or load_patch(args.patch).model
    if model == "none":
        raise SystemExit("noclip build-engines: the patch plays no model; name one with --model")
    done, message = build_engines(model, args.precision, force=args.force)
    print(message)
    return 0 if done else 1


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(args)



def cmd_learn(args: argparse.Namespace) -> int:
    from .control.learn import run_learn

    return run_learn(args)


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
