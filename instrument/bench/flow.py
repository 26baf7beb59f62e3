"""Motion estimated for a video source: what it costs and what it buys. `noclip bench --only flow`.

Cost: the flow (scene/flow.py) alone on llvmpipe, each call finished, over a textured picture
sliding a few pixels a frame, at 640x480 and 1280x720 (median and p99 of the alternated sizes).

What it buys: the issue's walk (dream.py: 4 s at 15 fps, 640x480, clean tape) rendered without a
dream becomes a video; that video is played as `--source` and dreamed with the flow and without it
(`flow=false`: the source has no motion, as before), each with the patch's feedback and with none;
and the walk's own scene dreamed, whose motion is exact (scene only). Flicker is dream.py's: mean
frame-to-frame luma change, and its ratio to the picture the dream was made on (the walk without a
dream, or the video played without one). The renders are offline, so the figures are exact.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from ..scene.flow import BlockFlow, flow_size
from .common import summary
from .dream import FPS, SECONDS, flicker, half, luma, render
from .lag import block_ssim

SIZES = ((640, 480), (1280, 720))
STEP = (3, 2)  # the picture slides this many pixels (right, down) a frame


def textured(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A grey picture with detail at several scales (uint8, top-down)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for cell in (2, 8, 32):
        small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
        grown = Image.fromarray(small).resize(((w // cell + 2) * cell, (h // cell + 2) * cell),
                                              Image.Resampling.BILINEAR)
        img += np.asarray(grown)[:h, :w]
    return np.clip(128 + 40 * img, 0, 255).astype(np.uint8)


def bench_flow_cost(ctx: moderngl.Context, frames: int = 40) -> list[dict[str, Any]]:
    """Milliseconds a call of the flow, finished, at each of SIZES (taken in turn, frame by frame)."""
    rigs: list[tuple[BlockFlow, list[moderngl.Texture], list[float]]] = []
    for w, h in SIZES:
        big = textured(w + STEP[0] * 2, h + STEP[1] * 2)
        pics = []
        for n in range(2):  # two pictures a step apart, shown in turn: every call has motion to find
            grey = big[STEP[1] * (1 - n):STEP[1] * (1 - n) + h, STEP[0] * (1 - n):STEP[0] * (1 - n) + w]
            rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])[::-1]
            pics.append(ctx.texture((w, h), 4, data=np.ascontiguousarray(rgba).tobytes()))
        rigs.append((BlockFlow(ctx, (w, h)), pics, []))
    for n in range(frames + 4):
        for flow, pics, times in rigs:
            ctx.finish()
            t = time.perf_counter()
            flow(pics[n % 2])
            ctx.finish()
            if n >= 4:  # the first calls compile and warm up
                times.append(time.perf_counter() - t)
    dis = bench_dis(ctx, rigs, frames)
    out = []
    for flow, pics, times in rigs:
        finest, ratio = flow_size(flow.size)
        found = np.median(flow.field().reshape(-1, 2), axis=0)
        out.append({"size": f"{flow.size[0]}x{flow.size[1]}", "luma": f"{finest[0]}x{finest[1]}",
                    "blocks": f"{flow.grid[0]}x{flow.grid[1]}", "ratio": ratio,
                    "ms": summary(np.array(times) * 1000), "found": [round(float(v), 2) for v in found],
                    **dis.get(flow.size, {})})
        flow.release()
        for p in pics:
            p.release()
    return out


def bench_dis(ctx: moderngl.Context, rigs: list, frames: int) -> dict[tuple[int, int], dict[str, Any]]:
    """OpenCV's DIS flow (preset ultrafast) on the same pictures, where OpenCV is installed (it is
    not a dependency: the comparison that kept it out), paid as the show would pay it: the picture
    read back, made grey, the flow, the field uploaded at the scene's size. {} without OpenCV."""
    try:
        import cv2  # type: ignore[import-not-found]  # optional, not a dependency: absent in CI
    except ImportError:
        return {}
    out = {}
    for flow, pics, _ in rigs:
        w, h = flow.size
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        field = ctx.texture((w, h), 2, dtype="f4")
        rgba, times, prev, found = np.empty((h, w, 4), np.uint8), [], None, None
        for n in range(frames + 4):
            ctx.finish()
            t = time.perf_counter()
            pics[n % 2].read_into(rgba)
            grey = cv2.cvtColor(rgba[::-1], cv2.COLOR_RGBA2GRAY)
            if prev is not None:
                # calc(a, b): a(x) = b(x + f); the scenes' map is backward: next(p) = prev(p - m), m = -f
                found = -dis.calc(grey, prev, None)
                field.write(np.ascontiguousarray(found[::-1] * np.array([1, -1], np.float32)))
            ctx.finish()
            if n >= 4:
                times.append(time.perf_counter() - t)
            prev = grey
        assert found is not None
        med = np.median(found.reshape(-1, 2), axis=0) * np.array([1, -1])  # GL orientation
        if n % 2 == 0:  # the last pair went back a step: its motion is the slide reversed
            med = -med
        out[(w, h)] = {"dis_ms": summary(np.array(times) * 1000),
                       "dis_found": [round(float(v), 2) for v in med]}
        field.release()
    return out


