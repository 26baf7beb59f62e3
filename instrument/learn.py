"""MIDI learn: choose a parameter, move a control, and the binding is written into the patch file.

The file is edited as text, not re-dumped: the performer's comments, order and layout stay as
they were, a binding already made for the same control is replaced in place, a new one is
appended. The result is validated as a patch before it replaces the file: written beside the
file, fsynced, given the file's permission bits and renamed over it (files.py), so a crash or a
full disk leaves the old patch whole; a patch that is a symlink stays one (its target is written).

It sits beside patch.py, above the parts, because it writes patch files and validates them as
patches; control/ only hands it MIDI.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .commands import COMMANDS
from .control.midi import default_tiers
from .control.midimap import ALSA_SUFFIX
from .files import replace_atomically
from .params import REGISTRY, Registry
from .patch import load_patch
from .tomlfile import line_of

WAIT = 0.4  # seconds of a control's messages looked at before deciding what kind of control it is
_REL_2C = set(range(1, 8)) | set(range(121, 128))
_REL_64 = set(range(57, 64)) | set(range(65, 72))
_HEADER = re.compile(r"^\s*\[")
Message = tuple[str, int, int, int]  # port, status, data1, data2


def device_name(port: str) -> str:
    """The stable part of a port name: 'nanoKONTROL2:nanoKONTROL2 MIDI 1 20:0' → 'nanoKONTROL2'."""
    return ALSA_SUFFIX.sub("", port).split(":")[0].strip()


def infer(messages: list[Message], target: str, registry: Registry = REGISTRY) -> dict[str, Any]:
    """The binding table for the control that sent `messages` (the first one names it)."""
    port, status, d1, _ = messages[0]
    kind, ch = status & 0xF0, (status & 15) + 1
    spec = registry.get(target)
    table: dict[str, Any] = {"device": device_name(port), "channel": ch}
    same = [m for m in messages if m[0] == port and m[1] & 0xF0 == kind and m[1] == status
            and (m[2] == d1 or kind in (0xE0, 0xD0))]
    values = {m[3] for m in same}
    discrete = spec is None or spec.type in ("bool", "enum")
    if kind in (0x80, 0x90):
        table["note"] = d1
        if spec is not None:
            table["mode"] = "toggle" if discrete else "momentary"
    elif kind == 0xB0:
        table["cc"] = d1
        pair = {m[2] for m in messages if m[0] == port and m[1] == status}
        if spec is None:
            pass
        elif len(same) > 1 and values <= _REL_2C and not values <= {0, 127}:
            table["mode"] = "relative_2c"
        elif len(same) > 1 and values <= _REL_64:
            table["mode"] = "relative_64"
        elif values <= {0, 127} and discrete:
            table["mode"] = "toggle"
        elif d1 < 32 and d1 + 32 in pair:
            table["lsb"] = d1 + 32
    elif kind == 0xE0:
        table["pitchbend"] = True
    elif kind == 0xD0:
        table["aftertouch"] = True
    elif kind == 0xA0:
        table["aftertouch"] = d1
    elif kind == 0xC0:
        table["program"] = d1 if spec is None else True
    table["param" if spec is not None else "command"] = target
    return table


def _toml(v: Any) -> str:
    return "true" if v is True else "false" if v is False else f'"{v}"' if isinstance(v, str) else str(v)


def render_binding(table: dict[str, Any]) -> list[str]:
    return ["[[midi]]", *(f"{k} = {_toml(v)}" for k, v in table.items())]


CONTROL_KEYS = ("device", "channel", "cc", "note", "pitchbend", "aftertouch", "program")


def write_binding(path: Path, table: dict[str, Any], registry: Registry = REGISTRY) -> str:
    """Put the binding into the patch file at `path`, preserving everything else; returns the new
    text. A binding of the same control to the same target is replaced where it stands."""
    import tomllib

    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    block = render_binding(table)
    same = [i for i, t in enumerate(tomllib.loads(text).get("midi", []))
            if all(t.get(k) == table.get(k) for k in CONTROL_KEYS)
            and (t.get("param"), t.get("command")) == (table.get("param"), table.get("command"))]
    start = line_of(text, ("midi", same[0])) if same else None
    if start is not None:
        end = start  # the header and its key lines, up to the next header; comments after stay
        for j in range(start, len(lines)):
            if _HEADER.match(lines[j]):
                break
            if lines[j].strip() and not lines[j].lstrip().startswith("#"):
                end = j + 1
        lines[start - 1:end] = block
    else:
        if lines and lines[-1].strip():
            lines.append("")
        lines += block
    new = "\n".join(lines) + "\n"
    with replace_atomically(path) as tmp:
        tmp.write_text(new, encoding="utf-8")
        load_patch(tmp, registry)  # a binding that does not validate never reaches the file
    return new


class Learn:
    """A learn session over a MidiControl: `arm(target)`, the performer moves a control, `poll()`
    (from the main thread) writes the binding and reloads the bindings. Also what the HUD key drives."""

    def __init__(self, midi: Any, path: Path, registry: Registry = REGISTRY,
                 on_learnt: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.midi, self.path, self.registry = midi, Path(path), registry
        self.targets = [s.name for s in registry if s.type != "str"] + sorted(COMMANDS)
        self.index = 0
        self.target: str | None = None
        self.status = ""
        self.on_learnt = on_learnt
        self._seen: list[Message] = []
        self._first = 0.0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.target is not None

    def arm(self, target: str) -> None:
        with self._lock:
            self.target, self._seen = target, []
        self.midi.learner = self._feed
        self.status = f"learn {target}: move a control"

    def toggle(self) -> None:
        if self.active:
            self.cancel()
        else:
            self.arm(self.targets[self.index])

    def choose(self, step: int) -> None:
        self.index = (self.index + step) % len(self.targets)
        if self.active:
            self.arm(self.targets[self.index])

    def cancel(self) -> None:
        self.midi.learner = None
        self.target = None
        self.status = ""

    def _feed(self, port: str, status: int, d1: int, d2: int, t: float) -> None:
        with self._lock:
            if not self._seen:
                if status & 0xF0 == 0x80 or (status & 0xF0 == 0x90 and d2 == 0):
                    return  # a release names no control
                self._first = t
            self._seen.append((port, status, d1, d2))

    def poll(self, now: float | None = None) -> dict[str, Any] | None:
        """Write the binding once a control has been moved for WAIT seconds (a note at once)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            seen, target = list(self._seen), self.target
        if not seen or target is None:
            return None
        if seen[0][1] & 0xF0 not in (0x90, 0xC0) and now - self._first < WAIT:
            return None
        self.cancel()
        table = infer(seen, target, self.registry)
        try:
            write_binding(self.path, table, self.registry)
        except Exception as exc:  # ConfigError, OSError: learning must never break the show
            self.status = f"learn failed: {exc}"
            return None
        patch = load_patch(self.path, self.registry)
        self.midi.set_tiers(default_tiers(patch.midi, str(self.path), self.midi.reporter, self.registry))
        self.status = f"learnt {target} ← {' '.join(f'{k}={v}' for k, v in table.items() if k != 'param')}"
        if self.on_learnt:
            self.on_learnt(table)
        return table
