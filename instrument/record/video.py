"""Video files through PyAV, written so that a show can lose power and keep its recording.

Readback goes through a ring of pixel-pack buffers (readback.py), so the frame loop does not stall
on the copy. Encoding runs on its own thread; in live play a full queue
drops the frame and counts it (never silently), offline the loop waits so the file is exact.

Crash safety: MP4/MOV are written fragmented (a fragment per keyframe, a keyframe every second),
Matroska in clusters of at most a second, and packets are flushed as they are muxed, so a process
killed mid-show leaves a file that plays up to its last second.

A full disk never ends the show. The encoder thread watches the free space as it writes and stops
the take while the disk still has `reserve` bytes (NOCLIP_DISK_RESERVE, MiB; 256 by default): the
file is then finished properly (trailer and all) and plays to its end. Should a write fail anyway
(another program filled the disk, a file-size limit), nothing more is muxed (FFmpeg crashes when
asked to mux after a failed write), the take ends where its last fragment ended, and `close` still
releases everything it opened: the encoder thread, the codec's threads, the file, the sound.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from fractions import Fraction
from pathlib import Path

import av
import moderngl
import numpy as np

from ..files import free_bytes
from ..params import FrameParams
from ..report import Reporter
from .audio import CHANNELS, Soundtrack, samples_before
from .encoding import QUALITIES, encode_size, h264_encoder
from .readback import ReadbackRing

# name → (encoder, pixel format, options). HAP is decode-only in PyAV's FFmpeg build.
CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "h264": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
    "ffv1": ("ffv1", "bgr0", {}),  # lossless RGB: re-renders compare bit for bit
    "prores": ("prores_ks", "yuv422p10le", {"profile": "3"}),  # ProRes 422 HQ
}
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
CONTAINER_OPTIONS = {".mp4": FRAGMENTED, ".mov": FRAGMENTED, ".m4v": FRAGMENTED,
                     ".mkv": {"cluster_time_limit": "1000", "flush_packets": "1"}}


def lower_priority(nice: int) -> None:
    """This thread (and the threads it starts) at niceness `nice`; where the system has no such
    thing, as it is."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError):
        pass


def disk_reserve() -> int:
    """Bytes a take leaves free on its disk: NOCLIP_DISK_RESERVE in MiB (default 256): room to
    finish the file, and for the performance file and everything else on the machine."""
    raw = os.environ.get("NOCLIP_DISK_RESERVE", "").strip()
    try:
        mib = float(raw) if raw else 256.0
    except ValueError:
        mib = 256.0
    return int(min(max(mib, 0.0), 2.0**30) * 2**20) if math.isfinite(mib) else 256 * 2**20


class TakeStopped(RuntimeError):
    """A take ended by itself (disk nearly full, a write failed): the show goes on without it."""


class NoRoom(OSError):
    """Not enough free disk to start a take."""


def time_base(stream: av.stream.Stream) -> Fraction:
    """A stream's time base: PyAV types it optional (a stream being set up may lack one); one read
    from a file always has it."""
    if stream.time_base is None:
        raise ValueError(f"{stream}: no time base")
    return stream.time_base


def add_sound_stream(container: av.container.OutputContainer, path: Path, rate: int) -> av.AudioStream:
    """PCM where the container takes it (MKV, MOV), AAC in MP4."""
    pcm = path.suffix.lower() in (".mkv", ".mov")
    stream = container.add_stream("pcm_s16le" if pcm else "aac", rate=rate)
    stream.layout = "stereo"
    return stream


