"""The camera's walk through a level: cell to cell through open edges, never through a wall.

The walk is a chain of quadratic Bézier pieces, each from the middle of the edge it entered a cell
by, bent by the cell's centre, to the middle of the edge it leaves by. Such a piece stays inside
its cell's square and crosses edges only at their open middles, so with walls on edges and
pillars on free corners the camera keeps a clear margin by construction, not by collision
checks. Turns come at junctions, scored by how often a neighbour was visited, a slowly drifting
goal heading (so the walk keeps reaching new ground) and `wander`. The head looks around, and
the walker sometimes stops to look. `noclip` phases straight through the nearest wall.

State advances only by `step(dt, ...)` with a stateful RNG seeded from the level seed, so the
pose at frame n is a pure function of (seed, the dt sequence, parameter history).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from .layout import DIRS, World

EYE = 1.55      # eye height, metres
RADIUS = 0.3    # the camera's body: the walk keeps at least this far from any wall
VISITS = 4096   # remembered cells (oldest forgotten first)


@dataclass(frozen=True)
class Pose:
    x: float
    y: float
    z: float
    yaw: float    # 0 looks along +z, pi/2 along +x
    pitch: float

    def forward(self) -> np.ndarray:
        cp = math.cos(self.pitch)
        return np.array([math.sin(self.yaw) * cp, math.sin(self.pitch), math.cos(self.yaw) * cp])


def _angdiff(a: float, b: float) -> float:
    return (a - b + math.pi) % (2 * math.pi) - math.pi


def _bezier(p, t):
    (a, b, c), u = p, 1.0 - t
    return (u * u * a[0] + 2 * u * t * b[0] + t * t * c[0], u * u * a[1] + 2 * u * t * b[1] + t * t * c[1])


def _tangent(p, t):
    (a, b, c), u = p, 1.0 - t
    return (2 * u * (b[0] - a[0]) + 2 * t * (c[0] - b[0]), 2 * u * (b[1] - a[1]) + 2 * t * (c[1] - b[1]))


# a phase through a wall: (from, to) in metres, its duration and time elapsed (s), the cell it ends in
Phase = tuple[tuple[float, float], tuple[float, float], float, float, tuple[int, int]]


class Walker:
    def __init__(self, world: World, seed: int, cell: tuple[int, int] = (0, 0), yaw: float = 0.0) -> None:
        self.world = world
        self.rng = random.Random(f"walk:{world.spec.index}:{seed}")
        self.visits: dict[tuple[int, int], int] = {}
        self.walked: dict[tuple[int, int, int], int] = {}  # (cell, direction) → times walked that way
        self.goal = self.rng.uniform(-math.pi, math.pi)
        self.phases = [self.rng.uniform(0, 2 * math.pi) for _ in range(4)]
        self.time = self.dist = self.v = 0.0
        self.body_yaw = yaw
        self.look = self.look_from = self.look_target = self.pause = self.pause_len = 0.0
        self.phase: Phase | None = None
        self._start(cell)

    # -- the graph walk ------------------------------------------------------------------------

    def _mid(self, a: tuple[int, int], b: tuple[int, int]) -> tuple[float, float]:
        (ax, az), (bx, bz) = self.world.centre(*a), self.world.centre(*b)
        return (ax + bx) / 2, (az + bz) / 2

    def _start(self, cell: tuple[int, int]) -> None:
        """Stand at a cell's centre and set off through one of its open edges."""
        self.prev: tuple[int, int] | None = None
        self.cell = cell
        self._visit(cell)
        self.next = self._choose()
        c, m = self.world.centre(*cell), self._mid(cell, self.next)
        self.piece = (c, ((c[0] + m[0]) / 2, (c[1] + m[1]) / 2), m)
        self.t = 0.0

    @staticmethod
    def _count(memory: dict, key: tuple) -> None:
        memory[key] = memory.pop(key, 0) + 1
        if len(memory) > VISITS:
            del memory[next(iter(memory))]

    def _visit(self, cell: tuple[int, int]) -> None:
        self._count(self.visits, cell)

    def _choose(self, wander: float = 0.5) -> tuple[int, int]:
        i, j = self.cell
        open_dirs = [d for d in range(4) if not self.world.wall(i, j, d)]
        back = None
        if self.prev is not None:
            back = DIRS.index((self.prev[0] - i, self.prev[1] - j))
        cands = open_dirs
        fwd = None if back is None else (back + 2) % 4
        best, best_score = cands[0], -math.inf
        for d in cands:
            dx, dz = DIRS[d]
            # the same cell seen again is fine from a new side; the same way walked again is a repeat
            score = -2.0 * self.visits.get((i + dx, j + dz), 0) - 6.0 * self.walked.get((i, j, d), 0)
            if sum(self.world.wall(i + dx, j + dz, e) for e in range(4)) == 3:
                score -= 2.5  # a dead end: looked into, rarely walked into
            score += 1.2 * math.cos(_angdiff(math.atan2(dx, dz), self.goal))
            if d == fwd:
                score += 0.3 + 1.5 * (1.0 - wander)
            if d == back:
                score -= 3.0  # turn round: only rather than walk into a dead end
            score += self.rng.random() * (0.4 + 1.6 * wander)
            if score > best_score:
                best, best_score = d, score
        self.goal += self.rng.gauss(0.0, 0.12)
        self._count(self.walked, (i, j, best))
        return i + DIRS[best][0], j + DIRS[best][1]

    def _advance_cell(self, wander: float) -> None:
        self.prev, self.cell = self.cell, self.next
        self._visit(self.cell)
        junction = sum(not self.world.wall(*self.cell, d) for d in range(4)) >= 3
        self.next = self._choose(wander)
        if self.rng.random() < (0.02 + 0.06 * wander) * (2.0 if junction else 1.0):
            # stop and look one way, sweeping steadily (a stop never holds one view for long)
            self.pause = self.pause_len = self.rng.uniform(0.8, 2.0)
            self.look_from = self.look
            self.look_target = self._look_around(self.rng.uniform(0.8, 1.4))
        self.piece = (self._mid(self.prev, self.cell), self.world.centre(*self.cell),
                      self._mid(self.cell, self.next))
        self.t = 0.0

    def _look_around(self, amount: float) -> float:
        """Look towards the side with more to see (never stare into a wall from arm's length)."""
        x, z = self.world.centre(*self.cell)
        heading = math.atan2(self.next[0] - self.cell[0], self.next[1] - self.cell[1])
        sides = [(self.world.free_distance(x, z, heading + s * amount), s) for s in (-1, 1)]
        room, side = max(sides)
        if room < 2.5:
            amount *= 0.4
        return side * amount

    def _heading(self) -> float:
        """Where the walker looks: most of a cell ahead along the path, so it turns into a bend
        before it faces the wall at the corridor's end."""
        x, z = _bezier(self.piece, self.t)
        u = self.t + 0.85
        if u <= 1.0:
            ax, az = _bezier(self.piece, u)
        else:
            (ex, ez), (nx, nz) = self.piece[2], self.world.centre(*self.next)
            ax, az = ex + (nx - ex) * (u - 1.0), ez + (nz - ez) * (u - 1.0)
        if abs(ax - x) + abs(az - z) < 1e-6:
            return self.body_yaw
        return math.atan2(ax - x, az - z)

    def _move(self, ds: float, wander: float) -> None:
        while ds > 1e-9:
            tx, tz = _tangent(self.piece, self.t)
            d = max(math.hypot(tx, tz), 1e-3)
            step = min(ds / d, 1.0 - self.t, 0.25)
            self.t += step
            ds -= step * d
            if self.t >= 1.0 - 1e-9:
                self._advance_cell(wander)

    # -- noclip --------------------------------------------------------------------------------

    def noclip(self) -> bool:
        """Phase through the nearest wall into the space behind it; False while already phasing."""
        if self.phase is not None:
            return False
        x, z = _bezier(self.piece, self.t)
        i, j = self.world.cell_of(x, z)
        half = self.world.spec.cell / 2
        best: tuple[float, tuple[int, int]] | None = None  # (distance, the cell beyond the wall)
        for a in range(i - 1, i + 2):
            for b in range(j - 1, j + 2):
                ca = self.world.centre(a, b)
                for d in range(4):
                    if not self.world.wall(a, b, d):
                        continue
                    dx, dz = DIRS[d]
                    mx, mz = ca[0] + dx * half, ca[1] + dz * half
                    dist = math.hypot(mx - x, mz - z)
                    if best is None or dist < best[0]:
                        beyond = (a + dx, b + dz) if (x - mx) * dx + (z - mz) * dz < 0 else (a, b)
                        best = (dist, beyond)
        if best is None:  # an open hall with no wall near: phase ahead through the floor plan
            fx, fz = math.sin(self.body_yaw), math.cos(self.body_yaw)
            best = (0.0, self.world.cell_of(x + 2 * half * fx, z + 2 * half * fz))
        end = self.world.centre(*best[1])
        length = math.hypot(end[0] - x, end[1] - z)
        self.phase = ((x, z), end, max(0.9, length / 1.5), 0.0, best[1])
        return True

    def _step_phase(self, phase: Phase, dt: float) -> tuple[float, float]:
        start, end, duration, elapsed, cell = phase
        elapsed += dt
        u = min(elapsed / duration, 1.0)
        u = u * u * (3 - 2 * u)
        x, z = start[0] + (end[0] - start[0]) * u, start[1] + (end[1] - start[1]) * u
        heading = math.atan2(end[0] - start[0], end[1] - start[1])
        self.body_yaw += _angdiff(heading, self.body_yaw) * (1 - math.exp(-dt / 0.25))
        if elapsed >= duration:
            self.phase = None
            self._start(cell)
        else:
            self.phase = (start, end, duration, elapsed, cell)
        return x, z

    # -- one frame -----------------------------------------------------------------------------

    @property
    def phasing(self) -> bool:
        return self.phase is not None

    def step(self, dt: float, speed: float, wander: float) -> Pose:
        self.time += dt
        if self.phase is not None:
            x, z = self._step_phase(self.phase, dt)
            self.v = 0.0
        else:
            self.pause = max(0.0, self.pause - dt)
            heading = self._heading()
            err = _angdiff(heading, self.body_yaw)
            # a hesitation creeps rather than freezes: a stop never holds the same view
            target = speed * (0.25 if self.pause > 0 else 0.85 + 0.15 * math.sin(0.4 * self.time))
            target *= min(max(math.cos(err), 0.15), 1.0)
            self.v += (target - self.v) * (1 - math.exp(-dt / 0.35))
            self._move(self.v * dt, wander)
            self.dist += self.v * dt
            turn = err * (1 - math.exp(-dt / 0.3))
            self.body_yaw += max(-3.5 * dt, min(3.5 * dt, turn))
            x, z = _bezier(self.piece, self.t)
        if self.pause > 0:
            u = 1.0 - self.pause / self.pause_len
            self.look = self.look_from + (self.look_target - self.look_from) * u * u * (3 - 2 * u)
        else:
            self.look += -self.look * (1 - math.exp(-dt / 0.6))
        p = self.phases
        T = self.time
        drift = wander * (0.4 * math.sin(0.31 * T + p[0]) + 0.22 * math.sin(0.73 * T + p[1]))
        pitch = wander * 0.07 * math.sin(0.23 * T + p[2]) - 0.03 + 0.02 * math.sin(0.61 * T + p[3])
        bob = 0.018 * math.sin(self.dist * math.pi / 0.7) * min(self.v / max(speed, 1e-3), 1.0)
        return Pose(x, EYE + bob, z, self.body_yaw + self.look + drift, pitch)


def view_matrix(pose: Pose) -> np.ndarray:
    """World → camera (right-handed, looking down -z), as for OpenGL."""
    eye = np.array([pose.x, pose.y, pose.z])
    f = pose.forward()
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    m = np.identity(4)
    m[0, :3], m[1, :3], m[2, :3] = r, u, -f
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def projection(fov_y: float, aspect: float, near: float, far: float) -> np.ndarray:
    f = 1.0 / math.tan(fov_y / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m
