"""The MIDI port layer: python-rtmidi for real ports (midisim.py has backends without hardware, for
tests and benchmarks).

Inputs are read, not called back: rtmidi's own (non-Python) thread fills a queue per port and the
frame loop takes what is there with `get_message()`, so no interpreter thread wakes per message to
fight the loop for the interpreter lock. Raw bytes rather than mido messages: building a mido
Message per input would cost more than everything else a message does.
"""

from __future__ import annotations

from typing import Protocol

Message = tuple[list[int], float]  # (message bytes, seconds since the previous one on the device's clock)
CLIENT = "noclip"  # our own ALSA client / virtual port name: never opened as an input of ours
QUEUE = 8192       # messages rtmidi keeps per input between two polls (a second of a storm, a stall)


class PortError(OSError):
    """A port could not be opened, or went away while we used it."""


class InPort(Protocol):
    name: str

    def get_message(self) -> Message | None:
        """The oldest waiting message, or None; never blocks."""

    def close(self) -> None: ...


class OutPort(Protocol):
    name: str

    def send(self, data: list[int] | tuple[int, ...]) -> None: ...

    def close(self) -> None: ...


class Backend(Protocol):
    virtual: bool  # whether this platform offers virtual ports

    def inputs(self) -> list[str]: ...

    def outputs(self) -> list[str]: ...

    def open_input(self, name: str) -> InPort: ...

    def open_output(self, name: str) -> OutPort: ...

    def open_virtual(self, name: str) -> InPort: ...


# -- rtmidi --------------------------------------------------------------------------------------

class _RtIn:
    def __init__(self, midi, name: str) -> None:
        self.midi, self.name = midi, name
        # we count SysEx and follow the clock; active sensing comes through too (and is dropped
        # later), as some APIs would leave its time out of the next message's delta
        midi.ignore_types(sysex=False, timing=False, active_sense=False)
        self.get_message = midi.get_message  # rtmidi's C++ queue, read without a Python hop

    def close(self) -> None:
        self.get_message = lambda: None
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
        midi = (self.rtmidi.MidiIn(name=CLIENT, queue_size_limit=QUEUE) if kind == "in"
                else self.rtmidi.MidiOut(name=CLIENT))
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

    def open_input(self, name: str) -> InPort:
        return _RtIn(self._new("in", name), name)

    def open_output(self, name: str) -> OutPort:
        return _RtOut(self._new("out", name), name)

    def open_virtual(self, name: str) -> InPort:
        if not self.virtual:
            raise PortError("this platform offers no virtual MIDI ports")
        midi = self.rtmidi.MidiIn(name=CLIENT, queue_size_limit=QUEUE)
        try:
            midi.open_virtual_port(name)
        except Exception as exc:
            midi.delete()
            raise PortError(f"cannot open a virtual port: {exc}") from None
        return _RtIn(midi, name)
