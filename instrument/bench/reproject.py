"""What carrying a dream costs and gives, apart from the machine's load: the pass timed by how far it
carries, the loop with and without it, and the show rendered offline with its dreams shown a fixed
number of frames late on purpose (`noclip bench --only reproject,late`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from .lag import clean_tape, compare, sheet


def bench_reproject(ctx, size: tuple[int, int], frames: int) -> dict[str, Any]:
    """What the compositor pays a frame to carry a dream, on a Backrooms walk at `size` (the scene's
    grid): recording the frame's motion and depth into the ring, the carrying pass by how many frames
    it carries, and the mix alone and carrying as it mixes (the way a show whose scene, dream and
    ring share one grid takes), each finished before it is timed (llvmpipe draws lazily)."""

    from ..params import REGISTRY, FrameParams
    from ..render.compositor import core_program
    from ..render.gl import draw, quad_buffer, target
    from ..render.reproject import CARRY, Ring, SceneMotion
    from ..scene.backrooms import Backrooms
    from .common import summary

    ages = (1, 2, 4, 6, CARRY)
    quad = quad_buffer(ctx)
    names = ("pack", "reproject", "reproject_odd", "mixer_grid", "mixer_carry", "mixer_carry_odd")
    pack, even, odd, mixer, mixing, mixing_odd = (core_program(ctx, quad, k) for k in names)
    scene = Backrooms(ctx, size)
    ring = Ring(ctx, size)
    dream = ctx.texture(size, 3)
    mixed, mixed_fbo = target(ctx, size)
    values = REGISTRY.defaults()
    times: dict[str, list[float]] = {"record": [], "mix": [], **{f"carry {k}": [] for k in ages},
                                     **{f"mixing carry {k}": [] for k in ages}}

    @contextlib.contextmanager
    def timed(key: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        ctx.finish()
        times[key].append((time.perf_counter() - t) * 1000)

    def mix(prog, tex) -> None:
        prog.bind_textures({"scene": tex, "generated": dream, "low": tex})
        draw(prog, mixed_fbo)

    try:
        for n in range(frames):
            fp = FrameParams(n, n / 30.0, 1 / 30.0, values)
            tex = scene.render(fp)
            ctx.finish()
            with timed("record"):
                ring.record(pack, n, SceneMotion(scene.motion, scene.depth, scene.cut))
            if n < CARRY + 1:
                continue
            with timed("mix"):
                mix(mixer, tex)
            for k in ages:
                with timed(f"carry {k}"):
                    ring.carry((even, odd), dream, n - k, n, tex)
                with timed(f"mixing carry {k}"):
                    ring.bind((mixing, mixing_odd)[k % 2], dream, n - k, n)
                    mix((mixing, mixing_odd)[k % 2], tex)
    finally:
        for obj in (ring, scene, pack, even, odd, mixer, mixing, mixing_odd, dream, mixed, mixed_fbo, quad):
            obj.release()
    p50 = {k: float(np.median(v)) for k, v in times.items() if v}
    # on one grid the carry costs the record and what carrying adds to the mix
    one_grid = {k: p50["record"] + p50[f"mixing carry {k}"] - p50["mix"] for k in ages}
    return {"size": f"{size[0]}x{size[1]}", **{k: summary(v) for k, v in times.items()},
            "one_grid_ms": one_grid}


def print_reproject(r: dict[str, Any]) -> None:
    print(f"reprojection at a {r['size']} scene grid, each pass finished, median ms: "
          + "  ".join(f"{k} {v['p50']:.2f}" for k, v in r.items() if isinstance(v, dict) and v.get("n")))
    print("  carried as it is mixed (scene, dream and ring on one grid, as the default show): record + what "
          "carrying adds to the mix, ms: " + "  ".join(f"age {k} {v:.2f}" for k, v in r["one_grid_ms"].items()))


def bench_reproject_loop(ctx, patch, size: tuple[int, int], frames: int, age: int = 2,
                         blocks: int = 25) -> dict[str, Any]:
    """The show's loop, unpaced, with the dream carried and not, in alternating blocks of frames (a
    busy machine drifts more over a run than the pass costs): the default show's scene and chain at
    output `size`, its generator replaced by one that answers at once but `age` frames late, so the
    pass always has that far to carry whatever the model and the machine would make of it."""
    from dataclasses import replace

    from ..generate.worker import ThreadedGenerator
    from .common import realtime_show

    class Lagging:
        """An engine that answers at once with the scene, as the dream of `age` frames ago."""

        def __init__(self) -> None:
            self.stats = {"base_frame": -1}

        def __call__(self, base, fp):
            self.stats["base_frame"] = max(fp.frame - age, 0)
            return base.image

    engine = Lagging()
    show = realtime_show(ctx, replace(patch, model="none"), size, 1000.0, False)
    show.generator = ThreadedGenerator("lagging", engine, ctx, patch.size, show.reporter, live=False)
    per_frame: list[float] = []  # ms a frame of each block; even blocks carried, odd ones not
    try:
        show.run(frames=10)
        for b in range(blocks | 1):  # odd: every carried block has a block without on each side
            show.bank.set("reproject", b % 2 == 0, immediate=True)
            show.run(frames=3)  # the switch settles (turned on, the ring refills)
            ctx.finish()
            t = time.perf_counter()
            show.run(frames=frames)
            ctx.finish()
            per_frame.append((time.perf_counter() - t) * 1000 / frames)
    finally:
        show.close()
    # each carried block against the mean of the blocks beside it: a machine's drift over the run
    # cancels, and the median of the pairs leaves out the blocks a stall fell into
    pairs = [per_frame[b] - (per_frame[b - 1] + per_frame[b + 1]) / 2 for b in range(2, len(per_frame) - 1, 2)]
    on = 1000 / float(np.median(per_frame[0::2]))
    off = 1000 / float(np.median(per_frame[1::2]))
    return {"size": f"{size[0]}x{size[1]}", "scene": f"{patch.size[0]}x{patch.size[1]}", "age": age,
            "ms": float(np.median(pairs)), "spread": [float(x) for x in np.percentile(pairs, (25, 75))],
            "fps_on": on, "fps_off": off, "ratio": on / off if off else 0.0}


class _Late:
    """A generator shown `age` frames late: the real one dreams every frame (offline, exact), and
    this hands the compositor the dream of `age` frames ago, as a live show whose generator lags by
    that much would. The lag of the live path without the machine's load in the figures."""

    def __init__(self, inner, ctx, age: int) -> None:
        self.inner, self.age, self.name = inner, age, f"{inner.name} {age} frames late"
        self.past: list[tuple[int, int, Any]] = []  # (frame handed in, its base frame, RGB of its dream)
        self.texture: moderngl.Texture | None = None
        self.dream = (-1, -1)
        self.commands = inner.commands

    def submit(self, scene, fp, motion=None, cut=False) -> None:
        self.inner.submit(scene, fp, motion, cut)
        self.frame = fp.frame

    def latest(self):
        tex = self.inner.latest()
        if tex is None:
            return None
        base = self.inner.base_frame
        self.past.append((self.frame, base, np.frombuffer(tex.read(), np.uint8).copy()))
        self.past = self.past[-(self.age + 1):]
        handed, base, data = self.past[0]
        if self.texture is None:
            self.texture = tex.ctx.texture(tex.size, tex.components)
        self.texture.write(data)
        self.dream = (handed, base)
        return self.texture

    @property
    def base_frame(self) -> int | None:
        return self.dream[1] if self.dream[1] >= 0 else None

    def stats(self) -> dict[str, Any]:
        return self.inner.stats()

    def ready(self) -> None:
        self.inner.ready()

    def missing(self, frame: int) -> str | None:
        return self.inner.missing(frame)

    def release(self) -> None:
        self.inner.release()
        if self.texture is not None:
            self.texture.release()


