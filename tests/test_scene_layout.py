"""Level layouts and the camera walk, on the CPU: pure functions of (seed, chunk), connected, and a
walk that never enters a wall (except while it noclips)."""

import math
import random
from collections import deque

import numpy as np
import pytest

from instrument.scene.camera import RADIUS, Walker
from instrument.scene.layout import DIRS, LEVELS, World, make_chunk
from instrument.scene.mesh import chunk_mesh

COORDS = [(cx, cz) for cx in range(-3, 4) for cz in range(-3, 4)]


def _same(a, b):
    return all(np.array_equal(getattr(a, f), getattr(b, f))
               for f in ("west", "south", "pillars", "rooms", "room_hash")) and a.rects == b.rects


@pytest.mark.parametrize("spec", LEVELS, ids=lambda s: f"level{s.index}")
def test_chunks_generated_out_of_order_agree_with_in_order(spec):
    in_order = World(spec, 11)
    first = {c: in_order.chunk(*c) for c in COORDS}
    shuffled = COORDS[:]
    random.Random(5).shuffle(shuffled)
    later = World(spec, 11)
    assert all(_same(first[c], later.chunk(*c)) for c in shuffled)
    # meshes read neighbours' rooms: still the same whatever was generated before
    fresh = World(spec, 11)
    for c in shuffled[:6]:
        assert np.array_equal(chunk_mesh(in_order, *c), chunk_mesh(fresh, *c))
    assert not _same(make_chunk(spec, 11, 0, 0), make_chunk(spec, 12, 0, 0))  # the seed matters
    assert not _same(make_chunk(spec, 11, 0, 0), make_chunk(spec, 11, 1, 0))  # no repeating tile


@pytest.mark.parametrize("spec", LEVELS, ids=lambda s: f"level{s.index}")
def test_every_cell_of_a_region_is_reachable(spec):
    """BSP doorways connect each chunk, border doorways connect chunks: no cell is shut in."""
    world, n = World(spec, 3), spec.chunk * 4
    seen, todo = {(0, 0)}, deque([(0, 0)])
    while todo:
        i, j = todo.popleft()
        for d, (dx, dz) in enumerate(DIRS):
            nb = (i + dx, j + dz)
            if 0 <= nb[0] < n and 0 <= nb[1] < n and nb not in seen and not world.wall(i, j, d):
                seen.add(nb)
                todo.append(nb)
    assert len(seen) == n * n


def _walk(spec, seconds, seed=4, noclips=(), fps=60):
    """Simulate the camera as the scene drives it; yields (frame, pose, phasing, world)."""
    world = World(spec, seed)
    walker = Walker(world, seed)
    for f in range(int(seconds * fps)):
        t = f / fps
        speed = 1.2 + 1.0 * math.sin(t / 37.0)        # a performer riding the knobs
        wander = 0.5 + 0.5 * math.sin(t / 23.0)
        if f in noclips:
            assert walker.noclip()
        pose = walker.step(1.0 / fps, speed, wander)
        yield f, pose, walker.phasing, world


@pytest.mark.parametrize("spec", LEVELS, ids=lambda s: f"level{s.index}")
def test_ten_minute_walk_never_enters_a_wall(spec):
    noclips = set(range(6000, 36000, 9000))
    clearances, cells, phased, turn = [], set(), 0, 0.0
    last_yaw = None
    for f, pose, phasing, world in _walk(spec, 600, noclips=noclips):
        if phasing:
            phased += 1
        elif f % 2 == 0:
            clearances.append(world.clearance(pose.x, pose.z))
        cells.add(world.cell_of(pose.x, pose.z))
        if last_yaw is not None:
            turn += abs(pose.yaw - last_yaw)
        last_yaw = pose.yaw
    assert min(clearances) > RADIUS, f"came {min(clearances):.3f} m from a wall"
    assert phased > 0
    assert len(cells) > 150            # it covers ground instead of pacing one room
    assert turn > 100.0                # and it turns (radians of head turn over the walk)


@pytest.mark.parametrize("spec", LEVELS, ids=lambda s: f"level{s.index}")
def test_noclip_phases_through_the_nearest_wall(spec):
    world = World(spec, 9)
    walker = Walker(world, 9)
    for _ in range(300):
        walker.step(1 / 60, 1.2, 0.5)
    assert walker.noclip()
    assert not walker.noclip()  # one phase at a time
    inside = []
    while walker.phasing:
        pose = walker.step(1 / 60, 1.2, 0.5)
        inside.append(world.clearance(pose.x, pose.z))
    assert min(inside) < 0.0  # it went through solid wall
    for _ in range(600):       # and walks on from the space behind it
        pose = walker.step(1 / 60, 1.2, 0.5)
        assert world.clearance(pose.x, pose.z) > RADIUS
