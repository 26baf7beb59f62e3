"""Hot reload: the files a chain is built from are polled by mtime from the frame loop.

Polling (a few stat calls, at most a few times a second) needs no thread and no inotify, works
on every platform and on network drives, and runs between frames, so a rebuild never races a
render. Editors that save by rename or that keep the mtime are caught by size and inode too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

INTERVAL = 0.25  # seconds between polls: an edit shows up within a quarter of a second

Stamp = tuple[int, int, int] | None


class FileWatcher:
    def __init__(
        self,
        paths: Iterable[Path] = (),
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._next = 0.0
        self._stamps: dict[Path, Stamp] = {}
        self.watch(paths)

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(self._stamps)

    def watch(self, paths: Iterable[Path]) -> None:
        """Watch exactly these files from now on, as they are now (an edit made before is not news)."""
        self._stamps = {Path(p): _stamp(Path(p)) for p in dict.fromkeys(paths)}

    def add(self, paths: Iterable[Path]) -> None:
        """Also watch these (files a failed build named, so fixing them is noticed)."""
        for p in map(Path, paths):
            if p not in self._stamps:
                self._stamps[p] = _stamp(p)

    def changed(self) -> list[Path]:
        """Files edited since the last look; empty between polls. A file that is missing is not news
        yet: an editor saving by rename brings it back a moment later."""
        now = self.clock()
        if now < self._next:
            return []
        self._next = now + self.interval
        edited = []
        for path, old in self._stamps.items():
            new = _stamp(path)
            if new is not None and new != old:
                self._stamps[path] = new
                edited.append(path)
        return edited


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino
