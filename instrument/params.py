"""The one registry of playable parameters, the bank that plays them, and the per-frame snapshot.

Every parameter is declared once, where it is consumed: in a `PARAMS` tuple that its module exports
(the catalogue, catalogue.py, puts them all into REGISTRY before anything runs), or as a `[[param]]`
in a chain file (declared when the chain loads). The OSC address space, patches, MIDI targets,
shader uniforms and `noclip params` are all derived from the registry, so there is no second list
of names anywhere.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

TYPES = ("float", "int", "bool", "enum", "str")
log = logging.getLogger("noclip")


class ParamError(ValueError):
    """A value that cannot be made into the parameter's type (the caller drops and counts it)."""


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str = "float"
    default: Any = 0.0
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    smooth: float = 0.0  # seconds to ~63% of a step; 0 snaps
    group: str = "master"
    description: str = ""
    origin: str = ""  # where it was declared (module or chain file), for error messages
    length: int = 1000  # strings: characters at most, longer ones are cut (with a warning)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"parameter {self.name}: type must be one of {TYPES}, not {self.type!r}")
        if not self.name.replace("_", "").isalnum() or not self.name[0].isalpha():
            raise ValueError(f"parameter name {self.name!r} must be snake_case")
        if self.type in ("float", "int") and (self.min is None or self.max is None):
            raise ValueError(f"parameter {self.name}: numeric parameters need min and max")
        if self.type == "enum" and not self.choices:
            raise ValueError(f"parameter {self.name}: enum needs choices")
        object.__setattr__(self, "default", self.coerce(self.default))

    @property
    def continuous(self) -> bool:
        return self.type == "float"

    @property
    def bounds(self) -> tuple[float, float]:
        """(min, max) of a numeric parameter; __post_init__ made sure it has both."""
        if self.min is None or self.max is None:
            raise ParamError(f"{self.name} is a {self.type} and has no range")
        return self.min, self.max

    def coerce(self, value: Any) -> Any:
        """Natural-unit value → clamped value of this type; ParamError when it is ambiguous."""
        t = self.type
        if t == "str":
            if isinstance(value, (bytes, bytearray)):
                value = value.decode("utf-8", "replace")
            if not isinstance(value, str):
                raise ParamError(f"{self.name} takes a string, got {type(value).__name__}")
            if len(value) > self.length:  # every entrance: OSC, MIDI, patches, performance files
                _warn_cut(self.name, len(value), self.length)
                value = value[:self.length]
            return value
        if t == "enum":
            if isinstance(value, str):
                key = value.strip()
                for c in self.choices:
                    if c.lower() == key.lower():
                        return c
                if not key.lstrip("-").isdigit():
                    raise ParamError(f"{self.name}: {value!r} is not one of {', '.join(self.choices)}")
                value = int(key)
            index = int(_number(self.name, value))
            return self.choices[min(max(index, 0), len(self.choices) - 1)]
        if t == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("true", "on", "yes", "1"):
                    return True
                if low in ("false", "off", "no", "0"):
                    return False
                raise ParamError(f"{self.name}: {value!r} is not a boolean")
            return _number(self.name, value) >= 0.5
        lo, hi = self.bounds
        x = min(max(_number(self.name, value), lo), hi)
        return round(x) if t == "int" else float(x)

    def from_norm(self, value: Any) -> Any:
        """0..1 (what TouchOSC, DAW automation and MIDI faders send) → natural units."""
        if self.type == "str":
            raise ParamError(f"{self.name} is a string and has no normalised form")
        u = min(max(_number(self.name, value), 0.0), 1.0)
        if self.type == "bool":
            return u >= 0.5
        if self.type == "enum":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        lo, hi = self.bounds
        return self.coerce(lo + u * (hi - lo))

    def to_norm(self, value: Any) -> float:
        if self.type == "bool":
            return 1.0 if value else 0.0
        if self.type == "enum":
            n = len(self.choices)
            return (self.choices.index(value) + 0.5) / n if n > 1 else 0.0
        if self.type == "str":
            return 0.0
        lo, hi = self.bounds
        span = hi - lo
        return (value - lo) / span if span else 0.0

    def to_uniform(self, value: Any) -> Any:
        """The value as a shader uniform: enums as their index, bools as 0/1; strings have none."""
        if self.type == "enum":
            return self.choices.index(value)
        if self.type == "bool":
            return int(value)
        return None if self.type == "str" else value

    def describe(self) -> dict[str, Any]:
        d = {
            "name": self.name, "type": self.type, "default": self.default, "unit": self.unit,
            "smooth": self.smooth, "group": self.group, "description": self.description,
            "osc": f"/noclip/{self.name}",
        }
        if self.type in ("float", "int"):
            d.update(min=self.min, max=self.max)
        if self.type == "enum":
            d["choices"] = list(self.choices)
        if self.type != "str":
            d["osc_norm"] = f"/noclip/norm/{self.name}"
        else:
            d["length"] = self.length
        return d


_warned: dict[str, float] = {}  # parameter -> when a cut string was last warned about


