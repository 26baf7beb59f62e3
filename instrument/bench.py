"""`noclip bench`: the figures the issues promise, measured the way a show runs.

Control traffic comes from a separate process over real UDP, as it would from Ableton or a phone,
so the sender's own CPU use does not count against the show's interpreter.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import socket
import threading
import time
from dataclasses import replace
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


MIDI_BENCH = """
[[midi]]
cc = 1
param = "bleed"
takeover = "none"
[[midi]]
cc = 2
param = "tracking"
[[midi]]
cc = 3
param = "aberration"
curve = "exp"
"""
MIDI_DEV = "bench:bench MIDI 1 20:0"


def _midi(queue: ControlQueue, reporter: Reporter):
    """A MidiControl on the fake backend (the same callback path rtmidi drives), three bindings."""
    import tomllib

    from .control.midi import MidiControl
    from .control.midimap import parse_bindings
    from .control.midiports import FakeBackend

    be = FakeBackend(MIDI_DEV)
    bindings = parse_bindings(tomllib.loads(MIDI_BENCH)["midi"], lambda p, m: ValueError(m))
    midi = MidiControl(queue, reporter, [bindings], backend=be, virtual=False)
    midi.scan()
    return midi, be.devices[MIDI_DEV]


def bench_midi_cost(n: int = 50_000) -> dict[str, Any]:
    """µs per message through the port callback: parse, map, takeover, ControlEvent, queue."""
    queue = ControlQueue()
    midi, dev = _midi(queue, Reporter())
    msgs = [[0xB0, 1 + i % 3, (i * 7) % 128] for i in range(n)]
    send = dev.send
    t = time.perf_counter()
    for i, m in enumerate(msgs):
        send(m)
        if i % 5000 == 4999:
            queue.drain()
    per = (time.perf_counter() - t) / n * 1e6
    return {"messages": n, "us_per_message": per, "events": midi.mapper.stats["events"]}


def _midi_sender(dev, stop: threading.Event, rate: float | None, mean_gap: float, seed: int) -> None:
    """Plays the fake device from its own thread, as rtmidi's callback thread would: random gaps
    (latency) or `rate` messages a second in 1 ms batches (flood)."""
    rng = random.Random(seed)
    sent, start = 0, time.perf_counter()
    while not stop.is_set():
        if rate is None:
            dev.send([0xB0, 1, rng.randrange(128)])
            time.sleep(rng.expovariate(1.0 / mean_gap))
            continue
        due = int((time.perf_counter() - start) * rate)
        while sent < due:
            dev.send([0xB0, 1 + sent % 3, sent % 128])
            sent += 1
        time.sleep(0.001)


def bench_midi(ctx, patch, size, fps: float, seconds: float, rate: int) -> dict[str, Any]:
    """MIDI message → FrameParams latency at `fps`, then the frame rate with and without a
    `rate` messages/s flood through the callback path (unpaced, so any cost shows)."""
    queue, reporter = ControlQueue(), Reporter()
    midi, dev = _midi(queue, reporter)
    show = _show(ctx, patch, size, fps, True, queue=queue, reporter=reporter)
    midi.attach(show)
    stop = threading.Event()
    sender = threading.Thread(target=_midi_sender, args=(dev, stop, None, 0.008, 1), daemon=True)
    sender.start()
    show.run(frames=10)
    show.stats.measure_latency = True
    end = time.perf_counter() + seconds
    show.run(until=lambda: time.perf_counter() > end)
    show.stats.measure_latency = False
    stop.set()
    sender.join()
    lat = np.array(show.stats.latencies) * 1000.0
    show.close()

    queue, reporter = ControlQueue(), Reporter()
    midi, dev = _midi(queue, reporter)
    show = _show(ctx, patch, size, 1000.0, False, queue=queue, reporter=reporter, outputs=[Readback()])
    midi.attach(show)
    show.run(frames=10)

    def rate_for(phase_seconds: float) -> float:
        n0, t0 = show.clock.frame, time.perf_counter()
        end = t0 + phase_seconds
        show.run(until=lambda: time.perf_counter() > end)
        return (show.clock.frame - n0) / (time.perf_counter() - t0)

    idle = rate_for(seconds)
    before = midi.stats["messages"]
    stop = threading.Event()
    sender = threading.Thread(target=_midi_sender, args=(dev, stop, rate, 0.0, 2), daemon=True)
    sender.start()
    t0 = time.perf_counter()
    flooded = rate_for(seconds)
    received = (midi.stats["messages"] - before) / (time.perf_counter() - t0)
    stop.set()
    sender.join()
    in_range = all(0.0 <= show.fp[k] <= 1.0 for k in ("bleed", "tracking"))
    show.close()
    return {"fps": fps, "period_ms": 1000.0 / fps, "latency_ms": _summary(lat), "idle_fps": idle,
            "flood_fps": flooded, "ratio": flooded / idle if idle else 0.0, "rate": rate,
            "received_per_s": received, "values_in_range": in_range}


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


GENERATOR_SIZES = ((256, 192), (512, 384))  # 4:3, multiples of 64 (latents of 8-cell UNets at ÷8)


def walk_frames(ctx, size: tuple[int, int], frames: int) -> list:
    """A Backrooms walk as the generator receives it: colour and motion read back, turned."""
    from .generate.worker import BaseFrame
    from .scene.backrooms import Backrooms

    scene = Backrooms(ctx, size)
    values = REGISTRY.defaults()
    colour = np.empty((size[1], size[0], 4), np.uint8)
    motion = np.empty((size[1], size[0], 2), np.float32)
    out = []
    for n in range(frames):
        scene.render(FrameParams(n, n / 30.0, 1 / 30.0, values)).read_into(colour)
        scene.motion.read_into(motion)
        out.append(BaseFrame(colour[::-1, :, :3].copy(), motion.copy(), scene.cut, gl=True).prepared())
    scene.release()
    return out


def bench_engine(ctx, backend, size: tuple[int, int], seconds: float) -> dict[str, Any]:
    """Generator fps at one working size: steps 1 and 2, Stream Batch off and on (plain engine
    calls on a walk, no loop around them), similarity skip off so every frame is dreamed."""
    from .generate.stream import StreamEngine

    frames = walk_frames(ctx, size, 24)
    out: dict[str, Any] = {}
    for steps, batch in ((1, False), (2, False), (2, True)):
        key = f"steps {steps}" + (" batch" if batch else "")
        try:
            engine = StreamEngine(backend, size)
            values = {**REGISTRY.defaults(), "steps": steps, "stream_batch": batch, "similarity_skip": 0.0}
            for n in range(3):  # warm-up: first calls allocate, the pipe fills
                engine(frames[n], FrameParams(n, n / 30.0, 1 / 30.0, values))
            n, start = 3, time.perf_counter()
            while n < 3 + 200 and (n < 6 or time.perf_counter() - start < seconds):
                engine(frames[n % len(frames)], FrameParams(n, n / 30.0, 1 / 30.0, values))
                n += 1
            out[key] = (n - 3) / (time.perf_counter() - start)
        except Exception as exc:  # a size this backend cannot play is a figure too
            out[key] = f"failed: {type(exc).__name__}: {exc}"
    return out


def bench_loop_busy(ctx, patch, backend, size, seconds: float, fps: float = 60.0) -> dict[str, Any]:
    """The show's loop paced at `fps` on the Backrooms, with the scene alone and with the generator
    dreaming on its thread: what the generator costs the loop, and what it gets done meanwhile
    (they share the cores and Python's GIL, which moderngl holds while llvmpipe draws)."""
    from .generate.stream import StreamEngine
    from .generate.worker import ThreadedGenerator

    out: dict[str, Any] = {}
    walk = replace(patch, scene="backrooms", model="none", size=backend.size)
    for key in ("none", "busy"):
        show = _show(ctx, walk, size, fps, True)
        if key == "busy":
            show.generator.release()
            show.generator = ThreadedGenerator(backend.name, StreamEngine(backend), ctx, backend.size,
                                               show.reporter, live=True)
        show.run(frames=10)
        n0, t0 = show.clock.frame, time.perf_counter()
        done0 = show.generator.stats()["done"] if key == "busy" else 0
        show.run(until=lambda end=t0 + seconds: time.perf_counter() > end)
        elapsed = time.perf_counter() - t0
        out[f"{key}_fps"] = (show.clock.frame - n0) / elapsed
        if key == "busy":
            out["generator_fps"] = (show.generator.stats()["done"] - done0) / elapsed
        show.close()
    out["ratio"] = out["busy_fps"] / out["none_fps"] if out["none_fps"] else 0.0
    return out


def bench_generator(ctx, patch, model: str, size: tuple[int, int], seconds: float,
                    backend=None) -> dict[str, Any]:
    """Generator figures for `model` (or a Backend given directly); the reason when none loads."""
    if backend is None:
        from .generate import load_backend

        try:
            backend = load_backend(model)
        except Exception as exc:
            return {"model": model, "loaded": False, "error": f"{type(exc).__name__}: {exc}"}
    from .generate.stream import share_cpu

    threads = share_cpu(backend)
    sizes = sorted({*GENERATOR_SIZES, tuple(backend.size)}, key=lambda s: s[0] * s[1])
    return {"model": backend.name, "loaded": True, "device": f"{backend.device} ({threads} torch threads)",
            "working_size": f"{backend.size[0]}x{backend.size[1]}",
            "engine_fps": {f"{w}x{h}": bench_engine(ctx, backend, (w, h), seconds) for w, h in sizes},
            "loop": bench_loop_busy(ctx, patch, backend, size, seconds)}


def bench_recording(ctx, patch, size, fps: float, seconds: float) -> dict[str, Any]:
    """Live H.264 takes: the loop's rate with and without a take (unpaced shows the cost, paced at
    `fps` whether anything drops), and the offline render speed."""
    import tempfile
    from pathlib import Path

    from .clock import OfflineClock
    from .record.deck import RecordDeck

    def run(paced: bool, record: bool, clock=None) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            deck = RecordDeck(size, fps, Reporter(), first=Path(tmp) / "take.mp4")
            show = Show(ctx, patch, size, clock=clock or RealtimeClock(fps if paced else 1000.0, paced=paced),
                        outputs=[deck])
            show.run(frames=10)
            if record:
                show._record(True)
            n0, t0 = show.clock.frame, time.perf_counter()
            end = t0 + seconds
            show.run(until=lambda: time.perf_counter() > end)
            rate = (show.clock.frame - n0) / (time.perf_counter() - t0)
            show.close()
            return {"fps": rate, "dropped": deck.dropped}

    out: dict[str, Any] = {"fps": fps, "seconds": seconds}
    out["unpaced_idle"], out["unpaced_recording"] = run(False, False), run(False, True)
    out["paced"] = run(True, True)
    out["offline"] = run(False, True, clock=OfflineClock(fps))
    out["cost"] = 1.0 - out["unpaced_recording"]["fps"] / out["unpaced_idle"]["fps"]
    return out


def bench_music(frames: int = 6000) -> dict[str, Any]:
    """Beat clock + eight modulators per frame (the ParamBank's own work excluded), and the audio
    analysis per 512-sample block against the 10.7 ms of sound it covers."""
    from .clock import BeatClock
    from .control.audio import HOP, AudioAnalyser
    from .control.modulators import build

    mods = build([{"target": "aberration", "shape": s, "every": 1, "depth": 1.0}
                  for s in ("sine", "triangle", "saw", "square", "sh", "envelope")]
                 + [{"target": "bleed", "shape": "steps", "every": 0.25, "steps": [0, 0.5, 1]},
                    {"command": "seed/next", "every": "bar"}])
    clock, times = BeatClock(), []
    for n in range(frames):
        t0 = time.perf_counter()
        beat = clock.advance(n / 60.0, 128.0)
        mods.due(beat, n / 60.0)
        mods.offsets(beat, n / 60.0)
        times.append(time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    sound = rng.standard_normal(48_000 * 5).astype(np.float32) * 0.3
    a, blocks = AudioAnalyser(48_000), []
    for i in range(0, len(sound) - HOP, HOP):
        t0 = time.perf_counter()
        a.feed(sound[i:i + HOP])
        blocks.append(time.perf_counter() - t0)
    return {"modulation_ms": _summary(np.array(times) * 1000),
            "audio_block_ms": _summary(np.array(blocks) * 1000),
            "audio_realtime_share": float(np.mean(blocks) / (HOP / 48_000))}


SECTIONS = ("scene", "stages", "chain", "big", "latency", "flood", "midi", "recording", "generator",
            "music")


def run_bench(args: argparse.Namespace) -> int:
    patch = load_patch(args.patch)
    ctx = headless_context()
    size, secs = args.size, args.seconds
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
        report["stages_big"] = {"size": f"{big[0]}x{big[1]}",
                                **bench_stages(ctx, patch, big, frames, readback=False)}
    if "latency" in only:
        report["latency_60fps"] = bench_latency(ctx, patch, size, 60.0, secs)
    if "flood" in only:
        report["flood_60fps"] = bench_flood(ctx, patch, size, 60.0, secs, 10_000)
        report["flood_unpaced"] = bench_flood(ctx, patch, size, 0.0, secs, 10_000)
    if "recording" in only:
        report["recording_30fps"] = bench_recording(ctx, patch, size, 30.0, args.record_seconds or secs)
    if "midi" in only:
        report["midi_cost"] = bench_midi_cost()
        report["midi"] = bench_midi(ctx, patch, size, 60.0, secs, 10_000)
    if "generator" in only and os.environ.get("NOCLIP_ACCEL") == "tensorrt":   # --accel tensorrt
        from .generate.accel.bench import bench_accel

        report["accel_bench"] = bench_accel(secs)
    elif "generator" in only:
        model = args.model or (patch.model if patch.model != "none" else "builtin")
        report["generator_bench"] = bench_generator(ctx, patch, model, size, secs)
    if "music" in only:
        report["music"] = bench_music()
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
            f"{k} {v['p50']:.2f}" for k, v in r["chain_passes"].items()))
    if "stages_big" in r and "stages" in r:
        comp, big = r["stages"]["stages_ms"]["composite"], r["stages_big"]["stages_ms"]["composite"]
        print(f"composite at {r['stages_big']['size']} vs {r['size']}, no readback: {big['p50']:.2f} ms vs "
              f"{comp['p50']:.2f} ms ({big['p50'] / comp['p50']:.2f}x)")
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
            print(f"OSC flood 10k msg/s, target {f['target_fps']}: idle {f['idle_fps']:.1f} fps, flooded "
                  f"{f['flood_fps']:.1f} fps ({100 * f['ratio']:.0f}% of idle), "
                  f"{f['messages_received']} messages received, values in range: {f['values_in_range']}")
    if "recording_30fps" in r:
        rec = r["recording_30fps"]
        print(f"\nrecording H.264 at {r['size']}, {rec['seconds']:g} s a phase: unpaced "
              f"{rec['unpaced_idle']['fps']:.1f} fps idle vs {rec['unpaced_recording']['fps']:.1f} recording "
              f"(cost {100 * rec['cost']:.1f}%); paced at {rec['fps']:g}: {rec['paced']['fps']:.1f} fps, "
              f"{rec['paced']['dropped']} dropped; offline render {rec['offline']['fps']:.1f} fps")
    if "midi" in r:
        print_midi(r)
    if "generator_bench" in r:
        print_generator(r["generator_bench"])
    if "music" in r:
        m, b = r["music"]["modulation_ms"], r["music"]["audio_block_ms"]
        print(f"\nbeat clock + 8 modulators a frame: p50 {m['p50']:.4f} ms  p99 {m['p99']:.4f} ms; "
              f"audio analysis a 512-sample block: p50 {b['p50']:.3f} ms  p99 {b['p99']:.3f} ms "
              f"({100 * r['music']['audio_realtime_share']:.1f}% of real time)")
    if "accel_bench" in r:
        from .generate.accel.bench import print_accel

        print_accel(r["accel_bench"])


