"""Sound for recordings, placed by frame: video frame n covers samples [n·rate/fps, (n+1)·rate/fps),
so picture and sound cannot drift apart in the file, however long the show.

A file is decoded once and cut by those sample positions. A live input (sounddevice) is a stream
with its own clock: its blocks are queued as they come and each frame takes exactly its share; when
the device runs fast or slow against the show clock the backlog grows or shrinks, and once it is
more than a frame off, a frame's worth is dropped or padded with silence (counted), so the sound
stays within one frame of the picture.
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import av
import numpy as np

RATE = 48_000
CHANNELS = 2


class Soundtrack(Protocol):
    """The sound a recording carries, cut by frame: a take or a render asks for each frame's samples."""

    rate: int

    def take(self, start: int, count: int) -> np.ndarray:
        """Samples [start, start + count) as float32 (count, CHANNELS)."""

    def close(self) -> None: ...


class FileSoundtrack:
    """A sound file (anything FFmpeg decodes), resampled to 48 kHz stereo; silence past its end."""

    rate = RATE

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        chunks: list[np.ndarray] = []
        with av.open(str(self.path)) as c:
            if not c.streams.audio:
                raise ValueError(f"{self.path}: no audio stream")
            resampler = av.AudioResampler(format="flt", layout="stereo", rate=RATE)
            for frame in c.decode(audio=0):
                chunks.extend(f.to_ndarray().reshape(-1, CHANNELS) for f in resampler.resample(frame))
            chunks.extend(f.to_ndarray().reshape(-1, CHANNELS) for f in resampler.resample(None))
        self.samples = np.concatenate(chunks) if chunks else np.zeros((0, CHANNELS), np.float32)

    def take(self, start: int, count: int) -> np.ndarray:
        out = np.zeros((count, CHANNELS), np.float32)
        part = self.samples[start:start + count]
        out[:len(part)] = part
        return out

    def close(self) -> None:
        pass


class LiveSoundtrack:
    """A live input device through sounddevice, recorded into takes; blocks arrive on PortAudio's
    thread. (Hearing a device as control is control.audio.AudioControl.)"""

    rate = RATE

    def __init__(self, device: Any = None, stream_factory: Any = None) -> None:
        self._blocks: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self.queued = 0          # samples waiting
        self.dropped = self.padded = 0
        self._started = False
        if stream_factory is None:
            import sounddevice as sd
            stream_factory = sd.InputStream
        self.stream = stream_factory(samplerate=RATE, channels=CHANNELS, dtype="float32", device=device,
                                     callback=self._callback)

    def _callback(self, block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        with self._lock:
            self._blocks.append(block.copy())
            self.queued += len(block)

    def start(self) -> None:
        if not self._started:
            self.stream.start()
            self._started = True

    def take(self, start: int, count: int) -> np.ndarray:
        """The next `count` samples; one frame of slack either way, then drop or pad."""
        with self._lock:
            while self.queued > 2 * count:  # device ahead of the picture: drop the oldest
                self.queued -= len(self._blocks.popleft())
                self.dropped += 1
            out = np.zeros((count, CHANNELS), np.float32)
            got = 0
            while got < count and self._blocks:
                block = self._blocks[0]
                n = min(count - got, len(block))
                out[got:got + n] = block[:n]
                got += n
                if n == len(block):
                    self._blocks.popleft()
                else:
                    self._blocks[0] = block[n:]
            self.queued -= got
            if got < count:
                self.padded += 1  # device behind: silence rather than stalling the picture
            return out

    def close(self) -> None:
        try:
            self.stream.stop()
        finally:
            self.stream.close()


def samples_before(frame: int, fps: float, rate: int = RATE) -> int:
    """How many samples precede video frame `frame`: exact, so sound never drifts from picture."""
    return round(frame * rate / fps)
