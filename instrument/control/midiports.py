"""The MIDI port layer: python-rtmidi for real ports, and a fake that behaves like it for tests and
benchmarks (ports appear, vanish mid-show and come back).

Raw bytes rather than mido messages on the input path: rtmidi hands us bytes, and building a mido
Message per input would cost more than everything else a message does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

Callback = Callable[[list[int], float], None]  # (message bytes, seconds since the previous one)
CLIENT = "noclip"  # our own ALSA client / virtual port name: never opened as an input of ours


class PortError(OSError):
    """A port could not be opened, or went away while we used it."""


class InPort(Protocol):
    name: str

    def close(self) -> None: ...


class OutPort(Protocol):
    name: str

    def send(self, data: list[int] | tuple[int, ...]) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    virtual: bool  # whether this platform offers virtual ports

    def inputs(self) -> list[str]: ...

    def outputs(self) -> list[str]: ...

    def open_input(self, name: str, callback: Callback) -> InPort: ...

    def open_output(self, name: str) -> OutPort: ...

    def open_virtual(self, name: str, callback: Callback) -> InPort: ...


# -- rtmidi --------------------------------------------------------------------------------------

class _RtIn:
    def __init__(self, midi, name: str) -> None:
        self.midi, self.name = midi, name

    def close(self) -> None:
        self.midi.cancel_callback()
        self.midi.close_port()
        self.midi.delete()


class _RtOut:
    def __init__(self, midi, name: str) -> None:
        self.midi, self.name = midi, name

    def send(self, data) -> None:
        try:
            self.midi.send_message(data)
        except Exception as exc:
            raise PortError(str(exc)) from None

    def close(self) -> None:
        self.midi.close_port()
        self.midi.delete()


class RtMidiBackend:
    """python-rtmidi on the platform's default API (ALSA sequencer, CoreMIDI, WinMM, JACK).

    Ports are opened by name, looked up afresh each time: indices shift when devices come and go.
    Raises PortError where there is no MIDI system at all (no /dev/snd/seq).
    """

    def __init__(self) -> None:
        import rtmidi

        self.rtmidi = rtmidi
        try:
            self._in = rtmidi.MidiIn(name=CLIENT)
            self._out = rtmidi.MidiOut(name=CLIENT)
        except Exception as exc:  # rtmidi.SystemError without a sequencer
            raise PortError(f"no MIDI system: {exc}") from None
        self.virtual = self._in.get_current_api() not in (rtmidi.API_WINDOWS_MM, rtmidi.API_RTMIDI_DUMMY)

    def inputs(self) -> list[str]:
        return self._in.get_ports()

    def outputs(self) -> list[str]:
        return self._out.get_ports()

    def _new(self, kind: str, name: str):
        cls = self.rtmidi.MidiIn if kind == "in" else self.rtmidi.MidiOut
        midi = cls(name=CLIENT)
        ports = midi.get_ports()
        if name not in ports:
            midi.delete()
            raise PortError(f"no MIDI {kind}put {name!r}")
        try:
            midi.open_port(ports.index(name), name=f"{CLIENT} {kind}")
        except Exception as exc:
            midi.delete()
            raise PortError(f"cannot open {name!r}: {exc}") from None
        return midi

    def open_input(self, name: str, callback: Callback) -> InPort:
        midi = self._new("in", name)
        midi.ignore_types(sysex=False, timing=False, active_sense=True)  # we count SysEx, follow clock
        midi.set_callback(lambda event, _data: callback(*event))
        return _RtIn(midi, name)

    def open_output(self, name: str) -> OutPort:
        return _RtOut(self._new("out", name), name)

    def open_virtual(self, name: str, callback: Callback) -> InPort:
        if not self.virtual:
            raise PortError("this platform offers no virtual MIDI ports")
        midi = self.rtmidi.MidiIn(name=CLIENT)
        try:
            midi.open_virtual_port(name)
        except Exception as exc:
            midi.delete()
            raise PortError(f"cannot open a virtual port: {exc}") from None
        midi.ignore_types(sysex=False, timing=False, active_sense=True)
        midi.set_callback(lambda event, _data: callback(*event))
        return _RtIn(midi, name)


# -- the fake --------------------------------------------------------------------------------------

class FakeDevice:
    """A controller plugged into a FakeBackend: `send` plays it, `sent` is what noclip sent it."""

    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self.sent: list[tuple[int, ...]] = []

    def send(self, data: list[int] | bytes, delta: float = 0.0) -> bool:
        """Deliver one callback's bytes, as rtmidi would; False if no one has the port open."""
        cb = self.backend._callbacks.get(self.name)
        if cb is None:
            return False
        cb(list(data), delta)
        return True


class FakeBackend:
    """Behaves like rtmidi for the port layer: opening a missing port fails, a vanished device's
    callbacks stop and sending to it raises, and it can come back under the same name."""

    def __init__(self, *names: str, virtual: bool = True) -> None:
        self.virtual = virtual
        self.devices: dict[str, FakeDevice] = {}
        self._callbacks: dict[str, Callback] = {}
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
            self._callbacks.pop(name, None)

    def inputs(self) -> list[str]:
        return list(self.devices)

    def outputs(self) -> list[str]:
        return list(self.devices)

    def open_input(self, name: str, callback: Callback) -> InPort:
        with self._lock:
            if name not in self.devices:
                raise PortError(f"no MIDI input {name!r}")
            self._callbacks[name] = callback
            self.opened.append(name)
        return _FakeIn(self, name)

    def open_output(self, name: str) -> OutPort:
        if name not in self.devices:
            raise PortError(f"no MIDI output {name!r}")
        return _FakeOut(self, name)

    def open_virtual(self, name: str, callback: Callback) -> InPort:
        if not self.virtual:
            raise PortError("no virtual ports here")
        self.plug(name)
        return self.open_input(name, callback)


class _FakeIn:
    def __init__(self, backend: FakeBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self._cb = backend._callbacks[name]

    @property
    def alive(self) -> bool:
        """False once the device was unplugged, even if it came back since (it needs reopening)."""
        return self.backend._callbacks.get(self.name) is self._cb

    def close(self) -> None:
        with self.backend._lock:
            self.backend._callbacks.pop(self.name, None)


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
