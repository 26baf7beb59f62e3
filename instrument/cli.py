"""The `noclip` command: play · render · params · devices · bench · learn · fetch."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

from . import __version__
from .catalogue import assemble
from .cmd import resolve_patch
from .cmd.info import cmd_bench, cmd_build_engines, cmd_devices, cmd_fetch, cmd_finetune, cmd_params, cmd_train
from .cmd.learn import cmd_learn
from .cmd.play import cmd_play
from .cmd.render import cmd_render, time_range
from .patch import ConfigError
from .record.encoding import QUALITIES
from .record.ndi import SOURCES as NDI_SOURCES
from .record.render import render_offline
from .record.video import CODECS

__all__ = ["main", "parser", "render_offline", "resolve_patch"]  # the last two: importable here, as before


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size is WIDTHxHEIGHT, not {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {text} out of range")
    return w, h


def _positive(most: float):
    """An argparse type: a finite number above 0, at most `most` (inf, nan and 0 would end in a
    traceback far from the command line)."""
    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(x) and 0 < x <= most):
            raise argparse.ArgumentTypeError(f"{text} is not a number above 0 and up to {most:g}")
        return x
    return parse


FPS = _positive(1000.0)


def _positive_int(text: str) -> int:
    """An argparse type: a whole number from 1 to 1024 (a farm's workers)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"{n} is not from 1 to 1024")
    return n


SECONDS = _positive(7 * 24 * 3600.0)  # a week: longer is a typo, not a show


def _assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--set takes NAME=VALUE, not {text!r}")
    return name.strip(), value.strip()


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--patch", default="default", help="patch name (in patches/) or path")
    p.add_argument("--model", help="generator backend (overrides the patch)")
    p.add_argument("--lora", action="append", metavar="PATH_OR_HUB_ID[:SCALE]",
                   help="a LoRA played live on the model (repeatable, 4 at most; in place of the patch's "
                        "loras): the n-th is parameter lora<n>, 0 off, 1 as trained, SCALE its start")
    _accel(p)
    p.add_argument("--source", metavar="SPEC",
                   help="the base instead of the patch's scene: a video (looped) or still image file, a "
                        "capture device (/dev/video0, v4l2:/dev/video0, avfoundation:0, dshow:video=NAME, "
                        "lavfi:testsrc; options after ?, e.g. ?size=1280x720&fps=30), or ndi:NAME, an NDI "
                        "source on the network (needs noclip[ndi])")
    p.add_argument("--set", action="append", type=_assignment, metavar="NAME=VALUE",
                   help="set a parameter at start (repeatable)")
    p.add_argument("--codec", choices=sorted(CODECS), default="h264",
                   help="video codec for files written (ffv1 is lossless)")
    p.add_argument("--audio", type=Path, metavar="FILE",
                   help="a sound file muxed into the video, in sync from the show's first frame")


ACCEL = ("auto", "tensorrt", "onnxruntime", "openvino", "torch")


def _accel(p: argparse.ArgumentParser) -> None:
    p.add_argument("--accel", choices=ACCEL,
                   help="run the generator on TensorRT engines (a CUDA GPU), onnxruntime or OpenVINO (a "
                        "CPU; engines built on first use) or torch; auto: TensorRT on a GPU, on a CPU the "
                        "fastest measured for the model (default; also NOCLIP_ACCEL)")


def _runtimes(text: str) -> list[str]:
    """`torch,onnxruntime,onnxruntime:int8`: runtimes, each with a precision after ':' if asked."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n.partition(":")[0] not in ACCEL:
            raise argparse.ArgumentTypeError(f"{n!r}: runtimes are {', '.join(ACCEL)} (precision after ':')")
    return names


def _sizes(text: str) -> list[tuple[int, int]]:
    return [_size(s) for s in text.split(",")]


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
    p.add_argument("--seconds", type=SECONDS, help="stop after this many seconds")
    p.add_argument("--fps", type=FPS, help="frames a second (default: what the machine holds: 30 with a "
                                           "generator on the CPU, 60 with one on a GPU or none)")
    p.add_argument("--record", type=Path, metavar="OUT",
                   help="record from the start (.mp4/.mov fragmented, .mkv; later takes OUT-2, OUT-3, …)")
    p.add_argument("--record-quality", choices=("auto", *QUALITIES), default="auto",
                   help="takes at the output's size (best), or at 480 lines (tape, fast: cheaper presets); "
                        "auto: the best the encoder, measured at start, can keep up with beside the show")
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
    p.add_argument("--oscquery", default="auto", metavar="HOST:PORT",
                   help="OSCQuery (HTTP + WebSocket) and the web remote at /remote; default: loopback, "
                        "the OSC port + 1; 'off' disables. Beyond loopback it needs --osc-allow too")
    p.add_argument("--osc-allow", action="append", default=[], metavar="CIDR",
                   help="accept OSC only from these networks; needed to listen beyond loopback "
                        "(0.0.0.0/0: anyone who can reach the port, a deliberate choice)")
    p.add_argument("--osc-allow-quit", action="store_true",
                   help="let OSC senders beyond this machine end the show with /noclip/cmd/quit")
    p.add_argument("--midi", action="append", default=[], metavar="PATTERN",
                   help="open MIDI inputs whose name has PATTERN (repeatable; default: all); 'off' disables")
    p.add_argument("--ableton", metavar="HOST[:PORT]", nargs="?", const="127.0.0.1:11000",
                   help="follow Live's tempo and beat through AbletonOSC (replies come to UDP 11001)")
    p.add_argument("--link", action="store_true",
                   help="follow an Ableton Link session (needs the noclip[link] extra)")
    p.add_argument("--ndi", metavar="NAME",
                   help="send the show as an NDI source named NAME, at the show's rate (needs noclip[ndi])")
    p.add_argument("--ndi-source", choices=NDI_SOURCES, default="output",
                   help="what --ndi sends: the output as the audience sees it, or clean: the dream over the "
                        "scene before the tape, at the scene's size")
    p.add_argument("--virtualcam", nargs="?", const="", metavar="DEVICE",
                   help="the show as a webcam (pyvirtualcam: v4l2loopback on Linux, OBS's virtual camera "
                        "elsewhere; needs noclip[virtualcam]); DEVICE e.g. /dev/video10, default: the first")
    p.add_argument("--syphon", metavar="NAME", help="publish the output as a Syphon server (macOS only)")
    p.add_argument("--spout", metavar="NAME", help="share the output as a Spout sender (Windows only)")
    p.add_argument("--no-vsync", action="store_true")
    p.add_argument("--lead", metavar="[HOST:]PORT",
                   help="serve this show to followers over TCP (loopback unless a HOST is named; beyond "
                        "it needs --osc-allow naming who may follow)")
    p.add_argument("--follow", metavar="HOST:PORT",
                   help="play the show of the leader at HOST:PORT: its patch, events and frame clock, "
                        "at this machine's --size, window and monitor; it records when the leader does")
    p.add_argument("--frame-times", type=Path, metavar="FILE",
                   help="write when each frame began (frame, perf_counter seconds; CLOCK_MONOTONIC on Linux) "
                        "to FILE: tiles of one show on one machine compared frame by frame")
    p.add_argument("--chain-from", metavar="PATCH",
                   help="with --follow: this follower's own tape, the chain of PATCH and its values for the "
                        "chain's parameters, kept through the leader's patch loads (the leader's events at "
                        "them are counted, not applied)")

    r = sub.add_parser("render", help="render offline on a fixed-step clock to a video file")
    _common(r)
    r.add_argument("performance", nargs="?", type=Path,
                   help="a performance file to re-render (its patch, start state and events)")
    r.add_argument("--fps", type=FPS, help="frames a second (default: a performance's own, else 60)")
    r.add_argument("-o", "--output", type=Path, required=True)
    r.add_argument("--seconds", type=SECONDS, help="length (default: the whole performance)")
    r.add_argument("--range", type=time_range, metavar="START:END", help="seconds of the performance to keep")
    r.add_argument("--resume", action="store_true",
                   help="continue a render that was cut short: keep what OUT holds, render the rest")
    r.add_argument("--salvage", action="store_true",
                   help="render a damaged performance file up to its first bad line")
    r.add_argument("--allow-missing-dreams", action="store_true",
                   help="a frame whose dream fails (or a model that does not load) is logged and "
                        "rendered without it, instead of stopping the render (exit 1, resumable)")
    r.add_argument("--size", type=_size,
                   help="output size (default: a performance's own, else 1280x720)")
    r.add_argument("--midi", type=Path, metavar="FILE.mid",
                   help="play a standard MIDI file through the patch's MIDI bindings (length: the file's)")
    r.add_argument("--midi-device", default="file", metavar="NAME",
                   help="the device name the file's messages come from (selects controller files)")
    r.add_argument("--farm", metavar="ADDRESS",
                   help="render on a Ray cluster (needs noclip[farm]): `local` starts one here with "
                        "--workers CPUs, `auto` joins RAY_ADDRESS's, or ray://HOST:10001")
    r.add_argument("--workers", type=_positive_int, default=2,
                   help="chunks rendered at once on the farm (and a local farm's CPUs; default 2)")
    r.add_argument("--chunk", type=SECONDS, default=60.0, metavar="SECONDS",
                   help="seconds of the performance a farm's task renders (default 60)")
    r.add_argument("--preroll", type=SECONDS, default=4.0, metavar="SECONDS",
                   help="seconds a farm's chunk draws before its first frame to reach the exact state; "
                        "one that does not is drawn again with twice it, at last from frame 0 (default 4)")
    r.add_argument("--farm-dir", type=Path, metavar="DIR",
                   help="where a farm's chunks go (default OUT.farm beside the output; on a cluster, "
                        "a folder every node can write)")

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
    f.add_argument("model", help="sd-turbo, sdxl-turbo, sd15-lcm, sd3-medium, sd35-medium, sd35-large-turbo "
                                 "or a hub id org/name")
    f.add_argument("--no-taesd", action="store_true", help="not the tiny autoencoder (TAESD) too")
    f.add_argument("--lora", action="append", metavar="HUB_ID", help="a LoRA from the hub too (repeatable)")

    e = sub.add_parser("build-engines", help="build a model's TensorRT engines ahead of a show (cached)")
    e.add_argument("--model", help="generator backend (default: the patch's)")
    e.add_argument("--patch", default="default")
    e.add_argument("--precision", choices=("fp16", "fp32", "int8", "fp8"), default="fp16",
                   help="int8/fp8: experimental, for models quantized with Q/DQ nodes")
    e.add_argument("--force", action="store_true", help="build even where the cache has the engines")

    b = sub.add_parser("bench", help="measure stages, control latency, flood resilience and the generator")
    b.add_argument("--json", action="store_true")
    b.add_argument("--size", type=_size, help="output size (default 1280x720; the lag section 640x480)")
    b.add_argument("--seconds", type=float, default=5.0,
                   help="length of each timed phase (the lag section's takes are twice this)")
    b.add_argument("--fps", type=float, default=30.0,
                   help="the show's rate in the lag, ndi, oscquery and remote sections")
    b.add_argument("--keep", type=Path, metavar="DIR",
                   help="lag and dream sections: keep the takes and renders there, with a contact sheet "
                        "of them (lag-FPS.png, dream-walk.png)")
    b.add_argument("--patch", default="default")
    b.add_argument("--model", help="generator backend to measure (default: the patch's, else builtin)")
    b.add_argument("--only", metavar="A,B",
                   help="sections: scene,stages,chain,big,latency,flood,hostile,midi,recording,generator,"
                        "budget (how much larger a builtin denoiser each runtime fits in torch's time),"
                        "music,audio,take (a 20 s take of the default show, as a new user makes it),"
                        "reproject,lag,late,oscquery (20 LISTENing WebSocket clients),remote (the web "
                        "remote's round trip in headless Chromium),dream,ndi (the show with and without NDI "
                        "out, a receiver in another process),flow (a video source's motion: its cost, and the "
                        "dream on the walk as a video with and without it),look (how far a fine-tune, "
                        "--model DIR, moved the dream toward the look of --data FOOTAGE)")
    b.add_argument("--data", type=Path, nargs="+", metavar="PATH",
                   help="look section: the footage a fine-tune learnt (video or image files, or folders)")
    b.add_argument("--audio-device", metavar="DEVICE",
                   help="input the audio section listens to (index or name; default: the system's)")
    b.add_argument("--accel", type=_runtimes, metavar="A,B",
                   help="runtimes the generator and budget sections measure side by side (torch, "
                        "onnxruntime, openvino, tensorrt; a precision after ':', e.g. onnxruntime:int8; "
                        "default: torch and every CPU runtime here); the show's sections play on the first")
    b.add_argument("--gen-size", type=_sizes, metavar="WxH,WxH",
                   help="working sizes the generator section measures (default: 256x192,512x384 and "
                        "the model's own)")
    b.add_argument("--steps", type=lambda t: [int(v) for v in t.split(",")], metavar="N,N",
                   help="denoising steps the generator section measures (default: 1,2)")
    b.add_argument("--threads", type=int, metavar="N",
                   help="torch / runtime threads for the generator section (default: half the cores, as a "
                        "show)")
    b.add_argument("--record-seconds", type=float,
                   help="length of each recording phase (60 for the issue's run)")

    sub.add_parser("quality", add_help=False,
                   help="measure the builtin model against its quality bars (--help for options)")

    t = sub.add_parser("train", help="train the builtin model from scratch, or teach it a look from footage "
                                     "(--from builtin --data PATH...; resumable)")
    t.add_argument("--out", type=Path, default=Path("models/builtin"), help="where the weights go")
    t.add_argument("--work", type=Path, default=Path(".cache/builtin-train"),
                   help="rendered data set and checkpoints")
    fresh = t.add_mutually_exclusive_group()
    fresh.add_argument("--resume", action="store_true", help="continue from the checkpoints in --work")
    fresh.add_argument("--fresh", action="store_true",
                       help="start over: delete the checkpoints in --work (kept otherwise; the data set stays)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="torch device (default: cuda where present, else cpu)")
    t.add_argument("--ae-steps", type=int)
    t.add_argument("--unet-steps", type=int,
                   help="denoiser steps (a look from footage: 1500 by default, about ten minutes on two cores)")
    t.add_argument("--change-steps", type=int,
                   help="change decoder steps (a look from footage: a fifth of the denoiser's by default)")
    t.add_argument("--adv-steps", type=int, help="steps of the change decoder against a critic, after its own")
    t.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the autoencoder and denoiser of the weights in DIR, train the change decoder")
    t.add_argument("--clips", type=int, help="buildings rendered per level")
    t.add_argument("--per-clip", type=int, help="frames per building")
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--from", dest="start", choices=("builtin",),
                   help="fine-tune the shipped builtin model on --data instead of training from scratch")
    t.add_argument("--data", type=Path, nargs="+", metavar="PATH",
                   help="with --from builtin: footage (image and video files, or folders of them) whose look "
                        "the model learns; --out must then name a new folder, played with --model DIR")
    t.add_argument("--frames", type=int, default=48, help="with --data: frames sampled evenly from each video")

    ft = sub.add_parser("finetune", help="teach a diffusers model a look from your footage, as a LoRA "
                                         "(--lora DIR plays it)")
    ft.add_argument("--model", required=True, help="the model the LoRA is for (a --model name)")
    ft.add_argument("--data", type=Path, nargs="+", required=True, metavar="PATH",
                    help="image and video files, or folders of them (a .txt beside a file is its caption)")
    ft.add_argument("--out", type=Path, required=True, metavar="DIR",
                    help="where pytorch_lora_weights.safetensors, its card and the checkpoint go")
    ft.add_argument("--steps", type=int, default=500)
    ft.add_argument("--prompt", default="", help="the caption of every file without its own .txt")
    ft.add_argument("--rank", type=int, default=8)
    ft.add_argument("--lr", type=float, default=1e-4)
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--frames", type=int, default=32, help="frames sampled evenly from each video")
    ft.add_argument("--every", type=int, default=100, help="a checkpoint every this many steps")
    ft.add_argument("--device", default=None, help="torch device (default: cuda where present, else cpu)")
    again = ft.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="continue from DIR/checkpoint.pt")
    again.add_argument("--fresh", action="store_true", help="start over: delete DIR/checkpoint.pt")
    return ap


SWITCH_INTERVAL = 0.001  # s: see main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    assemble()  # every parameter and command, before anything runs (catalogue.py)
    if argv[:1] == ["quality"]:
        from .tools.quality import main as quality

        return quality(argv[1:])
    args = parser().parse_args(argv)
    accel = getattr(args, "accel", None)
    if accel:   # read where the generator is made (generate/accel); bench: its first runtime
        os.environ["NOCLIP_ACCEL"] = accel if isinstance(accel, str) else accel[0].partition(":")[0]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="noclip: %(levelname)s: %(message)s")
    # The frame loop holds the GIL most of a frame; a control thread (OSCQuery's WebSocket, a feed)
    # waits up to the switch interval at each step it takes. 5 ms (Python's) cost the web remote
    # ~10 ms a value. bench --only remote at 60 fps, 1 ms against 5: input -> applied p50 18-26 ms
    # against 26-31, p99 2.0-3.9 frames against 3.3-4.5 (three runs against three; the VM varies);
    # the default show's rate 0.2-1.0 fps lower of ~25 (four alternated pairs)
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return {"play": cmd_play, "render": cmd_render, "params": cmd_params,
                "devices": cmd_devices, "bench": cmd_bench, "learn": cmd_learn,
                "fetch": cmd_fetch, "build-engines": cmd_build_engines, "train": cmd_train,
                "finetune": cmd_finetune}[args.command](args)
    except ConfigError as exc:
        print(f"noclip: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
