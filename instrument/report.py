"""Problems are counted, logged once per (kind, key) and shown on the HUD — never raised into the show.

A flood of ten thousand bad packets must not become ten thousand log lines or a stalled loop, and a
sender that varies what it sends (a new address every packet) must not grow memory either:

- the table of counts holds at most `MAX_KEYS` (kind, key) pairs, keys cut to `KEY_CHARS`; past
  that, new keys are counted together under `OTHER`;
- log lines are rate-limited per kind: at most `LINES` in any `WINDOW` seconds, the rest counted
  and summed up ("and N more") on the next line of that kind that is logged. A repeated error
  (a command that fails on every press) is still logged, but 2,000 identical ones are not 2,000
  lines.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

log = logging.getLogger("noclip")

MAX_KEYS = 1024    # (kind, key) pairs counted separately
KEY_CHARS = 80     # a key (an OSC address, a sender) is cut to this many characters
TEXT_CHARS = 2000  # and a logged message to this many (an attacker's 60 KB string is not a log line)
LINES = 5          # log lines per kind per window
WINDOW = 10.0      # seconds
OTHER = "(other)"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


class Reporter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.recent: deque[tuple[float, str]] = deque(maxlen=6)
        self.suppressed = 0  # log lines held back by the rate limit, in all
        self._clock = clock
        self._rate: dict[str, list] = {}  # kind -> [window start, lines in it, held back since]
        self._lock = threading.Lock()

    def _count(self, kind: str, key: str) -> tuple[str, int]:
        """Count one (kind, key) within the table's bounds; the key as counted and its count."""
        key = _cut(key, KEY_CHARS)
        if (kind, key) not in self.counts and len(self.counts) >= MAX_KEYS:
            key = OTHER
        self.counts[(kind, key)] += 1
        return key, self.counts[(kind, key)]

    def _emit(self, kind: str, level: int, text: str) -> None:
        """Log `text` unless `kind` has had its lines this window; then count it for the summary."""
        now = self._clock()
        text = _cut(text, TEXT_CHARS)
        with self._lock:
            state = self._rate.get(kind)
            if state is None or now - state[0] >= WINDOW:
                held = state[2] if state else 0
                if len(self._rate) >= MAX_KEYS:
                    self._rate.clear()
                self._rate[kind] = [now, 1, 0]
                line = f"{text} (and {held} more '{kind}' not logged)" if held else text
            elif state[1] < LINES:
                state[1] += 1
                line = text
            else:
                state[2] += 1
                self.suppressed += 1
                line = ""
        if line:
            log.log(level, "%s", line)
        self.recent.append((now, text))

    def problem(self, kind: str, key: str, message: str) -> None:
        """Count a recurring problem (bad packet, unknown address); log only its first occurrence."""
        with self._lock:
            key, n = self._count(kind, key)
        if n == 1:
            text = f"{kind}: {message} (further ones from {key} counted, not logged)"
            self._emit(kind, logging.WARNING, text)

    def error(self, where: str, message: str) -> None:
        """A failure worth the performer's attention every time (a shader that broke on edit),
        within the rate limit."""
        with self._lock:
            self._count("error", where)
        self._emit(f"error {_cut(where, KEY_CHARS)}", logging.ERROR, f"{where}: {message}")

    def note(self, where: str, message: str) -> None:
        """Something the performer should see happen (a take started), not a problem."""
        self._emit(f"note {_cut(where, KEY_CHARS)}", logging.INFO, f"{where}: {message}")

    def totals(self) -> dict[str, int]:
        with self._lock:
            out: Counter[str] = Counter()
            for (kind, _), n in self.counts.items():
                out[kind] += n
        return dict(out)
