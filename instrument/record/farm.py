"""Render farms on Ray: a performance cut into chunks, each rendered by a Ray task in a process of
its own (its own headless GL context and generator) to a lossless-or-requested intermediate, the
chunks joined by packet copy (render.stitch) into the file asked for.

A frame depends on every frame before it, so a chunk cannot simply start at its first frame. What
carries across frames, and how fast it forgets:

- the controls: every event's target, the smoothing towards it, the beat clock, the modulators,
  and the scene's camera walk (its RNG, its visited cells): they never forget, and cost
  microseconds a frame. A chunk fast-forwards them from frame 0 without drawing (Show.skip).
- the tape chain: its interlaced `keep` pass holds the other field for one frame; the compositor's
  reprojection ring holds the last few frames (render/reproject.py: CARRY). Both forget in frames.
- the generator (generate/stream.py): the latents it feeds back and holds (`feedback`, HOLD),
  which fade geometrically but never to exactly the same bits; the warped noise field, whose cells
  keep their noise for as long as they stay in view (a cell is drawn afresh only where the motion
  reveals it), so a slow walk keeps some cells for many seconds; the prompt's cross-fade; the
  frames in flight. None of these has a bound that can be computed ahead.

A cut (a level change) drops all of the picture's state but the tape's one kept field, so where
the show has a clean cut near a chunk boundary (record/cuts.py, found by fast-forwarding the whole
show on the driver), the chunk starts just after it, its pre-roll drawn from the cut: exact by
construction. Elsewhere a chunk draws a pre-roll (`preroll` seconds) before its first kept frame.
Either way exactness is checked, not hoped for: each chunk fingerprints the last frames of its
pre-roll (its lead), the chunk before fingerprints its own last frames (its tail), the same frame
numbers. Where they agree, the pre-roll reached the state the frames before it left, and the chunk
is taken. Where they do not, that chunk is drawn again with twice the pre-roll, and at last from
frame 0 (the `--range` mechanism, exact by construction), and its successor is checked again
against what it now follows.
So the joined file is the single process's, frame for frame (what agreeing over the seam cannot
prove, a difference hidden in the state that surfaces only later, docs/FARM.md measures), and the
log says how many chunks needed a longer pre-roll.

Ray is the engine (no scheduler of our own): a task per chunk, `max_retries` so a chunk whose
worker died is drawn again from its start (the result is a pure function of the chunk), one actor
counting frames for the one progress bar. Intermediates live in one folder (`--farm-dir`, default
beside the output) that every node must be able to write and the driver to read: on a cluster, a
shared file system.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import av

from .cuts import AFTER, CHECK, last_clean_cut
from .progress import Progress
from .render import Job, replayed, stitch

log = logging.getLogger("noclip")

NEEDS = "--farm needs noclip[farm] (pip install 'noclip[farm]'): Ray is its engine"
RETRIES = 3  # a chunk whose worker dies is drawn again this many times before the render fails
TELL_EVERY = 0.5  # s between a worker's progress reports
OBJECT_STORE = 100 * 2**20  # bytes: a local cluster's object store holds only the order and results


class FarmError(RuntimeError):
    """A farm that cannot run (no Ray, no cluster) or a chunk that failed for good."""


@dataclass(frozen=True)
class Chunk:
    """Frames [start, end) kept, drawn after `preroll` frames of pre-roll (None: all from frame 0,
    exact by construction), its lead fingerprinted over the last `seam` of them; `cut`: the scene
    cut where its pre-roll starts (record/cuts.py: exact by construction from AFTER frames on)."""

    index: int
    start: int
    end: int
    preroll: int | None
    seam: int
    cut: int | None = None  # the cut its pre-roll starts at (exact by construction), if one does
    tail: int = 0  # its last frames fingerprinted: the next chunk's seam

    @property
    def drawn(self) -> int:
        """Frames this chunk draws (the bar counts these)."""
        return self.end - (0 if self.preroll is None else max(0, self.start - self.preroll))


@dataclass(frozen=True)
class Order:
    """What every chunk of one render shares: the performance (its text, so a node needs no copy
    of the file), the model, the rate, size and codec, and where the chunks go."""

    performance: str
    name: str
    model: str | None
    fps: float
    size: tuple[int, int]
    codec: str
    folder: str
    allow_missing: bool
    sound: str | None = None  # a sound file the show hears (its features react, as in one process)


@dataclass(frozen=True)
class Done:
    """A chunk drawn: its file and the fingerprints of its lead and its tail (frame → digest)."""

    chunk: Chunk
    path: str
    lead: dict[int, str]
    tail: dict[int, str]


def plan(first: int, frames: int, fps: float, chunk: float, preroll: float,
         cuts: Sequence[int] = ()) -> list[Chunk]:
    """Frames [first, frames) cut into chunks of about `chunk` seconds. Where one of the show's
    clean `cuts` (record/cuts.py) lies within half a chunk of a boundary, the chunk starts just
    after it: its pre-roll draws from the cut (everything the picture carries starts afresh there),
    AFTER frames for the tape's field and CHECK more fingerprinted: exact by construction, and still
    checked. Elsewhere a chunk draws `preroll` seconds of pre-roll, seamed over the last half of it.
    The first chunk has nothing before it to be checked against: it is drawn from the last cut far
    enough before it, or from frame 0 (no pre-roll at all when it starts there)."""
    size = max(1, round(chunk * fps))
    pre = max(1, round(preroll * fps))
    seam = max(1, pre // 2)
    known = last_clean_cut(list(cuts), first) if first else None
    chunks = [Chunk(0, first, 0, None if known is None else first - known, 0, known)]
    after = [c + AFTER + CHECK for c in cuts]  # where a chunk starting at each cut starts
    while (nominal := chunks[-1].start + size) < frames:
        near = [s for s in after if chunks[-1].start < s < frames and abs(s - nominal) <= size // 2]
        start = min(near, key=lambda s: (abs(s - nominal), s)) if near else nominal
        at_cut = start - AFTER - CHECK if near else None
        chunks.append(Chunk(len(chunks), start, 0, pre if at_cut is None else AFTER + CHECK,
                            seam if at_cut is None else CHECK, at_cut))
    return [replace(c, end=nxt.start, tail=nxt.seam) for c, nxt in pairwise(chunks)] + \
        [replace(chunks[-1], end=frames)]


def ray_module() -> Any:
    try:
        import ray
    except ImportError:
        raise FarmError(NEEDS) from None
    return ray


def connect(address: str, workers: int) -> bool:
    """Join the cluster at `address` (`local`: start one here with `workers` CPUs; `auto`: the one
    RAY_ADDRESS names, or a running local one; else `ray://host:10001` or `host:6379`). Returns
    whether this call started Ray (and so should stop it). A Ray already started in this process
    (a test's cluster) is used as it is."""
    ray = ray_module()
    if ray.is_initialized():
        return False
    env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("NOCLIP_")}}
    try:
        if address == "local":
            # address "local": a new Ray of its own, even where `ray start` runs one (or left word of one)
            ray.init(address="local", num_cpus=workers, include_dashboard=False,
                     object_store_memory=OBJECT_STORE, log_to_driver=False, configure_logging=False,
                     runtime_env=env)
        else:
            where = os.environ.get("RAY_ADDRESS") or "auto" if address == "auto" else address
            ray.init(address=where, log_to_driver=False, runtime_env=env)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise FarmError(f"--farm {address}: no Ray cluster there ({exc})") from None
    return True