def _warn_cut(name: str, length: int, limit: int) -> None:
    """A string cut to its parameter's length: warned at most every ten seconds per parameter (a
    flood of 65 KB prompts is not a flood of warnings)."""
    now = time.monotonic()
    if now - _warned.get(name, -math.inf) >= 10.0:
        _warned[name] = now
        log.warning("%s: a string of %d characters was cut to %d", name, length, limit)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ParamError(f"{name}: {value!r} is not a number") from None
    if not isinstance(value, (int, float)):
        raise ParamError(f"{name} takes a number, got {type(value).__name__}")
    x = float(value)
    if not math.isfinite(x):
        raise ParamError(f"{name}: {value!r} is not finite")
    return x


class Registry:
    """Name → ParamSpec. Re-declaring the same spec is a no-op (modules and chains reload)."""

    def __init__(self) -> None:
        self._specs: dict[str, ParamSpec] = {}
        self._lock = threading.Lock()
        self.version = 0
        self.assembled = False  # the catalogue's parameters are in (catalogue.assemble)

    def declare(self, spec: ParamSpec) -> ParamSpec:
        with self._lock:
            old = self._specs.get(spec.name)
            if old == spec:
                return old
            if old is not None and old.origin != spec.origin:
                raise ValueError(
                    f"parameter '{spec.name}' declared twice: in {old.origin} and in {spec.origin}"
                )
            self._specs[spec.name] = spec
            self.version += 1
            return spec

    def __getitem__(self, name: str) -> ParamSpec:
        return self._specs[name]

    def get(self, name: str) -> ParamSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ParamSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.group, s.name)))

    def __len__(self) -> int:
        return len(self._specs)

    def defaults(self) -> dict[str, Any]:
        return {s.name: s.default for s in self._specs.values()}


REGISTRY = Registry()


def declare(name: str, type: str = "float", default: Any = 0.0, *, origin: str = "",
            registry: Registry = REGISTRY, **kw: Any) -> ParamSpec:
    """Declare a parameter in `registry` (a test's own registry, say); the code's parameters are
    exported as PARAMS and declared by the catalogue, never at import time."""
    return registry.declare(ParamSpec(name, type, default, origin=origin, **kw))


class FrameParams(Mapping[str, Any]):
    """Immutable parameter values for frame n: what every stage of that frame reads."""

    __slots__ = ("_values", "beat", "dt", "frame", "time")

    def __init__(self, frame: int, time: float, dt: float, values: dict[str, Any], beat: Any = None) -> None:
        self.frame = frame
        self.time = time
        self.dt = dt
        self.beat = beat  # the frame's clock.Beat (tempo, beat, bar, phase), None outside a show
        self._values = MappingProxyType(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"FrameParams(frame={self.frame}, {dict(self._values)})"

    @property
    def field(self) -> int:
        """The field of an interlaced picture this frame brings: with the tape's `interlace` on,
        1 on odd frames and 0 on even ones; else always 0 (240p). The one rule a scene drawing
        fields and the tape stages reading them share (shaders/vhs/signal.frag says it again)."""
        return self.frame & 1 if self._values.get("interlace") else 0


@dataclass
class ParamBank:
    """Targets set by controls, values smoothed towards them once per frame.

    Smoothing is exponential with a time constant per parameter, `1 - exp(-dt/tau)` per step, so a
    knob glides the same at 30 and at 144 fps. Only the main loop touches a bank.
    """

    registry: Registry = field(default_factory=lambda: REGISTRY)
    targets: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    _moving: set[str] = field(default_factory=set)
    _version: int = -1

    def __post_init__(self) -> None:
        self.sync()

    def sync(self) -> None:
        """Pick up parameters declared since (a chain loaded after the bank was made)."""
        if self._version == self.registry.version:
            return
        for spec in self.registry:
            if spec.name not in self.targets:
                self.targets[spec.name] = spec.default
                self.values[spec.name] = spec.default
        self._version = self.registry.version

    def set(self, name: str, value: Any, *, norm: bool = False, immediate: bool = False) -> Any:
        """Set a target; returns the clamped value. KeyError for unknown names, ParamError for bad values."""
        spec = self.registry[name]
        v = spec.from_norm(value) if norm else spec.coerce(value)
        self.targets[name] = v
        if spec.continuous and spec.smooth > 0 and not immediate:
            self._moving.add(name)
        else:
            self.values[name] = v
            self._moving.discard(name)
        return v

    def nudge(self, name: str, step: int) -> Any:
        """Step an int or enum target (seed/next, seed/prev); wraps enums, clamps ints."""
        spec = self.registry[name]
        if spec.type == "enum":
            i = spec.choices.index(self.targets[name])
            return self.set(name, spec.choices[(i + step) % len(spec.choices)])
        return self.set(name, self.targets[name] + step)

    def advance(self, frame: int, time: float, dt: float, beat: Any = None,
                offsets: Mapping[str, float] | None = None) -> FrameParams:
        """Smooth every moving value one frame; `offsets` (modulators) move the frame's values
        around the hand's without touching them, clamped to each parameter's range."""
        self.sync()
        if self._moving:
            done = []
            for name in self._moving:
                tau = self.registry[name].smooth
                target, value = self.targets[name], self.values[name]
                value += (target - value) * (1.0 - math.exp(-dt / tau))
                spec = self.registry[name]
                lo, hi = spec.bounds
                if abs(target - value) <= 1e-5 * (hi - lo):
                    value = target
                    done.append(name)
                self.values[name] = value
            self._moving.difference_update(done)
        values = dict(self.values)
        for name, offset in (offsets or {}).items():
            values[name] = self.registry[name].coerce(values[name] + offset)
        return FrameParams(frame, time, dt, values, beat)
