"""Generator benches: the engine alone at each working size, and what dreaming costs the show's loop."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from ..params import REGISTRY, FrameParams
from .common import past, realtime_show

GENERATOR_SIZES = ((256, 192), (512, 384))  # 4:3, multiples of 64 (latents of 8-cell UNets at ÷8)
ROUNDS = 3  # the engine section times each runtime this many times, alternated, and keeps the medians


def walk_frames(ctx, size: tuple[int, int], frames: int, **sets: Any) -> list:
    """A Backrooms walk as the generator receives it: colour and motion read back, turned (`sets`:
    parameters other than the defaults, e.g. a held-out `level_seed`)."""
    from ..generate.worker import BaseFrame
    from ..scene.backrooms import Backrooms

    scene = Backrooms(ctx, size)
    values = {**REGISTRY.defaults(), **sets}
    colour = np.empty((size[1], size[0], 4), np.uint8)
    motion = np.empty((size[1], size[0], 2), np.float32)
    out = []
    for n in range(frames):
        scene.render(FrameParams(n, n / 30.0, 1 / 30.0, values)).read_into(colour)
        scene.motion.read_into(motion)
        out.append(BaseFrame(colour[::-1, :, :3].copy(), motion.copy(), scene.cut, gl=True).prepared())
    scene.release()
    return out


def bench_engine(ctx, backend, size: tuple[int, int], seconds: float, steps: tuple[int, ...] = (1, 2),
                 frames: list | None = None) -> dict[str, Any]:
    """Generator fps at one working size: each step count, and Stream Batch on too for more than
    one (plain engine calls on a walk, no loop around them), similarity skip off so every frame is
    dreamed."""
    from ..generate.stream import StreamEngine

    frames = frames or walk_frames(ctx, size, 24)
    out: dict[str, Any] = {}
    for n_steps, batch in [(k, b) for k in steps for b in ((False, True) if k > 1 else (False,))]:
        key = f"steps {n_steps}" + (" batch" if batch else "")
        try:
            engine = StreamEngine(backend, size)
            values = {**REGISTRY.defaults(), "steps": n_steps, "stream_batch": batch, "similarity_skip": 0.0}
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


def on_runtime(backend, runtime: str, size: tuple[int, int] | None = None):
    """The backend at working size `size` on `runtime` (`name` or `name:precision`; torch: as it
    is), or why it cannot run."""
    from ..generate.accel import accelerate
    from ..report import Reporter

    sized = replace(backend, size=size or backend.size)
    name, _, precision = runtime.partition(":")
    if name == "torch":
        return sized, None
    reporter = Reporter()
    fast = accelerate(sized, name, reporter, precision=precision or None)
    if fast is sized:
        return None, "; ".join(text for _, text in reporter.recent) or "not built"
    return fast, None


def bench_loop_busy(ctx, patch, backend, size, seconds: float, fps: float = 60.0) -> dict[str, Any]:
    """The show's loop paced at `fps` on the Backrooms, with the scene alone and with the generator
    dreaming on its thread: what the generator costs the loop, and what it gets done meanwhile
    (they share the cores and Python's GIL, which moderngl holds while llvmpipe draws)."""
    from ..generate.stream import StreamEngine
    from ..generate.worker import ThreadedGenerator

    out: dict[str, Any] = {}
    walk = replace(patch, scene="backrooms", model="none", size=backend.size)
    for key in ("none", "busy"):
        show = realtime_show(ctx, walk, size, fps, True)
        if key == "busy":
            show.generator.release()
            show.generator = ThreadedGenerator(backend.name, StreamEngine(backend), ctx, backend.size,
                                               show.reporter, live=True)
        show.run(frames=10)
        n0, t0 = show.clock.frame, time.perf_counter()
        done0 = show.generator.stats()["done"] if key == "busy" else 0
        show.run(until=past(t0 + seconds, time.perf_counter))
        elapsed = time.perf_counter() - t0
        out[f"{key}_fps"] = (show.clock.frame - n0) / elapsed
        if key == "busy":
            out["generator_fps"] = (show.generator.stats()["done"] - done0) / elapsed
        show.close()
    out["ratio"] = out["busy_fps"] / out["none_fps"] if out["none_fps"] else 0.0
    return out


def bench_generator(ctx, patch, model: str, size: tuple[int, int], seconds: float, backend=None, *,
                    runtimes: list[str] | None = None, sizes: list[tuple[int, int]] | None = None,
                    steps: list[int] | None = None, threads: int | None = None) -> dict[str, Any]:
    """Generator figures for `model` (or a Backend given directly) on each runtime side by side, at
    each working size and step count; the reason when none loads. `sd-tiny` and `sd-tiny-kl` are
    tiny SD-shaped diffusers models with random weights (generate/accel/bench.py)."""
    import torch

    if backend is None:
        try:
            backend = _load(model)
        except Exception as exc:
            return {"model": model, "loaded": False, "error": f"{type(exc).__name__}: {exc}"}
    from ..generate.accel.cpu import RUNTIMES, why_not
    from ..generate.stream import share_cpu

    if threads:
        torch.set_num_threads(threads)
    else:
        share_cpu(backend)
    if not runtimes:
        runtimes = ["torch", *(r for r in RUNTIMES if why_not(r, backend.device) is None)]
    sizes = sizes or sorted({*GENERATOR_SIZES, tuple(backend.size)}, key=lambda s: s[0] * s[1])
    table: dict[str, dict[str, Any]] = {}
    for w, h in sizes:
        frames = walk_frames(ctx, (w, h), 24)
        row: dict[str, Any] = {}
        played = {}
        for runtime in runtimes:
            played[runtime], why = on_runtime(backend, runtime, (w, h))
            if played[runtime] is None:
                row[runtime] = f"not run: {why}"
        rounds: dict[str, list[dict[str, Any]]] = {r: [] for r in runtimes if played[r] is not None}
        for _ in range(ROUNDS):   # alternated, so the machine's drift lands on every runtime alike
            for runtime, runs in rounds.items():
                runs.append(bench_engine(ctx, played[runtime], (w, h), seconds, tuple(steps or (1, 2)), frames))
        row |= {runtime: _median(runs) for runtime, runs in rounds.items()}
        table[f"{w}x{h}"] = {r: row[r] for r in runtimes}
    return {"model": backend.name, "loaded": True,
            "device": f"{backend.device} ({torch.get_num_threads()} threads)",
            "working_size": f"{backend.size[0]}x{backend.size[1]}", "engine_fps": table,
            "loop": bench_loop_busy(ctx, patch, backend, size, seconds)}


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (a failure stands for itself)."""
    return {k: float(np.median([r[k] for r in runs])) if all(isinstance(r[k], float) for r in runs)
            else next(r[k] for r in runs if not isinstance(r[k], float)) for k in runs[0]}


WIDTHS = (48, 56, 64, 72, 80, 96)   # the builtin denoiser's widths the budget tries (48: shipped)


def bench_budget(runtimes: list[str]) -> dict[str, Any]:
    """How much larger a builtin denoiser fits, on each runtime, in the time torch takes for the
    shipped one's dream (encode, one step, the change): random-weight builtins of each width in
    WIDTHS (the denoiser's parameters grow as its width squared), timed as `auto` times them."""
    from ..generate.accel.cpu import per_dream
    from ..generate.builtin import WEIGHTS, read_config

    meta = read_config(WEIGHTS)
    shipped = per_dream(_builtin_of_width(meta, meta["config"]["unet_ch"]))
    out: dict[str, Any] = {"torch_ms": 1000 * shipped, "shipped_width": meta["config"]["unet_ch"],
                           "runtimes": {}}
    for runtime in runtimes:
        row: dict[int, Any] = {}
        for width in WIDTHS:
            played, why = on_runtime(_builtin_of_width(meta, width), runtime)
            row[width] = 1000 * per_dream(played) if played is not None else f"not run: {why}"
        fits = [w for w, ms in row.items() if isinstance(ms, float) and ms <= 1000 * shipped]
        out["runtimes"][runtime] = {"ms": row, "fits": max(fits) if fits else None}
    return out


def _builtin_of_width(meta: dict, width: int):
    """The builtin with random weights and a denoiser `width` wide (everything else as shipped)."""
    import torch

    from ..generate.builtin import build, config_of
    from ..generate.builtin.model import Change, Decoder, Encoder, UNet

    meta = {**meta, "config": {**meta["config"], "unet_ch": width}}
    config = config_of(meta)
    torch.manual_seed(0)
    state = {"latent_shift": torch.zeros(config.latent), "latent_scale": torch.ones(config.latent)}
    for prefix, module in (("enc.", Encoder(config)), ("dec.", Decoder(config)), ("unet.", UNet(config)),
                           ("change.", Change(config))):
        state |= {prefix + k: v for k, v in module.state_dict().items()}
    return build(meta, state, "cpu")


def print_budget(b: dict[str, Any]) -> None:
    print(f"\nbuiltin budget: the shipped denoiser (width {b['shipped_width']}) dreams in "
          f"{b['torch_ms']:.1f} ms on torch; ms a dream by denoiser width:")
    for runtime, row in b["runtimes"].items():
        cells = "  ".join(f"{w} {ms:.1f}" if isinstance(ms, float) else f"{w} {ms}"
                          for w, ms in row["ms"].items())
        fits = row["fits"]
        said = (f"width {fits} fits ({(fits / b['shipped_width']) ** 2:.2f}x the denoiser's "
                "parameters)" if fits else "none fits")
        print(f"  {runtime:<18} {cells}   -> {said}")


def _load(model: str):
    if model in ("sd-tiny", "sd-tiny-kl"):
        import torch

        from ..generate.accel.bench import sized_backend

        return sized_backend(model, torch.device("cpu"), torch.float32, 256)
    from ..generate import load_backend

    return load_backend(model)


def print_generator(g: dict[str, Any]) -> None:
    if not g["loaded"]:
        print(f"\ngenerator: no backend loaded ({g['model']}: {g['error']})")
        return
    print(f"\ngenerator {g['model']} on {g['device']} (working size {g['working_size']}), "
          f"engine alone on a walk, fps (x torch; medians of {ROUNDS} alternated rounds):")
    for size, row in g["engine_fps"].items():
        base = row.get("torch") if isinstance(row.get("torch"), dict) else {}
        for runtime, figures in row.items():
            if not isinstance(figures, dict):
                print(f"  {size:>9} {runtime:<12} {figures}")
                continue
            cells = []
            for k, v in figures.items():
                if not isinstance(v, float):
                    cells.append(f"{k} {v}")
                    continue
                ref = base.get(k)
                ratio = f" ({v / ref:.2f}x)" if isinstance(ref, float) and runtime != "torch" else ""
                cells.append(f"{k} {v:.2f}{ratio}")
            print(f"  {size:>9} {runtime:<12} " + "  ".join(cells))
    lo = g["loop"]
    print(f"loop paced at 60 fps, backrooms: {lo['none_fps']:.1f} fps alone, {lo['busy_fps']:.1f} fps "
          f"while the generator dreams ({100 * lo['ratio']:.0f}%) at {lo['generator_fps']:.2f} generated fps")
