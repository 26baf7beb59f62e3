"""Chunk meshes for the rasteriser: floors, ceilings, wall boxes, pillars and pipes.

A mesh is a pure function of its world and chunk coordinates (it reads the neighbours' rooms for
the far side of border walls), so it is built once per chunk on the CPU and cached on the GPU.
Surfaces carry only position, normal, a material kind and a room hash: every detail (wallpaper,
carpet, ceiling tiles, stains, lights) is procedural in the fragment shader.
"""

from __future__ import annotations

import math

import numpy as np

from .layout import World

FLOOR, CEILING, WALL, PILLAR, PIPE = range(5)
# What each kind is shaded as (a pillar is a wall), and the order materials are drawn in: occluders
# first, so the depth test rejects hidden floor and ceiling before they are shaded.
MATERIAL = {FLOOR: FLOOR, CEILING: CEILING, WALL: WALL, PILLAR: WALL, PIPE: PIPE}
MATERIALS = (WALL, PIPE, FLOOR, CEILING)
VERTEX = "3f 3f 2f"
ATTRIBUTES = ("in_pos", "in_normal", "in_attr")
FLOATS = 8  # per vertex


class _Builder:
    def __init__(self) -> None:
        self.rows: list[tuple[float, ...]] = []

    def quad(self, a, b, c, d, n, kind: int, room: float) -> None:
        for p in (a, b, c, a, c, d):
            self.rows.append((*p, *n, float(kind), room))

    def wall_box(self, x0, z0, x1, z1, h, rooms, caps) -> None:
        """A box standing floor to ceiling; rooms = (-x or -z side, +x or +z side)."""
        along_z = (z1 - z0) > (x1 - x0)
        lo, hi = rooms
        if along_z:
            self.quad((x0, 0, z0), (x0, 0, z1), (x0, h, z1), (x0, h, z0), (-1, 0, 0), WALL, lo)
            self.quad((x1, 0, z1), (x1, 0, z0), (x1, h, z0), (x1, h, z1), (1, 0, 0), WALL, hi)
            if caps[0]:
                self.quad((x1, 0, z0), (x0, 0, z0), (x0, h, z0), (x1, h, z0), (0, 0, -1), WALL, lo)
            if caps[1]:
                self.quad((x0, 0, z1), (x1, 0, z1), (x1, h, z1), (x0, h, z1), (0, 0, 1), WALL, hi)
        else:
            self.quad((x1, 0, z0), (x0, 0, z0), (x0, h, z0), (x1, h, z0), (0, 0, -1), WALL, lo)
            self.quad((x0, 0, z1), (x1, 0, z1), (x1, h, z1), (x0, h, z1), (0, 0, 1), WALL, hi)
            if caps[0]:
                self.quad((x0, 0, z0), (x0, 0, z1), (x0, h, z1), (x0, h, z0), (-1, 0, 0), WALL, lo)
            if caps[1]:
                self.quad((x1, 0, z1), (x1, 0, z0), (x1, h, z0), (x1, h, z1), (1, 0, 0), WALL, hi)

    def pillar(self, x, z, p, h, room) -> None:
        x0, x1, z0, z1 = x - p, x + p, z - p, z + p
        self.quad((x0, 0, z0), (x0, 0, z1), (x0, h, z1), (x0, h, z0), (-1, 0, 0), PILLAR, room)
        self.quad((x1, 0, z1), (x1, 0, z0), (x1, h, z0), (x1, h, z1), (1, 0, 0), PILLAR, room)
        self.quad((x1, 0, z0), (x0, 0, z0), (x0, h, z0), (x1, h, z0), (0, 0, -1), PILLAR, room)
        self.quad((x0, 0, z1), (x1, 0, z1), (x1, h, z1), (x0, h, z1), (0, 0, 1), PILLAR, room)

    def pipe(self, a, b, r, room, sides: int = 6) -> None:
        """A prism from a to b (points along x or z), smooth radial normals."""
        ax = (1, 0, 0) if abs(b[0] - a[0]) > abs(b[2] - a[2]) else (0, 0, 1)
        u = (0, 0, 1) if ax[0] else (1, 0, 0)
        for s in range(sides):
            ring = []
            for k in (s, s + 1):
                ang = 2 * math.pi * k / sides
                n = (u[0] * math.cos(ang), math.sin(ang), u[2] * math.cos(ang))
                ring.append(n)
            (n0, n1) = ring
            p = [tuple(c + r * nn for c, nn in zip(e, n, strict=True)) for e, n in
                 ((a, n0), (b, n0), (b, n1), (a, n1))]
            for q, n in zip((0, 1, 2, 0, 2, 3), (n0, n0, n1, n0, n1, n1), strict=True):
                self.rows.append((*p[q], *n, float(PIPE), room))

    def array(self) -> np.ndarray:
        return np.array(self.rows, dtype="f4").reshape(-1, FLOATS)


