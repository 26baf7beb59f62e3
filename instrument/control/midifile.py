"""A standard MIDI file as a control source: its messages, through the same bindings as a live
controller, stamped at the frames of the offline clock — a music video rendered from the track.

A file is the only hand on the controls, so soft takeover is off: its first CC sets the value.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import mido

from ..events import ControlEvent, Host
from ..params import REGISTRY, Registry
from .mapper import Mapper
from .midimap import Binding

FILE_DEVICE = "file"  # the device name a file's messages come from (`device = "file"` binds to files only)


class MidiFilePlayer:
    """Feeds `events(frame)` for each frame in order; deterministic (no wall clock anywhere)."""

    def __init__(self, path: str | Path, tiers: list[list[Binding]], fps: float, *,
                 device: str = FILE_DEVICE, registry: Registry = REGISTRY) -> None:
        self.path = Path(path)
        self.fps = fps
        try:
            mid = mido.MidiFile(self.path)
        except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{self.path}: not a readable MIDI file ({exc})") from None
        self.by_frame: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        self.skipped = 0
        t = 0.0
        for msg in mid:  # mido applies the file's tempo map: msg.time is seconds since the last one
            t += msg.time
            if msg.is_meta or not hasattr(msg, "channel"):
                self.skipped += not msg.is_meta
                continue
            data = msg.bytes()
            frame = max(0, math.ceil(t * fps - 1e-6))  # takes effect on the first frame at or after it
            data += [0, 0]
            self.by_frame[frame].append((data[0], data[1], data[2]))
        self.length = t
        self._pending: list[ControlEvent] = []
        self.mapper = Mapper(tiers, self._pending.append, registry, takeover="none")
        self.table = self.mapper.table(device)

    @property
    def frames(self) -> int:
        return math.ceil(self.length * self.fps) + 1

    def attach(self, show: Host) -> None:
        """Soft takeover and the mapper's record of what applied come from the show."""
        self.mapper.targets = show.targets
        show.add_sink(self.mapper)

    def events(self, frame: int) -> list[ControlEvent]:
        """The control events of `frame`, in file order."""
        out = self._pending
        for status, d1, d2 in self.by_frame.get(frame, ()):
            self.mapper.handle(self.table, status, d1, d2, frame / self.fps)
        self._pending = []
        self.mapper.emit = self._pending.append
        return out
