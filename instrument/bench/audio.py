"""`noclip bench --only audio`: live audio analysis against a real, real-time capture device while
the show plays its patch with the generator dreaming (in its own process, as on stage).

What it counts: the input overflows PortAudio flags, the sound actually delivered against the wall
clock (PulseAudio's ALSA plugin drops what a late reader misses without flagging it, so the flag
alone would say nothing there), the time the stream callback takes against the block period, the
age of each block when it reaches the callback, and the lag from a block's arrival to the frame
whose parameters carry its features.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..control import ControlQueue
from ..control.audio import HOP, AudioControl
from ..report import Reporter
from .common import Readback, realtime_show, summary

RATE = 48_000


def find_input(device: Any = None) -> tuple[Any, str]:
    """The input device to measure and its name; raises LookupError saying why there is none."""
    try:
        import sounddevice as sd
    except OSError as exc:
        raise LookupError(f"no PortAudio ({exc})") from None
    found = [d["name"] for d in sd.query_devices() if d["max_input_channels"] > 0]
    if not found:
        raise LookupError("PortAudio lists no input device here (no sound card? the README's 'Audio "
                          "without a sound card' makes a virtual one)")
    try:
        info = sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as exc:
        raise LookupError(f"no input device {device if device is not None else '(default)'}: {exc}; "
                          f"inputs here: {', '.join(found)}") from None
    return (device if device is not None else info["index"]), str(info["name"])


class Timed:
    """A stream factory that times the analyser's callback: when it ran, how long, how old the block."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, float, int, bool]] = []

    def __call__(self, **kw: Any):
        import sounddevice as sd

        inner = kw.pop("callback")
        calls = self.calls

        def callback(block, frames, time_info, status):
            t0 = time.perf_counter()
            inner(block, frames, time_info, status)
            age = time_info.currentTime - time_info.inputBufferAdcTime if time_info.inputBufferAdcTime else 0.0
            calls.append((t0, time.perf_counter() - t0, age, frames, bool(status.input_overflow)))

        return sd.InputStream(callback=callback, **kw)


def bench_audio(ctx, patch, size, device: Any, seconds: float, fps: float = 60.0) -> dict[str, Any]:
    try:
        device, name = find_input(device)
    except LookupError as exc:
        return {"device": None, "why": str(exc)}
    queue, reporter = ControlQueue(), Reporter()
    timed = Timed()
    audio = AudioControl(queue, device, RATE, stream_factory=timed)
    show = realtime_show(ctx, patch, size, fps, True, queue=queue, reporter=reporter, outputs=[Readback()],
                         sources=[audio])
    load_end = time.perf_counter() + 300.0  # the model loads in its process before we measure
    while show.generator.stats().get("loading", False) and time.perf_counter() < load_end:
        show.run(frames=10)
    audio.start()
    try:
        start_end = time.perf_counter() + 10.0
        show.run(until=lambda: bool(timed.calls) or time.perf_counter() > start_end)
        if not timed.calls:
            return {"device": name, "why": "the stream started but delivered nothing in 10 s"}
        warm = time.perf_counter() + 1.0
        show.run(until=lambda: time.perf_counter() > warm)
        n0, done0, overflows0, k0 = (show.clock.frame, show.generator.stats().get("done", 0),
                                     audio.overflows, len(timed.calls))
        show.stats.latencies.clear()
        show.stats.measure_latency = True
        t0 = time.perf_counter()
        show.run(until=lambda: time.perf_counter() > t0 + seconds)
        show.stats.measure_latency = False
        t1 = time.perf_counter()
    finally:
        audio.close()
    calls = timed.calls[k0:]
    k1 = next((i for i, c in enumerate(calls) if c[0] > t1), len(calls))
    calls = calls[:k1]
    arrive = np.array([c[0] for c in calls])
    frames = sum(c[3] for c in calls)
    # what a full stream would have delivered between the first and the last callback measured,
    # plus the last block itself
    expected = (arrive[-1] - arrive[0]) * RATE + calls[-1][3] if len(calls) > 1 else float(frames)
    lag = np.array(show.stats.latencies) * 1000.0
    out = {
        "device": name, "seconds": t1 - t0, "rate": RATE, "block": HOP, "block_ms": 1000.0 * HOP / RATE,
        "blocks": len(calls), "overflow_flags": audio.overflows - overflows0,
        "overflow_blocks": sum(c[4] for c in calls),
        "delivered": frames / expected if expected else 0.0,
        "callback_ms": summary([c[1] * 1000.0 for c in calls]),
        "block_age_ms": summary([c[2] * 1000.0 for c in calls]),
        "gap_ms": summary(np.diff(arrive) * 1000.0),
        "lag_ms": summary(lag), "show_fps": (show.clock.frame - n0) / (t1 - t0),
        "generated_fps": (show.generator.stats().get("done", 0) - done0) / (t1 - t0),
        "generator": patch.model,
    }
    show.close()
    return out


def print_audio(a: dict[str, Any]) -> None:
    if a.get("device") is None or "why" in a:
        print(f"\naudio: not measured: {a['why']}")
        return
    cb, lag, age = a["callback_ms"], a["lag_ms"], a["block_age_ms"]
    print(f"\naudio input '{a['device']}', {a['rate']} Hz in {a['block']}-sample blocks "
          f"({a['block_ms']:.2f} ms), {a['seconds']:.0f} s while the show played at {a['show_fps']:.1f} fps "
          f"and the {a['generator']} generator dreamed {a['generated_fps']:.1f} fps:")
    print(f"  input overflows flagged: {a['overflow_flags']}; sound delivered: {100 * a['delivered']:.1f}% "
          f"of real time ({a['blocks']} blocks)")
    print(f"  callback p50 {cb['p50']:.3f} ms  p99 {cb['p99']:.3f} ms  max {cb['max']:.3f} ms "
          f"(block period {a['block_ms']:.2f} ms); blocks reach it p50 {age['p50']:.1f} ms after capture")
    if lag.get("n"):
        print(f"  analysis lag, block arrival → the frame carrying its features: p50 {lag['p50']:.2f} ms  "
              f"p99 {lag['p99']:.2f} ms  max {lag['max']:.2f} ms ({lag['n']} updates)")
