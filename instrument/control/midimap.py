"""MIDI bindings: what a control does, read from TOML (`[[midi]]` in a patch or a controller file).

A binding names a control (device pattern, channel, cc / note / pitchbend / aftertouch / program),
a target (a parameter or a command) and how the control plays it (mode, range, curve, soft
takeover, 14-bit pairs, velocity). Validation happens when the file loads and names file, line and
key; at play time a binding only does arithmetic.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import CMD_TARGET
from ..params import REGISTRY, Registry
from ..resources import data_dir
from ..tomlfile import ConfigError, TomlFile

KINDS = ("cc", "note", "pitchbend", "aftertouch", "program")
MODES = ("absolute", "relative_2c", "relative_64", "toggle", "momentary", "trigger", "output")
CURVES = ("linear", "exp", "log")
TAKEOVERS = ("none", "pickup", "scale")
KEYS = {"device", "channel", *KINDS, "lsb", "param", "command", "args", "mode", "range", "curve",
        "takeover", "velocity", "feedback", "value", "speed"}
# status nibble of each kind; notes answer to note-on and note-off, aftertouch with a note is poly
STATUS = {"cc": 0xB0, "note": 0x90, "pitchbend": 0xE0, "aftertouch": 0xD0, "program": 0xC0}
POLY = 0xA0
CURVE_K = 4.0  # steepness of exp/log: exp puts a quarter of the travel into the bottom 5% of values
_EXPK = math.expm1(CURVE_K)
ALSA_SUFFIX = re.compile(r"\s+\d+:\d+$")  # ALSA's client:port tail ("… 20:0"); learn.py strips it too
_COMMAND = re.compile(r"^[a-z0-9_]+(/[a-z0-9_]+)*$")

ErrorFn = Callable[[tuple[str | int, ...], str], Exception]


@dataclass(frozen=True)
class Binding:
    kind: str                 # one of KINDS
    number: int | None        # cc / note number; None: the channel-wide message (pitch bend, pressure,
    #                           program number as the value)
    param: str | None = None
    command: str | None = None
    args: tuple[Any, ...] = ()
    device: str = ""          # name pattern; "" answers to every device
    channel: int | None = None  # 0..15 internally (1..16 in files); None: any channel
    lsb: int | None = None    # 14-bit CC: the LSB controller paired with `number` (the MSB)
    mode: str = "absolute"
    lo: float | None = None   # range in natural units (None: the parameter's own)
    hi: float | None = None
    curve: str = "linear"
    takeover: str = "pickup"
    velocity: bool = True     # notes: velocity sets the value (absolute, momentary)
    feedback: bool = False    # drive the control's LED / motor fader from the parameter
    value: Any = None         # trigger: the value a press sets (default: top of the range)
    speed: float = 1.0        # relative modes: range fraction per tick is speed/127
    origin: str = ""          # file:line, for messages

    @property
    def target(self) -> str:
        return self.param if self.param is not None else CMD_TARGET + str(self.command)

    @property
    def status(self) -> int:
        """The status nibble this binding answers to (poly pressure for aftertouch on a note)."""
        return POLY if self.kind == "aftertouch" and self.number is not None else STATUS[self.kind]

    def matches(self, port: str) -> bool:
        return device_matches(self.device, port)


def device_matches(pattern: str, port: str) -> bool:
    """Case-insensitive substring or glob, against the port name without ALSA's `20:0` numbers
    (which change between boots)."""
    if not pattern:
        return True
    name, pattern = ALSA_SUFFIX.sub("", port).lower(), pattern.lower()
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def parse_bindings(tables: Any, error: ErrorFn, registry: Registry = REGISTRY,
                   device: str = "", origin: str = "", lines: Callable[[int], int | None] | None = None,
                   ) -> list[Binding]:
    """`[[midi]]` tables → Bindings; `error(path, message)` makes the exception to raise."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise error(("midi",), "midi is a list of [[midi]] tables")
    return [_parse_one(i, t, error, registry, device, origin, lines) for i, t in enumerate(tables)]


