"""The builtin model's training set: Backrooms frames rendered headlessly, then augmented.

Each clip is one building (level, level_seed) walked at random speeds and wander; a frame is kept
every few hundred milliseconds with its own flicker, fog and show time, so the set covers rooms,
lights, damage and camera poses of both levels. Augmentation (exposure, light colour, depth fog,
stains, contrast) then shows the model more variety than the live scene does, so that the noise
seed has something to choose between. Everything is a function of the seed: the same seed gives
the same frames, and held-out sets use seeds the training set never sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..params import REGISTRY, FrameParams
from ..scene.backrooms import Backrooms
from ..scene.layout import LEVELS

HELD_OUT = 1_000_000   # level seeds at and above this are never trained on


@dataclass
class Frames:
    images: np.ndarray   # (N, H, W, 3) uint8, top-down
    levels: np.ndarray   # (N,) int64


def _read(scene: Backrooms) -> tuple[np.ndarray, np.ndarray]:
    w, h = scene.size
    rgb = np.frombuffer(scene.texture.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
    depth = np.frombuffer(scene.depth.read(), np.float32).reshape(h, w)[::-1]
    return rgb.copy(), depth.copy()


def _values(level: int, seed: int, rng: np.random.Generator) -> dict:
    return {**REGISTRY.defaults(), "level": str(level), "level_seed": seed,
            "speed": float(rng.uniform(0.6, 3.0)), "wander": float(rng.uniform(0.0, 1.0)),
            "flicker": float(rng.uniform(0.0, 1.0)), "fog": float(rng.uniform(0.0, 0.7))}


def render_clip(ctx, size: tuple[int, int], level: int, seed: int, count: int, gap: float = 2.0,
                fps: float = 30.0, rng_seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`count` frames of one building, about `gap` seconds of walk apart, with their depth."""
    rng = np.random.default_rng([rng_seed, level, seed])
    scene = Backrooms(ctx, size)
    values = _values(level, seed, rng)
    images: list[np.ndarray] = []
    depths: list[np.ndarray] = []
    n = 0
    try:
        while len(images) < count:
            skip = max(1, int(rng.exponential(gap * fps)))
            for _ in range(skip - 1):
                scene.advance(FrameParams(n, n / fps, 1 / fps, values))
                n += 1
            values.update(flicker=float(rng.uniform(0, 1)), fog=float(rng.uniform(0, 0.7)),
                          wander=float(rng.uniform(0, 1)))
            scene.render(FrameParams(n, n / fps + float(rng.uniform(0, 100)), 1 / fps, values))
            n += 1
            rgb, depth = _read(scene)
            images.append(rgb)
            depths.append(depth)
    finally:
        scene.release()
    return images, depths


def walk(ctx, size: tuple[int, int], level: int, seed: int, count: int, fps: float = 30.0
         ) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive frames of a walk and their motion (pixels, top-down rows, +y up as GL gives it):
    what the flicker measurement warps along."""
    scene = Backrooms(ctx, size)
    values = {**REGISTRY.defaults(), "level": str(level), "level_seed": seed}
    w, h = size
    images, motions = [], []
    try:
        for n in range(count + 30):
            scene.render(FrameParams(n, n / fps, 1 / fps, values))
            if n >= 30:   # past the first cut
                images.append(_read(scene)[0])
                motions.append(np.frombuffer(scene.motion.read(), np.float32).reshape(h, w, 2)[::-1].copy())
    finally:
        scene.release()
    return np.stack(images), np.stack(motions)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a coarse random grid, bilinearly upsampled."""
    gh, gw = max(2, cells * h // w), cells
    grid = rng.random((gh + 1, gw + 1)).astype(np.float32)
    ys, xs = np.linspace(0, gh, h, dtype=np.float32), np.linspace(0, gw, w, dtype=np.float32)
    y0, x0 = np.minimum(ys.astype(int), gh - 1), np.minimum(xs.astype(int), gw - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    a, b = grid[y0][:, x0], grid[y0][:, x0 + 1]
    c, d = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def augment(rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One frame made into a variation the live scene would not show: light colour, exposure,
    fog of another colour and density, stains, contrast. uint8 in, uint8 out."""
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32) / 255.0
    lin = x ** 2.2
    if rng.random() < 0.7:                               # light colour: warm sodium to cold tube
        tint = np.exp(rng.normal(0, 0.12, 3)).astype(np.float32)
        lin = lin * (tint / tint.mean())
    if rng.random() < 0.4:                               # stains: damp blotches on whatever is there
        blot = _smooth_noise(rng, h, w, int(rng.integers(3, 10)))
        edge = float(rng.uniform(0.55, 0.8))
        mask = np.clip((blot - edge) / 0.12, 0, 1)[..., None] * float(rng.uniform(0.3, 0.8))
        stain = np.array([0.55, 0.45, 0.25], np.float32) * float(rng.uniform(0.3, 0.8))
        lin = lin * (1 - mask) + lin * stain * mask
    if rng.random() < 0.4:                               # fog: depth haze of its own colour
        colour = np.array(rng.uniform(0.1, 0.6, 3), np.float32)
        colour = colour * 0.5 + colour.mean() * 0.5
        density = float(rng.uniform(0.02, 0.12))
        d = np.where(depth > 0, depth, 40.0)
        f = (1 - np.exp(-density * d))[..., None].astype(np.float32)
        lin = lin * (1 - f) + colour ** 2.2 * f
    lin = lin * float(2 ** rng.uniform(-0.7, 0.5))       # exposure
    x = np.clip(lin, 0, 1) ** (1 / 2.2)
    if rng.random() < 0.5:                               # contrast and saturation
        mean = x.mean(axis=2, keepdims=True)
        x = mean + (x - mean) * float(rng.uniform(0.6, 1.3))
        x = 0.5 + (x - 0.5) * float(rng.uniform(0.8, 1.2))
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def render_set(ctx, size: tuple[int, int], clips: int, per_clip: int, seed: int = 0,
               augmented: float = 0.6, progress: bool = True) -> Frames:
    """`clips` buildings per level, `per_clip` frames each; a fraction `augmented` of the frames
    is augmented. Held-out sets pass a seed ≥ HELD_OUT."""
    images, levels = [], []
    jobs = [(spec.index, c) for c in range(clips) for spec in LEVELS]
    for level, c in tqdm(jobs, desc="rendering", disable=not progress, unit="clip"):
        building = (seed * 7919 + c * 104729 + level) % HELD_OUT if seed < HELD_OUT else seed + c
        rgbs, depths = render_clip(ctx, size, level, building, per_clip, rng_seed=seed)
        rng = np.random.default_rng([seed, level, c, 1])
        for rgb, depth in zip(rgbs, depths, strict=True):
            images.append(augment(rgb, depth, rng) if rng.random() < augmented else rgb)
            levels.append(level)
    return Frames(np.stack(images), np.array(levels, np.int64))