def render_chunk(order: Order, chunk: Chunk, tally: Any = None) -> Done:
    """One chunk, drawn in this process (a Ray task's body): the performance from its text, a
    render of the chunk's frames after its pre-roll, the file named for the chunk only once it is
    whole (a worker killed mid-way leaves a `.part` that the retry starts afresh)."""
    from .. import catalogue
    from .audio import FileSoundtrack
    from .performance import load_performance
    from .render import render_offline

    catalogue.assemble()  # a fresh worker process: the registry is declared by its entry point
    # the generator in this process: Ray already keeps the chunk apart and draws it again if the
    # worker dies, a process of its own would only cost its start (torch, the model) per chunk
    os.environ.setdefault("NOCLIP_GENERATOR", "thread")
    folder = Path(order.folder)
    suffix = ".mkv" if order.codec == "ffv1" else Path(order.name).suffix or ".mkv"
    part = folder / f"chunk-{chunk.index:05d}.part{suffix}"
    done = folder / f"chunk-{chunk.index:05d}{'.long' if chunk.preroll is None else ''}{suffix}"
    with tempfile.TemporaryDirectory(prefix="noclip-farm-") as tmp:
        copy = Path(tmp) / "performance.jsonl"
        copy.write_text(order.performance)
        perf = load_performance(copy, salvage=True)  # (the driver read it as it was asked to)
    patch = replace(perf.patch, model=order.model) if order.model else perf.patch
    lead: dict[int, str] = {}
    tail: dict[int, str] = {}

    def look(frame: int, fbo: Any) -> None:
        if chunk.start - chunk.seam <= frame < chunk.start:
            lead[frame] = hashlib.blake2b(fbo.read(components=3)).hexdigest()
        elif frame >= chunk.end - chunk.tail:  # the next chunk's lead: the same frames
            tail[frame] = hashlib.blake2b(fbo.read(components=3)).hexdigest()

    job = Job(part, chunk.end / order.fps, order.fps, order.size, start=chunk.start / order.fps,
              codec=order.codec, allow_missing=order.allow_missing,
              preroll=None if chunk.preroll is None else chunk.preroll / order.fps)
    told = (lambda frames: _Told(tally, chunk)) if tally is not None else Progress
    track = FileSoundtrack(order.sound) if order.sound else None  # decoded once, heard and cut
    sound = (lambda: track) if track is not None else None
    status = render_offline(patch, perf.header["start"], job, performance=perf, audio=sound, progress=told,
                            look=look)
    if status:
        raise FarmError(f"chunk {chunk.index} (frames {chunk.start}-{chunk.end - 1}) failed with status "
                        f"{status}: its worker's log says why")
    part.replace(done)
    return Done(chunk, str(done), lead, tail)


