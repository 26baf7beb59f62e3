"""`noclip bench`: the figures the issues promise, measured the way a show runs.

Control traffic comes from a separate process over real UDP, as it would from Ableton or a phone,
so the sender's own CPU use does not count against the show's interpreter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import random
import socket
import time
from typing import Any

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from .clock import RealtimeClock
from .control import ControlQueue
from .control.osc import OscControl
from .params import REGISTRY, FrameParams, ParamBank
from .patch import load_patch
from .render.compositor import Compositor
from .render.gl import headless_context, read_rgb
from .report import Reporter
from .scene import make_scene
from .show import STAGES, Show


class Readback:
    """An output that reads the frame to memory, as a recorder does, and drops it."""

    def write(self, fbo, fp) -> None:
        read_rgb(fbo)

    def close(self) -> None:
        pass


def _msg(address: str, value: Any) -> bytes:
    b = OscMessageBuilder(address)
    b.add_arg(value)
    return b.build().dgram


def send_random(port: int, seconds: float, mean_gap: float, seed: int) -> None:
    """Messages at random (exponential) gaps, so arrivals fall anywhere in the frame period."""
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sock.sendto(_msg("/noclip/seed", rng.randrange(1 << 20)), ("127.0.0.1", port))
        time.sleep(rng.expovariate(1.0 / mean_gap))


def send_flood(port: int, seconds: float, rate: int) -> None:
    """`rate` messages per second in 1 ms batches, cycling through a few addresses and values."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    grams = [_msg(a, v) for a in ("/noclip/bleed", "/noclip/tracking", "/noclip/norm/aberration")
             for v in (0.1, 0.4, 0.9)]
    per_ms = rate / 1000.0
    start = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - start < seconds:
        due = int((now - start) * 1000.0 * per_ms)
        while sent < due:
            sock.sendto(grams[sent % len(grams)], ("127.0.0.1", port))
            sent += 1
        time.sleep(0.0005)


def _sender(target, *args) -> multiprocessing.Process:
    proc = multiprocessing.get_context("spawn").Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def _summary(values: list[float] | np.ndarray) -> dict[str, float]:
    a = np.asarray(values, dtype=float)
    if a.size == 0:
        return {"n": 0}
    return {"n": int(a.size), "mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def _show(ctx, patch, size, fps: float, paced: bool, **kw) -> Show:
    return Show(ctx, patch, size, clock=RealtimeClock(fps, paced=paced), **kw)


def bench_stages(ctx, patch, size, frames: int, readback: bool) -> dict[str, Any]:
    """Unpaced, each stage finished before the next is timed (llvmpipe runs GL lazily)."""
    show = _show(ctx, patch, size, 1000.0, False, outputs=[Readback()] if readback else [],
                 sync_stages=True)
    show.run(frames=10)
    for d in show.stats.stages.values():
        d.clear()
    t = time.perf_counter()
    show.run(frames=frames)
    ctx.finish()
    elapsed = time.perf_counter() - t
    out = {"fps": frames / elapsed,
           "stages_ms": {k: _summary(show.stats.stages.get(k, [])) for k in STAGES}}
    show.close()
    return out


def bench_latency(ctx, patch, size, fps: float, seconds: float) -> dict[str, Any]:
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0).start()
    show = _show(ctx, patch, size, fps, True, queue=queue, reporter=reporter, feedback=[osc])
    proc = _sender(send_random, osc.address[1], seconds + 1.5, 0.008, 1)
    warm = time.perf_counter() + 1.0  # the spawned sender starts up while the show already plays
    show.run(until=lambda: time.perf_counter() > warm)
    show.stats.measure_latency = True
    end = time.perf_counter() + seconds
    show.run(until=lambda: time.perf_counter() > end)
    show.stats.measure_latency = False
    lat = np.array(show.stats.latencies) * 1000.0
    proc.join(timeout=5)
    show.close()
    osc.close()
    return {"fps": fps, "period_ms": 1000.0 / fps, "latency_ms": _summary(lat),
            "received": osc.stats["messages"]}