def bench_late(patch_name: str, fps: float, size: tuple[int, int], seconds: float,
               ages: tuple[int, ...] = (0, 1, 2, 3), keep: Path | None = None) -> dict[str, Any]:
    """The lag behind the scene of a show whose dreams come `age` frames late, carried and not: the
    default show rendered on the offline clock (every frame dreamed, by the real model), each frame
    showing the dream of `age` frames before, against the same show with `--model none`."""
    from dataclasses import replace

    from ..clock import OfflineClock
    from ..params import REGISTRY
    from ..patch import load_patch
    from ..record.session import make_show
    from ..render.gl import headless_context, read_rgb

    patch = load_patch(patch_name)
    sets = dict(s.split("=", 1) for s in clean_tape(patch.chain))
    clean = {k: REGISTRY[k].coerce(v) for k, v in sets.items()}
    frames = round(seconds * fps)
    ctx = headless_context()

    sheet_frames = range(frames // 2, frames // 2 + 6)
    pictures: dict[str, list[np.ndarray]] = {}

    def play(model: str, age: int | None, reproject: bool) -> dict[int, np.ndarray]:
        show = make_show(ctx, replace(patch, model=model), size, clock=OfflineClock(fps),
                         overrides={**clean, "reproject": reproject})
        if age is not None:
            show.generator = _Late(show.generator, ctx, age)
        out, kept = {}, []
        try:
            for n in range(frames):
                show.step()
                rgb = read_rgb(show.compositor.fbo)
                out[n] = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
                if n in sheet_frames:
                    kept.append(rgb.copy())
        finally:
            show.close()
        pictures[f"{model} {age} {reproject}"] = kept
        return out

    try:
        scene = play("none", None, False)
        out: dict[str, Any] = {"fps": fps, "size": f"{size[0]}x{size[1]}", "seconds": seconds,
                               "model": patch.model}
        for age in ages:
            for reproject in ((False, True) if age else (False,)):
                r = compare(play(patch.model, age, reproject), scene)
                out[f"age {age}" + (" carried" if reproject else "")] = r
    finally:
        ctx.release()
    if keep is not None and max(ages) > 0:
        age = max(ages)
        rows = [("scene", pictures["none None False"]),
                (f"dream {age} frames late, as it is", pictures[f"{patch.model} {age} False"]),
                (f"dream {age} frames late, carried to the frame", pictures[f"{patch.model} {age} True"])]
        out["contact_sheet"] = str(sheet(rows, list(sheet_frames), keep / f"late-{age}-{fps:g}.png"))
    return out


def print_late(r: dict[str, Any]) -> None:
    print(f"\ndreams shown late on purpose ({r['model']}, offline, {r['fps']:g} fps, {r['size']}, "
          f"{r['seconds']:g} s, clean tape), against the scene-only render:")
    for key, x in r.items():
        if isinstance(x, dict):
            print(f"  {key:<16} mean lag {x['mean_lag']:.2f} frames, {100 * x['aligned']:.0f}% aligned, "
                  f"flicker {x['flicker_ratio']:.2f}x the scene's")
