"""Bindings at play time: a channel message → the ControlEvent its binding makes, and back (feedback).

Soft takeover needs to know where a parameter is now: a control owns its parameter from the moment
it sets it until anything else (another control, OSC, a key, a patch load) changes it; a control
that does not own its parameter must meet it first (`pickup`) or steer it in proportion until
they meet (`scale`). So a fader moved while another patch played never makes the value jump.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from ..events import CMD_TARGET, ControlEvent
from ..params import REGISTRY, Registry
from .midimap import POLY, Binding, Scale

TOL = 1.5 / 127  # a control within this of its parameter's position has met it
Key = tuple[int, int | None]


class Control:
    """One binding on one port: its last position, 14-bit halves, button state."""

    __slots__ = ("b", "echo", "msb", "out", "pressed", "prev", "scale", "seen_lsb", "virt")

    def __init__(self, b: Binding, registry: Registry) -> None:
        self.b = b
        self.scale = Scale(b, registry) if b.param else None
        self.prev: float | None = None   # last physical position (absolute controls)
        self.virt = 0.0                  # the parameter's position as this control last set it
        self.msb = 0
        self.seen_lsb = False
        self.pressed = False
        self.echo: int | None = None     # raw value last received, so feedback does not fight a finger
        self.out: tuple[int, ...] | None = None  # last feedback sent


class Mapper:
    """Thread-safe: rtmidi calls back from one thread per port, the frame loop calls `applied`."""

    def __init__(self, tiers: list[list[Binding]], emit: Callable[[ControlEvent], None],
                 registry: Registry = REGISTRY, targets: Mapping[str, Any] | None = None,
                 source: str = "midi", takeover: str | None = None) -> None:
        self.tiers = tiers  # first tier wins a control (patch bindings before controller files)
        self.emit = emit
        self.registry = registry
        self.targets = targets  # the bank's targets: where a parameter is when no control owns it
        self.source = source
        self.takeover = takeover  # forces every binding's takeover (MIDI files: "none")
        self.owner: dict[str, Control] = {}
        self.sent: dict[str, Any] = {}
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()

    def table(self, port: str) -> dict[Key, list[tuple[Control, bool]]]:
        """The dispatch table of one port: (status nibble, number) → its controls (and whether the
        key is a 14-bit LSB). Device patterns are matched here, once, not per message."""
        out: dict[Key, list[tuple[Control, bool]]] = {}
        for tier in self.tiers:
            mine: dict[Key, list[tuple[Control, bool]]] = {}
            for b in tier:
                if not b.matches(port):
                    continue
                c = Control(b, self.registry)
                mine.setdefault((b.status, b.number), []).append((c, False))
                if b.lsb is not None:
                    mine.setdefault((b.status, b.lsb), []).append((c, True))
            for key, controls in mine.items():
                out.setdefault(key, controls)
        return out

    def controls(self, table: dict[Key, list[tuple[Control, bool]]]) -> list[Control]:
        seen: dict[int, Control] = {}
        for entries in table.values():
            for c, _ in entries:
                seen.setdefault(id(c), c)
        return list(seen.values())

    # -- input ---------------------------------------------------------------------------------

    def handle(self, table: dict[Key, list[tuple[Control, bool]]], status: int, d1: int, d2: int,
               t: float) -> bool:
        """One channel message (status with channel, data bytes 0..127); False when nothing is bound."""
        hi, ch = status & 0xF0, status & 0x0F
        if hi == 0x80:
            hi, d2 = 0x90, 0
        if hi == 0xE0:
            entries, raw, full = table.get((0xE0, None)), d1 | (d2 << 7), 16383
        elif hi == 0xD0:
            entries, raw, full = table.get((0xD0, None)), d1, 127
        elif hi == 0xC0:
            entries = (table.get((0xC0, d1)) or []) + (table.get((0xC0, None)) or [])
            raw, full = d1, 127
        else:
            entries, raw, full = table.get((hi, d1)), d2, 127
        if not entries:
            return False
        with self._lock:
            for c, is_lsb in entries:
                if c.b.channel is None or c.b.channel == ch:
                    self._feed(c, is_lsb, raw, full, t)
        return True

    def _feed(self, c: Control, is_lsb: bool, raw: int, full: int, t: float) -> None:
        b = c.b
        mode = b.mode
        if mode == "output":
            return
        if mode == "absolute":
            if b.kind == "note":
                if raw == 0:
                    return  # note off: an absolute note keeps its value
                u = raw / 127.0 if b.velocity else 1.0
            elif b.kind == "program" and b.number is None:
                u = raw / 127.0
            elif b.lsb is not None:
                if is_lsb:
                    c.seen_lsb = True
                    raw, full = (c.msb << 7) | raw, 16383
                else:
                    c.msb = raw
                    if c.seen_lsb:
                        return  # the LSB completes the pair (no dip between halves)
                u = raw / full
            else:
                u = raw / full
            c.echo = raw if full == 127 or b.lsb is not None or b.kind == "pitchbend" else None
            # a hit has no position to meet: no takeover
            moved = self._takeover(c, u) if b.kind not in ("note", "program") else u
            if moved is not None:
                self._send(c, moved, t)
            return
        if mode.startswith("relative"):
            delta = (raw if raw < 64 else raw - 128) if mode == "relative_2c" else raw - 64
            if delta:
                self._send(c, self._position(c) + delta * b.speed / 127.0, t)
            return
        down = raw > 0 if b.kind in ("note", "program") else raw >= 64
        was, c.pressed = c.pressed, down
        if b.kind == "program":
            was = False  # every program change is a press
        if mode == "momentary":
            if down != was:
                self._send(c, (raw / 127.0 if b.kind == "note" and b.velocity else 1.0) if down else 0.0, t)
            return
        if not down or was:
            return
        if mode == "toggle":
            self._send(c, 0.0 if self._position(c) >= 0.5 else 1.0, t)
        elif b.command is not None:
            self.emit(ControlEvent(self.source, CMD_TARGET + b.command, b.args, time=t))
            self.stats["events"] += 1
        else:  # trigger on a parameter: set it to `value` (the top of the range by default)
            assert c.scale is not None  # not a command: a parameter's binding, which has its scale
            self._send(c, c.scale.position(b.value) if b.value is not None else 1.0, t)

    def _position(self, c: Control) -> float:
        """Where the bound parameter is now, in this control's units (0..1)."""
        param, scale = c.b.param, c.scale
        assert param is not None and scale is not None  # only a parameter's binding has a position
        if self.owner.get(param) is c:
            return c.virt
        return scale.position(self.reference(param))

    def reference(self, param: str) -> Any:
        if param in self.sent and param in self.owner:
            return self.sent[param]
        if self.targets is not None and param in self.targets:
            return self.targets[param]
        return self.registry[param].default

    def _takeover(self, c: Control, u: float) -> float | None:
        prev, c.prev = c.prev, u
        mode = self.takeover or c.b.takeover
        assert c.scale is not None  # absolute controls of a parameter: commands are triggers
        if mode == "none" or c.scale.spec.type not in ("float", "int"):
            return u
        v = self._position(c)
        if abs(u - v) <= TOL:
            return u
        if prev is None or u == prev:
            self.stats["held"] += 1
            return None  # no direction yet: wait for the control to move towards its parameter
        if (prev - v) * (u - v) <= 0:
            return u  # crossed the parameter's position: picked up
        if mode == "pickup":
            self.stats["held"] += 1
            return None
        # scale: move the parameter in proportion, so control and parameter meet at the end it heads for
        v += (u - prev) * ((1.0 - v) / (1.0 - prev) if u > prev else v / prev)
        return u if abs(u - v) <= TOL else v

    def _send(self, c: Control, u: float, t: float) -> None:
        u = 0.0 if u < 0.0 else 1.0 if u > 1.0 else u
        param, scale = c.b.param, c.scale
        assert param is not None and scale is not None  # commands are emitted by _feed, not sent here
        value = scale.value(u)
        owned = self.owner.get(param) is c
        c.virt = u
        if owned and self.sent.get(param) == value:
            return  # the same value again (a storm of one value, a relative step inside one int)
        self.owner[param] = c
        self.sent[param] = value
        self.emit(ControlEvent(self.source, param, value, time=t))
        self.stats["events"] += 1

    # -- EventSink: anything else that changes a parameter releases it ------------------------------

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        if event.source == self.source:
            return
        with self._lock:
            if event.is_command:
                self.owner.clear()  # a patch load, a seed step: any parameter may have moved
            else:
                self.owner.pop(event.target, None)

    def close(self, frames: int = 0) -> None:
        pass

    # -- feedback ----------------------------------------------------------------------------------

    @staticmethod
    def feedback(c: Control, value: Any) -> tuple[int, ...] | None:
        """The message that shows `value` on the control (LED, motor fader); None if unchanged or
        if it is where the performer's hand just put it."""
        b = c.b
        assert c.scale is not None  # feedback shows a parameter's value
        u = c.scale.position(value)
        ch = b.channel or 0
        msg: tuple[int, ...]
        if b.kind == "cc" and b.number is not None:  # a cc's or a note's number is always set
            if b.lsb is not None:
                v = round(u * 16383)
                msg = (0xB0 | ch, b.number, v >> 7, 0xB0 | ch, b.lsb, v & 127)
            else:
                v = round(u * 127)
                msg = (0xB0 | ch, b.number, v)
        elif b.kind == "note" and b.number is not None:
            v = round(u * 127) if b.mode == "absolute" else (127 if u >= 0.5 else 0)
            msg = (0x90 | ch, b.number, v)
        elif b.kind == "pitchbend":
            v = round(u * 16383)
            msg = (0xE0 | ch, v & 127, v >> 7)
        else:
            return None
        if msg == c.out or (c.echo is not None and v == c.echo and b.mode in ("absolute",)):
            c.out = msg
            return None
        c.out = msg
        return msg


__all__ = ["POLY", "TOL", "Control", "Mapper"]
