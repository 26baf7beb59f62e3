"""Ableton Link through `aalink` (GPLv3, so an optional extra: `pip install noclip[link]`).

A follower for the beat clock (see control/tempo.py): it joins the session, reads tempo, beat and
transport for a quantum, and never writes the tempo. When sessions meet, Link keeps the timeline
of the one running longer, so joining Live's session takes its tempo rather than moving it. Alone in a
session it reports nothing (tempo None) and the next clock by priority plays. Link shares the phase
within the quantum, not the beat count: our bar numbers may differ from Live's, the downbeats do not.
"""

from __future__ import annotations

import asyncio
import importlib
import time
import warnings
from types import ModuleType


class LinkUnavailable(RuntimeError):
    """aalink is not installed: say how to get it, and play on without Link."""


def load_aalink() -> ModuleType:
    try:
        return importlib.import_module("aalink")
    except ImportError as exc:
        raise LinkUnavailable(f"Ableton Link needs aalink: pip install 'noclip[link]' ({exc})") from None


class LinkFollower:
    """Tempo, beat and start/stop from a Link session (a tempo.Follower)."""

    def __init__(self, quantum: int = 4, aalink: ModuleType | None = None) -> None:
        aalink = aalink or load_aalink()
        # aalink wants an asyncio loop for its awaitables; we only read, so an idle one will do
        self._loop = asyncio.new_event_loop()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the loop argument, in aalink 0.2
            self.link = aalink.Link(120.0, self._loop)  # a proposal only: joining takes the session's
        self.link.quantum = quantum
        self.link.start_stop_sync_enabled = True
        self.link.enabled = True
        self.numerator = quantum
        self._synced = False  # a peer has played: the session uses start/stop sync

    @property
    def peers(self) -> int:
        return int(self.link.num_peers)

    @property
    def tempo(self) -> float | None:
        return float(self.link.tempo) if self.peers else None

    @property
    def running(self) -> bool:
        """Link's timeline always runs; once a peer plays (start/stop sync in use), its transport
        says whether the music does."""
        playing = bool(self.link.playing)
        self._synced = self._synced or playing
        return playing or not self._synced

    def beat(self, t: float) -> float:
        """The session's beat at perf_counter time `t` (Link's own clock is read now)."""
        return self.timeline(t) if self.running else float(self.link.beat)

    def timeline(self, t: float) -> float:
        """The session's beat at perf_counter time `t` whether or not the music plays: the shared
        timeline follow mode marks its frames on (control/followlink.py). Every peer shares its phase,
        no peer shares its count: each numbers beats from where it joined, so two peers' beats
        differ by a whole number of beats (measured here: -3.000 for quanta 4 and 3, before and
        after a tempo change). `t` is meant near now: the beat is extrapolated at today's tempo."""
        now = time.perf_counter()
        return float(self.link.beat) + (t - now) * float(self.link.tempo) / 60.0

    def close(self) -> None:
        self.link.enabled = False
        self._loop.close()
