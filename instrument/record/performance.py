"""Performance files: a show as data — the patch, the start state of every parameter, and every
control event stamped with the frame at which it took effect — so it can be rendered again, exactly,
later, bigger, with another model.

JSON lines, written and flushed one event at a time: a crash loses nothing already played.
Line 1 is the header; then `{"f": frame, "src": source, "t": target, "v": value}` per event;
a clean stop ends with `{"end": frames}`.

The header carries the format's `version`; a file an older noclip wrote is upgraded as it is read
(MIGRATIONS, one step per version, applied by files.upgrade), so it renders as it always did.
Version 2 (this noclip's) always names the patch's `dream_size`: equal to its `size` when the
generator works at the scene's size, which version 1 said with null or by leaving it out.

Reading is strict, because a file may come from anywhere: the header may carry only the keys a
writer writes, needs its `patch` and `start`, an fps in (0, 1000], parameters the registry knows;
no number anywhere may be NaN or infinite (JSON has neither, Python's reader takes both). Every
mistake is a PerformanceError, `file:line: what is wrong`, never a traceback from deeper down.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import __version__
from ..control import ControlEvent
from ..events import CMD_TARGET
from ..files import Migration, strict_json, upgrade
from ..generate import LORA_PARAMS
from ..generate.catalog import LoraError, file_sha256, lora_file, parse_lora
from ..params import REGISTRY, ParamError
from ..patch import ConfigError, Patch, is_size
from ..scene import SCENES, live_source
from ..scene.source import SOURCE_SUFFIXES, probe
from .eventlog import close_quietly, jsonable

KIND = "noclip performance"
VERSION = 2
NOT_REPLAYED = {"quit"}  # a re-render ends where the performance ended, not on its quit key
HEADER_KEYS = {"kind", "version", "noclip", "created", "fps", "size", "models", "patch", "start"}
MAX_FPS = 1000.0
MAX_LINE = 16 * 2**20  # bytes: a header with its patch is a few kB; more is not a performance file
MAX_FRAME = 2**31 - 1  # ~1 year at 60 fps: frame numbers past it are damage, not a show


class PerformanceError(ValueError):
    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {message}")


def make_header(patch: Patch, start: dict[str, Any], fps: float, size: tuple[int, int]) -> dict[str, Any]:
    """The header line of a show: its patch, every parameter's `start` value, `fps` and output
    `size` (a performance file's first line; a leader's first word to each follower)."""
    return {
        "kind": KIND, "version": VERSION, "noclip": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "fps": fps, "size": list(size),
        "models": {"generator": patch.model, "loras": [lora_record(spec) for spec in patch.loras]},
        "patch": {**asdict(patch), "dream_size": list(patch.dream),
                  "path": str(patch.path) if patch.path else None},
        "start": start,
    }


_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime): a LoRA is hashed once per show


def lora_record(spec: str) -> dict[str, Any]:
    """What a performance file keeps of a LoRA: its name, the file it was, and that file's sha256
    (None where it was not found: the show played without it)."""
    try:
        path = lora_file(parse_lora(spec)[0])
        st = path.stat()
    except (LoraError, OSError):
        return {"lora": spec, "path": None, "sha256": None}
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = file_sha256(path)
    return {"lora": spec, "path": str(path), "sha256": _HASHES[key]}


def check_loras(header: dict[str, Any]) -> list[str]:
    """What keeps a re-render from playing the performance's LoRAs: each recorded one must be
    found here with the same content (sha256). Returns the problems, in words."""
    problems = []
    for n, rec in enumerate(header.get("models", {}).get("loras", []), 1):
        if not isinstance(rec, dict) or rec.get("sha256") is None:
            continue  # not played then (not found): not played now either, as the show did
        now = lora_record(str(rec.get("lora")))
        if now["sha256"] is None:
            problems.append(f"lora{n}: {rec.get('lora')} ({rec.get('path')}) is not on this machine")
        elif now["sha256"] != rec["sha256"]:
            problems.append(f"lora{n}: {now['path']} has changed since the show (sha256 {now['sha256'][:12]}, "
                            f"recorded {str(rec['sha256'])[:12]})")
    return problems


class PerformanceWriter:
    """An EventSink of the Show."""

    def __init__(self, path: str | Path, patch: Patch, start: dict[str, Any], fps: float,
                 size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.file = open(self.path, "w", encoding="utf-8", buffering=1)
        header = make_header(patch, start, fps, size)
        try:
            self.file.write(json.dumps(header) + "\n")
        except BaseException:
            close_quietly(self.file)
            raise

    def applied(self, event: ControlEvent, frame: int, value: Any) -> None:
        self.file.write(json.dumps({"f": frame, "src": event.source, "t": event.target,
                                    "v": jsonable(value)}) + "\n")

    def close(self, frames: int) -> None:
        """The performance lasts as long as the show played, events or not."""
        try:
            self.file.write(json.dumps({"end": frames}) + "\n")
        finally:
            self.file.close()

    def abandon(self) -> None:
        """A write failed (the show dropped this writer): close without another line. The file
        keeps every event up to the failure; it reads as a performance cut short (`complete`
        False), and `--salvage` renders it when the last line is half written."""
        close_quietly(self.file)


@dataclass
class Performance:
    path: Path
    header: dict[str, Any]
    events: dict[int, list[ControlEvent]] = field(default_factory=dict)
    frames: int = 0  # how many frames the performance lasted
    complete: bool = True  # False when the file ended without its end line (crash) or was cut

    @property
    def fps(self) -> float:
        return float(self.header["fps"])

    @property
    def size(self) -> tuple[int, int] | None:
        """The output size the performance was played at (a re-render's default; None in a file
        written before headers said it)."""
        size = self.header.get("size")
        return (int(size[0]), int(size[1])) if size else None

    @property
    def patch(self) -> Patch:
        return header_patch(self.header["patch"])

    def events_at(self, frame: int, fps: float | None = None) -> list[ControlEvent]:
        """The events of output frame `frame`; at another fps, events land at the same time."""
        if fps is None or fps == self.fps:
            return self.events.get(frame, [])
        lo = round(frame * self.fps / fps)
        hi = round((frame + 1) * self.fps / fps)
        return [e for f in range(lo, max(hi, lo + 1)) for e in self.events.get(f, [])]


def _v1_to_v2(header: dict[str, Any]) -> dict[str, Any]:
    """The patch's dream_size became part of the format: null or absent in version 1 was the
    scene's size, the patch's `size` (or the default size when it named none)."""
    patch = header.get("patch")
    if isinstance(patch, dict) and patch.get("dream_size") is None:
        size = patch.get("size", list(Patch.size))
        patch = {**patch, "dream_size": list(size) if isinstance(size, list) else size}
        return {**header, "version": 2, "patch": patch}
    return {**header, "version": 2}


# version v → v + 1, applied in order up to VERSION as a file is read (files.upgrade)
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


def _frame(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_FRAME:
        raise ValueError(f"{what} must be a frame number 0..{MAX_FRAME}, not {value!r}")
    return value


def check_header(row: Any) -> dict[str, Any]:
    """The header line as the reader needs it (upgraded to this VERSION), or ValueError saying
    what is wrong with it."""
    if not isinstance(row, dict) or row.get("kind") != KIND:
        raise ValueError("not a noclip performance file")
    try:
        row = upgrade(row, MIGRATIONS, VERSION)  # an older file as this version says the same
    except ValueError as exc:
        raise ValueError(f"header: {exc}") from None
    unknown = sorted(set(row) - HEADER_KEYS)
    if unknown:
        raise ValueError(f"header: unknown key {unknown[0]!r} (a header has {', '.join(sorted(HEADER_KEYS))})")
    fps = row.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= MAX_FPS:
        raise ValueError(f"header: fps must be a number above 0 and up to {MAX_FPS:g}, not {fps!r}")
    size = row.get("size", [16, 16])
    if not (isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= 8192 for v in size)):
        raise ValueError(f"header: size must be [width, height] in pixels, 16..8192, not {size!r}")
    for key in ("patch", "start"):
        if key not in row:
            raise ValueError(f"header: no {key!r} (the patch and every parameter's start value)")
        if not isinstance(row[key], dict):
            raise ValueError(f"header: {key} must be a table, not {type(row[key]).__name__}")
    patch = header_patch(row["patch"])
    _values(row["start"], patch, "start")
    _values(patch.params, patch, "patch.params")
    return row


def header_patch(d: dict[str, Any]) -> Patch:
    """The header's patch as a Patch, its fields checked by type (a scene or model that is not on
    this machine is the show's to report, as it is for any patch)."""
    names = {f.name for f in fields(Patch)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"header: patch has an unknown key {unknown[0]!r}")
    for key in ("name", "description", "scene", "model", "chain"):
        if key in d and not isinstance(d[key], str):
            raise ValueError(f"header: patch.{key} must be a string, not {d[key]!r}")
    size = d.get("size", list(Patch.size))
    if not is_size(size):
        raise ValueError(f"header: patch.size must be [width, height], 16..4096, not {size!r}")
    dream = d.get("dream_size")
    if not is_size(dream, tuple(size)):
        raise ValueError(f"header: patch.dream_size must be [width, height] within size, not {dream!r}")
    if not isinstance(d.get("fields", False), bool):
        raise ValueError(f"header: patch.fields must be true or false, not {d['fields']!r}")
    if not isinstance(d.get("params", {}), dict):
        raise ValueError("header: patch.params must be a table")
    for key in ("midi", "modulators"):
        if not (isinstance(d.get(key, []), list) and all(isinstance(t, dict) for t in d.get(key, []))):
            raise ValueError(f"header: patch.{key} must be a list of tables")
    loras = d.get("loras", [])
    most = len(LORA_PARAMS)
    if not (isinstance(loras, list) and len(loras) <= most and all(isinstance(s, str) for s in loras)):
        raise ValueError(f"header: patch.loras must be a list of at most {most} strings")
    if d.get("path") is not None and not isinstance(d["path"], str):
        raise ValueError("header: patch.path must be a string or null")
    scene = d.get("scene", Patch.scene)
    if scene not in SCENES:
        if live_source(scene):
            raise ValueError(f"header: patch.scene: {scene!r} is a live source: what it showed cannot be "
                             "played again, so this performance cannot be re-rendered")
        if Path(scene).suffix.lower() not in SOURCE_SUFFIXES or not Path(scene).is_file():
            raise ValueError(f"header: patch.scene: {scene!r} is neither a scene ({', '.join(SCENES)}) "
                             "nor a video or image file on this machine")
        probe(Path(scene))  # SourceError (a ValueError): `file: what is wrong`
    return Patch(**{**d, "size": tuple(size), "dream_size": None if dream == size else tuple(dream),
                    "path": Path(d["path"]) if d.get("path") else None,
                    "midi": tuple(d.get("midi", ())), "modulators": tuple(d.get("modulators", ())),
                    "loras": tuple(loras)})


