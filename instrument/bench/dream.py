"""Does the dream make the picture better than the scene alone? `noclip bench --only dream`.

The same walk is rendered three times through a clean tape (every artifact 0, no CRT, `fit =
stretch`, 640x480), exactly as `noclip render` makes it: the scene alone (`--model none`), the
dream, and the dream with another seed. Only the generator differs, so the figures are the
generator's:

- detail: variance of the Laplacian of luma, dream / scene (what the picture holds at the finest
  scale the tape lets through);
- structure: mean SSIM of 8x8 luma blocks at 320x240, dream vs scene (the geometry stays put);
- seeds: mean absolute difference between the two seeds (0..1): the seed chooses something;
- flicker: mean frame-to-frame luma change, dream / scene (coherence not bought with smear shows
  here and in detail together);
- grid: the power of luma at the latent grid's frequency (a pattern repeating every latent cell,
  on both axes at once) over the power around it, dream and scene. A decoder that draws its own
  grid passes the detail figure with a pattern, not the room (an adversarial decoder once made
  1.08x detail this way: 7.0 against the scene's 1.1).

And the tape detail the show carries: a luma sweep chart played as `--source` through the patch with
`--model none`, its -3 dB point in MHz (the tape's active line over 640 px) at SP, LP and EP.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ..render.gl import shader_path
from .lag import block_ssim, clean_tape, rgb_frames, run_noclip, sheet

FPS, SECONDS, SIZE = 15.0, 4.0, (640, 480)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SWEEP_MHZ = np.geomspace(0.3, 4.5, 24)
BAND = 20                 # rows per sweep frequency: 24 bands fill 480 lines
SWEEP_AMP = 0.25


@cache
def active_us() -> float:
    """The active line (µs) the tape stages spread over 640 px: read from shaders/vhs/tape.glsl,
    where the chain's figures are written once."""
    m = re.search(r"const float ACTIVE_US\s*=\s*([0-9.]+)", shader_path("vhs/tape.glsl").read_text())
    if m is None:
        raise RuntimeError("shaders/vhs/tape.glsl: no `const float ACTIVE_US`")
    return float(m.group(1))


def cycles_per_px(mhz: float | np.ndarray, width: int = SIZE[0]) -> float | np.ndarray:
    """A luma frequency (MHz) as cycles per pixel of a `width`-pixel active line."""
    return mhz * active_us() / width


def render(folder: Path, name: str, patch: str, *extra: str, seconds: float = SECONDS,
           fps: float = FPS, size: tuple[int, int] = SIZE) -> dict[int, np.ndarray]:
    """`noclip render` of the patch through a clean tape; the frames as RGB uint8."""
    out = folder / f"{name}.mkv"
    sets = [a for s in clean_tape() for a in ("--set", s)]
    run = run_noclip("render", "--patch", patch, "-o", str(out), "--codec", "ffv1", "--fps", f"{fps:g}",
                  "--seconds", f"{seconds:g}", "--size", f"{size[0]}x{size[1]}", *sets, *extra)
    if run.returncode != 0:
        raise RuntimeError(f"noclip render {name} failed ({run.returncode}): {run.stderr[-2000:]}")
    return rgb_frames(out, fps)


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ LUMA