class _Told:
    """A worker's progress, told to the driver's tally at most every TELL_EVERY seconds."""

    def __init__(self, tally: Any, chunk: Chunk) -> None:
        key = (chunk.index, -1 if chunk.preroll is None else chunk.preroll)  # each try of it apart
        self.tally, self.key, self.n, self.last = tally, key, 0, 0.0
        self.tally.set.remote(self.key, 0)

    def update(self, frames: int = 1) -> None:
        self.n += frames
        if time.monotonic() - self.last >= TELL_EVERY:
            self.last = time.monotonic()
            self.tally.set.remote(self.key, self.n)

    def close(self) -> None:
        self.tally.set.remote(self.key, self.n)


class Tally:
    """Frames drawn by each chunk (a Ray actor): a retried chunk counts again from 0."""

    def __init__(self) -> None:
        self.frames: dict[tuple[int, int], int] = {}

    def set(self, key: tuple[int, int], frames: int) -> None:
        self.frames[key] = frames

    def total(self) -> int:
        return sum(self.frames.values())


def longer(chunk: Chunk) -> Chunk:
    """The chunk again, its pre-roll twice as long, or from frame 0 once that is as long: a seam
    that misses costs twice its pre-roll, not the whole show before it, where the state forgets in
    a little more than the pre-roll given."""
    assert chunk.preroll is not None  # (a chunk drawn from frame 0 never misses)
    twice = 2 * chunk.preroll
    return replace(chunk, preroll=None if twice >= chunk.start else twice, cut=None)


def seams(done: dict[int, Done]) -> list[int]:
    """The chunks whose lead differs from the tail of the chunk before, where both are in (one
    drawn from frame 0: never)."""
    bad = []
    for i in sorted(done):
        d = done[i]
        if d.chunk.preroll is None or i - 1 not in done:
            continue
        before = done[i - 1].tail
        if any(before.get(frame) != digest for frame, digest in d.lead.items()) or not d.lead:
            bad.append(i)
    return bad