def bench_flow_flicker(patch: str, keep: Path | None = None, seconds: float = SECONDS) -> dict[str, Any]:
    """Flicker of the dream on a video source with the flow and without, with feedback and without,
    against the scene's own exact motion."""
    with tempfile.TemporaryDirectory(prefix="noclip-flow-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)

        def dream(name: str, *extra: str) -> list[np.ndarray]:
            frames = render(folder, name, patch, *extra, seconds=seconds)
            return [luma(frames[i]) for i in sorted(frames)]

        def against(base: list[np.ndarray], ys: list[np.ndarray]) -> dict[str, float]:
            """Flicker as a ratio to the base's, and the structure kept (8x8-block SSIM at 320x240,
            the dream against its base frame by frame: a dream that lags or smears its moving base
            loses it, which flicker alone would count as a gain)."""
            ssim = [block_ssim(half(a), half(b)) for a, b in zip(ys, base, strict=True)]
            return {"flicker": flicker(ys) / flicker(base), "ssim": float(np.mean(ssim))}

        walk = dream("walk", "--model", "none")
        video = str(folder / "walk.mkv")
        base = dream("video", "--source", video, "--model", "none")
        runs: dict[str, dict[str, dict[str, float]]] = {}
        for fb, sets in (("feedback", ()), ("no feedback", ("--set", "feedback=0"))):
            tag = "fb" if not sets else "nofb"
            runs[fb] = {
                "scene only": against(walk, dream(f"scene-{tag}", *sets)),
                "video, flow": against(base, dream(f"flow-{tag}", "--source", video, *sets)),
                "video, no flow": against(base, dream(f"noflow-{tag}", "--source", video, "--set", "flow=false",
                                                      *sets)),
            }
    return {"patch": patch, "seconds": seconds, "fps": FPS, "flicker_walk": flicker(walk),
            "flicker_video": flicker(base), "runs": runs}


def bench_flow(ctx: moderngl.Context, patch: str, keep: Path | None = None) -> dict[str, Any]:
    return {"cost": bench_flow_cost(ctx), "flicker": bench_flow_flicker(patch, keep)}


def print_flow(r: dict[str, Any]) -> None:
    print(f"\nthe flow of a video source (block matching in GL, a {STEP[0]},{STEP[1]} px slide a frame), "
          "each call finished:")
    for c in r["cost"]:
        ms = c["ms"]
        print(f"  {c['size']} (luma {c['luma']}, {c['blocks']} blocks): p50 {ms['p50']:.2f} ms  "
              f"p99 {ms['p99']:.2f} ms; found {c['found'][0]:+.2f},{c['found'][1]:+.2f} px (GL, +y up)")
        if "dis_ms" in c:
            d = c["dis_ms"]
            print(f"    OpenCV DIS ultrafast (readback, grey, flow, upload): p50 {d['p50']:.2f} ms  "
                  f"p99 {d['p99']:.2f} ms; found {c['dis_found'][0]:+.2f},{c['dis_found'][1]:+.2f} px")
    f = r["flicker"]
    print(f"the dream against its base, {f['patch']}: the walk, {f['seconds']:g} s at {f['fps']:g} fps, clean "
          f"tape; flicker as a ratio to the base's (the walk {f['flicker_walk']:.4f}, the walk as a video "
          f"{f['flicker_video']:.4f}), structure kept (8x8-block SSIM at 320x240)")
    for fb, runs in f["runs"].items():
        print(f"  {fb:<12} " + "  ".join(f"{k}: flicker {v['flicker']:.2f}x ssim {v['ssim']:.3f}"
                                          for k, v in runs.items()))