def laplacian_variance(y: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a luma image (0..255)."""
    lap = y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4 * y[1:-1, 1:-1]
    return float(lap.var())


def half(y: np.ndarray) -> np.ndarray:
    """2x2 block means: 640x480 → 320x240."""
    h, w = y.shape[0] // 2 * 2, y.shape[1] // 2 * 2
    return y[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))


def flicker(frames: list[np.ndarray]) -> float:
    """Mean absolute frame-to-frame luma change (0..1)."""
    return float(np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(frames)])) / 255


def grid_peak(frames: list[np.ndarray], cells: tuple[int, int]) -> float:
    """Luma's power over the walk at the frequency of a (w, h) grid of cells, on both axes at once,
    over its mean power within 4 bins around (the bins next to it left out)."""
    h, w = frames[0].shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.sum([np.abs(np.fft.rfft2((y - y.mean()) * window)) ** 2 for y in frames], axis=0)
    fx, fy = cells
    around = [power[(fy + dy) % h, fx + dx] for dy in range(-4, 5) for dx in range(-4, 5)
              if abs(dy) + abs(dx) > 1 and 0 <= fx + dx < power.shape[1]]
    return float(power[fy, fx] / np.mean(around))


def compare(scene: dict[int, np.ndarray], dream: dict[int, np.ndarray],
            other: dict[int, np.ndarray], cells: tuple[int, int] = (64, 48)) -> dict[str, Any]:
    """The issue's figures for a dream (and its other seed) against the scene alone; `cells`: the
    dream's latent grid (the builtin's at 256x192: 64x48)."""
    common = sorted(set(scene) & set(dream) & set(other))
    ys, yd = [luma(scene[i]) for i in common], [luma(dream[i]) for i in common]
    detail_scene = float(np.mean([laplacian_variance(y) for y in ys]))
    detail_dream = float(np.mean([laplacian_variance(y) for y in yd]))
    seeds = float(np.mean([np.abs(dream[i].astype(np.float32) - other[i]).mean() for i in common])) / 255
    f_scene, f_dream = flicker(ys), flicker(yd)
    return {"frames": len(common),
            "detail": detail_dream / detail_scene, "detail_scene": detail_scene, "detail_dream": detail_dream,
            "ssim": float(np.mean([block_ssim(half(a), half(b)) for a, b in zip(yd, ys, strict=True)])),
            "seeds": seeds, "flicker": f_dream / f_scene, "flicker_scene": f_scene, "flicker_dream": f_dream,
            "grid_dream": grid_peak(yd, cells), "grid_scene": grid_peak(ys, cells)}


def sweep_chart(path: Path, size: tuple[int, int] = SIZE) -> Path:
    """Bands of rows, each a horizontal luma sine of one frequency (0.3-4.5 MHz) on mid grey."""
    from PIL import Image

    x = np.arange(size[0])
    img = np.full((size[1], size[0]), 0.5, np.float32)
    for b, f in enumerate(SWEEP_MHZ):
        img[b * BAND:(b + 1) * BAND] += SWEEP_AMP * np.sin(2 * np.pi * cycles_per_px(f, size[0]) * x)
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).convert("RGB").save(path)
    return path


def amplitude(row: np.ndarray, cycles_per_px: float, x: np.ndarray) -> float:
    """Least-squares amplitude of one frequency in a row (any phase, any DC)."""
    a = np.stack([np.sin(2 * np.pi * cycles_per_px * x), np.cos(2 * np.pi * cycles_per_px * x),
                  np.ones_like(x)], axis=1)
    c, *_ = np.linalg.lstsq(a, row, rcond=None)
    return float(np.hypot(c[0], c[1]))


def crossing(freqs: np.ndarray, gains: np.ndarray) -> float | None:
    """The first -3 dB point of a response (gains relative to the passband), interpolated on a
    log-frequency axis; None when it never falls that far."""
    db = 20 * np.log10(np.maximum(np.asarray(gains), 1e-6))
    below = np.nonzero(db < -3.0103)[0]
    if not below.size or below[0] == 0:
        return None
    i = below[0]
    t = (db[i - 1] + 3.0103) / (db[i - 1] - db[i])
    return float(np.exp(np.log(freqs[i - 1]) + t * (np.log(freqs[i]) - np.log(freqs[i - 1]))))


def cutoff(rgb: np.ndarray) -> float:
    """The -3 dB point of the luma sweep in a rendered chart, in MHz, gains relative to the lowest
    band's (the top of the sweep when it never falls that far)."""
    y = luma(rgb) / 255
    cols = np.arange(48, y.shape[1] - 48)
    gains = []
    for b, f in enumerate(SWEEP_MHZ):
        rows = y[b * BAND + 5:(b + 1) * BAND - 3, cols]
        per_px = float(cycles_per_px(float(f), y.shape[1]))
        gains.append(np.mean([amplitude(r, per_px, cols.astype(float)) for r in rows]))
    found = crossing(SWEEP_MHZ, np.array(gains) / gains[0])
    return float(SWEEP_MHZ[-1]) if found is None else found


