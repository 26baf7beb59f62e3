"""Offline rendering: the show on a fixed-step clock, every frame waiting for its own work, so a
file is exact and repeatable — and a long render that was cut short can be resumed.

Resuming keeps what the broken file already holds up to its last keyframe (the group of pictures
after it may be cut mid-way), plays the show up to that frame again without encoding it (feedback,
smoothing and the generator make each frame depend on all before it, so the frames must be
played, only their encoding is saved), encodes from there into a second file and joins the two by
copying packets. Sound, if any, is encoded afresh across the whole join.

Exact means every frame has its own dream. The loop waits for each as long as it takes; a frame
whose dream failed (the engine raised, ran out of memory, or the model never loaded) stops the
render with the reason and a non-zero exit, unless the caller allows missing dreams (then each is
logged and they are counted at the end). A render that stops (that failure, Ctrl-C, SIGTERM) first
closes its file, which `--resume` then continues, and stops the generator's process or thread.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from ..clock import OfflineClock
from ..control import ControlEvent, ControlQueue
from ..events import CMD_TARGET
from ..patch import Patch
from .audio import Soundtrack, samples_before
from .performance import PerformanceWriter
from .progress import Progress
from .session import Scheduled, Session
from .video import NoRoom, TakeStopped, time_base

log = logging.getLogger("noclip")

STOPPED = 130  # the exit status of a render stopped by Ctrl-C (128 + SIGINT), as shells report it
FAILED = 1  # the exit status of a render that stopped on a missing dream


class MissingDream(RuntimeError):
    """Frame `frame` has no dream of its own, so the render cannot be exact."""

    def __init__(self, frame: int, why: str) -> None:
        super().__init__(f"frame {frame} has no dream: {why}")
        self.frame, self.why = frame, why


class _Terminated(BaseException):
    """SIGTERM (a farm's scheduler, `kill`) during a render: stopped as cleanly as by Ctrl-C."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def kept_frames(path: Path, fps: float) -> tuple[int, int]:
    """(frames decodable, frames worth keeping: those before the last keyframe) of a partial file."""
    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0]
            base = time_base(v)
            frames, last_key, origin = 0, 0, None
            for pkt in c.demux(v):
                if pkt.pts is None or pkt.size == 0:
                    continue
                frames += 1
                origin = pkt.pts if origin is None else min(origin, pkt.pts)  # B-frame delay shifts all
                if pkt.is_keyframe:
                    last_key = round(float((pkt.pts - origin) * base) * fps)
    except (av.FFmpegError, IndexError, OSError):
        return 0, 0
    return frames, last_key


def heard(audio: Callable[[], Soundtrack] | None, fps: float, performance=None) -> list[dict[str, float]]:
    """Audio features per frame of the sound file a render is made with (control/audio.py), so
    `render --audio song.wav` reacts to the song as a live input would; none when the performance
    kept what the live show heard: that rules, as it did on stage."""
    from ..control.audio import frame_features

    if performance is not None and any(e.target == CMD_TARGET + "audio"
                                       for events in performance.events.values() for e in events):
        return []
    sound = audio() if audio else None
    if sound is None or not hasattr(sound, "samples"):
        return []
    return frame_features(sound.samples, sound.rate, fps)


@dataclass(frozen=True)
class Job:
    """What an offline render makes: `output`, the show up to `seconds` at `fps` and `size`, the
    frames before `start` played but not kept; `resume` continues a file cut short; `allow_missing`
    renders on past a frame whose dream failed. `preroll` bounds the frames played before `start`
    to that many seconds, the ones before them only fast-forwarded (their controls applied, the
    camera walked, nothing drawn: Show.skip); None plays them all (exact always)."""

    output: Path
    seconds: float
    fps: float
    size: tuple[int, int]
    start: float = 0.0
    codec: str = "h264"
    resume: bool = False
    allow_missing: bool = False
    preroll: float | None = None