def print_midi(r: dict[str, Any]) -> None:
    c, m = r["midi_cost"], r["midi"]
    L = m["latency_ms"]
    print(f"\nMIDI: {c['us_per_message']:.2f} µs a message through the port callback (parse, map, event)")
    print(f"MIDI latency at 60 fps (arrival → FrameParams), {L['n']} messages: p50 {L['p50']:.2f} ms  "
          f"p99 {L['p99']:.2f} ms  max {L['max']:.2f} ms (frame period {m['period_ms']:.2f} ms)")
    print(f"MIDI flood {m['rate']} msg/s (unpaced): idle {m['idle_fps']:.1f} fps, "
          f"flooded {m['flood_fps']:.1f} fps "
          f"({100 * m['ratio']:.0f}% of idle), {m['received_per_s']:.0f} msg/s taken, "
          f"values in range: {m['values_in_range']}")


def print_generator(g: dict[str, Any]) -> None:
    if not g["loaded"]:
        print(f"\ngenerator: no backend loaded ({g['model']}: {g['error']})")
        return
    print(f"\ngenerator {g['model']} on {g['device']} (working size {g['working_size']}), "
          "engine alone on a walk:")
    for size, figures in g["engine_fps"].items():
        print(f"  {size:>9}: " + "  ".join(f"{k} {v:.2f} fps" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in figures.items()))
    lo = g["loop"]
    print(f"loop paced at 60 fps, backrooms: {lo['none_fps']:.1f} fps alone, {lo['busy_fps']:.1f} fps "
          f"while the generator dreams ({100 * lo['ratio']:.0f}%) at {lo['generator_fps']:.2f} generated fps")
