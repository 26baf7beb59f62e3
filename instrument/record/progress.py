"""The progress of an offline render: seconds per frame and the time left, always.

A render of a heavy model can take minutes a frame; a bar that only moves when a frame lands looks
hung, and a farm worker's log needs the same figures as a terminal. So: on a terminal, a tqdm bar
redrawn every second (its clock runs while a frame is being dreamed); elsewhere (a log file, a
farm), the same figures as a log line at most every LOG_EVERY seconds and once at the end.
Seconds per frame rather than frames per second: that is what a slow render is measured in.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import AbstractContextManager, nullcontext
from typing import TextIO

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger("noclip")

LOG_EVERY = 10.0  # s between progress lines where stderr is not a terminal
BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_inv_fmt}]"
LINE = "{desc}: {n_fmt}/{total_fmt} frames, {rate_inv_fmt}, {remaining} left ({elapsed} so far)"


class _LogLines:
    """A file for tqdm that turns each redraw into one log line (none twice in a row)."""

    def __init__(self) -> None:
        self.last = ""

    def write(self, text: str) -> None:
        line = text.strip("\r\n ")
        if line and line != self.last:
            self.last = line
            log.info("%s", line)

    def flush(self) -> None:
        pass


def _width(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class Progress:
    """Frames done out of `total`, with the rate and the estimate; `stream` (default stderr)
    decides between bar and log lines. From creation to `close` (also a context manager), log
    records go above the bar rather than through it, and a thread redraws it every second."""

    def __init__(self, total: int, stream: TextIO | None = None, desc: str = "render") -> None:
        stream = sys.stderr if stream is None else stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        if self.tty:  # follow the terminal's width; one that reports none (a bare pty) gets 80
            sized = _width(stream) > 0
            self.bar = tqdm(total=total, unit="frame", desc=desc, file=stream, bar_format=BAR,
                            mininterval=0.5, dynamic_ncols=sized, ncols=None if sized else 80,
                            nrows=None if sized else 24)
        else:
            self.bar = tqdm(total=total, unit="frame", desc=desc, file=_LogLines(), bar_format=LINE,
                            mininterval=LOG_EVERY)
        self._redirect: AbstractContextManager = logging_redirect_tqdm() if self.tty else nullcontext()
        self._redirect.__enter__()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.tty:  # the clock on screen keeps running while a long frame is dreamed
            self._ticker = threading.Thread(target=self._tick, name="render progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    def update(self, frames: int = 1) -> None:
        self.bar.update(frames)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self.bar.close()
        self._redirect.__exit__(None, None, None)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
