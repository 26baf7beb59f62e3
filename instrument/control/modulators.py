"""Modulators: parameters that move with the beat — LFOs, envelopes, step sequences, and commands
on beat N — declared in patches as `[[modulator]]` tables.

A modulator adds to the performer's value rather than fighting it: the hand (OSC, MIDI, the patch)
sets the centre, the modulator swings around it, and the sum is clamped to the parameter's range.
Every value is a pure function of the frame's beat (or show time, for Hz rates) and the table, so
live shows, replays and offline renders modulate identically; sample-and-hold draws its random
steps from (seed, step index), never from a wall clock or call order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..clock import Beat
from ..commands import COMMANDS
from ..params import REGISTRY, Registry

LFOS = ("sine", "triangle", "saw", "ramp", "square", "sh")
SHAPES = (*LFOS, "envelope", "steps", "audio", "command")
KEYS = {"target", "shape", "depth", "every", "hz", "at", "attack", "decay", "steps", "seed", "command", "args",
        "source"}
AUDIO = ("level", "low", "mid", "high", "onset")  # control/audio.py's features


def _mix(seed: int, n: int) -> float:
    """splitmix64 of (seed, n) → uniform in -1..1: the sample-and-hold's random step n."""
    z = (seed * 0x9E3779B97F4A7C15 + n * 0xBF58476D1CE4E5B9 + 0x94D049BB133111EB) & (2**64 - 1)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    z ^= z >> 31
    return (z >> 11) / float(1 << 52) - 1.0


@dataclass(frozen=True)
class Modulator:
    """One `[[modulator]]` table. Cycles are `every` beats long (a number, or "bar"), shifted by
    `at` beats — or `hz` per second of show time, free of the beat."""

    shape: str
    target: str = ""
    depth: float = 0.0
    every: float | str = 1.0
    hz: float | None = None
    at: float = 0.0
    attack: float = 0.0  # envelope rise, in beats (seconds at Hz rates)
    decay: float = 0.5  # envelope fall time constant, same unit
    steps: tuple[float, ...] = ()
    seed: int = 0
    command: str = ""
    args: tuple[Any, ...] = ()
    source: str = ""  # an audio feature, for shape = "audio"

    def cycles(self, beat: Beat, t: float) -> float:
        """How many cycles have passed: the whole part counts them, the fraction is the phase."""
        if self.hz is not None:
            return t * self.hz
        every = beat.numerator if self.every == "bar" else float(self.every)
        return (beat.beat - self.at) / every

    def shape_at(self, beat: Beat, t: float) -> float:
        """The shape's value this frame: LFOs -1..1 (on the beat: sine 0 rising, triangle and ramp
        at 1, saw at -1, square at 1), envelopes 0..1, steps their own values."""
        x = self.cycles(beat, t)
        if not -1e15 < x < 1e15:  # never from a checked clock; NaN or inf would end the show in floor
            return 0.0
        n = math.floor(x)
        f = x - n
        s = self.shape
        if s == "sine":
            return math.sin(2.0 * math.pi * f)
        if s == "triangle":
            return 4.0 * abs(f - 0.5) - 1.0
        if s == "saw":
            return 2.0 * f - 1.0
        if s == "ramp":
            return 1.0 - 2.0 * f
        if s == "square":
            return 1.0 if f < 0.5 else -1.0
        if s == "sh":
            return _mix(self.seed, n)
        if s == "steps":
            return self.steps[n % len(self.steps)]
        if s == "envelope":
            every = beat.numerator if self.every == "bar" else float(self.every)
            since = f * (1.0 / self.hz if self.hz is not None else every)
            if since < self.attack:
                return since / self.attack
            return math.exp(-(since - self.attack) / self.decay) if self.decay > 0 else 0.0
        return 0.0


