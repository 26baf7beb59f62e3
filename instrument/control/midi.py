"""MIDI in (and out, for LEDs and motor faders): ports by name pattern, hot-plug, clock, bad bytes.

The frame loop polls (a ControlSource of the Show): each input port's queue, filled by rtmidi's own
thread, is read in one go; every message is stamped with its arrival time (rtmidi's deltas put on
our clock by `stamps.ArrivalClock`), parsed here (running status, SysEx, realtime bytes inside
messages, damage) and handed to the Mapper, whose ControlEvents reach FrameParams in that very
frame. A scan thread once a second opens ports that appeared and reports (once) those that
vanished; a controller that comes back is re-attached and its bindings pick their parameters up
again, with nothing else interrupted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from ..clock import ClockFollower
from ..events import ControlEvent, ControlQueue, Host
from ..params import REGISTRY, FrameParams, Registry
from ..report import Reporter
from .mapper import Control, Mapper
from .midimap import Binding, controller_files, device_matches, load_controller, patch_bindings
from .midiports import CLIENT, Backend, PortError, RtMidiBackend
from .stamps import ArrivalClock

log = logging.getLogger("noclip")
SCAN = 1.0      # seconds between hot-plug scans
STORM = 5000    # messages a second from one port that we call a storm (counted, logged once)
BATCH = 2048    # messages taken from one port per frame (~8 ms of work): a storm cannot stall the loop
_COMMON = {0xF1: 1, 0xF2: 2, 0xF3: 1, 0xF6: 0}  # system common messages and their data lengths
_NAMES = {0x80: "note off", 0x90: "note", 0xA0: "poly pressure", 0xB0: "cc", 0xC0: "program",
          0xD0: "pressure", 0xE0: "pitch bend"}
Learner = Callable[[str, int, int, int, float], None]


class _Port:
    __slots__ = ("clock", "controls", "count", "feedback", "input", "name", "output", "status", "table",
                 "window")

    def __init__(self, name: str, table: dict, controls: list[Control]) -> None:
        self.name, self.table = name, table
        self.controls = controls
        self.feedback = [c for c in controls if c.b.feedback or c.b.mode == "output"]
        self.input: Any = None
        self.output: Any = None
        self.status: int | None = None  # running status
        self.count = 0
        self.window = 0.0
        self.clock = ArrivalClock(time.perf_counter())


def default_tiers(patch_tables: Iterable[dict], origin: str, reporter: Reporter,
                  registry: Registry = REGISTRY) -> list[list[Binding]]:
    """The patch's own bindings first, then every controller file (a broken one is reported and
    skipped: the show goes on with the others)."""
    files: list[Binding] = []
    for path in controller_files():
        try:
            files += load_controller(path, registry)[1]
        except Exception as exc:  # ConfigError, or an unreadable file
            reporter.error("midi controller file", str(exc))
    return [patch_bindings(patch_tables, origin, registry), files]


class MidiControl:
    """Feedback (publish) and EventSink (applied) of the Show; see `attach`."""

    def __init__(self, queue: ControlQueue, reporter: Reporter, tiers: list[list[Binding]], *,
                 backend: Backend | None = None, patterns: Iterable[str] = ("",), virtual: bool = True,
                 registry: Registry = REGISTRY) -> None:
        self.queue, self.reporter, self.registry = queue, reporter, registry
        self.patterns = list(patterns)
        self.want_virtual = virtual
        self.mapper = Mapper(tiers, queue.put, registry)
        self.clock = ClockFollower()
        self.stats: Counter[str] = Counter()
        self.ports: dict[str, _Port] = {}
        self.learner: Learner | None = None
        self._last: tuple[str, int, int, int] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._scanning, name="midi-scan", daemon=True)
        self.backend: Backend | None = backend
        if backend is None:
            try:
                self.backend = RtMidiBackend()
            except (PortError, ImportError) as exc:
                reporter.problem("midi unavailable", "system", f"MIDI off: {exc}")

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, show: Host) -> MidiControl:
        """Play into `show`: it polls the ports each frame, soft takeover reads its targets, feedback
        and event records come from it, and a patch loaded mid-show brings its own bindings."""
        self.mapper.targets = show.targets
        show.add_source(self)
        show.add_feedback(self)
        show.add_sink(self)
        show.on_patch(self.patch_loaded)
        return self

    def patch_loaded(self, patch: Any) -> None:
        """A new patch plays: its bindings first, then the controller files, as at the start."""
        self.set_tiers(default_tiers(patch.midi, str(patch.path or patch.name), self.reporter, self.registry))

    def set_tiers(self, tiers: list[list[Binding]]) -> None:
        """New bindings (a patch loaded, a binding learnt): every port's table is rebuilt."""
        with self._lock:
            self.mapper.tiers = tiers
            for p in self.ports.values():
                p.table = self.mapper.table(p.name)
                p.controls = self.mapper.controls(p.table)
                p.feedback = [c for c in p.controls if c.b.feedback or c.b.mode == "output"]

    def start(self) -> MidiControl:
        self.scan()
        self._thread.start()
        return self

    def close(self, frames: int | None = None) -> None:
        """Also the EventSink's close: the ports stay open until the owner closes them (frames None)."""
        if frames is not None:
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        with self._lock:
            for p in list(self.ports.values()):
                self._close_port(p)
            self.ports.clear()

    # -- ports and hot-plug ----------------------------------------------------------------------

    def _scanning(self) -> None:
        while not self._stop.wait(SCAN):
            try:
                self.scan()
            except Exception as exc:  # a backend hiccup must not end hot-plug
                self.reporter.problem("midi scan", type(exc).__name__, f"port scan failed: {exc}")

    def wanted(self, name: str) -> bool:
        return not name.startswith(CLIENT) and any(device_matches(p, name) for p in self.patterns)

    def scan(self) -> None:
        """Open what appeared, close (and report once) what vanished; called every SCAN seconds."""
        be = self.backend
        if be is None:
            return
        present = set(be.inputs())  # slow on a real system: the frame loop's poll need not wait for it
        with self._lock:
            for name, p in list(self.ports.items()):
                if name == CLIENT:
                    continue
                if name not in present or not getattr(p.input, "alive", True):
                    self._close_port(p)
                    del self.ports[name]
                    self.stats["unplugged"] += 1
                    self.reporter.problem("midi unplugged", name, f"{name} unplugged (re-attached on return)")
            for name in sorted(present):
                if name not in self.ports and self.wanted(name):
                    self._open(be, name)
            if self.want_virtual and CLIENT not in self.ports and be.virtual:
                self._open(be, CLIENT, virtual=True)

    def _open(self, be: Backend, name: str, virtual: bool = False) -> None:
        table = self.mapper.table(name)
        p = _Port(name, table, self.mapper.controls(table))  # its clock starts before the port opens
        try:
            p.input = be.open_virtual(name) if virtual else be.open_input(name)
        except PortError as exc:
            if virtual:
                self.want_virtual = False
            self.reporter.problem("midi open", name, str(exc))
            return
        if p.feedback and not virtual:
            self._open_output(be, p)
        returning = self.stats[f"seen {name}"] > 0
        self.stats[f"seen {name}"] += 1
        self.ports[name] = p
        log.info("MIDI %s %s%s", "re-attached" if returning else "in:", name,
                 f" ({len(p.controls)} bindings)" if p.controls else "")

    def _open_output(self, be: Backend, p: _Port) -> None:
        outs = be.outputs()
        name = p.name if p.name in outs else next((o for o in outs if device_matches(o, p.name)), None)
        if name is None:
            return
        try:
            p.output = be.open_output(name)
        except PortError as exc:
            self.reporter.problem("midi open", name, str(exc))

    def _close_port(self, p: _Port) -> None:
        for handle in (p.input, p.output):
            if handle is not None:
                with contextlib.suppress(Exception):  # it is gone already: that is why we close it
                    handle.close()

    # -- input: bytes → messages ---------------------------------------------------------------------

    def poll(self) -> None:
        """Called by the frame loop before it drains the queue: every port's waiting messages, stamped
        and mapped, so they make this very frame."""
        with self._lock:  # the scan thread must not close a port mid-read
            for p in self.ports.values():
                self._take(p)

    def _take(self, p: _Port) -> None:
        """One port's queue, read in one go, then stamped and parsed. Never raises: a damaged message
        is counted and dropped whole, a port that fails is left to the scan."""
        get = p.input.get_message
        batch: list[Any] = []
        start = time.perf_counter()
        try:
            while len(batch) < BATCH and (m := get()) is not None:
                batch.append(m)
        except Exception as exc:  # the device vanished under the read
            self.stats["errors"] += 1
            self.reporter.problem("midi error", p.name, f"{p.name}: {type(exc).__name__}: {exc}")
        if not batch:
            p.clock.since = start  # empty now: what comes next arrives later
            return
        now = time.perf_counter()
        stamps = p.clock.stamps([d for _, d in batch], now, start, emptied=len(batch) < BATCH)
        p.count += len(batch)
        if now >= p.window:
            if p.count > STORM * SCAN:
                self.stats["storms"] += 1
                self.reporter.problem("midi storm", p.name, f"{p.name}: over {STORM} messages a second")
            p.count, p.window = 0, now + SCAN
        channel = self._channel
        for (data, _), t in zip(batch, stamps, strict=True):
            try:
                if len(data) == 3:
                    s, d1, d2 = data
                    if 0x80 <= s < 0xF0 and d1 < 128 and d2 < 128 and (s & 0xE0) != 0xC0:
                        p.status = s  # the common case: one whole channel message
                        channel(p, s, d1, d2, t)
                        continue
                self._parse(p, data, t)
            except Exception as exc:  # a bug here must not end the frame
                self.stats["errors"] += 1
                self.reporter.problem("midi error", p.name, f"{p.name}: {type(exc).__name__}: {exc}")

    def _parse(self, p: _Port, data: list[int], t: float) -> None:
        i, n = 0, len(data)
        while i < n:
            b = data[i]
            if b >= 0xF8:
                self._realtime(p, b, t)
                i += 1
                continue
            if b == 0xF0:
                try:
                    i = data.index(0xF7, i) + 1
                except ValueError:
                    i = n
                    self._bad(p, "sysex unterminated", "SysEx without its end byte (F7)")
                self.stats["sysex"] += 1
                p.status = None
                continue
            if b >= 0xF0:
                p.status = None
                if b not in _COMMON:
                    self._bad(p, "midi unknown", f"unknown message type {b:#04x}")
                    i += 1
                    continue
                status, need = b, _COMMON[b]
                i += 1
            elif b >= 0x80:
                status, need = b, 1 if (b & 0xE0) == 0xC0 else 2
                i += 1
            elif p.status is None:
                return self._bad(p, "midi bad data", f"data byte {b} with no status before it")
            else:
                status = p.status  # running status
                need = 1 if (status & 0xE0) == 0xC0 else 2
                self.stats["running status"] += 1
            got: list[int] = []
            while len(got) < need:
                if i >= n:
                    return self._bad(p, "midi truncated", f"{_name(status)} cut short")
                d = data[i]
                i += 1
                if d >= 0xF8:
                    self._realtime(p, d, t)  # realtime bytes may sit inside any message
                elif d >= 0x80:
                    return self._bad(p, "midi bad data", f"{_name(status)}: data byte {d} out of range 0..127")
                else:
                    got.append(d)
            if status >= 0xF0:
                if status == 0xF2:
                    self.clock.song_position(got[0] | (got[1] << 7))
                continue
            p.status = status
            self._channel(p, status, got[0], got[1] if need == 2 else 0, t)

    def _realtime(self, p: _Port, b: int, t: float) -> None:
        if b == 0xF8:
            self.clock.tick(t)
        elif b == 0xFA:
            self.clock.start()
        elif b == 0xFB:
            self.clock.cont()
        elif b == 0xFC:
            self.clock.stop()
        elif b in (0xF9, 0xFD):
            self._bad(p, "midi unknown", f"undefined realtime byte {b:#04x}")

    def _channel(self, p: _Port, status: int, d1: int, d2: int, t: float) -> None:
        self.stats["messages"] += 1
        self._last = (p.name, status, d1, d2)
        if self.learner is not None:
            return self.learner(p.name, status, d1, d2, t)
        if not self.mapper.handle(p.table, status, d1, d2, t):
            self.stats["unbound"] += 1

    def _bad(self, p: _Port, kind: str, message: str) -> None:
        self.stats[kind.removeprefix("midi ")] += 1
        self.reporter.problem(kind, p.name, f"{p.name}: {message}")

    @property
    def last_message(self) -> str:
        if self._last is None:
            return ""
        name, s, d1, d2 = self._last
        return f"{name}: {_name(s)} ch{(s & 15) + 1} {d1} {d2}"

    # -- the show's hooks --------------------------------------------------------------------------

    def publish(self, fp: FrameParams) -> None:
        """Each frame: LEDs and motor faders follow their parameters (only what changed is sent)."""
        for p in list(self.ports.values()):
            if p.output is None or not p.feedback:
                continue
            for c in p.feedback:
                value = fp.get(c.b.param) if c.b.param is not None else None
                msg = None if value is None else Mapper.feedback(c, value)
                if msg is None:
                    continue
                try:
                    p.output.send(msg)
                    self.stats["sent"] += 1
                except PortError as exc:
                    self.reporter.problem("midi send", p.name, f"cannot send to {p.name}: {exc}")
                    p.output = None
                    break

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        self.mapper.applied(event, frame, value)


def _name(status: int) -> str:
    return _NAMES.get(status & 0xF0, f"{status:#04x}") if status < 0xF0 else f"system {status:#04x}"


def port_names(backend: Backend | None = None) -> tuple[list[str], list[str], bool]:
    """Inputs, outputs and whether virtual ports exist, for `noclip devices`."""
    be = backend or RtMidiBackend()
    return be.inputs(), be.outputs(), be.virtual