def mux_sound(container: av.container.OutputContainer, stream: av.AudioStream, sound: np.ndarray, pts: int,
              rate: int) -> int:
    """Encode float samples (n, 2) starting at sample `pts`; returns the next sample position."""
    s16 = stream.codec_context.name == "pcm_s16le"
    if s16:
        data = (np.clip(sound, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
    else:
        data = sound.T.astype(np.float32)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="s16" if s16 else "fltp",
                                       layout="stereo")
    frame.sample_rate, frame.pts = rate, pts
    for packet in stream.encode(frame):
        container.mux(packet)
    return pts + len(sound)


class VideoRecorder:
    def __init__(self, path: str | Path, size: tuple[int, int], fps: float, *, live: bool,
                 reporter: Reporter | None = None, codec: str = "h264", depth: int = 8,
                 audio: Soundtrack | None = None, first_frame: int = 0, reserve: int | None = None,
                 quality: str = "best") -> None:
        """`first_frame`: the show frame this file starts at, so its sound is cut from there.
        `reserve`: bytes to leave free on the disk (default: `disk_reserve()`); the take stops
        cleanly before the disk has less. `quality` (QUALITIES): the size and x264 preset of the
        file; frames are read at `size`."""
        if codec not in CODECS:
            raise ValueError(f"unknown codec '{codec}' (have: {', '.join(CODECS)})")
        self.path = Path(path)
        self.size, self.fps = size, fps
        self.live, self.reporter, self.audio = live, reporter, audio
        self.quality = quality
        self.file_size = encode_size(size, quality)
        self.reserve = disk_reserve() if reserve is None else reserve
        free = free_bytes(self.path)
        if free is not None and free < self.reserve:
            raise NoRoom(f"{self.path}: {_mib(free)} free, takes stop at {_mib(self.reserve)} "
                         "(NOCLIP_DISK_RESERVE)")
        encoder, pix_fmt, options = CODECS[codec]
        if encoder == "libx264":
            options = QUALITIES[quality][1]
        if encoder == "libx264" and h264_encoder() == "h264_nvenc":
            encoder, options = "h264_nvenc", {"preset": "p4", "cq": "19"}
        container = av.open(str(self.path), "w", options=CONTAINER_OPTIONS.get(self.path.suffix.lower(), {}))
        # None once closed: dropped at close, not at some later collection (the codec's threads end with it)
        self.container: av.container.OutputContainer | None = container
        self.stream: av.VideoStream | None = None
        self.sound: av.AudioStream | None = None
        try:
            rate = Fraction(fps).limit_denominator(1001)
            stream = container.add_stream(encoder, rate=rate)
            assert isinstance(stream, av.VideoStream)  # every encoder in CODECS is a video one
            self.stream = stream
            stream.width, stream.height = self.file_size
            stream.pix_fmt = pix_fmt
            # a keyframe at least every second: each is where a fragment (and a crash's loss) ends
            keyframes = {"g": str(max(1, round(fps)))} if codec == "h264" else {}
            stream.options = {**options, **keyframes}
            self.sound = add_sound_stream(container, self.path, audio.rate) if audio else None
        except Exception:
            container.close()
            raise
        self.frames = self.dropped = self.offered = 0
        self.depth = depth
        self.error: Exception | None = None  # a write failed: nothing more is muxed
        self.full: str | None = None         # the disk reached the reserve: the take ends cleanly
        self.closed = False
        self._every = max(1, round(fps / 10))  # frames between free-space checks
        self._lock = threading.Lock()
        self._backlog = 0                 # pictures queued, not yet encoded
        self._drained = threading.Event()
        self._ring = ReadbackRing(size)
        self._first = self.first_frame = first_frame
        self._audio_pos = samples_before(first_frame, fps, audio.rate) if audio else 0
        self._queue: queue.Queue[tuple[int, np.ndarray | None, np.ndarray | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._encode, name="video-encode", daemon=True)
        self._thread.start()

    # -- frame loop side -------------------------------------------------------------------------

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        """Start reading this frame into the ring; hand on the one read two frames ago."""
        rgb = self._ring.read(fbo)
        if rgb is not None:
            self.push(rgb)

    def push(self, rgb: np.ndarray) -> None:
        """Queue frame `offered`; live, a backlog of `depth` frames drops the picture (counted) but
        never its sound, so the picture keeps its place in time and the sound stays whole."""
        if self.error is not None or self.full is not None:
            raise TakeStopped(self.why())
        index = self.offered
        self.offered += 1
        picture: np.ndarray | None = rgb
        sound = None
        if self.audio is not None:
            end = samples_before(self._first + self.offered, self.fps, self.audio.rate)
            sound = self.audio.take(self._audio_pos, end - self._audio_pos)
            self._audio_pos = end
        with self._lock:
            if self.live and self._backlog >= self.depth:
                self.dropped += 1
                picture = None
            else:
                self._backlog += 1
        if picture is None and self.reporter:
            self.reporter.problem("recorder", str(self.path), "encoder behind: frames dropped")
        self._queue.put((index, picture, sound))
        if not self.live:  # offline: the file is exact, so wait for the encoder instead of dropping
            while self._backlog >= self.depth and self._thread.is_alive():
                self._drained.wait(0.05)
                self._drained.clear()

    def why(self) -> str:
        """Why the take stopped by itself, in the performer's words ("" while it runs)."""
        if self.error is not None:
            text = getattr(self.error, "strerror", None) or str(self.error)
            return f"{self.path}: {text}; the take stopped, its file plays up to the failed write"
        if self.full is not None:
            return f"{self.path}: {self.full}; take stopped and finished"
        return ""

    # -- encoder thread --------------------------------------------------------------------------

    def _encode(self) -> None:
        container, stream, sound_stream = self.container, self.stream, self.sound
        assert container is not None and stream is not None  # dropped by close, after this thread ends
        audio_pts = 0
        while (item := self._queue.get()) is not None:
            index, rgb, sound = item
            if self.error is not None or self.full is not None:
                if rgb is not None:
                    with self._lock:
                        self._backlog -= 1
                    self._drained.set()
                continue
            # the free space, ten times a second of video: a statvfs each frame would cost the
            # encoder thread ~40 us a frame for nothing (the reserve is many seconds deep)
            free = free_bytes(self.path) if self.reserve and index % self._every == 0 else None
            if free is not None and free < self.reserve:
                self.full = f"disk nearly full ({_mib(free)} free, reserve {_mib(self.reserve)})"
                if rgb is not None:
                    with self._lock:
                        self._backlog -= 1
                    self._drained.set()
                continue
            try:
                if rgb is not None:
                    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                    if self.file_size != self.size:  # scaled here, on the encoder's thread
                        frame = frame.reformat(*self.file_size, format=stream.pix_fmt, interpolation="AREA")
                    frame.pts = index  # a dropped frame leaves a gap in time, not a shift after it
                    for packet in stream.encode(frame):
                        container.mux(packet)
                    self.frames += 1
                # sound comes only with a Soundtrack, which made the sound stream
                if sound is not None and len(sound) and sound_stream is not None and self.audio is not None:
                    audio_pts = mux_sound(container, sound_stream, sound, audio_pts, self.audio.rate)
            except Exception as exc:  # disk full, codec error: report, keep the show
                self.error = exc.with_traceback(None)  # a traceback would keep the codec alive
            finally:
                if rgb is not None:
                    with self._lock:
                        self._backlog -= 1
                    self._drained.set()

    def close(self) -> None:
        """Finish the file and release everything this recorder opened, whatever failed before:
        the encoder thread is joined, the codecs (and their threads) and the file are closed, the
        read-back buffers and the sound source are released. Raises TakeStopped afterwards if the
        file holds fewer frames than it was given: cut short by a failed write, or finished
        cleanly at the disk reserve."""
        if self.closed:
            return
        self.closed = True
        try:
            with contextlib.suppress(TakeStopped):  # the encoder stopped meanwhile: `why` says which
                for rgb in self._ring.drain():
                    self.push(rgb)
        except Exception as exc:  # the last frames could not be queued: the file ends before them
            self.error = self.error or exc.with_traceback(None)
        finally:
            self._queue.put(None)
            self._thread.join()
        container = self.container
        assert container is not None  # dropped below, once
        try:
            if self.error is None:  # after a failed write FFmpeg must not be asked to mux again
                for stream in (self.stream, self.sound):
                    if stream is not None:
                        for packet in stream.encode():
                            container.mux(packet)
        except Exception as exc:
            self.error = exc.with_traceback(None)
        finally:
            try:
                container.close()
            except Exception as exc:
                self.error = self.error or exc.with_traceback(None)
            # dropped here, not at some later collection: the codec's threads end with it
            self.container = self.stream = self.sound = None
            del container  # nor kept by a traceback of the TakeStopped raised below
            self._ring.release()
            if self.audio is not None:
                try:
                    self.audio.close()
                except Exception:
                    pass
        if self.error is not None or self.full is not None:
            raise TakeStopped(self.why())


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


__all__ = ["CHANNELS", "CODECS", "NoRoom", "TakeStopped", "VideoRecorder", "disk_reserve"]
