"""Outside clocks → the beat clock: Ableton Live through AbletonOSC, and a feed that reports any
follower (AbletonOSC, the MIDI clock follower, Link) to the show as `clock/sync` events.

AbletonOSC is a control surface script inside Live: it listens on UDP 11000 and answers on 11001,
`/live/song/get/<prop>` returns `<prop>`'s value under the same address, `/live/song/start_listen/
<prop>` sends it again on every change, and the `beat` listener sends `/live/song/get/beat <n>` when
the song crosses a beat. Live runs the script about every 100 ms, so beat messages arrive up to
100 ms late; the phase comes instead from `current_song_time` replies, each the song position at
the moment Live answered: the earliest arriving of recent replies (least delayed) fixes the phase,
the tempo runs it on, and the show's beat clock eases between reports.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import Counter, deque
from typing import Any, Protocol

from ..clock import MAX_BEAT, SYNC
from ..events import CMD_TARGET, ControlEvent, ControlQueue
from .oscroute import is_loopback
from .oscwire import OscError, build, parse

log = logging.getLogger("noclip")

GETTERS = ("tempo", "is_playing", "signature_numerator", "current_song_time")
LISTENERS = ("tempo", "is_playing", "signature_numerator", "beat")


class Follower(Protocol):
    """What a beat source offers (the MIDI ClockFollower has exactly this): tempo in bpm or None
    while unknown, whether the transport runs, and the beat at perf_counter time `t`."""

    running: bool

    @property
    def tempo(self) -> float | None: ...

    def beat(self, t: float) -> float: ...


def _message(address: str, *args: Any) -> bytes:
    return build(address, *args)


class AbletonOSC:
    """Follows Live's tempo, transport, signature and beat over AbletonOSC (a Follower).

    Pings `/live/test` every `ping` seconds; silence for `timeout` means Live went away (quit,
    crashed, script reloaded), and the first answer after that, or the first ever, (re)sends every
    getter and listener request, so Live may start late or restart mid-show.
    """

    SAMPLES = 8  # current_song_time replies kept to find the least delayed one
    REFRESH = 1.0  # seconds between phase samples besides those on each beat

    def __init__(self, host: str = "127.0.0.1", port: int = 11000, reply_port: int = 11001, *,
                 ping: float = 0.5, timeout: float = 1.5, bind: str | None = None) -> None:
        try:
            host = socket.gethostbyname(host)  # replies are matched against Live's address
        except OSError:
            pass
        self.live = (host, port)
        self.ping, self.timeout = ping, timeout
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Live on this machine: listen on loopback only. Live elsewhere: its replies come over the
        # network, so listen there, and take datagrams from Live's address alone (see `poll`).
        if bind is None:
            bind = "127.0.0.1" if is_loopback(host) else "0.0.0.0"
        self.sock.bind((bind, reply_port))
        self.stats: Counter[str] = Counter()
        self.sock.settimeout(0.02)
        self.connected = False
        self.running = False
        self.numerator = 4
        self.hellos = 0  # times the requests were (re)sent
        self._tempo: float | None = None
        self._heard = self._pinged = self._sampled = 0.0
        self._offsets: deque[float] = deque(maxlen=self.SAMPLES)  # song beat - t·tempo/60, per reply
        self._frozen = 0.0  # the song position while stopped
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- Follower ------------------------------------------------------------------------------

    @property
    def tempo(self) -> float | None:
        return self._tempo if self.connected and self._offsets else None

    def beat(self, t: float) -> float:
        with self._lock:
            if not self.running or not self._offsets or not self._tempo:
                return self._frozen
            return max(self._offsets) + t * self._tempo / 60.0

    # -- the wire ------------------------------------------------------------------------------

    def send(self, address: str, *args: Any) -> None:
        try:
            self.sock.sendto(_message(address, *args), self.live)
        except OSError as exc:  # Live's host unreachable: keep pinging, it may come back
            log.debug("AbletonOSC send %s: %s", address, exc)

    def hello(self) -> None:
        """Ask for everything and start the listeners (again: a restarted Live has none)."""
        self.hellos += 1
        for prop in GETTERS:
            self.send(f"/live/song/get/{prop}")
        for prop in LISTENERS:
            self.send(f"/live/song/start_listen/{prop}")

    def poll(self, now: float | None = None) -> None:
        """One turn of the loop: read what came, ping, notice silence (the thread calls this)."""
        try:
            data, sender = self.sock.recvfrom(65536)
            if sender[0] == self.live[0]:
                self.handle(data, time.perf_counter())
            else:
                self.stats["denied"] += 1  # only Live answers here
        except (TimeoutError, BlockingIOError):
            pass
        except OSError:
            return
        now = time.perf_counter() if now is None else now
        if now - self._pinged >= self.ping:
            self._pinged = now
            self.send("/live/test")
        if self.connected and now - self._heard > self.timeout:
            log.info("AbletonOSC: Live went quiet")
            self.connected = False
        if self.connected and self.running and now - self._sampled > self.REFRESH:
            self._sampled = now
            self.send("/live/song/get/current_song_time")

    def handle(self, data: bytes, t: float) -> None:
        try:
            messages = parse(data)  # the show's bounded parser: python-osc's can hang on a bundle
        except OscError:  # a bad packet is dropped, never fatal
            self.stats["malformed"] += 1
            return
        if not self.connected:
            self.connected = True
            log.info("AbletonOSC: Live answered on %s:%d", *self.live)
            self._offsets.clear()
            self.hello()
        self._heard = t
        for address, args, _when in messages:
            self._on(address, args, t)

    def _on(self, address: str, args: list, t: float) -> None:
        value = args[-1] if args else None  # getters may prefix ids; the value comes last
        if isinstance(value, (int, float)) and not abs(value) <= MAX_BEAT:  # NaN, inf, absurd: no clock
            self.stats["non-finite"] += 1
            return
        if address == "/live/startup":
            self.hello()
        elif address == "/live/song/get/tempo" and isinstance(value, (int, float)) and 1 <= value <= 999:
            with self._lock:
                if value != self._tempo:
                    self._offsets.clear()  # offsets are per tempo
                self._tempo = float(value)
            self._sample(t)
        elif address == "/live/song/get/is_playing":
            playing = bool(value)
            if playing != self.running:
                with self._lock:
                    self.running = playing
                    self._offsets.clear()
                self._sample(t)
        elif address == "/live/song/get/signature_numerator" and isinstance(value, int) and 0 < value <= 64:
            self.numerator = value
        elif address == "/live/song/get/beat":
            self._sample(t)
        elif address == "/live/song/get/current_song_time" and isinstance(value, (int, float)):
            with self._lock:
                self._frozen = float(value)
                if self._tempo:
                    offset = float(value) - t * self._tempo / 60.0
                    if self._offsets and abs(offset - max(self._offsets)) > 0.1:
                        self._offsets.clear()  # a locate or loop jump, not a late reply
                    self._offsets.append(offset)

    def _sample(self, t: float) -> None:
        self._sampled = t
        self.send("/live/song/get/current_song_time")

    # -- thread --------------------------------------------------------------------------------

    def start(self) -> AbletonOSC:
        self._thread = threading.Thread(target=self._run, name="abletonosc", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(1.0)
        for prop in LISTENERS:
            self.send(f"/live/song/stop_listen/{prop}")
        self.sock.close()


class MidiClock:
    """The MIDI ClockFollower as a source that goes away: a clock whose ticks stopped coming
    (cable pulled, sequencer quit without a stop) has no tempo after `stale` seconds, so the next
    clock by priority takes over instead of a frozen beat."""

    def __init__(self, follower: Any, stale: float = 0.5) -> None:
        self.follower, self.stale = follower, stale

    @property
    def tempo(self) -> float | None:
        times = getattr(self.follower, "_times", None)  # its tick times (perf_counter)
        if times and time.perf_counter() - times[-1] > self.stale:
            return None
        return self.follower.tempo

    @property
    def running(self) -> bool:
        return bool(self.follower.running)

    def beat(self, t: float) -> float:
        return self.follower.beat(t)

    def close(self) -> None:
        """The MIDI control owns the follower and closes its ports."""


class ClockFeed:
    """Reports followers to the show as `clock/sync` events (what the performance file records):
    at once when tempo or transport change, else every `every` seconds; the show's beat clock
    extrapolates between reports. A follower that loses its tempo is reported gone."""

    def __init__(self, queue: ControlQueue, sources: dict[str, Follower], every: float = 0.1,
                 poll: float = 0.05) -> None:
        self.queue, self.sources, self.every, self.poll_s = queue, sources, every, poll
        self._last: dict[str, tuple[float, float, bool]] = {}  # name → (time, tempo, running)
        self.refused = 0  # reports with a tempo or beat that is not a finite number in range
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def poll(self, now: float | None = None) -> list[ControlEvent]:
        now = time.perf_counter() if now is None else now
        out = []
        for name, f in self.sources.items():
            tempo, last = f.tempo, self._last.get(name)
            if tempo is not None and not (math.isfinite(tempo) and 1.0 <= tempo <= 999.0):
                self.refused += 1  # a follower's own arithmetic gone wrong, or a hostile report
                tempo = None
            if tempo is None:
                if last is not None:
                    del self._last[name]
                    out.append(ControlEvent(name, CMD_TARGET + SYNC, {"source": name, "gone": True}, time=now))
                continue
            changed = last is None or f.running != last[2] or abs(tempo - last[1]) > 0.002 * tempo
            if last is None or changed or now - last[0] >= self.every:
                beat = f.beat(now)
                if not (isinstance(beat, (int, float)) and abs(beat) <= MAX_BEAT):  # NaN, inf too
                    self.refused += 1
                    continue
                self._last[name] = (now, tempo, f.running)
                report = {"source": name, "tempo": tempo, "beat": beat, "playing": f.running,
                          "numerator": getattr(f, "numerator", 4)}
                out.append(ControlEvent(name, CMD_TARGET + SYNC, report, time=now))
        for e in out:
            self.queue.put(e)
        return out

    def start(self) -> ClockFeed:
        self._thread = threading.Thread(target=self._run, name="clockfeed", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll()

    def close(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(1.0)