class Modulators:
    """The patch's modulators, evaluated once a frame: offsets for the ParamBank and the commands
    whose beat came round since the last frame."""

    def __init__(self, mods: list[Modulator] | tuple[Modulator, ...] = ()) -> None:
        self.mods = [m for m in mods if m.shape != "command"]
        self.triggers = [m for m in mods if m.shape == "command"]
        self._last: list[int | None] = [None] * len(self.triggers)

    def __len__(self) -> int:
        return len(self.mods) + len(self.triggers)

    def offsets(self, beat: Beat, t: float, audio: dict[str, float] | None = None) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in self.mods:
            v = (audio or {}).get(m.source, 0.0) if m.shape == "audio" else m.shape_at(beat, t)
            out[m.target] = out.get(m.target, 0.0) + m.depth * v
        return out

    def due(self, beat: Beat, t: float) -> list[tuple[str, tuple[Any, ...]]]:
        """Commands whose cycle began since the last frame (while playing; a jump back or the
        first frame fires nothing, so a locate in Live does not fire a burst)."""
        fired = []
        for i, m in enumerate(self.triggers):
            x = m.cycles(beat, t)
            if not -1e15 < x < 1e15:
                continue
            n = math.floor(x)
            last = self._last[i]
            if beat.playing and last is not None and n > last:
                fired.append((m.command, m.args))
            # a small step back (the clock catching up on a report) must not fire the cycle twice
            self._last[i] = n if last is None or n > last or n < last - 1 else last
        return fired


def parse(tables: Any, error: Callable[[tuple[str | int, ...], str], Exception],
          registry: Registry = REGISTRY) -> list[Modulator]:
    """`[[modulator]]` tables → Modulators; `error(path, message)` makes the exception to raise
    (TomlFile.error in a patch, so the performer gets file, line and key)."""
    if not isinstance(tables, list):
        raise error(("modulator",), "modulators are [[modulator]] tables")
    return [_one(i, d, error, registry) for i, d in enumerate(tables)]


def _one(i: int, d: Any, error: Callable[[tuple[str | int, ...], str], Exception],
         registry: Registry) -> Modulator:
    def bad(key: str, message: str) -> Exception:
        return error(("modulator", i, key), message)

    if not isinstance(d, dict):
        raise error(("modulator", i), "a [[modulator]] is a table")
    for key in d:
        if key not in KEYS:
            raise bad(key, f"unknown key (one of {', '.join(sorted(KEYS))})")
    shape = d.get("shape", "command" if "command" in d else None)
    if shape not in SHAPES:
        raise bad("shape", f"shape is one of {', '.join(SHAPES)}")

    def number(key: str, default: float, lo: float = -math.inf, hi: float = math.inf) -> float:
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise bad(key, f"a number in {lo:g}..{hi:g}")
        return float(v)

    kw: dict[str, Any] = {"shape": shape}
    every = d.get("every", 1.0)
    kw["every"] = every if every == "bar" else number("every", 1.0, 1e-3, 1e6)
    if "hz" in d:
        if "every" in d or "at" in d:
            raise bad("hz", "a rate is either hz or every (beats), not both")
        kw["hz"] = number("hz", 1.0, 1e-4, 1e3)
    kw["at"] = number("at", 0.0)
    kw["attack"] = number("attack", 0.0, 0.0)
    kw["decay"] = number("decay", 0.5, 0.0)
    seed = d.get("seed", i)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise bad("seed", "an integer")
    kw["seed"] = seed
    if shape == "command":
        cmd = d.get("command")
        if cmd not in COMMANDS:
            raise bad("command", f"{cmd!r} is not a command (noclip params lists them)")
        args = d.get("args", [])
        return Modulator(**kw, command=cmd, args=tuple(args) if isinstance(args, list) else (args,))
    target = d.get("target")
    spec = registry.get(target) if isinstance(target, str) else None
    if spec is None:
        raise bad("target", f"{target!r} is not a parameter")
    if spec.type not in ("float", "int"):
        raise bad("target", f"{target} is {spec.type}: only numbers can be modulated")
    kw.update(target=target, depth=number("depth", 0.0))
    if shape == "audio":
        if d.get("source") not in AUDIO:
            where = "source" if "source" in d else "shape"
            raise bad(where, f"shape = audio needs source = one of {', '.join(AUDIO)}")
        kw["source"] = d["source"]
    if shape == "steps":
        steps = d.get("steps")
        if steps is None:
            raise bad("shape", "shape = steps needs steps = [numbers], one per cycle")
        if not (isinstance(steps, list) and steps
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in steps)):
            raise bad("steps", "steps = [numbers], one per cycle")
        kw["steps"] = tuple(float(v) for v in steps)
    return Modulator(**kw)


def build(tables: Any, registry: Registry = REGISTRY) -> Modulators:
    """From already validated tables (a Patch's, a performance header's)."""
    return Modulators(parse(list(tables), lambda path, msg: ValueError(f"{path}: {msg}"), registry))
