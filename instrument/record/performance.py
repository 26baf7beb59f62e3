"""Performance files: a show as data — the patch, the start state of every parameter, and every
control event stamped with the frame at which it took effect — so it can be rendered again, exactly,
later, bigger, with another model.

JSON lines, written and flushed one event at a time: a crash loses nothing already played.
Line 1 is the header; then `{"f": frame, "src": source, "t": target, "v": value}` per event;
a clean stop ends with `{"end": frames}`.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..control import ControlEvent
from ..patch import Patch
from .eventlog import jsonable

KIND = "noclip performance"
VERSION = 1
NOT_REPLAYED = {"quit"}  # a re-render ends where the performance ended, not on its quit key


class PerformanceError(ValueError):
    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {message}")


class PerformanceWriter:
    """An EventSink of the Show."""

    def __init__(self, path: str | Path, patch: Patch, start: dict[str, Any], fps: float,
                 size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.file = open(self.path, "w", encoding="utf-8", buffering=1)
        header = {
            "kind": KIND, "version": VERSION, "noclip": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "fps": fps, "size": list(size),
            "models": {"generator": patch.model},
            "patch": {**asdict(patch), "path": str(patch.path) if patch.path else None},
            "start": start,
        }
        self.file.write(json.dumps(header) + "\n")

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        self.file.write(json.dumps({"f": frame, "src": event.source, "t": event.target,
                                    "v": jsonable(value)}) + "\n")

    def close(self, frames: int) -> None:
        """The performance lasts as long as the show played, events or not."""
        self.file.write(json.dumps({"end": frames}) + "\n")
        self.file.close()


@dataclass
class Performance:
    path: Path
    header: dict[str, Any]
    events: dict[int, list[ControlEvent]] = field(default_factory=dict)
    frames: int = 0  # how many frames the performance lasted
    complete: bool = True  # False when the file ended without its end line (crash) or was cut

    @property
    def fps(self) -> float:
        return float(self.header["fps"])

    @property
    def size(self) -> tuple[int, int]:
        """The output size the performance was played at (a re-render's default)."""
        w, h = self.header["size"]
        return int(w), int(h)

    @property
    def patch(self) -> Patch:
        p = dict(self.header["patch"])
        p["size"] = tuple(p["size"])
        p["path"] = Path(p["path"]) if p.get("path") else None
        return Patch(**p)

    def events_at(self, frame: int, fps: float | None = None) -> list[ControlEvent]:
        """The events of output frame `frame`; at another fps, events land at the same time."""
        if fps is None or fps == self.fps:
            return self.events.get(frame, [])
        lo = round(frame * self.fps / fps)
        hi = round((frame + 1) * self.fps / fps)
        return [e for f in range(lo, max(hi, lo + 1)) for e in self.events.get(f, [])]


def load_performance(path: str | Path, *, salvage: bool = False) -> Performance:
    """Read a performance file. A bad line is a PerformanceError naming it; with `salvage`, the
    events before it are kept and the performance ends there."""
    path = Path(path)
    events: dict[int, list[ControlEvent]] = defaultdict(list)
    header: dict[str, Any] | None = None
    frames, complete, last = 0, False, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                if header is None:
                    if row.get("kind") != KIND:
                        raise ValueError("not a noclip performance file")
                    if row.get("version") != VERSION:
                        raise ValueError(f"version {row.get('version')!r} is not {VERSION}")
                    _check_header(row)
                    header = row
                    continue
                if "end" in row:
                    frames, complete = int(row["end"]), True
                    break
                frame = int(row["f"])
                if frame < last:
                    raise ValueError(f"frame {frame} comes after frame {last}")
                last = frame
                if row["t"].removeprefix("cmd/") in NOT_REPLAYED:
                    continue
                value = tuple(row["v"]) if isinstance(row["v"], list) else row["v"]
                events[frame].append(ControlEvent(row["src"], row["t"], value))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                if header is None or not salvage:
                    raise PerformanceError(path, n, str(exc)) from None
                break
    if header is None:
        raise PerformanceError(path, 1, "empty file")
    return Performance(path, header, dict(events), frames or last + 1, complete)


def _check_header(row: dict[str, Any]) -> None:
    """The rate and size a re-render takes by default: numbers in range, or the file is named as bad
    at its first line (a header written by hand or damaged must not reach the encoder)."""
    fps, size = row.get("fps"), row.get("size")
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not 1.0 <= fps <= 1000.0:
        raise ValueError(f"fps {fps!r} is not a number from 1 to 1000")
    if (not isinstance(size, list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 8192 for v in size)):
        raise ValueError(f"size {size!r} is not [width, height] from 16 to 8192")

