"""MIDI benches: the cost of a message, latency from the true send time, the frame rate under a flood.

The device plays from a separate process through a FIFO (`midiports.PipeIn`): like rtmidi's queue,
which a thread outside the interpreter fills, nothing in the show's interpreter wakes per message.
The sender stamps each message with its own CLOCK_MONOTONIC (time.perf_counter, comparable across
processes on Linux), so latency is measured from when a message was really sent, and the arrival
stamps the show estimated from rtmidi-style deltas can be checked against the truth.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
import tomllib
from typing import Any

import numpy as np

from ..control import ControlQueue
from ..control.midi import MidiControl
from ..control.midimap import parse_bindings
from ..control.midisim import FakeBackend, PipeBackend, PipeIn, pack
from ..control.stamps import ArrivalClock
from ..report import Reporter
from .common import Readback, alternate, realtime_show, spawn, summary

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


def _midi(queue: ControlQueue, reporter: Reporter, backend) -> MidiControl:
    """A MidiControl with three bindings, its one port opened."""
    bindings = parse_bindings(tomllib.loads(MIDI_BENCH)["midi"], lambda p, m: ValueError(m))
    midi = MidiControl(queue, reporter, [bindings], backend=backend, virtual=False)
    midi.scan()
    return midi


def play_random(path: str, seconds: float, mean_gap: float, seed: int) -> None:
    """CC 1 at random (exponential) gaps, so arrivals fall anywhere in the frame period; never the
    same value twice, so every message makes one event."""
    rng, value = random.Random(seed), 0
    fd = os.open(path, os.O_WRONLY)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        value = (value + 1 + rng.randrange(126)) % 128
        os.write(fd, pack(time.perf_counter(), (0xB0, 1, value)))
        time.sleep(rng.expovariate(1.0 / mean_gap))
    os.close(fd)


def play_flood(path: str, start: float, windows: int, window: float, rate: int) -> None:
    """`rate` messages a second in 1 ms batches over three CCs, in every odd `window`-second window
    from wall-clock time `start` on (even windows stay quiet)."""
    fd = os.open(path, os.O_WRONLY)
    per_ms, sent = rate / 1000.0, 0
    while (now := time.time()) < start + windows * window:
        k = int((now - start) // window) if now >= start else -1
        if k % 2 == 1:
            due = int((now - start - k * window) * 1000.0 * per_ms)
            at = time.perf_counter()
            os.write(fd, b"".join(pack(at, (0xB0, 1 + i % 3, i % 128)) for i in range(sent, due)))
            sent = max(sent, due)
        else:
            sent = 0
        time.sleep(0.0005)
    os.close(fd)


class _Truth:
    """Feedback and EventSink: each frame, the true send times of the messages its poll read (the
    pipe keeps them), paired with the stamps of the events they made (one each, in order)."""

    def __init__(self, port: PipeIn) -> None:
        self.port, self.read, self.on = port, 0, False
        self.stamps: list[float] = []
        self.latency: list[float] = []
        self.errors: list[float] = []
        self.unpaired = 0

    def applied(self, event, frame: int, value: Any) -> None:
        if event.source == "midi":
            self.stamps.append(event.time)

    def close(self, frames: int) -> None:
        pass

    def publish(self, fp) -> None:
        now = time.perf_counter()  # FrameParams were built a few µs ago
        truth = self.port.truth[self.read:]
        self.read += len(truth)
        stamps, self.stamps = self.stamps, []
        if not self.on:
            return
        self.latency += [now - t for t in truth]
        if len(stamps) == len(truth):
            self.errors += [s - t for s, t in zip(stamps, truth, strict=True)]
        else:
            self.unpaired += len(truth)


def _fifo() -> tuple[str, str]:
    folder = tempfile.mkdtemp(prefix="noclip-midi-")
    path = os.path.join(folder, "device")
    os.mkfifo(path)
    return folder, path


def bench_midi_cost(n: int = 50_000) -> dict[str, Any]:
    """µs per message through the loop's poll (read, stamp, parse, map, takeover, event, queue), with
    rtmidi's part (filling the queue) done beforehand as its own thread would; and an empty poll."""
    queue = ControlQueue()
    midi = _midi(queue, Reporter(), FakeBackend(MIDI_DEV))
    port = midi.ports[MIDI_DEV]
    port.clock = ArrivalClock(time.perf_counter() - 2 * n * 1e-4)
    port.input.queue.extend(([0xB0, 1 + i % 3, (i * 7) % 128], 1e-4) for i in range(n))
    t = time.perf_counter()
    while port.input.queue:
        midi.poll()
        queue.drain()
    per = (time.perf_counter() - t) / n * 1e6
    t = time.perf_counter()
    for _ in range(10_000):
        midi.poll()
    empty = (time.perf_counter() - t) / 10_000 * 1e6
    return {"messages": n, "us_per_message": per, "us_empty_poll": empty, "events": midi.mapper.stats["events"]}


