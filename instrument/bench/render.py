"""Render benches: the scene alone, the show's stages, each chain pass, and recording's cost."""

from __future__ import annotations

import time
from typing import Any

from ..clock import RealtimeClock
from ..params import REGISTRY, FrameParams, ParamBank
from ..record.session import make_show
from ..render.compositor import Compositor
from ..report import Reporter
from ..scene import make_scene
from ..show import STAGES
from .common import Readback, realtime_show, summary


def bench_stages(ctx, patch, size, frames: int, readback: bool) -> dict[str, Any]:
    """Unpaced, each stage finished before the next is timed (llvmpipe runs GL lazily)."""
    show = realtime_show(ctx, patch, size, 1000.0, False, outputs=[Readback()] if readback else [],
                         sync_stages=True)
    show.run(frames=10)
    for d in show.stats.stages.values():
        d.clear()
    t = time.perf_counter()
    show.run(frames=frames)
    ctx.finish()
    elapsed = time.perf_counter() - t
    out = {"fps": frames / elapsed,
           "stages_ms": {k: summary(show.stats.stages.get(k, [])) for k in STAGES}}
    show.close()
    return out


def bench_scaling(ctx, patch, size, big, frames: int) -> dict[str, Any]:
    """The composite at two output sizes, in alternating blocks of frames, so that a noisy machine's
    drift lands on both sides of the ratio alike."""
    shows = {s: realtime_show(ctx, patch, s, 1000.0, False, sync_stages=True) for s in (size, big)}
    times: dict[tuple[int, int], list[float]] = {s: [] for s in shows}
    for show in shows.values():
        show.run(frames=10)
    for _ in range(10):
        for s, show in shows.items():
            show.stats.stages["composite"].clear()
            show.run(frames=max(6, frames // 10))
            times[s].extend(show.stats.stages["composite"])
    for show in shows.values():
        show.close()
    small, large = summary(times[size]), summary(times[big])
    return {"size": f"{big[0]}x{big[1]}", "composite_ms": large, "base_composite_ms": small,
            "ratio": large["p50"] / small["p50"]}


def bench_scene(ctx, size: tuple[int, int], frames: int) -> dict[str, Any]:
    """The Backrooms alone at the working size, colour + depth + motion each frame, per level.

    Each frame is finished before the next starts (the generator would read all three targets),
    and the walk first runs ahead so chunk meshes are built the way a show meets them.
    """
    from ..scene.backrooms import Backrooms
    from ..scene.layout import LEVELS

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
        out["levels"][spec.index] = {"fps": frames / elapsed, "frame_ms": summary(times[10:]),
                                     "cpu_ms": (time.process_time() - cpu) * 1000.0 / frames}
        scene.release()
    return out


def bench_chain_passes(ctx, patch, frames: int) -> dict[str, dict[str, float]]:
    """Each chain pass alone, finished, on the patch's scene: where the compositor's time goes."""
    scene = make_scene(patch.scene, ctx, patch.size, patch.fields)
    comp = Compositor(ctx, patch.chain, patch.size, (1280, 720), Reporter(), watch=False, fields=patch.fields)
    bank = ParamBank(REGISTRY)
    for name, value in patch.params.items():
        bank.set(name, value, immediate=True)
    timings: dict[str, list[float]] = {}
    for n in range(frames):
        fp = bank.advance(n, n / 60.0, 1 / 60.0)
        src = scene.render(fp)
        assert comp.chain is not None  # the compositor raises when its chain does not build
        comp.chain.render({"source": src, "scene": src, "original": src}, fp, timings)
    comp.release()
    scene.release()
    return {name: summary(ms[5:]) for name, ms in timings.items()}


def bench_recording(ctx, patch, size, fps: float, seconds: float) -> dict[str, Any]:
    """Live H.264 takes: the loop's rate with and without a take (unpaced shows the cost, paced at
    `fps` whether anything drops), and the offline render speed."""
    import tempfile
    from pathlib import Path

    from ..clock import OfflineClock
    from ..record.deck import RecordDeck

    def run(paced: bool, record: bool, clock=None) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            deck = RecordDeck(size, fps, Reporter(), first=Path(tmp) / "take.mp4")
            show = make_show(ctx, patch, size, outputs=[deck],
                             clock=clock or RealtimeClock(fps if paced else 1000.0, paced=paced))
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