def render_farm(perf: Any, model: str | None, job: Job, *, address: str, workers: int, chunk: float,
                preroll: float, folder: Path | None = None, sound: Path | None = None) -> int:
    """`job` of the performance `perf` rendered on the Ray cluster at `address` and joined into
    `job.output`, with the `sound` file (which the show hears, and every node must read, as it must
    the folder). Returns 0, or 1 when a chunk failed for good (its reason logged)."""
    from .audio import FileSoundtrack

    ray = ray_module()
    frames, first = round(job.seconds * job.fps), round(job.start * job.fps)
    folder = folder or job.output.with_name(f"{job.output.name}.farm")
    try:
        track = FileSoundtrack(sound) if sound else None
    except (ValueError, OSError, av.FFmpegError) as exc:
        log.error("farm: %s: not a sound file that can be decoded (%s)", sound, exc)
        return 1
    cuts = _cuts(perf, job, frames, track)
    chunks = plan(first, frames, job.fps, chunk, preroll, cuts)
    started = connect(address, workers)
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FarmError(f"--farm-dir {folder}: {exc.strerror or exc}") from None
        order = Order(Path(perf.path).read_text(encoding="utf-8"), job.output.name, model, job.fps,
                      job.size, job.codec, str(folder.resolve()), job.allow_missing,
                      str(Path(sound).resolve()) if sound else None)
        dreams = (model or perf.patch.model) != "none"
        gpus = 1 if dreams and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(render_chunk).options(num_cpus=1, num_gpus=gpus, max_retries=RETRIES,
                                                retry_exceptions=False)
        tally = ray.remote(Tally).options(num_cpus=0).remote()
        log.info("farm: %d frames in %d chunks of about %.1f s on %s, %d at a time%s; %d start at a cut "
                 "(exact by construction), the others pre-roll %.1f s", frames - first, len(chunks), chunk,
                 address, workers, ", a GPU each" if gpus else "", sum(c.cut is not None for c in chunks[1:]),
                 preroll)
        ref = ray.put(order)
        bar = Progress(sum(c.drawn for c in chunks), desc="farm")
        try:
            done = _run(ray, task, ref, tally, chunks, workers, bar)
        finally:
            bar.close()
        parts: list[tuple[Path, int | None]] = [(Path(done[i].path), None) for i in sorted(done)]
        written = stitch(parts, job.output, job.fps, track, first)
    except FarmError as exc:
        log.error("farm: %s (the chunks drawn so far are in %s)", exc, folder)
        return 1
    except ImportError as exc:  # a node (or a Ray Client server) without this noclip
        log.error("farm: the cluster cannot import %s: every node needs this noclip installed (%s)",
                  exc.name, exc)
        return 1
    except ray.exceptions.RayError as exc:  # the cluster itself failed (a node lost, the head gone)
        log.error("farm: the cluster failed: %s: %s (the chunks drawn so far are in %s)",
                  type(exc).__name__, exc, folder)
        return 1
    finally:
        if started:
            ray.shutdown()
    redrawn = sum(1 for i in done if done[i].chunk.preroll != chunks[i].preroll)
    log.info("farm: %d chunks joined into %s (%d frames; %d drawn again with a longer pre-roll)",
             len(done), job.output, written, redrawn)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def _cuts(perf: Any, job: Job, frames: int, track: Any) -> list[int]:
    """The show's clean cuts (record/cuts.py), found by fast-forwarding it here on the driver (about
    0.24 ms a frame); none where this machine cannot (no GL: every chunk is then pre-rolled and
    checked, as it would be anyway)."""
    from .cuts import survey

    t = time.perf_counter()
    try:
        cuts = survey(perf.patch, perf.header["start"], job.fps, job.size, frames,
                      replayed(job.fps, perf, None, (lambda: track) if track is not None else None))
    except Exception as exc:  # (a driver without EGL): the farm still works, by its checks alone
        log.warning("farm: cannot look for the show's cuts here (%s: %s); every chunk is pre-rolled",
                    type(exc).__name__, exc)
        return []
    log.info("farm: %d clean cuts in %d frames (fast-forwarded in %.1f s)", len(cuts), frames,
             time.perf_counter() - t)
    return cuts


def _run(ray: Any, task: Any, ref: Any, tally: Any, chunks: list[Chunk], workers: int,
         bar: Progress) -> dict[int, Done]:
    """The chunks through the cluster, at most `workers` in flight, the bar following the tally.
    Each seam is checked as soon as both its chunks are in (again whenever either is drawn anew),
    so a chunk drawn again with a longer pre-roll goes first and overlaps the chunks still out."""
    todo, flying, done = list(chunks), dict[Any, Chunk](), dict[int, Done]()
    while todo or flying:
        while todo and len(flying) < workers:
            c = todo.pop(0)
            flying[task.remote(ref, c, tally)] = c
        ready, _ = ray.wait(list(flying), num_returns=1, timeout=1.0)
        for r in ready:
            c = flying.pop(r)
            try:
                done[c.index] = ray.get(r)
            except ray.exceptions.RayTaskError as exc:
                raise FarmError(str(exc.cause) if exc.cause is not None else str(exc)) from None
            except ray.exceptions.RayError as exc:  # its worker died past every retry
                raise FarmError(f"chunk {c.index}: {type(exc).__name__}: {exc}") from None
            for i in seams({i: done[i] for i in (c.index - 1, c.index, c.index + 1) if i in done}):
                again = longer(done.pop(i).chunk)
                log.info("farm: chunk %d did not reach the exact state in its pre-roll: drawn again %s", i,
                         "from frame 0" if again.preroll is None else f"with {again.preroll} frames of it")
                bar.bar.total += again.drawn
                todo.insert(0, again)
        bar.update(ray.get(tally.total.remote()) - bar.bar.n)  # back a little when a chunk is retried
    assert not seams(done)  # (every seam was checked when the later of its chunks came in)
    return done
