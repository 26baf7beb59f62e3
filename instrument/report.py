"""Problems are counted, logged once per (kind, key) and shown on the HUD — never raised into the show.

A flood of ten thousand bad packets must not become ten thousand log lines or a stalled loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque

log = logging.getLogger("noclip")


class Reporter:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recent: deque[tuple[float, str]] = deque(maxlen=6)
        self._lock = threading.Lock()

    def problem(self, kind: str, key: str, message: str) -> None:
        """Count a recurring problem (bad packet, unknown address); log only its first occurrence."""
        with self._lock:
            self.counts[(kind, key)] += 1
            first = self.counts[(kind, key)] == 1
        if first:
            log.warning("%s: %s (further ones from %s counted, not logged)", kind, message, key)
            self.recent.append((time.monotonic(), f"{kind}: {message}"))

    def error(self, where: str, message: str) -> None:
        """A failure worth the performer's attention every time (a shader that broke on edit)."""
        with self._lock:
            self.counts[("error", where)] += 1
        log.error("%s: %s", where, message)
        self.recent.append((time.monotonic(), f"{where}: {message}"))

    def note(self, where: str, message: str) -> None:
        """Something the performer should see happen (a take started), not a problem."""
        log.info("%s: %s", where, message)
        self.recent.append((time.monotonic(), f"{where}: {message}"))

    def totals(self) -> dict[str, int]:
        with self._lock:
            out: Counter[str] = Counter()
            for (kind, _), n in self.counts.items():
                out[kind] += n
        return dict(out)
