"""Level layouts: segmented walls on a grid of cells, a pure function of (level, seed, chunk).

Each chunk owns the west and south edges of its cells, so no two chunks ever decide the same wall
and chunks can be generated in any order. Inside a chunk a binary space partition cuts rooms and
corridors, each cut wall gets at least one doorway (the rooms of a chunk form a connected tree),
and every chunk border gets at least one doorway (the chunks form a connected grid): the whole
infinite level is one connected space, so a walker can never be shut in. Extra knocked-out wall
segments add loops and the "randomly segmented" look; pillars stand on free corners.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

# cell sides: +x (east), +z (north), -x (west), -z (south)
DIRS = ((1, 0), (0, 1), (-1, 0), (0, -1))


@dataclass(frozen=True)
class LevelSpec:
    """The shape of one level; its look lives in shaders/scene/level<index>.frag."""

    index: int
    name: str
    cell: float        # metres per cell side
    chunk: int         # cells per chunk side
    height: float      # floor to ceiling, metres
    wall: float        # wall thickness, metres
    max_room: int      # rooms wider than this (cells) are always split
    min_room: int      # narrowest room or corridor (cells)
    leaf_p: float      # chance a room that may stay whole does
    open_p: float      # chance an interior wall segment is knocked out
    border_open_p: float
    pillar_p: float    # chance a room is a pillared hall
    pillar: float      # pillar width, metres
    pipes: bool        # service pipes along the walls under the ceiling
    fog: tuple[float, float, float]  # haze colour, also what lies beyond sight
    far: float         # metres to where the haze is total (chunks are drawn that far)
    lights: tuple[float, float]         # spacing of the fluorescent tubes, metres
    light_offset: tuple[float, float]   # where tube (0, 0) hangs


LEVELS = (
    LevelSpec(0, "Level 0, the Lobby: mono-yellow rooms, damp carpet, humming lights",
              cell=1.6, chunk=12, height=2.6, wall=0.12, max_room=8, min_room=1, leaf_p=0.62,
              open_p=0.14, border_open_p=0.3, pillar_p=0.3, pillar=0.36, pipes=False,
              fog=(0.50, 0.45, 0.25), far=36.0, lights=(2.4, 3.0), light_offset=(1.2, 1.5)),
    LevelSpec(1, "Level 1, the Habitable Zone: concrete halls, pipes, puddles and fog",
              cell=2.4, chunk=10, height=3.6, wall=0.3, max_room=6, min_room=1, leaf_p=0.6,
              open_p=0.15, border_open_p=0.35, pillar_p=0.6, pillar=0.6, pipes=True,
              fog=(0.38, 0.39, 0.36), far=44.0, lights=(4.8, 4.8), light_offset=(1.2, 1.2)),
)


@dataclass(frozen=True)
class Chunk:
    """Walls of one chunk. Arrays are indexed [i, j] with i along x and j along z (local cells)."""

    cx: int
    cz: int
    west: np.ndarray     # bool (N, N): wall on the west edge of cell (i, j)
    south: np.ndarray    # bool (N, N): wall on the south edge of cell (i, j)
    pillars: np.ndarray  # bool (N, N): pillar on the south-west corner of cell (i, j)
    rooms: np.ndarray    # int (N, N): room of each cell
    rects: tuple[tuple[int, int, int, int], ...]  # room rectangles (i0, j0, i1, j1), exclusive ends
    room_hash: np.ndarray  # float (rooms,): per-room variety in 0..1 (stains, damage, tint)


def _rng(spec: LevelSpec, seed: int, *key: object) -> random.Random:
    # str seeds are hashed with SHA-512 by random.Random: stable across runs, platforms and versions
    return random.Random(":".join(str(k) for k in (spec.index, seed, *key)))


def _border(spec: LevelSpec, seed: int, axis: str, cx: int, cz: int) -> np.ndarray:
    """The wall on a chunk's west (axis x) or south (axis z) border: segmented, never closed."""
    n = spec.chunk
    rng = _rng(spec, seed, "border", axis, cx, cz)
    wall = np.array([rng.random() >= spec.border_open_p for _ in range(n)])
    for _ in range(rng.randint(1, 2)):
        a = rng.randrange(n)
        wall[a:a + rng.randint(1, 3)] = False
    return wall


