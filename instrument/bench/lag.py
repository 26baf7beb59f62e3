"""How far the live picture lags the scene it shows: a live take against the scene-only re-render of
its own performance file, frame by frame.

The take is made the way a performer makes one (`noclip play --headless --record` in its own
process, the generator in another), through a clean tape (every artifact 0, no OSD, no CRT,
`fit = stretch`) so that only the picture's geometry differs between the two files; the performance
file is then rendered again with `--model none`, which is the scene the show had at each frame. For
each live frame the scene frame it matches best (mean SSIM over 8x8 luma blocks, among the frames
around it) says how late it is. Frames where no dream was shown yet (the model still loading: the
live frame is the scene's own) are left out; they would count as aligned for free.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from ..record.video import time_base
from ..render.chain import load_chain_spec

SEARCH = (-6, 2)  # scene frames looked at around each live frame: 6 earlier to 2 later
BLOCK = 8


def clean_tape(chain: str = "vhs") -> list[str]:
    """`--set` arguments for a tape that changes nothing the comparison could mistake for motion:
    every float the chain declares at its minimum, every switch off, a flat stretched screen."""
    out = []
    for p in load_chain_spec(chain).params:
        if p.type == "float":
            out.append(f"{p.name}={p.min if p.min is not None else 0.0}")
        elif p.type == "bool" and p.name != "recording":
            out.append(f"{p.name}=false")
    return [*out, "crt=false", "fit=stretch"]


def luma(path: Path, fps: float) -> dict[int, np.ndarray]:
    """Frame index -> luma (float32, H x W) of a video file, placed by its timestamps (a frame the
    live recorder dropped leaves its gap)."""
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for f in c.decode(v):
            rgb = f.to_ndarray(format="rgb24").astype(np.float32)
            index = round(float(f.pts * time_base(v)) * fps) if f.pts is not None else len(frames)
            frames[index] = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return frames


def block_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over non-overlapping 8x8 blocks of two luma images (0..255)."""
    h, w = (a.shape[0] // BLOCK) * BLOCK, (a.shape[1] // BLOCK) * BLOCK
    x = a[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    y = b[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK)
    mx, my = x.mean((1, 3)), y.mean((1, 3))
    vx, vy = x.var((1, 3)), y.var((1, 3))
    cov = (x * y).mean((1, 3)) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def compare(live: dict[int, np.ndarray], scene: dict[int, np.ndarray]) -> dict[str, Any]:
    """Lag of each live frame behind the scene frame it matches best, and the flicker of both."""
    lags, changes, scene_changes = [], [], []
    shown = 0
    for i in sorted(live):
        if i not in scene:
            continue
        if float(np.abs(live[i] - scene[i]).mean()) < 0.5:
            continue  # the scene itself: no dream shown yet
        shown += 1
        best, lag = -2.0, 0
        for d in range(SEARCH[0], SEARCH[1] + 1):
            j = i + d
            if j in scene:
                s = block_ssim(live[i], scene[j])
                if s > best:
                    best, lag = s, -d
        lags.append(lag)
        if i - 1 in live and i - 1 in scene:
            changes.append(float(np.abs(live[i] - live[i - 1]).mean()))
            scene_changes.append(float(np.abs(scene[i] - scene[i - 1]).mean()))
    a = np.asarray(lags, dtype=float)
    flicker = float(np.mean(changes)) if changes else 0.0
    scene_flicker = float(np.mean(scene_changes)) if scene_changes else 0.0
    return {"frames": len(live), "dreamed_frames": shown,
            "mean_lag": float(a.mean()) if a.size else 0.0,
            "aligned": float((a == 0).mean()) if a.size else 0.0,
            "lags": {str(k): int((a == k).sum()) for k in sorted(set(lags))},
            "flicker": flicker, "scene_flicker": scene_flicker,
            "flicker_ratio": flicker / scene_flicker if scene_flicker else 0.0}


def run_noclip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "instrument.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))


def live_take(folder: Path, patch_name: str, fps: float, size: tuple[int, int], seconds: float,
              reproject: bool) -> tuple[Path, Path, dict[str, Any]]:
    """A live take and its performance file, assembled as `noclip play --headless --record` does
    (realtime clock, the generator in its own process, a lossless recording from frame 0), except
    that the clock starts once the model has loaded: a take spent waiting for it measures nothing."""
    from ..clock import RealtimeClock
    from ..control import ControlEvent, ControlQueue
    from ..events import CMD_TARGET
    from ..params import REGISTRY
    from ..patch import load_patch
    from ..record.deck import RecordDeck
    from ..record.performance import PerformanceWriter
    from ..record.session import make_show
    from ..render.gl import headless_context
    from ..report import Reporter

    patch = load_patch(patch_name)
    sets = dict(s.split("=", 1) for s in [*clean_tape(patch.chain), f"reproject={str(reproject).lower()}"])
    overrides = {k: REGISTRY[k].coerce(v) for k, v in sets.items()}
    video = folder / f"live-{'reproject' if reproject else 'plain'}-{fps:g}.mkv"
    perf = video.with_suffix(".performance.jsonl")
    ctx, reporter, queue = headless_context(), Reporter(), ControlQueue()
    deck = RecordDeck(size, fps, reporter, first=video, folder=folder, codec="ffv1")
    queue.put(ControlEvent("cli", CMD_TARGET + "record/start"))
    clock = RealtimeClock(fps)
    show = make_show(ctx, patch, size, clock=clock, queue=queue, reporter=reporter,
                     outputs=[deck], overrides=overrides)
    show.add_sink(PerformanceWriter(perf, patch, dict(show.targets), fps, size))
    worker = getattr(show.generator, "worker", None)
    deadline = time.monotonic() + 600
    while worker is not None and worker.loading and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.perf_counter()
    try:
        show.run(frames=round(seconds * fps))
    finally:
        elapsed = time.perf_counter() - started
        stats = show.generator.stats()
        info = {"played_fps": show.stats.fps(), "dreams_per_second": stats.get("done", 0) / elapsed,
                "late_frames": clock.late, "dream": show.stats.dream_summary(),
                "reported": [msg for _, msg in list(reporter.recent)]}
        show.close()
        ctx.release()
    return video, perf, info


def bench_lag(patch: str, fps: float, size: tuple[int, int], seconds: float,
              keep: Path | None = None) -> dict[str, Any]:
    """The lag with and without reprojection, each a live take compared with its own re-render."""
    out: dict[str, Any] = {"fps": fps, "size": f"{size[0]}x{size[1]}", "seconds": seconds, "patch": patch}
    with tempfile.TemporaryDirectory(prefix="noclip-lag-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for reproject in (False, True):
            video, perf, info = live_take(folder, patch, fps, size, seconds, reproject)
            scene = video.with_name(video.stem + "-scene.mkv")
            run = run_noclip("render", str(perf), "-o", str(scene), "--model", "none", "--codec", "ffv1",
                          "--fps", f"{fps:g}", "--size", f"{size[0]}x{size[1]}")
            if run.returncode != 0:
                raise RuntimeError(f"noclip render failed ({run.returncode}): {run.stderr[-2000:]}")
            result = compare(luma(video, fps), luma(scene, fps))
            result.update(info)
            out["reproject" if reproject else "plain"] = result
        if keep is not None:
            out["contact_sheet"] = str(contact_sheet(folder, fps, folder / f"lag-{fps:g}.png"))
    return out


def print_lag(r: dict[str, Any]) -> None:
    print(f"\nlive lag behind the scene, {r['patch']} at {r['fps']:g} fps, {r['size']}, "
          f"{r['seconds']:g} s takes through a clean tape (best 8x8-block SSIM match):")
    for key in ("plain", "reproject"):
        if key not in r:
            continue
        x = r[key]
        print(f"  {key:<9} mean lag {x['mean_lag']:.2f} frames, {100 * x['aligned']:.0f}% aligned "
              f"({x['dreamed_frames']} of {x['frames']} frames showed a dream), lags {json.dumps(x['lags'])}; "
              f"flicker {x['flicker']:.2f} vs scene {x['scene_flicker']:.2f} "
              f"({x['flicker_ratio']:.2f}x)")
        d = x.get("dream") or {}
        print(f"            played {x['played_fps']:.1f} fps ({x['late_frames']} late), "
              f"{x['dreams_per_second']:.1f} dreams a second; dream age {d.get('age', 0):.2f} frames "
              f"(carried {d.get('carried', 0):.2f}; Stream Batch {d.get('batch_lag', 0):.2f}, "
              f"hop {d.get('hop', 0):.2f})")


def contact_sheet(folder: Path, fps: float, out: Path, start: int | None = None, count: int = 6,
                  width: int = 240) -> Path:
    """Consecutive frames of the scene-only re-render (top), the live take as it was (middle) and
    the live take with reprojection (bottom), from the takes `bench_lag(keep=folder)` left: the
    rows line up when the live picture keeps up with the camera."""
    rows = [("scene (re-render of the performance)", f"live-reproject-{fps:g}-scene.mkv"),
            ("live, the newest dream as it is", f"live-plain-{fps:g}.mkv"),
            ("live, the dream carried to the frame", f"live-reproject-{fps:g}.mkv")]
    frames = [rgb_frames(folder / name, fps) for _, name in rows]
    common = sorted(set.intersection(*(set(f) for f in frames)))
    first = start if start is not None else common[len(common) // 2]
    picks = [n for n in common if n >= first][:count]
    return sheet([(label, [video[n] for n in picks]) for (label, _), video in zip(rows, frames, strict=True)],
                  picks, out, width)


def rgb_frames(path: Path, fps: float) -> dict[int, np.ndarray]:
    frames: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        for f in c.decode(v):
            index = round(float(f.pts * time_base(v)) * fps) if f.pts is not None else len(frames)
            frames[index] = f.to_ndarray(format="rgb24")
    return frames


def sheet(rows: list[tuple[str, list[np.ndarray]]], numbers: list[int], out: Path, width: int = 240) -> Path:
    """Rows of consecutive frames, labelled, one picture."""
    from PIL import Image, ImageDraw

    h = round(width * 3 / 4)
    picture = Image.new("RGB", (width * len(numbers), (h + 16) * len(rows)), (16, 16, 16))
    draw = ImageDraw.Draw(picture)
    for r, (label, frames) in enumerate(rows):
        y = r * (h + 16)
        draw.text((4, y + 2), label, fill=(230, 230, 230))
        for c, (n, rgb) in enumerate(zip(numbers, frames, strict=False)):
            tile = Image.fromarray(rgb).resize((width, h), Image.Resampling.BILINEAR)
            picture.paste(tile, (c * width, y + 16))
            draw.text((c * width + 4, y + 18), f"frame {n}", fill=(255, 255, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    return out
