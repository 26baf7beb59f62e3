"""`noclip bench`: the figures the issues promise, measured the way a show runs.

Control traffic comes from a separate process over real UDP, as it would from Ableton or a phone,
so the sender's own CPU use does not count against the show's interpreter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
from typing import Any

from ..patch import load_patch
from ..render.gl import headless_context
from .audio import bench_audio, print_audio
from .control import bench_flood, bench_hostile, bench_latency, bench_music
from .dream import bench_dream, print_dream
from .flow import bench_flow, print_flow
from .generator import bench_budget, bench_generator, print_budget, print_generator
from .lag import bench_lag, print_lag
from .look import bench_look, print_look
from .midi import bench_midi, print_midi
from .ndi import bench_ndi, print_ndi
from .oscquery import bench_oscquery, bench_remote, print_oscquery, print_remote
from .render import bench_chain_passes, bench_recording, bench_scaling, bench_scene, bench_stages
from .reproject import bench_late, bench_reproject, bench_reproject_loop, print_late, print_reproject
from .take import bench_take, print_take

SECTIONS = ("scene", "stages", "chain", "big", "latency", "flood", "hostile", "midi", "recording",
            "generator", "budget", "music", "audio", "take", "reproject", "lag", "late", "oscquery", "remote",
            "dream", "ndi", "flow", "look")


def run_bench(args: argparse.Namespace) -> int:
    patch = load_patch(args.patch)
    ctx = headless_context()
    size, secs = args.size or (1280, 720), args.seconds
    frames = max(60, int(secs * 60))
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{multiprocessing.cpu_count()} cores, {ctx.info['GL_RENDERER']}",
        "size": f"{size[0]}x{size[1]}", "generator": patch.model,
    }
    if "scene" in only:
        report["scene"] = bench_scene(ctx, patch.size, frames)
    if "stages" in only:
        report["stages"] = bench_stages(ctx, patch, size, frames, readback=False)
        report["stages_readback"] = bench_stages(ctx, patch, size, frames, readback=True)
    if "chain" in only:
        report["chain_passes"] = bench_chain_passes(ctx, patch, 40)
    if "big" in only:
        big = (round(size[0] * 1.5), round(size[1] * 1.5))
        report["stages_big"] = bench_scaling(ctx, patch, size, big, frames)
    if "latency" in only:
        report["latency_60fps"] = bench_latency(ctx, patch, size, 60.0, secs)
    if "flood" in only:
        report["flood_60fps"] = bench_flood(ctx, patch, size, 60.0, secs, 10_000)
        report["flood_unpaced"] = bench_flood(ctx, patch, size, 0.0, secs, 10_000)
    if "hostile" in only:
        report["hostile_60fps"] = bench_hostile(ctx, patch, size, 60.0, secs, 10_000)
    if "oscquery" in only:
        report["oscquery"] = bench_oscquery(ctx, patch, size, secs, args.fps)
    if "remote" in only:
        # the show people play at its rate, then the test card at 60 fps: the remote's own path, in
        # frames half as long
        report["remote"] = [bench_remote(ctx, patch, size, secs, args.fps, args.patch),
                            bench_remote(ctx, load_patch("testcard"), (640, 360), secs, 60.0, "testcard")]
    if "ndi" in only:
        report["ndi"] = bench_ndi(ctx, patch, size, secs, args.fps)
    if "recording" in only:
        report["recording_30fps"] = bench_recording(ctx, patch, size, 30.0, args.record_seconds or secs)
    if "midi" in only:
        report["midi"] = bench_midi(ctx, patch, size, secs, 10_000)
    if "generator" in only and "tensorrt" in (args.accel or []):   # --accel tensorrt: the GPU's bench
        from ..generate.accel.bench import bench_accel

        report["accel_bench"] = bench_accel(secs)
    elif "generator" in only:
        model = args.model or (patch.model if patch.model != "none" else "builtin")
        report["generator_bench"] = bench_generator(ctx, patch, model, size, secs, runtimes=args.accel,
                                                    sizes=args.gen_size, steps=args.steps,
                                                    threads=args.threads)
    if "budget" in only:
        runtimes = args.accel or ["onnxruntime", "openvino", "onnxruntime:int8"]
        report["budget"] = bench_budget([r for r in runtimes if r != "torch"])
    if "music" in only:
        report["music"] = bench_music(ctx, patch)
    if "audio" in only:
        device = args.audio_device
        device = int(device) if device and device.isdigit() else device
        report["audio"] = bench_audio(ctx, patch, size, device, secs)
    if "take" in only:
        report["take"] = bench_take(args.patch, args.record_seconds or 20.0)
    if "reproject" in only:
        # at the scene's grid, where the pass runs, and at the grids of bigger scenes up to 720p
        grids = sorted({patch.size, (640, 480), (1280, 720)}, key=lambda g: g[0] * g[1])
        report["reproject"] = [bench_reproject(ctx, g, min(frames, 60)) for g in grids]
        # the ages the default show's dreams arrive at: about 2-4 frames at 20 fps, 6-7 at 30
        report["reproject_loop"] = [bench_reproject_loop(ctx, patch, size, 20, age, 25) for age in (2, 6)]
    if "lag" in only:
        # the issue's take: 640x480 through a clean tape; a performance file, not this process's context
        report["lag"] = bench_lag(args.patch, args.fps, args.size or (640, 480), args.seconds * 2,
                                  keep=args.keep)
    if "late" in only:
        report["late"] = bench_late(args.patch, args.fps, args.size or (640, 480), args.seconds * 2,
                                    keep=args.keep)
    if "dream" in only:
        # the issue's walk: 4 s at 15 fps, 640x480, clean tape; the renders are offline, so exact
        report["dream"] = bench_dream(args.patch, keep=args.keep)
    if "look" in only and (args.data or args.only):  # every section: the look only with footage given
        if not args.data or not args.model:
            raise SystemExit("noclip bench --only look needs --model DIR (the fine-tuned weights) and "
                             "--data FOOTAGE")
        report["look"] = bench_look(args.model, args.data, keep=args.keep)
    if "flow" in only:
        # the flow's cost at 640x480 and 1280x720; the walk as a video, dreamed with and without it
        report["flow"] = bench_flow(ctx, args.patch, keep=args.keep)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def print_report(r: dict[str, Any]) -> None:
    print(f"noclip bench — {r['machine']}\noutput {r['size']}, generator: {r['generator']}\n")
    if "scene" in r:
        sc = r["scene"]
        print(f"scene (backrooms) at {sc['size']}, colour + depth + motion, each frame finished:")
        for level, s in sc["levels"].items():
            ms = s["frame_ms"]
            print(f"  level {level}: {s['fps']:6.1f} fps  frame p50 {ms['p50']:.2f} ms  "
                  f"p99 {ms['p99']:.2f} ms  max {ms['max']:.2f} ms  "
                  f"(CPU {s['cpu_ms']:.2f} ms/frame over all llvmpipe threads)")
        print()
    for key, title in (("stages", "stages, no readback"), ("stages_readback", "stages + readback")):
        if key not in r:
            continue
        s = r[key]
        print(f"{title}: {s['fps']:.1f} fps (unpaced, each stage finished before timing the next)")
        for name, st in s["stages_ms"].items():
            if st.get("n"):
                print(f"  {name:<10} mean {st['mean']:6.3f} ms  p50 {st['p50']:6.3f}  p99 {st['p99']:6.3f}")
    if "chain_passes" in r:
        print("chain passes alone (finished), median ms: " + "  ".join(
            f"{k} {v['p50']:.2f}" for k, v in r["chain_passes"].items() if v.get("n")))
    if "stages_big" in r:
        b = r["stages_big"]
        print(f"composite at {b['size']} vs {r['size']}, no readback, alternating blocks: "
              f"{b['composite_ms']['p50']:.2f} ms vs {b['base_composite_ms']['p50']:.2f} ms "
              f"({b['ratio']:.2f}x)")
    if "latency_60fps" in r:
        lat = r["latency_60fps"]
        L = lat["latency_ms"]
        print(f"\ncontrol latency at 60 fps (OSC arrival → FrameParams), {L['n']} messages: "
              f"p50 {L['p50']:.2f} ms  p99 {L['p99']:.2f} ms  max {L['max']:.2f} ms "
              f"(frame period {lat['period_ms']:.2f} ms)")
    if "stages" in r:
        print(f"loop overhead (drain, apply, smooth, snapshot, feedback): "
              f"p50 {r['stages']['stages_ms']['control']['p50']:.3f} ms  "
              f"p99 {r['stages']['stages_ms']['control']['p99']:.3f} ms")
    for key in ("flood_60fps", "flood_unpaced"):
        if key in r:
            f = r[key]
            print(f"OSC flood 10k msg/s, target {f['target_fps']}: median of alternating windows, idle "
                  f"{f['idle_fps']:.1f} fps, flooded {f['flood_fps']:.1f} fps "
                  f"({100 * f['ratio']:.0f}% of idle), "
                  f"{f['messages_received']} messages received, values in range: {f['values_in_range']}")
    if "hostile_60fps" in r:
        h = r["hostile_60fps"]
        o = h["osc"]
        print(f"OSC hostile corpus 10k packets/s, target 60: idle {h['idle_fps']:.1f} fps, flooded "
              f"{h['flood_fps']:.1f} fps ({100 * h['ratio']:.0f}% of idle), {h['packets_parsed']} parsed "
              f"({o.get('malformed', 0)} malformed, {o.get('deferred', 0)} deferred, {o.get('dropped', 0)} "
              f"dropped, {o.get('kernel_dropped', 0)} dropped by the kernel), still running: {h['running']}, "
              f"values in range: {h['values_in_range']}")
    if "oscquery" in r:
        print_oscquery(r["oscquery"])
    for remote in r.get("remote", ()):
        print_remote(remote)
    if "ndi" in r:
        print_ndi(r["ndi"])
    if "recording_30fps" in r:
        rec = r["recording_30fps"]
        print(f"\nrecording H.264 at {r['size']}, {rec['seconds']:g} s a phase: unpaced "
              f"{rec['unpaced_idle']['fps']:.1f} fps idle vs {rec['unpaced_recording']['fps']:.1f} recording "
              f"(cost {100 * rec['cost']:.1f}%); paced at {rec['fps']:g}: {rec['paced']['fps']:.1f} fps, "
              f"{rec['paced']['dropped']} dropped; offline render {rec['offline']['fps']:.1f} fps")
    if "midi" in r:
        print_midi(r["midi"])
    if "generator_bench" in r:
        print_generator(r["generator_bench"])
    if "music" in r:
        m, b = r["music"]["modulation_ms"], r["music"]["audio_block_ms"]
        print(f"\nbeat clock + 8 modulators a frame: p50 {m['p50']:.4f} ms  p99 {m['p99']:.4f} ms; "
              f"audio analysis a 512-sample block: p50 {b['p50']:.3f} ms  p99 {b['p99']:.3f} ms "
              f"({100 * r['music']['audio_realtime_share']:.1f}% of real time)")
        if "show_step_ms" in r["music"]:
            s = r["music"]["show_step_ms"]
            print(f"the show's parameter step with those modulators vs without (alternating blocks): "
                  f"p50 {s['with']['p50']:.4f} vs {s['without']['p50']:.4f} ms, adds {s['added_p50']:.4f} ms "
                  f"(mean {s['added_mean']:.4f} ms)")
    if "audio" in r:
        print_audio(r["audio"])
    if "take" in r:
        print_take(r["take"])
    if "reproject" in r:
        print()
        for grid in r["reproject"]:
            print_reproject(grid)
    for lo in r.get("reproject_loop", ()):
        print(f"the loop unpaced at {lo['size']} (scene {lo['scene']}), dreams {lo['age']} frames late: "
              f"{lo['fps_on']:.1f} fps carried vs {lo['fps_off']:.1f} not ({100 * lo['ratio']:.0f}%): "
              f"the pass costs {lo['ms']:.2f} ms a frame (the median of each carried block against the blocks "
              f"beside it; the middle half of them {lo['spread'][0]:.2f} to {lo['spread'][1]:.2f})")
    if "lag" in r:
        print_lag(r["lag"])
    if "late" in r:
        print_late(r["late"])
    if "dream" in r:
        print_dream(r["dream"])
    if "flow" in r:
        print_flow(r["flow"])
    if "look" in r:
        print_look(r["look"])
    if "budget" in r:
        print_budget(r["budget"])
    if "accel_bench" in r:
        from ..generate.accel.bench import print_accel

        print_accel(r["accel_bench"])