def make_chunk(spec: LevelSpec, seed: int, cx: int, cz: int) -> Chunk:
    """The chunk at (cx, cz): depends on nothing but its arguments."""
    n = spec.chunk
    rng = _rng(spec, seed, "chunk", cx, cz)
    west = np.zeros((n, n), bool)
    south = np.zeros((n, n), bool)
    west[0, :] = _border(spec, seed, "x", cx, cz)
    south[:, 0] = _border(spec, seed, "z", cx, cz)
    interior = np.zeros((2, n, n), bool)  # which walls are BSP cuts (may be knocked out)
    rects: list[tuple[int, int, int, int]] = []

    def split(i0: int, j0: int, i1: int, j1: int) -> None:
        w, h = i1 - i0, j1 - j0
        can_x, can_z = w >= 2 * spec.min_room + 1, h >= 2 * spec.min_room + 1
        if not (can_x or can_z) or (max(w, h) <= spec.max_room and rng.random() < spec.leaf_p):
            rects.append((i0, j0, i1, j1))
            return
        along_x = can_x and (not can_z or rng.random() < w / (w + h))
        lo, hi = (i0, i1) if along_x else (j0, j1)
        k = rng.randint(lo + spec.min_room, hi - spec.min_room)
        a, b = (j0, j1) if along_x else (i0, i1)
        door = rng.randrange(a, b)
        width = 2 if rng.random() < 0.25 else 1
        if along_x:
            west[k, a:b] = interior[0, k, a:b] = True
            west[k, door:door + width] = False
            split(i0, j0, k, j1)
            split(k, j0, i1, j1)
        else:
            south[a:b, k] = interior[1, a:b, k] = True
            south[door:door + width, k] = False
            split(i0, j0, i1, k)
            split(i0, k, i1, j1)

    split(0, 0, n, n)
    knock = np.array([[[rng.random() < spec.open_p for _ in range(n)] for _ in range(n)] for _ in range(2)])
    west &= ~(interior[0] & knock[0])
    south &= ~(interior[1] & knock[1])

    rooms = np.zeros((n, n), int)
    for r, (i0, j0, i1, j1) in enumerate(rects):
        rooms[i0:i1, j0:j1] = r
    room_hash = np.array([rng.random() for _ in rects])
    pillars = np.zeros((n, n), bool)
    for i0, j0, i1, j1 in rects:
        if (i1 - i0) < 3 or (j1 - j0) < 3 or rng.random() >= spec.pillar_p:
            continue
        step = rng.choice((1, 2)) if spec.index else 2
        for i in range(i0 + 1, i1, step):
            for j in range(j0 + 1, j1, step):
                pillars[i, j] = True
    # a pillar needs all four edges meeting at its corner free (it never narrows a doorway)
    free = np.zeros((n, n), bool)
    free[1:, 1:] = ~(west[1:, 1:] | west[1:, :-1] | south[1:, 1:] | south[:-1, 1:])
    pillars &= free
    return Chunk(cx, cz, west, south, pillars, rooms, tuple(rects), room_hash)


class World:
    """One level with one seed: chunks on demand (cached) and wall queries in global cell coords."""

    def __init__(self, spec: LevelSpec, seed: int, cache: int = 512) -> None:
        self.spec, self.seed = spec, seed
        self._chunks: OrderedDict[tuple[int, int], Chunk] = OrderedDict()
        self._cache = cache

    def chunk(self, cx: int, cz: int) -> Chunk:
        key = (cx, cz)
        c = self._chunks.get(key)
        if c is None:
            c = self._chunks[key] = make_chunk(self.spec, self.seed, cx, cz)
            if len(self._chunks) > self._cache:
                self._chunks.popitem(last=False)
        else:
            self._chunks.move_to_end(key)
        return c

    def _local(self, i: int, j: int) -> tuple[Chunk, int, int]:
        n = self.spec.chunk
        return self.chunk(i // n, j // n), i % n, j % n

    def wall(self, i: int, j: int, d: int) -> bool:
        """Is there a wall on side d (index into DIRS) of global cell (i, j)?"""
        if d == 0:
            i, d = i + 1, 2
        elif d == 1:
            j, d = j + 1, 3
        c, li, lj = self._local(i, j)
        return bool(c.west[li, lj] if d == 2 else c.south[li, lj])

    def pillar(self, i: int, j: int) -> bool:
        """A pillar on corner (i, j) (the south-west corner of cell (i, j))?"""
        c, li, lj = self._local(i, j)
        return bool(c.pillars[li, lj])

    def cell_of(self, x: float, z: float) -> tuple[int, int]:
        return math.floor(x / self.spec.cell), math.floor(z / self.spec.cell)

    def centre(self, i: int, j: int) -> tuple[float, float]:
        s = self.spec.cell
        return (i + 0.5) * s, (j + 0.5) * s

    def solids(self, i: int, j: int, reach: int = 1) -> list[tuple[float, float, float, float]]:
        """Axis-aligned boxes (x0, z0, x1, z1) of walls and pillars around cell (i, j)."""
        s, t, p = self.spec.cell, self.spec.wall / 2, self.spec.pillar / 2
        out = []
        for a in range(i - reach, i + reach + 2):
            for b in range(j - reach, j + reach + 2):
                c, li, lj = self._local(a, b)
                x, z = a * s, b * s
                if b <= j + reach and c.west[li, lj]:
                    out.append((x - t, z - t, x + t, z + s + t))
                if a <= i + reach and c.south[li, lj]:
                    out.append((x - t, z - t, x + s + t, z + t))
                if c.pillars[li, lj]:
                    out.append((x - p, z - p, x + p, z + p))
        return out

    def clearance(self, x: float, z: float) -> float:
        """Distance from (x, z) to the nearest wall or pillar (negative inside one)."""
        best = math.inf
        for x0, z0, x1, z1 in self.solids(*self.cell_of(x, z)):
            dx, dz = max(x0 - x, 0.0, x - x1), max(z0 - z, 0.0, z - z1)
            d = math.hypot(dx, dz) if dx or dz else -min(x - x0, x1 - x, z - z0, z1 - z)
            best = min(best, d)
        return best

    def free_distance(self, x: float, z: float, heading: float, limit: float = 8.0) -> float:
        """How far one sees from (x, z) along a heading (0 = +z) before a wall or pillar."""
        dx, dz, step, d = math.sin(heading), math.cos(heading), 0.2, 0.0
        while d < limit and self.clearance(x + dx * d, z + dz * d) > 0.05:
            d += step
        return min(d, limit)