def render_offline(patch: Patch, overrides: dict[str, Any], job: Job, *, performance=None,
                   audio: Callable[[], Soundtrack] | None = None, midi=None,
                   progress: Callable[[int], Any] = Progress,
                   look: Callable[[int, Any], None] | None = None) -> int:
    """Render `job` of the show `patch` plays (with `overrides`). A performance replays its events
    at their frames; a MIDI file (`midi`, a MidiFilePlayer) plays through the bindings and its
    events go to a performance file beside the output; `audio` is the sound the file carries (and
    the show hears, unless the performance kept what it heard live). `progress(frames)` makes what
    is told of each frame drawn (a farm's worker tells its driver); `look(frame, fbo)` sees every
    frame drawn, kept or not (a farm's chunk fingerprints its seams).

    Returns 0 when done; FAILED when a frame's dream is missing and `allow_missing` is off;
    STOPPED (or 143 on SIGTERM) when interrupted. Either way the file written so far is closed
    and `resume` continues it."""
    from ..render.gl import headless_context
    from .video import VideoRecorder

    output, fps, size, codec, allow_missing = job.output, job.fps, job.size, job.codec, job.allow_missing
    seconds, start, resume = job.seconds, job.start, job.resume

    frames, first = round(seconds * fps), round(start * fps)
    drawn_from = 0 if job.preroll is None else max(0, first - round(job.preroll * fps))
    have = keep = 0
    if resume and output.exists():
        have, keep = kept_frames(output, fps)
        if have >= frames - first:
            log.info("%s already holds all %d frames: nothing to resume", output, have)
            return 0
        log.info("resuming %s: keeping its first %d frames, rendering %d more", output, keep,
                 frames - first - keep)
    target = output.with_name(f"{output.stem}.resume{output.suffix}") if keep else output
    ctx = headless_context()
    try:
        recorder = VideoRecorder(target, size, fps, live=False, codec=codec,
                                 audio=audio() if audio and not keep else None, first_frame=first)
    except (NoRoom, OSError, av.FFmpegError) as exc:
        log.error("cannot write %s: %s", target, getattr(exc, "strerror", None) or exc)
        return 1
    missed: list[int] = []  # frames rendered without their dream (allow_missing)
    status, i = 0, 0
    sigterm = _catch_sigterm()
    bar = None

    def close_recorder() -> None:
        nonlocal status
        try:
            recorder.close()
        except TakeStopped as exc:  # said once, whichever noticed first
            if not status:
                status = 1
                log.error("render stopped: %s", exc)

    with Session() as session:
        session.callback(close_recorder)  # after the show (closed first: it stops the generator)
        clock, queue = OfflineClock(fps), ControlQueue()
        sources = [Scheduled(events, clock, queue) for events in replayed(fps, performance, midi, audio)]
        show = session.show(ctx, patch, size, clock=clock, queue=queue, overrides=overrides,
                            sources=sources)
        if midi is not None:
            midi.attach(show)
            perf = output.with_suffix(".performance.jsonl")
            session.sink(show, lambda: PerformanceWriter(perf, patch, dict(show.targets), fps, size), perf)
        try:
            _await_model(show)
            bar = progress(frames - drawn_from)  # its clock starts with the dreaming, not the loading
            for i in range(frames):
                if i < drawn_from:
                    show.skip()
                    continue
                show.step()
                why = show.generator.missing(i)
                if why is not None:
                    if not allow_missing:
                        raise MissingDream(i, why)
                    missed.append(i)
                    log.warning("frame %d rendered without its dream (--allow-missing-dreams): %s", i, why)
                if look is not None:
                    look(i, show.picture_fbo)
                if i >= first + keep:
                    recorder.write(show.picture_fbo, show.fp)
                bar.update()
        except MissingDream as exc:
            status = FAILED
            log.error("render failed: %s", exc)
        except TakeStopped as exc:  # a full disk, a file-size limit: the file holds what was written
            status = 1
            log.error("render stopped: %s", exc)
        except (KeyboardInterrupt, _Terminated) as exc:
            status = STOPPED if isinstance(exc, KeyboardInterrupt) else 128 + signal.SIGTERM
            log.error("render %s at frame %d", "interrupted" if status == STOPPED else "terminated", i)
        finally:
            _ignore_sigterm(sigterm)  # the clean-up below is short and must not itself be cut short
            if bar is not None:
                bar.close()
    # (the session closed the show, which stopped and joined the generator, then the file)
    _restore_sigterm(sigterm)
    if keep and recorder.frames:
        join(output, target, keep, fps, audio() if audio else None, first)
    if keep or (status and not recorder.frames):
        target.unlink(missing_ok=True)  # a resume's own part, or a stopped render's empty file
    held = keep + recorder.frames if recorder.frames else have  # what `output` holds now
    if missed:
        shown = ", ".join(map(str, missed[:10])) + (", …" if len(missed) > 10 else "")
        log.warning("%d of %d frames rendered without their dream: %s", len(missed), i + 1, shown)
    if status:
        if held:
            log.error("%s holds the first %d frames: the same command with --resume continues it",
                      output, held)
        if status == FAILED:
            log.error("(--allow-missing-dreams renders on without the missing dreams, "
                      "--model none without any)")
        return status
    log.info("rendered %d frames to %s", held, output)
    return 0