def _int(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _parse_one(i: int, t: dict[str, Any], error: ErrorFn, registry: Registry, device: str, origin: str,
               lines: Callable[[int], int | None] | None) -> Binding:
    def bad(key: str, message: str) -> Exception:
        return error(("midi", i, key), message)

    for key in t:
        if key not in KEYS:
            raise bad(key, f"unknown binding key (have: {', '.join(sorted(KEYS))})")
    kinds = [k for k in KINDS if k in t]
    if len(kinds) != 1:
        raise error(("midi", i), "a binding names exactly one of cc, note, pitchbend, aftertouch, program")
    kind = kinds[0]
    raw = t[kind]
    if kind in ("cc", "note"):
        if not _int(raw, 0, 127):
            raise bad(kind, f"{kind} number 0..127")
        number = raw
    elif raw is True:
        number = None
    elif kind in ("aftertouch", "program") and _int(raw, 0, 127):
        number = raw  # poly aftertouch of one note; one program number as a trigger
    else:
        raise bad(kind, f"{kind} = true" + (" or a number 0..127" if kind != "pitchbend" else ""))
    channel = t.get("channel")
    if channel is not None and not _int(channel, 1, 16):
        raise bad("channel", "channel 1..16 (leave it out for any channel)")
    dev = t.get("device", device)
    if not isinstance(dev, str):
        raise bad("device", "a device name pattern (a part of the port name, or a glob)")
    if ("param" in t) == ("command" in t):
        raise error(("midi", i), "a binding has a param or a command (one of them)")
    param, command = t.get("param"), t.get("command")
    spec = None
    if param is not None:
        spec = registry.get(param) if isinstance(param, str) else None
        if spec is None:
            raise bad("param", f"unknown parameter {param!r} (see `noclip params`)")
        if spec.type == "str":
            raise bad("param", f"{param} is a string and cannot be played from MIDI")
    elif not isinstance(command, str) or not _COMMAND.match(command):
        raise bad("command", "a command name such as seed/next (see `noclip params`)")
    args = t.get("args", [])
    if not isinstance(args, list):
        raise bad("args", "args is a list")
    value_kinds = kind in ("pitchbend",) or (kind in ("aftertouch", "program") and number is None)
    levelled = spec is not None and spec.type in ("float", "int", "enum")  # a note sets a level, not on/off
    default_mode = ("trigger" if command or (kind == "program" and number is not None)
                    else "absolute" if kind != "note" or levelled else "toggle")
    mode = t.get("mode", default_mode)
    if mode not in MODES:
        raise bad("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    if command and mode != "trigger":
        raise bad("mode", "a command binding fires on press: mode = \"trigger\"")
    if mode.startswith("relative") and kind != "cc":
        raise bad("mode", "relative modes are for cc encoders")
    if value_kinds and mode not in ("absolute", "output"):
        raise bad("mode", f"{kind} carries a value: mode = \"absolute\"")
    lsb = t.get("lsb")
    if lsb is not None and (kind != "cc" or not _int(lsb, 0, 127) or lsb == number):
        raise bad("lsb", "lsb is the LSB cc number (0..127) paired with this cc for 14-bit")
    lo = hi = None
    if "range" in t:
        r = t["range"]
        if spec is None or spec.type not in ("float", "int"):
            raise bad("range", "range is for numeric parameters")
        if not (isinstance(r, list) and len(r) == 2 and all(isinstance(v, (int, float)) for v in r)):
            raise bad("range", "range = [low, high] in the parameter's units")
        least, most = spec.bounds
        lo, hi = (min(max(float(v), least), most) for v in r)
        if lo == hi:
            raise bad("range", "range needs two different ends")
    curve = t.get("curve", "linear")
    if curve not in CURVES:
        raise bad("curve", f"{curve!r} is not one of {', '.join(CURVES)}")
    takeover = t.get("takeover", "pickup")
    if takeover not in TAKEOVERS:
        raise bad("takeover", f"{takeover!r} is not one of {', '.join(TAKEOVERS)}")
    for key in ("velocity", "feedback"):
        if not isinstance(t.get(key, True), bool):
            raise bad(key, f"{key} = true or false")
    speed = t.get("speed", 1.0)
    if not isinstance(speed, (int, float)) or isinstance(speed, bool) or not 0 < speed <= 127:
        raise bad("speed", "speed is a positive number (range fraction per tick is speed/127)")
    value = t.get("value")
    if value is not None:
        if spec is None:
            raise bad("value", "value is for parameter bindings")
        try:
            value = spec.coerce(value)
        except ValueError as exc:
            raise bad("value", str(exc)) from None
    where = f"{origin}:{lines(i)}" if lines and lines(i) else origin
    return Binding(kind, number, param, command, tuple(args), dev, None if channel is None else channel - 1,
                   lsb, mode, lo, hi, curve, takeover, t.get("velocity", True), t.get("feedback", False),
                   value, float(speed), where)


def load_bindings(tf: TomlFile, registry: Registry = REGISTRY, device: str = "") -> list[Binding]:
    """The `[[midi]]` tables of a parsed file; ConfigError naming file, line and key."""
    return parse_bindings(tf.data.get("midi", []), tf.error, registry, device, str(tf.path),
                          lambda i: tf_line(tf, i))


def tf_line(tf: TomlFile, i: int) -> int | None:
    from ..tomlfile import line_of

    return line_of(tf.text, ("midi", i))


def patch_bindings(tables: Iterable[dict[str, Any]], origin: str,
                   registry: Registry = REGISTRY) -> list[Binding]:
    """Bindings from a patch's (already validated) tables."""
    return parse_bindings(list(tables), lambda p, m: ConfigError(origin, None, ".".join(map(str, p)), m),
                          registry, origin=origin)


CONTROLLER_KEYS = {"version", "name", "description", "device", "midi"}


def load_controller(path: Path, registry: Registry = REGISTRY) -> tuple[str, list[Binding]]:
    """A controller file: `device` (name pattern) and its `[[midi]]` bindings."""
    tf = TomlFile(path)
    for key in tf.data:
        if key not in CONTROLLER_KEYS:
            raise tf.error((key,), f"unknown key (have: {', '.join(sorted(CONTROLLER_KEYS))})")
    device = tf.data.get("device")
    if not isinstance(device, str) or not device:
        raise tf.error(("device",), "device = \"<part of the port name>\" is required")
    return tf.data.get("name", path.stem), load_bindings(tf, registry, device)


def controller_files() -> list[Path]:
    try:
        folder = data_dir("patches") / "controllers"
    except FileNotFoundError:
        return []
    return sorted(folder.glob("*.toml"))


# -- values ----------------------------------------------------------------------------------------

def curve(name: str, u: float) -> float:
    if name == "exp":
        return math.expm1(CURVE_K * u) / _EXPK
    if name == "log":
        return math.log1p(_EXPK * u) / CURVE_K
    return u


def uncurve(name: str, y: float) -> float:
    return curve("log" if name == "exp" else "exp" if name == "log" else name, y)


class Scale:
    """A binding's control position u (0..1) ↔ its parameter's natural value, both ways."""

    __slots__ = ("curve", "fast", "hi", "lo", "spec")

    def __init__(self, b: Binding, registry: Registry) -> None:
        if b.param is None:
            raise ValueError(f"{b.origin}: a command binding has no scale")
        self.spec = s = registry[b.param]
        numeric = s.type in ("float", "int")
        least, most = s.bounds if numeric else (0.0, 1.0)
        self.lo = float(b.lo if b.lo is not None else least)
        self.hi = float(b.hi if b.hi is not None else most)
        self.curve = b.curve if numeric else "linear"
        self.fast = numeric and s.type == "float" and self.curve == "linear"  # lo..hi lie inside min..max

    def value(self, u: float) -> Any:
        s = self.spec
        u = 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
        if self.fast:
            return self.lo + u * (self.hi - self.lo)
        if s.type in ("float", "int"):
            c = self.curve
            return s.coerce(self.lo + (curve(c, u) if c != "linear" else u) * (self.hi - self.lo))
        return s.from_norm(u)

    def position(self, value: Any) -> float:
        s = self.spec
        if s.type in ("float", "int"):
            y = (value - self.lo) / (self.hi - self.lo)
            y = 0.0 if y < 0.0 else 1.0 if y > 1.0 else y
            return uncurve(self.curve, y) if self.curve != "linear" else y
        return s.to_norm(value)