def bench_sweep(folder: Path, patch: str) -> dict[str, float]:
    """Luma -3 dB of the whole show without a dream, per tape speed (a sweep chart as --source)."""
    chart = sweep_chart(folder / "sweep.png")
    out = {}
    for speed in ("SP", "LP", "EP"):
        frames = render(folder, f"sweep-{speed}", patch, "--source", str(chart), "--model", "none",
                        "--set", f"tape_speed={speed}", seconds=0.4)
        out[speed] = cutoff(frames[max(frames)])
    return out


def bench_dream(patch: str, seconds: float = SECONDS, keep: Path | None = None,
                sets: tuple[str, ...] = (), sweep: bool = True) -> dict[str, Any]:
    """The walk three times (scene, dream, other seed), the figures, the sweep; with `keep`, the
    renders and a contact sheet (scene | dream | other seed) stay in that folder."""
    extra = [a for s in sets for a in ("--set", s)]
    with tempfile.TemporaryDirectory(prefix="noclip-dream-") as tmp:
        folder = keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        scene = render(folder, "scene", patch, "--model", "none", *extra, seconds=seconds)
        dream = render(folder, "dream", patch, *extra, seconds=seconds)
        other = render(folder, "dream-seed1", patch, *extra, "--set", "seed=1", seconds=seconds)
        out: dict[str, Any] = {"patch": patch, "seconds": seconds, "fps": FPS, "size": f"{SIZE[0]}x{SIZE[1]}",
                               **compare(scene, dream, other, latent_grid(patch))}
        if sweep:
            out["sweep_mhz"] = bench_sweep(folder, patch)
        if keep is not None:
            out["contact_sheet"] = str(contact_sheet(scene, dream, other, folder / "dream-walk.png"))
    return out


def latent_grid(patch: str) -> tuple[int, int]:
    """The patch's dream's latent grid (cells across and down): its dream size over its model's
    pixels per cell (the builtin's config; diffusers' autoencoders: 8)."""
    from ..generate.builtin import WEIGHTS, config_of, read_config
    from ..patch import load_patch

    p = load_patch(patch)
    factor = config_of(read_config(WEIGHTS)).factor if p.model == "builtin" else 8
    w, h = p.dream
    return w // factor, h // factor


def contact_sheet(scene: dict, dream: dict, other: dict, out: Path, count: int = 5) -> Path:
    """Frames spread over the walk: the scene alone, the dream, the dream with seed 1."""
    common = sorted(set(scene) & set(dream) & set(other))
    picks = [common[round(i * (len(common) - 1) / (count - 1))] for i in range(count)]
    rows = [("scene alone (--model none)", scene), ("dream (seed 0)", dream), ("dream (seed 1)", other)]
    return sheet([(label, [frames[n] for n in picks]) for label, frames in rows], picks, out, width=320)


def print_dream(r: dict[str, Any]) -> None:
    print(f"\nthe dream against the scene alone, {r['patch']}: a {r['seconds']:g} s walk at {r['fps']:g} fps, "
          f"{r['size']}, clean tape ({r['frames']} frames)")
    print(f"  detail {r['detail']:.3f}x the scene (Laplacian variance {r['detail_dream']:.2f} vs "
          f"{r['detail_scene']:.2f}; target >= 1.0)")
    print(f"  structure: 8x8-block SSIM at 320x240 {r['ssim']:.3f} (target >= 0.6)")
    print(f"  seeds: mean difference {r['seeds']:.4f} (target >= 0.03)")
    print(f"  flicker {r['flicker']:.2f}x the scene ({r['flicker_dream']:.4f} vs {r['flicker_scene']:.4f}; "
          f"target <= 1.2)")
    if "grid_dream" in r:
        print(f"  latent-grid pattern: {r['grid_dream']:.2f}x the power around it (the scene "
              f"{r['grid_scene']:.2f}x; a decoder's own grid shows as more than the scene's)")
    if "sweep_mhz" in r:
        s = r["sweep_mhz"]
        print(f"  the show without a dream, luma -3 dB: SP {s['SP']:.2f}, LP {s['LP']:.2f}, "
              f"EP {s['EP']:.2f} MHz "
              f"(SP/EP {s['SP'] / s['EP']:.2f}; targets SP >= 2.0, SP/EP >= 1.3)")
    if "contact_sheet" in r:
        print(f"  contact sheet: {r['contact_sheet']}")