def replayed(fps: float, performance=None, midi=None,
             audio: Callable[[], Soundtrack] | None = None) -> list[Callable[[int], list[ControlEvent]]]:
    """What an offline render replays, each as the events of a frame: the performance's own, the
    MIDI file's through the bindings, and the sound file's features (unless the performance kept
    what the live show heard)."""
    out: list[Callable[[int], list[ControlEvent]]] = []
    if performance is not None:
        out.append(lambda i: performance.events_at(i, fps))
    if midi is not None:
        out.append(midi.events)
    features = heard(audio, fps, performance)
    if features:
        out.append(lambda i: [ControlEvent("audio", CMD_TARGET + "audio", features[i])]
                   if i < len(features) else [])
    return out


def _await_model(show) -> None:
    """Let the model load before the first frame (seconds to minutes), saying so."""
    if show.patch.model == "none":
        return
    t = time.perf_counter()
    log.info("loading model %s", show.patch.model)
    show.generator.ready()
    log.info("model %s ready after %.1f s", show.patch.model, time.perf_counter() - t)


def _catch_sigterm():
    """SIGTERM ends the render like Ctrl-C (only the main thread may set a handler)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _on_sigterm)


def _ignore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def join(head: Path, tail: Path, keep: int, fps: float, audio: Soundtrack | None, first: int) -> None:
    """`head`'s first `keep` frames, then all of `tail`, by packet copy, into `head` (stitch)."""
    joined = head.with_name(f"{head.stem}.joined{head.suffix}")
    stitch([(head, keep), (tail, None)], joined, fps, audio, first)
    joined.replace(head)


def stitch(parts: list[tuple[Path, int | None]], output: Path, fps: float, audio: Soundtrack | None = None,
           first: int = 0) -> int:
    """The first `n` frames of each part (None: all of it), one after the other, by packet copy into
    `output`: each part's packets shifted by the frames before it. The parts must come from one
    encoder with one setting, each starting on a keyframe (a resumed file's head and tail; a farm's
    chunks). Sound, if any, is encoded afresh alongside, a packet's worth ahead of the picture so the
    file stays interleaved, from show frame `first` on. Returns the frames written."""
    from .video import CONTAINER_OPTIONS, add_sound_stream, mux_sound

    rate = Fraction(fps).limit_denominator(1001)
    with contextlib.ExitStack() as stack:
        ins = [stack.enter_context(av.open(str(path))) for path, _ in parts]
        out = stack.enter_context(av.open(str(output), "w",
                                          options=CONTAINER_OPTIONS.get(output.suffix.lower(), {})))
        vo = out.add_stream_from_template(ins[0].streams.video[0])
        sound = add_sound_stream(out, output, audio.rate) if audio else None
        pos = samples_before(first, fps, audio.rate) if audio else 0
        written = 0
        decoded: Fraction | None = None  # the last packet's decoding time

        def copy(pkt: av.Packet, offset: Fraction) -> None:
            nonlocal pos, decoded
            assert pkt.pts is not None  # (packets without one are passed over)
            shift = round(offset / pkt.time_base)
            pkt.pts += shift
            if pkt.dts is not None:
                pkt.dts += shift
                # a part after a short one (less B-frame delay) starts decoding before that one
                # ended: a tick later instead, never past its showing time
                if decoded is not None and pkt.dts * pkt.time_base <= decoded:
                    pkt.dts = min(pkt.pts, int(decoded / pkt.time_base) + 1)
                decoded = pkt.dts * pkt.time_base
            if sound is not None and audio is not None:
                end = samples_before(first + round(float(pkt.pts * pkt.time_base) * fps) + 1, fps, audio.rate)
                if end > pos:
                    pos = mux_sound(out, sound, audio.take(pos, end - pos), pos, audio.rate)
            pkt.stream = vo
            out.mux(pkt)

        lead: Fraction | None = None  # where the first part's first frame sits (an encoder's delay)
        for c, (_, count) in zip(ins, parts, strict=True):
            v = c.streams.video[0]
            origin, base, n, offset = None, time_base(v), 0, Fraction(0)
            cut = None if count is None else Fraction(count) / rate - Fraction(1, 2 * round(fps))
            for pkt in c.demux(v):
                if pkt.pts is None or pkt.size == 0:
                    continue
                if origin is None:  # the first packet is the keyframe at 0
                    origin = pkt.pts
                    lead = origin * base if lead is None else lead
                    # this part starts this late, its frame 0 where the first part's was (a short
                    # part can have less of an encoder's delay than a long one)
                    offset = Fraction(written) / rate + lead - origin * base
                if cut is not None and (pkt.pts - origin) * base >= cut:
                    break
                copy(pkt, offset)
                n += 1
            written += n if count is None else count
        if sound is not None:
            for packet in sound.encode():
                out.mux(packet)
    return written