def _values(values: dict[str, Any], patch: Patch, where: str) -> None:
    """Every name a parameter of the registry (with the patch's chain declared), every value one
    that parameter takes."""
    from ..render.chain import load_chain_spec

    try:
        load_chain_spec(patch.chain)  # its parameters join the registry, as the show's compositor would
    except (ConfigError, FileNotFoundError) as exc:
        raise ValueError(f"header: patch.chain: {exc}") from None
    for name, value in values.items():
        spec = REGISTRY.get(name)
        if spec is None:
            raise ValueError(f"header: {where}.{name}: unknown parameter")
        if isinstance(value, (dict, list)):
            raise ValueError(f"header: {where}.{name}: takes a single value, not {type(value).__name__}")
        try:
            spec.coerce(value)
        except (ParamError, ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"header: {where}.{name}: {exc}") from None


def load_performance(path: str | Path, *, salvage: bool = False) -> Performance:
    """Read a performance file. A bad line is a PerformanceError naming it; with `salvage`, the
    events before it are kept and the performance ends there (a bad header is never salvaged)."""
    path = Path(path)
    events: dict[int, list[ControlEvent]] = defaultdict(list)
    header: dict[str, Any] | None = None
    frames, complete, last = 0, False, 0
    with open(path, "rb") as f:
        for n, raw in enumerate(iter(lambda: f.readline(MAX_LINE + 1), b""), 1):
            try:
                if len(raw) > MAX_LINE:
                    raise ValueError(f"line longer than {MAX_LINE // 2**20} MiB")
                row = strict_json(raw.decode("utf-8"))
                if header is None:
                    header = check_header(row)
                    continue
                if not isinstance(row, dict):
                    raise ValueError("a line is a table")
                if "end" in row:
                    frames, complete = _frame(row["end"], "end"), True
                    break
                frame = _frame(row["f"], "f")
                if frame < last:
                    raise ValueError(f"frame {frame} comes after frame {last}")
                last = frame
                if not isinstance(row["t"], str) or not isinstance(row["src"], str):
                    raise ValueError("an event's source (src) and target (t) are strings")
                if row["t"].removeprefix(CMD_TARGET) in NOT_REPLAYED:
                    continue
                value = tuple(row["v"]) if isinstance(row["v"], list) else row["v"]
                events[frame].append(ControlEvent(row["src"], row["t"], value))
            except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
                if header is None or not salvage:
                    text = (f"no {exc}" if isinstance(exc, KeyError) else
                            f"not UTF-8 text (byte {exc.start} of the line)"
                            if isinstance(exc, UnicodeDecodeError) else str(exc))
                    raise PerformanceError(path, n, text) from None
                break
    if header is None:
        raise PerformanceError(path, 1, "empty file")
    return Performance(path, header, dict(events), frames or last + 1, complete)

