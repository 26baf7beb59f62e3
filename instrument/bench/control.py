"""Control benches: OSC and MIDI latency and floods, the cost of a MIDI message, the beat clock.

OSC traffic comes from a separate process over real UDP (see `common._sender`); its targets live here,
found by module path by the spawned interpreter.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from typing import Any

import numpy as np
from pythonosc.osc_message_builder import OscMessageBuilder

from ..control import ControlQueue
from ..control.osc import OscControl
from ..report import Reporter
from .common import Readback, _sender, _show, _summary


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
    osc = OscControl(queue, reporter, "127.0.0.1", 0).start()
    show = _show(ctx, patch, size, fps, True, queue=queue, reporter=reporter, feedback=[osc],
                 sources=[osc])
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


def bench_flood(ctx, patch, size, fps: float, seconds: float, rate: int, pairs: int = 3) -> dict[str, Any]:
    """The loop's rate in alternating quiet and flooded windows (`pairs` of each, `seconds` / 2
    long), medians compared: on a shared 2-core machine the rate drifts by more than a flood costs
    over a few seconds, so one idle phase then one flooded phase would measure the drift."""
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0).start()
    show = _show(ctx, patch, size, fps or 1000.0, fps > 0, queue=queue, reporter=reporter, feedback=[osc],
                 sources=[osc], outputs=[Readback()])
    show.run(frames=10)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    start = time.time() + 1.5  # the spawned sender is up by then
    proc = _sender(send_flood, osc.address[1], start, windows, window, rate)
    rates: list[list[float]] = [[], []]
    before = 0
    for k in range(windows):
        # each window's middle: 0.2 s margins keep the sender's start and stop out of it
        t0, t1 = start + k * window + 0.2, start + (k + 1) * window - 0.2
        show.run(until=lambda t0=t0: time.time() > t0)
        n0, c0 = show.clock.frame, time.perf_counter()
        if k == 1:
            before = osc.stats["messages"]
        show.run(until=lambda t1=t1: time.time() > t1)
        rates[k % 2].append((show.clock.frame - n0) / (time.perf_counter() - c0))
    received = osc.stats["messages"] - before
    proc.join(timeout=5)
    values_ok = all(0.0 <= show.fp[k] <= 1.0 for k in ("bleed", "tracking"))
    show.close()
    osc.close()
    idle, flooded = float(np.median(rates[0])), float(np.median(rates[1]))
    return {"target_fps": fps or "unpaced", "idle_fps": idle, "flood_fps": flooded,
            "ratio": flooded / idle if idle else 0.0, "messages_received": received,
            "windows": {"idle": rates[0], "flood": rates[1]}, "values_in_range": values_ok}


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

    from ..control.midi import MidiControl
    from ..control.midimap import parse_bindings
    from ..control.midiports import FakeBackend

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
    from ..show import Show

    mods = build(MUSIC_MODS)
    clock, times = BeatClock(), []
    for n in range(frames):
        t0 = time.perf_counter()
        beat = clock.advance(n / 60.0, 128.0)
        mods.due(beat, n / 60.0)
        mods.offsets(beat, n / 60.0)
        times.append(time.perf_counter() - t0)
    out: dict[str, Any] = {"modulation_ms": _summary(np.array(times) * 1000)}
    if ctx is not None and patch is not None:
        show = Show(ctx, replace(patch, model="none", modulators=tuple(MUSIC_MODS)), (64, 36),
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
        with_, without = _summary(np.array(step[True]) * 1000), _summary(np.array(step[False]) * 1000)
        out["show_step_ms"] = {"with": with_, "without": without, "added_p50": with_["p50"] - without["p50"],
                               "added_mean": with_["mean"] - without["mean"]}
    rng = np.random.default_rng(0)
    sound = rng.standard_normal(48_000 * 5).astype(np.float32) * 0.3
    a, blocks = AudioAnalyser(48_000), []
    for i in range(0, len(sound) - HOP, HOP):
        t0 = time.perf_counter()
        a.feed(sound[i:i + HOP])
        blocks.append(time.perf_counter() - t0)
    out.update({"audio_block_ms": _summary(np.array(blocks) * 1000),
                "audio_realtime_share": float(np.mean(blocks) / (HOP / 48_000))})
    return out


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
