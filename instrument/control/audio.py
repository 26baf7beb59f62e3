"""Audio reactivity: input level, low/mid/high band energy and onsets, as modulation sources.

One analyser for every way sound comes in: a live input's PortAudio callback feeds it blocks as
they arrive, an offline render feeds it each frame's share of a sound file. It works in hops of
`HOP` samples (about 10 ms), so its answers do not depend on how the blocks were cut. Features are
0..1: level and band energies in dB mapped from `FLOOR` dBFS to 0 dBFS and smoothed with separate
attack and release; `onset` jumps to 1 when the spectrum grows suddenly (spectral flux well above
its recent median) and falls back with the release. Live features reach the show as `audio` events,
which the performance file keeps, so a replay reacts as the show did.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np

from ..events import CMD_TARGET, ControlEvent, ControlQueue

FEATURES = ("level", "low", "mid", "high", "onset")
BANDS = {"low": (20.0, 250.0), "mid": (250.0, 4000.0), "high": (4000.0, 16000.0)}
FLOOR = -60.0  # dBFS that maps to 0
HOP = 512
WINDOW = 1024


class AudioAnalyser:
    """Blocks of samples in (any length, mono or multichannel), features out, hop by hop."""

    def __init__(self, rate: int = 48_000, attack: float = 0.01, release: float = 0.25,
                 sensitivity: float = 2.0) -> None:
        self.rate = rate
        dt = HOP / rate
        self._up = 1.0 - math.exp(-dt / attack) if attack > 0 else 1.0
        self._down = 1.0 - math.exp(-dt / release) if release > 0 else 1.0
        self._onset_decay = math.exp(-dt / release) if release > 0 else 0.0
        self.sensitivity = sensitivity
        self._window = np.hanning(WINDOW).astype(np.float32)
        freqs = np.fft.rfftfreq(WINDOW, 1.0 / rate)
        self._bands = {k: (freqs >= lo) & (freqs < hi) for k, (lo, hi) in BANDS.items()}
        # a full-scale sine concentrates sum(w)²/4 in |X|² : normalise band power to that
        self._full = (self._window.sum() / 2.0) ** 2
        self._buf = np.zeros(WINDOW, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._prev_mag: np.ndarray | None = None
        self._last_wide: np.ndarray | None = None
        self._flux: deque[float] = deque(maxlen=43)  # ~0.5 s of hops
        self._refractory = 0
        self.hops = 0
        self.onsets: deque[int] = deque(maxlen=1024)  # hop indices of the latest detected onsets
        self.features = dict.fromkeys(FEATURES, 0.0)

    def feed(self, block: np.ndarray) -> dict[str, float]:
        """Analyse a block (the stream callback's, or a frame's share of a file); returns the
        features as of its end."""
        x = np.asarray(block, np.float32)
        if x.ndim == 2:
            x = x.mean(axis=1)
        data = np.concatenate([self._pending, x]) if len(self._pending) else x
        n = len(data) // HOP
        for i in range(n):
            self._hop(data[i * HOP:(i + 1) * HOP])
        self._pending = data[n * HOP:].copy()
        return dict(self.features)

    def _hop(self, hop: np.ndarray) -> None:
        buf = self._buf
        buf[:-HOP] = buf[HOP:]
        buf[-HOP:] = hop
        mag = np.abs(np.fft.rfft(buf * self._window))
        power = mag * mag
        raw = {"level": float(np.sqrt(np.mean(hop * hop)) * math.sqrt(2.0))}  # a full-scale sine: 1
        for k, sel in self._bands.items():
            raw[k] = float(math.sqrt(power[sel].sum() / self._full))
        f = self.features
        for k, v in raw.items():
            u = min(max((20.0 * math.log10(max(v, 1e-9)) - FLOOR) / -FLOOR, 0.0), 1.0)
            f[k] += (u - f[k]) * (self._up if u > f[k] else self._down)
        # SuperFlux-style: growth over the louder of the last two spectra, max-filtered across
        # neighbouring bins, so a steady tone's leakage wobble and vibrato are not onsets
        log_mag = np.log1p(100.0 * mag)
        flux = 0.0 if self._prev_mag is None else float(np.maximum(log_mag - self._prev_mag, 0.0).sum())
        wide = np.maximum(np.maximum(log_mag[1:-1], log_mag[:-2]), log_mag[2:])
        wide = np.concatenate([log_mag[:1], wide, log_mag[-1:]])
        self._prev_mag = wide if self._last_wide is None else np.maximum(wide, self._last_wide)
        self._last_wide = wide
        median = float(np.median(self._flux)) if self._flux else 0.0
        self._flux.append(flux)
        f["onset"] *= self._onset_decay
        if self._refractory > 0:
            self._refractory -= 1
        elif flux > self.sensitivity * median + 20.0:
            f["onset"] = 1.0
            self.onsets.append(self.hops)
            self._refractory = max(1, round(0.05 * self.rate / HOP))  # 50 ms
        self.hops += 1


class AudioControl:
    """A live input device (sounddevice) heard as control: its sound analysed into `audio` events,
    a control source the show polls each frame (ports.ControlSource), as MidiControl and OscControl.
    (Recording a device's sound into a take is record.audio.LiveSoundtrack.)

    PortAudio's callback only copies the block: analysing there kept PortAudio's thread waiting on
    Python's lock, which numpy hands back to the render loop mid-block and moderngl holds while
    llvmpipe draws (beside the show and its generator on 2 cores: callback p99 28 ms, max 62 ms
    against a 10.7 ms block). The show's loop hears the waiting blocks when it builds a frame, as it
    reads OSC, so the features reach that very frame without a thread of their own to wait for the
    lock; the event is stamped with the arrival of the newest block heard. Overflows are counted,
    never fatal."""

    def __init__(self, queue: ControlQueue, device: Any = None, rate: int = 48_000, *,
                 stream_factory: Any = None, backlog: float = 2.0, **analyser: Any) -> None:
        self.queue = queue
        self.analyser = AudioAnalyser(rate, **analyser)
        self.overflows = 0   # blocks PortAudio flagged: sound lost before it reached us
        self.blocks = 0      # blocks the callback took
        self.analysed = 0    # blocks the analysis has heard
        self.dropped = 0     # blocks skipped after a stall longer than `backlog` seconds
        self._pending: deque[tuple[float, np.ndarray]] = deque()
        self._limit = max(1, round(backlog * rate / HOP))
        if stream_factory is None:
            import sounddevice as sd  # OSError without PortAudio: the caller reports it and plays on
            stream_factory = sd.InputStream
        self.stream = stream_factory(samplerate=rate, channels=1, dtype="float32", device=device,
                                     blocksize=HOP, callback=self.callback)

    def callback(self, block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's thread: copy and go (the block's memory is PortAudio's again once we return)."""
        if status and getattr(status, "input_overflow", False):
            self.overflows += 1
        self.blocks += 1
        self._pending.append((time.perf_counter(), block.copy()))

    def poll(self) -> int:
        """Hear every block waiting and post the features (the show's loop, each frame); returns
        the blocks heard."""
        pending, heard, arrived = self._pending, 0, 0.0
        while len(pending) > self._limit:  # after a stall this long, skip to the present rather than lag
            pending.popleft()
            self.dropped += 1
        features = None
        while pending:
            arrived, block = pending.popleft()
            features = self.analyser.feed(block)
            heard += 1
        self.analysed += heard
        if features is not None:
            self.queue.put(ControlEvent("audio", CMD_TARGET + "audio", features, time=arrived))
        return heard

    def start(self) -> AudioControl:
        self.stream.start()
        return self

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()


def frame_features(samples: np.ndarray, rate: int, fps: float, **analyser: Any) -> list[dict[str, float]]:
    """Features at the end of each video frame of a sound (an offline render's `--audio` file):
    frame n has heard samples [0, (n+1)·rate/fps)."""
    a = AudioAnalyser(rate, **analyser)
    frames = math.ceil(len(samples) * fps / rate)
    out, start = [], 0
    for n in range(frames):
        end = round((n + 1) * rate / fps)
        out.append(a.feed(samples[start:end]))
        start = end
    return out