def bench_midi_latency(ctx, patch, size, fps: float, seconds: float) -> dict[str, Any]:
    """Send → FrameParams at `fps`, from the sender's clock, and the error of the arrival stamps."""
    folder, path = _fifo()
    queue, reporter = ControlQueue(), Reporter()
    backend = PipeBackend(MIDI_DEV, path)
    midi = _midi(queue, reporter, backend)
    show = realtime_show(ctx, patch, size, fps, True, queue=queue, reporter=reporter)
    midi.attach(show)
    assert backend.port is not None  # _midi opened it
    truth = _Truth(backend.port)
    show.add_feedback(truth)
    show.add_sink(truth)
    proc = spawn(play_random, path, seconds + 2.0, 0.008, 1)
    warm = time.perf_counter() + 1.5  # the sender starts up, the stamps converge
    show.run(until=lambda: time.perf_counter() > warm)
    truth.on = show.stats.measure_latency = True
    end = time.perf_counter() + seconds
    frames = show.run(until=lambda: time.perf_counter() > end)
    truth.on = show.stats.measure_latency = False
    gaps = np.diff(list(show.stats.frame_times)[-frames:]) * 1000.0  # how evenly the loop came round
    resets = midi.ports[MIDI_DEV].clock.resets
    proc.join(timeout=5)
    show.close()
    midi.close()
    shutil.rmtree(folder, ignore_errors=True)
    err = np.array(truth.errors) * 1000.0
    return {"fps": fps, "period_ms": 1000.0 / fps, "latency_ms": summary(np.array(truth.latency) * 1000.0),
            "stamped_latency_ms": summary(np.array(show.stats.latencies) * 1000.0),
            "stamp_error_ms": summary(np.abs(err)),
            "stamp_bias_ms": float(np.median(err)) if err.size else 0.0,
            "unpaired": truth.unpaired, "resets": resets, "frame_interval_ms": summary(gaps)}


def bench_midi_flood(ctx, patch, size, fps: float, seconds: float, rate: int, pairs: int = 3) -> dict[str, Any]:
    """The loop's rate in alternating quiet and flooded windows, medians compared (as the OSC flood)."""
    folder, path = _fifo()
    queue, reporter = ControlQueue(), Reporter()
    midi = _midi(queue, reporter, PipeBackend(MIDI_DEV, path))
    show = realtime_show(ctx, patch, size, fps or 1000.0, fps > 0, queue=queue, reporter=reporter,
                         outputs=[Readback()])
    midi.attach(show)
    show.run(frames=10)
    window, windows = max(1.0, seconds / 2.5), 2 * pairs
    start = time.time() + 1.5  # the spawned sender is up by then
    proc = spawn(play_flood, path, start, windows, window, rate)
    rates, received = alternate(show, start, windows, window, lambda: midi.stats["messages"])
    proc.join(timeout=5)
    values_ok = all(0.0 <= show.fp[k] <= 1.0 for k in ("bleed", "tracking"))
    show.close()
    midi.close()
    shutil.rmtree(folder, ignore_errors=True)
    idle, flooded = float(np.median(rates[0])), float(np.median(rates[1]))
    return {"target_fps": fps or "unpaced", "idle_fps": idle, "flood_fps": flooded,
            "ratio": flooded / idle if idle else 0.0, "rate": rate,
            "received_per_s": received / (pairs * (window - 0.4)),
            "windows": {"idle": rates[0], "flood": rates[1]},
            "values_in_range": values_ok, "storms": midi.stats["storms"]}


def bench_midi(ctx, patch, size, seconds: float, rate: int = 10_000) -> dict[str, Any]:
    return {"cost": bench_midi_cost(), "latency": bench_midi_latency(ctx, patch, size, 60.0, seconds),
            "flood_60fps": bench_midi_flood(ctx, patch, size, 60.0, seconds, rate),
            "flood_unpaced": bench_midi_flood(ctx, patch, size, 0.0, seconds, rate)}


def print_midi(r: dict[str, Any]) -> None:
    c, lat = r["cost"], r["latency"]
    L, E, S = lat["latency_ms"], lat["stamp_error_ms"], lat["stamped_latency_ms"]
    print(f"\nMIDI: {c['us_per_message']:.2f} µs a message through the loop's poll (read, stamp, parse, map, "
          f"event); an empty poll {c['us_empty_poll']:.2f} µs")
    print(f"MIDI latency at 60 fps (sent, another process → FrameParams), {L.get('n', 0)} messages: "
          f"p50 {L['p50']:.2f} ms  p99 {L['p99']:.2f} ms  max {L['max']:.2f} ms "
          f"(frame period {lat['period_ms']:.2f} ms)")
    print(f"  arrival stamps from rtmidi-style deltas: error p50 {E['p50']:.3f} ms  p99 {E['p99']:.3f} ms  "
          f"max {E['max']:.3f} ms (median {lat['stamp_bias_ms']:+.3f} ms); stamp → FrameParams "
          f"p50 {S['p50']:.2f} ms  p99 {S['p99']:.2f} ms")
    F = lat["frame_interval_ms"]
    print(f"  the loop meanwhile: frame interval p50 {F['p50']:.2f} ms  p99 {F['p99']:.2f} ms  "
          f"max {F['max']:.2f} ms")
    for key in ("flood_60fps", "flood_unpaced"):
        f = r[key]
        print(f"MIDI flood {f['rate']} msg/s, target {f['target_fps']}: median of alternating windows, idle "
              f"{f['idle_fps']:.1f} fps, flooded {f['flood_fps']:.1f} fps ({100 * f['ratio']:.0f}% of idle), "
              f"{f['received_per_s']:.0f} msg/s taken, values in range: {f['values_in_range']}")
