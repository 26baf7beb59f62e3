"""`--log FILE`: one JSON line per applied control event, with wall-clock stamps for latency work."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO, Any

from ..control import ControlEvent


def jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


class EventLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file = open(self.path, "w", encoding="utf-8", buffering=1)
        self.t0 = time.perf_counter()

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        self.file.write(json.dumps({
            "frame": frame, "arrival": round(event.time - self.t0, 6),
            "applied": round(time.perf_counter() - self.t0, 6), "source": event.source,
            "target": event.target, "value": jsonable(value),
        }) + "\n")

    def close(self, frames: int = 0) -> None:
        self.file.close()

    def abandon(self) -> None:
        """A write failed (the show dropped this log): close without another write."""
        close_quietly(self.file)


def close_quietly(file: IO[str]) -> None:
    """Close a file whose last write failed: what is still buffered is the part that did not fit,
    and its flush would fail again; the descriptor is closed all the same."""
    try:
        file.close()
    except OSError:
        pass