def bench_flood(ctx, patch, size, fps: float, seconds: float, rate: int) -> dict[str, Any]:
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0).start()
    show = _show(ctx, patch, size, fps or 1000.0, fps > 0, queue=queue, reporter=reporter, feedback=[osc],
                 outputs=[Readback()])
    show.run(frames=10)

    def rate_for(phase_seconds: float) -> float:
        n0, t0 = show.clock.frame, time.perf_counter()
        end = t0 + phase_seconds
        show.run(until=lambda: time.perf_counter() > end)
        return (show.clock.frame - n0) / (time.perf_counter() - t0)

    idle = rate_for(seconds)
    before = osc.stats["messages"]
    proc = _sender(send_flood, osc.address[1], seconds + 1.0, rate)
    time.sleep(0.6)
    flooded = rate_for(seconds)
    proc.join(timeout=5)
    received = osc.stats["messages"] - before
    values_ok = all(0.0 <= show.fp[k] <= 1.0 for k in ("bleed", "tracking"))
    show.close()
    osc.close()
    return {"target_fps": fps or "unpaced", "idle_fps": idle, "flood_fps": flooded,
            "ratio": flooded / idle if idle else 0.0, "messages_received": received,
            "values_in_range": values_ok}


def bench_scene(ctx, size: tuple[int, int], frames: int) -> dict[str, Any]:
    """The Backrooms alone at the working size, colour + depth + motion each frame, per level.

    Each frame is finished before the next starts (the generator would read all three targets),
    and the walk first runs ahead so chunk meshes are built the way a show meets them.
    """
    from .scene.backrooms import Backrooms
    from .scene.layout import LEVELS

    out: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "levels": {}}
    for spec in LEVELS:
        scene = Backrooms(ctx, size)
        values = {**REGISTRY.defaults(), "level": str(spec.index)}
        n = 0
        for _ in range(600):
            scene.advance(FrameParams(n, n / 60.0, 1 / 60.0, values))
            n += 1
        times, cpu = [], time.process_time()
        start = time.perf_counter()
        for _ in range(frames):
            t = time.perf_counter()
            scene.render(FrameParams(n, n / 60.0, 1 / 60.0, values))
            ctx.finish()
            times.append((time.perf_counter() - t) * 1000.0)
            n += 1
        elapsed = time.perf_counter() - start
        out["levels"][spec.index] = {"fps": frames / elapsed, "frame_ms": _summary(times[10:]),
                                     "cpu_ms": (time.process_time() - cpu) * 1000.0 / frames}
        scene.release()
    return out


def bench_chain_passes(ctx, patch, frames: int) -> dict[str, dict[str, float]]:
    """Each chain pass alone, finished, on the patch's scene: where the compositor's time goes."""
    scene = make_scene(patch.scene, ctx, patch.size)
    comp = Compositor(ctx, patch.chain, patch.size, (1280, 720), Reporter(), watch=False)
    bank = ParamBank(REGISTRY)
    for name, value in patch.params.items():
        bank.set(name, value, immediate=True)
    timings: dict[str, list[float]] = {}
    for n in range(frames):
        fp = bank.advance(n, n / 60.0, 1 / 60.0)
        src = scene.render(fp)
        comp.chain.render({"source": src, "scene": src, "original": src}, fp, timings)
    comp.release()
    scene.release()
    return {name: _summary(ms[5:]) for name, ms in timings.items()}


def bench_builtin(seconds: float) -> dict[str, Any]:
    """The bundled generator alone (encode + denoise + decode at its working size), 1 and 2 steps."""
    try:
        from .generate.builtin import describe, load
        from .generate.builtin.quality import generator_fps

        backend = load()
        return {"backend": describe(), "fps_1step": generator_fps(backend, seconds / 2, 1),
                "fps_2steps": generator_fps(backend, seconds / 2, 2)}
    except Exception as exc:  # no torch, no weights: the bench still reports the rest
        return {"backend": f"builtin unavailable: {exc}"}


