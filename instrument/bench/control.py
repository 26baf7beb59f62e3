"""Control benches: OSC latency and floods, the beat clock and modulators (MIDI: see midi.py).

OSC traffic comes from a separate process over real UDP (see `common.spawn`); its targets live here,
found by module path by the spawned interpreter.
"""

from __future__ import annotations

import random
import socket
import time
from typing import Any

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from ..control import ControlQueue
from ..control.osc import OscControl
from ..report import Reporter
from .common import Readback, alternate, realtime_show, spawn, summary


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


def send_flood(port: int, start: float, windows: int, window: float, rate: int) -> None:
    """`rate` messages per second in 1 ms batches, cycling through a few addresses and values, in
    every odd `window`-second window from wall-clock time `start` on (even windows stay quiet)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    grams = [_msg(a, v) for a in ("/noclip/bleed", "/noclip/tracking", "/noclip/norm/aberration")
             for v in (0.1, 0.4, 0.9)]
    per_ms, sent = rate / 1000.0, 0
    while (now := time.time()) < start + windows * window:
        k = int((now - start) // window) if now >= start else -1
        if k % 2 == 1:
            due = int((now - start - k * window) * 1000.0 * per_ms)
            while sent < due:
                sock.sendto(grams[sent % len(grams)], ("127.0.0.1", port))
                sent += 1
        else:
            sent = 0
        time.sleep(0.0005)


def bench_latency(ctx, patch, size, fps: float, seconds: float) -> dict[str, Any]:
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0)
    show = realtime_show(ctx, patch, size, fps, True, queue=queue, reporter=reporter, feedback=[osc],
                         sources=[osc])
    proc = spawn(send_random, osc.address[1], seconds + 1.5, 0.008, 1)
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
    return {"fps": fps, "period_ms": 1000.0 / fps, "latency_ms": summary(lat),
            "received": osc.stats["messages"]}


def bench_flood(ctx, patch, size, fps: float, seconds: float, rate: int, pairs: int = 3) -> dict[str, Any]:
    """The loop's rate in alternating quiet and flooded windows (`pairs` of each, `seconds` / 2
    long), medians compared (see `common.alternate`)."""
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0)
    show = realtime_show(ctx, patch, size, fps or 1000.0, fps > 0, queue=queue, reporter=reporter,
                         feedback=[osc], sources=[osc], outputs=[Readback()])
    show.run(frames=10)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    start = time.time() + 1.5  # the spawned sender is up by then
    proc = spawn(send_flood, osc.address[1], start, windows, window, rate)
    rates, received = alternate(show, start, windows, window, lambda: osc.stats["messages"])
    proc.join(timeout=5)
    values_ok = all(0.0 <= show.fp[k] <= 1.0 for k in ("bleed", "tracking"))
    show.close()
    osc.close()
    idle, flooded = float(np.median(rates[0])), float(np.median(rates[1]))
    return {"target_fps": fps or "unpaced", "idle_fps": idle, "flood_fps": flooded,
            "ratio": flooded / idle if idle else 0.0, "messages_received": received,
            "windows": {"idle": rates[0], "flood": rates[1]}, "values_in_range": values_ok}


def send_hostile(port: int, start: float, windows: int, window: float, rate: int, seed: int) -> None:
    """`rate` datagrams a second of the hostile corpus (bench/hostile.py), in 1 ms batches, in
    every odd window from `start` on, as `send_flood` does."""
    from ..catalogue import assemble
    from .hostile import corpus

    assemble()  # a spawned process: the corpus is drawn from the registry's parameters
    grams = corpus(seed, 20_000, now=start)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    per_ms, sent, i = rate / 1000.0, 0, 0
    while (now := time.time()) < start + windows * window:
        k = int((now - start) // window) if now >= start else -1
        if k % 2 == 1:
            due = int((now - start - k * window) * 1000.0 * per_ms)
            while sent < due:
                try:
                    sock.sendto(grams[i % len(grams)], ("127.0.0.1", port))
                except OSError:  # the kernel's buffer is full: that datagram is lost, as on a network
                    pass
                sent, i = sent + 1, i + 1
        else:
            sent = 0
        time.sleep(0.0005)


def bench_hostile(ctx, patch, size, fps: float, seconds: float, rate: int, pairs: int = 3) -> dict[str, Any]:
    """The paced loop's rate in alternating quiet windows and windows flooded with `rate` datagrams
    a second of the hostile corpus, medians compared. The sender counts as a network sender (not
    on this machine): remote rules apply (no quit, patch names only, heavy commands throttled)."""
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0, local=())
    show = realtime_show(ctx, patch, size, fps, True, queue=queue, reporter=reporter, feedback=[osc],
                         sources=[osc], outputs=[Readback()])
    show.run(frames=10)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    start = time.time() + 4.0  # the spawned sender builds its corpus by then
    proc = spawn(send_hostile, osc.address[1], start, windows, window, rate, 15)
    rates, received = alternate(show, start, windows, window, lambda: osc.stats["packets"])
    proc.join(timeout=5)
    values_ok = all(spec.min <= show.fp[spec.name] <= spec.max for spec in show.bank.registry
                    if spec.type in ("float", "int"))
    stats = dict(osc.stats)
    show.close()
    osc.close()
    idle, flooded = float(np.median(rates[0])), float(np.median(rates[1]))
    return {"target_fps": fps, "idle_fps": idle, "flood_fps": flooded, "ratio": flooded / idle if idle else 0.0,
            "packets_parsed": received, "windows": {"idle": rates[0], "flood": rates[1]},
            "values_in_range": values_ok, "running": show.running, "osc": stats,
            "heap_dropped": queue.dropped_later}


MUSIC_MODS = ([{"target": "aberration", "shape": s, "every": 1, "depth": 1.0}
               for s in ("sine", "triangle", "saw", "square", "sh", "envelope")]
              + [{"target": "bleed", "shape": "steps", "every": 0.25, "steps": [0, 0.5, 1]},
                 {"command": "seed/next", "every": "bar"}])


def bench_music(ctx=None, patch=None, frames: int = 6000) -> dict[str, Any]:
    """Beat clock + eight modulators per frame alone, then what they add to the show's parameter
    step (beat, due commands, offsets, the bank's advance) against the same show without them, in
    alternating blocks so the machine's drift lands on both; and the audio analysis per 512-sample
    block against the 10.7 ms of sound it covers."""
    from dataclasses import replace

    from ..clock import BeatClock, OfflineClock
    from ..control.audio import HOP, AudioAnalyser
    from ..control.modulators import Modulators, build
    from ..record.session import make_show

    mods = build(MUSIC_MODS)
    clock, times = BeatClock(), []
    for n in range(frames):
        t0 = time.perf_counter()
        beat = clock.advance(n / 60.0, 128.0)
        mods.due(beat, n / 60.0)
        mods.offsets(beat, n / 60.0)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"modulation_ms": summary(np.array(times) * 1000)}
    if ctx is not None and patch is not None:
        show = make_show(ctx, replace(patch, model="none", modulators=tuple(MUSIC_MODS)), (64, 36),
                         clock=OfflineClock(60))
        step: dict[bool, list[float]] = {True: [], False: []}
        n = 0
        for block in range(2 * (frames // 500)):
            on = block % 2 == 0
            show.modulators = mods if on else Modulators()
            for _ in range(250):
                t0 = time.perf_counter()
                show._advance(n, n / 60.0, 1 / 60.0)
                step[on].append(time.perf_counter() - t0)
                n += 1
        show.close()
        with_, without = summary(np.array(step[True]) * 1000), summary(np.array(step[False]) * 1000)
        out["show_step_ms"] = {"with": with_, "without": without, "added_p50": with_["p50"] - without["p50"],
                               "added_mean": with_["mean"] - without["mean"]}
    rng = np.random.default_rng(0)
    sound = rng.standard_normal(48_000 * 5).astype(np.float32) * 0.3
    a, blocks = AudioAnalyser(48_000), []
    for i in range(0, len(sound) - HOP, HOP):
        t0 = time.perf_counter()
        a.feed(sound[i:i + HOP])
        blocks.append(time.perf_counter() - t0)
    out.update({"audio_block_ms": summary(np.array(blocks) * 1000),
                "audio_realtime_share": float(np.mean(blocks) / (HOP / 48_000))})
    return out

