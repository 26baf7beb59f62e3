"""MIDI backends without hardware, for tests and `noclip bench --only midi`: in-process fakes that
behave like python-rtmidi (ports appear, vanish mid-show and come back; messages wait in a queue
until read), and a pipe another process writes, so a benchmark's sender does not share the show's
interpreter.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence

from .midiports import InPort, Message, OutPort, PortError


class FakeDevice:
    """A controller plugged into a FakeBackend: `send` plays it, `sent` is what noclip sent it."""

    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self.sent: list[tuple[int, ...]] = []

    def send(self, data: list[int] | bytes, at: float | None = None) -> bool:
        """Queue one message at the open port, as rtmidi would, with the delta since the previous one
        (from `at`, by default now); False if no one has the port open."""
        port = self.backend._ports.get(self.name)
        if port is None:
            return False
        at = time.perf_counter() if at is None else at
        port.queue.append((list(data), 0.0 if port.last is None else at - port.last))
        port.last = at
        return True


class FakeBackend:
    """Behaves like rtmidi for the port layer: opening a missing port fails, a vanished device's
    queue stops filling and sending to it raises, and it can come back under the same name."""

    def __init__(self, *names: str, virtual: bool = True) -> None:
        self.virtual = virtual
        self.devices: dict[str, FakeDevice] = {}
        self._ports: dict[str, _FakeIn] = {}
        self._lock = threading.Lock()
        self.opened: list[str] = []
        for n in names:
            self.plug(n)

    def plug(self, name: str) -> FakeDevice:
        with self._lock:
            dev = self.devices[name] = self.devices.get(name) or FakeDevice(self, name)
        return dev

    def unplug(self, name: str) -> None:
        with self._lock:
            self.devices.pop(name, None)
            self._ports.pop(name, None)

    def inputs(self) -> list[str]:
        return list(self.devices)

    def outputs(self) -> list[str]:
        return list(self.devices)

    def open_input(self, name: str) -> InPort:
        with self._lock:
            if name not in self.devices:
                raise PortError(f"no MIDI input {name!r}")
            port = self._ports[name] = _FakeIn(self, name)
            self.opened.append(name)
        return port

    def open_output(self, name: str) -> OutPort:
        if name not in self.devices:
            raise PortError(f"no MIDI output {name!r}")
        return _FakeOut(self, name)

    def open_virtual(self, name: str) -> InPort:
        if not self.virtual:
            raise PortError("no virtual ports here")
        self.plug(name)
        return self.open_input(name)


class _FakeIn:
    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self.queue: deque[Message] = deque()
        self.last: float | None = None

    @property
    def alive(self) -> bool:
        """False once the device was unplugged, even if it came back since (it needs reopening)."""
        return self.backend._ports.get(self.name) is self

    def get_message(self) -> Message | None:
        return self.queue.popleft() if self.queue else None

    def close(self) -> None:
        with self.backend._lock:
            if self.backend._ports.get(self.name) is self:
                del self.backend._ports[self.name]


class _FakeOut:
    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend, self.name = backend, name

    def send(self, data) -> None:
        dev = self.backend.devices.get(self.name)
        if dev is None:
            raise PortError(f"{self.name} is gone")
        dev.sent.append(tuple(data))

    def close(self) -> None:
        pass


# -- a device in another process -------------------------------------------------------------------

RECORD = struct.Struct("<dB")  # the sender's perf_counter (CLOCK_MONOTONIC, shared across processes), length


def pack(at: float, data: Sequence[int]) -> bytes:
    """One message as a PipeIn reads it: when it was sent, then its bytes."""
    return RECORD.pack(at, len(data)) + bytes(data)


class PipeIn:
    """An input whose queue lives outside this interpreter, as rtmidi's does: another process writes
    packed messages into a pipe (a FIFO at `path`) and `get_message` reads it without blocking. The
    sender's stamps become rtmidi-style deltas; `truth` keeps them, so a bench knows when each
    message it read was really sent."""

    def __init__(self, path: str, name: str = "pipe") -> None:
        self.name = name
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._buf, self._pos = b"", 0
        self.last: float | None = None
        self.truth: list[float] = []

    def get_message(self) -> Message | None:
        buf, pos = self._buf, self._pos
        if pos + RECORD.size > len(buf) or pos + RECORD.size + buf[pos + RECORD.size - 1] > len(buf):
            if not self._fill():
                return None
            buf, pos = self._buf, self._pos
        at, n = RECORD.unpack_from(buf, pos)
        pos += RECORD.size
        self._pos = pos + n
        delta, self.last = (0.0 if self.last is None else at - self.last), at
        self.truth.append(at)
        return list(buf[pos:pos + n]), delta

    def _fill(self) -> bool:
        """Read what the pipe holds; True once a whole message is buffered."""
        try:
            more = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            more = b""
        self._buf, self._pos = self._buf[self._pos:] + more, 0
        buf = self._buf
        return len(buf) >= RECORD.size and len(buf) >= RECORD.size + buf[RECORD.size - 1]

    def close(self) -> None:
        os.close(self.fd)


class PipeBackend:
    """One device, `name`, played from another process through the FIFO at `path` (benchmarks)."""

    virtual = False

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path
        self.port: PipeIn | None = None

    def inputs(self) -> list[str]:
        return [self.name]

    def outputs(self) -> list[str]:
        return []

    def open_input(self, name: str) -> InPort:
        if name != self.name:
            raise PortError(f"no MIDI input {name!r}")
        self.port = PipeIn(self.path, name)
        return self.port

    def open_output(self, name: str) -> OutPort:
        raise PortError(f"no MIDI output {name!r}")

    def open_virtual(self, name: str) -> InPort:
        raise PortError("no virtual ports here")