def run_bench(args: argparse.Namespace) -> int:
    patch = load_patch(args.patch)
    ctx = headless_context()
    size, secs = args.size, args.seconds
    frames = max(60, int(secs * 60))
    report: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, "
                   f"{multiprocessing.cpu_count()} cores, {ctx.info['GL_RENDERER']}",
        "size": f"{size[0]}x{size[1]}", "generator": patch.model,
    }
    report["scene"] = bench_scene(ctx, patch.size, frames)
    report["stages"] = bench_stages(ctx, patch, size, frames, readback=False)
    report["stages_readback"] = bench_stages(ctx, patch, size, frames, readback=True)
    report["chain_passes"] = bench_chain_passes(ctx, patch, 40)
    big = (round(size[0] * 1.5), round(size[1] * 1.5))
    report["stages_big"] = {"size": f"{big[0]}x{big[1]}",
                            **bench_stages(ctx, patch, big, frames, readback=False)}
    report["builtin_generator"] = bench_builtin(secs)
    report["latency_60fps"] = bench_latency(ctx, patch, size, 60.0, secs)
    report["flood_60fps"] = bench_flood(ctx, patch, size, 60.0, secs, 10_000)
    report["flood_unpaced"] = bench_flood(ctx, patch, size, 0.0, secs, 10_000)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def print_report(r: dict[str, Any]) -> None:
    print(f"noclip bench — {r['machine']}\noutput {r['size']}, generator: {r['generator']}\n")
    sc = r["scene"]
    print(f"scene (backrooms) at {sc['size']}, colour + depth + motion, each frame finished:")
    for level, s in sc["levels"].items():
        ms = s["frame_ms"]
        print(f"  level {level}: {s['fps']:6.1f} fps  frame p50 {ms['p50']:.2f} ms  p99 {ms['p99']:.2f} ms  "
              f"max {ms['max']:.2f} ms  (CPU {s['cpu_ms']:.2f} ms/frame over all llvmpipe threads)")
    print()
    for key, title in (("stages", "stages, no readback"), ("stages_readback", "stages + readback")):
        s = r[key]
        print(f"{title}: {s['fps']:.1f} fps (unpaced, each stage finished before timing the next)")
        for name, st in s["stages_ms"].items():
            if st.get("n"):
                print(f"  {name:<10} mean {st['mean']:6.3f} ms  p50 {st['p50']:6.3f}  p99 {st['p99']:6.3f}")
    print("chain passes alone (finished), median ms: " + "  ".join(
        f"{k} {v['p50']:.2f}" for k, v in r["chain_passes"].items()))
    comp, big = r["stages"]["stages_ms"]["composite"], r["stages_big"]["stages_ms"]["composite"]
    print(f"composite at {r['stages_big']['size']} vs {r['size']}, no readback: {big['p50']:.2f} ms vs "
          f"{comp['p50']:.2f} ms ({big['p50'] / comp['p50']:.2f}x)")
    g = r.get("builtin_generator", {})
    print(f"\ngenerator {g.get('backend', '?')}")
    if "fps_1step" in g:
        print(f"  alone: {g['fps_1step']:.1f} fps at 1 step, {g['fps_2steps']:.1f} fps at 2 steps")
    lat = r["latency_60fps"]
    L = lat["latency_ms"]
    print(f"\ncontrol latency at 60 fps (OSC arrival → FrameParams), {L['n']} messages: "
          f"p50 {L['p50']:.2f} ms  p99 {L['p99']:.2f} ms  max {L['max']:.2f} ms "
          f"(frame period {lat['period_ms']:.2f} ms)")
    print(f"loop overhead (drain, apply, smooth, snapshot, feedback): "
          f"p50 {r['stages']['stages_ms']['control']['p50']:.3f} ms  "
          f"p99 {r['stages']['stages_ms']['control']['p99']:.3f} ms")
    for key in ("flood_60fps", "flood_unpaced"):
        f = r[key]
        print(f"OSC flood 10k msg/s, target {f['target_fps']}: idle {f['idle_fps']:.1f} fps, flooded "
              f"{f['flood_fps']:.1f} fps ({100 * f['ratio']:.0f}% of idle), "
              f"{f['messages_received']} messages received, values in range: {f['values_in_range']}")