def _room(world: World, i: int, j: int) -> float:
    n = world.spec.chunk
    c = world.chunk(i // n, j // n)
    return float(c.room_hash[c.rooms[i % n, j % n]])


def chunk_mesh(world: World, cx: int, cz: int) -> np.ndarray:
    """Vertices (rows of 8 floats: position, normal, kind, room hash) of chunk (cx, cz), grouped by
    material in `MATERIALS` order (`materials` finds each group): the scene draws each material
    with its own program, occluders of every visible chunk before any floor, so the depth test
    rejects hidden floor and ceiling before shading it, without a separate depth pass.
    """
    spec = world.spec
    n, s, h, t = spec.chunk, spec.cell, spec.height, spec.wall / 2
    c = world.chunk(cx, cz)
    gi, gj = cx * n, cz * n
    out = _Builder()
    # walls: runs of consecutive edges with the same rooms either side, one box per run
    for vertical, edges in ((True, c.west), (False, c.south)):
        for k in range(n):
            line = edges[k, :] if vertical else edges[:, k]
            m = 0
            while m < n:
                if not line[m]:
                    m += 1
                    continue
                cell = (gi + k, gj + m) if vertical else (gi + m, gj + k)
                behind = (cell[0] - 1, cell[1]) if vertical else (cell[0], cell[1] - 1)
                rooms = (_room(world, *behind), _room(world, *cell))
                e = m + 1
                while e < n and line[e]:
                    nxt = (gi + k, gj + e) if vertical else (gi + e, gj + k)
                    nb = (nxt[0] - 1, nxt[1]) if vertical else (nxt[0], nxt[1] - 1)
                    if (_room(world, *nb), _room(world, *nxt)) != rooms:
                        break
                    e += 1
                caps = (m == 0 or not line[m - 1], e == n or not line[e])
                a, b = m * s - t, e * s + t
                x, z = (gi + k) * s, (gj + k) * s
                if vertical:
                    out.wall_box(x - t, gj * s + a, x + t, gj * s + b, h, rooms, caps)
                else:
                    out.wall_box(gi * s + a, z - t, gi * s + b, z + t, h, rooms, caps)
                if spec.pipes and (rooms[1] * 7.0) % 1.0 < 0.45 and e - m >= 2:
                    y, off, r = h - 0.35, t + 0.16, 0.09
                    if vertical:
                        out.pipe((x + off, y, gj * s + a), (x + off, y, gj * s + b), r, rooms[1])
                    else:
                        out.pipe((gi * s + a, y, z + off), (gi * s + b, y, z + off), r, rooms[1])
                m = e

    p = spec.pillar / 2
    for i, j in zip(*np.nonzero(c.pillars), strict=True):
        out.pillar((gi + i) * s, (gj + j) * s, p, h, float(c.room_hash[c.rooms[i, j]]))
    for r, (i0, j0, i1, j1) in enumerate(c.rects):
        x0, z0, x1, z1 = (gi + i0) * s, (gj + j0) * s, (gi + i1) * s, (gj + j1) * s
        room = float(c.room_hash[r])
        out.quad((x0, 0, z0), (x0, 0, z1), (x1, 0, z1), (x1, 0, z0), (0, 1, 0), FLOOR, room)
        out.quad((x0, h, z0), (x1, h, z0), (x1, h, z1), (x0, h, z1), (0, -1, 0), CEILING, room)
    rows = out.array()
    rank = np.array([MATERIALS.index(MATERIAL[k]) for k in range(len(MATERIAL))])
    return rows[np.argsort(rank[rows[:, 6].astype(np.int64)], kind="stable")]


def materials(vertices: np.ndarray) -> list[tuple[int, int, int]]:
    """(material, first vertex, vertex count) of each material a chunk mesh has, in draw order."""
    kinds = np.array([MATERIAL[k] for k in range(len(MATERIAL))])[vertices[:, 6].astype(np.int64)]
    out = []
    for m in MATERIALS:
        at = np.nonzero(kinds == m)[0]
        if len(at):
            out.append((m, int(at[0]), len(at)))
    return out
