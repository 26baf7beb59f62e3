"""Writing the performer's files so that nothing they made is ever lost.

Three rules, shared by every writer that touches user data (takes, performance files, the
builtin model's training, MIDI learn):

- a file is replaced only whole: written beside its target, fsynced, renamed over it, and the
  folder fsynced, so a crash or a full disk leaves either the old file or the new one, never half
  of each (`replace_atomically`); a symlink is followed (its target is rewritten, the link stays)
  and the target keeps its permission bits;
- a recording never overwrites an earlier one: a name that is taken gets the next free one,
  `take.mp4` → `take-2.mp4` (`free_name`);
- a recording stops while the disk still has room to close it (`free_bytes` against a reserve,
  in record/video.py);
- a file an older noclip wrote keeps its meaning: each format (patch.py, record/performance.py)
  has a table of MIGRATIONS, one step per version, that `upgrade` applies in order when the file is
  read, before it is validated; writers write the newest version. Old files are kept in tests/data.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# one format step: a file's data at version v → the same meaning at version v + 1
Migration = Callable[[dict[str, Any]], dict[str, Any]]


def taken(path: Path) -> bool:
    """A regular file (or a link to one, or a dangling link) is there. Devices and pipes
    (/dev/null, a FIFO) are not taken: writing to them is what the performer asked for."""
    if path.is_symlink() and not path.exists():
        return True
    return path.is_file()


def free_name(path: Path, also: Callable[[Path], Iterable[Path]] = lambda p: (),
              skip: Iterable[Path] = ()) -> Path:
    """`path` if it is free, else the first of `stem-2.ext`, `stem-3.ext`, … that is, together
    with the companion files `also(candidate)` names (a take's performance file)."""
    skip = set(skip)
    n = 1
    while True:
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        if candidate not in skip and not any(taken(p) for p in (candidate, *also(candidate))):
            return candidate
        n += 1


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use on the filesystem holding `path` (its folder if
    it does not exist yet); None where that cannot be asked (a device, a vanished folder)."""
    probe = path if path.is_dir() else path.parent
    try:
        return shutil.disk_usage(probe or Path()).free
    except OSError:
        return None


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where folders cannot be opened, as on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def replace_atomically(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside the file `path` stands for; once the block has written it
    (and not raised), fsync it, give it the old file's permission bits and rename it over the
    target. A symlink's target is what is replaced. On any error the temporary file goes and the
    old file is untouched."""
    target = Path(os.path.realpath(path))
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        mode = stat.S_IMODE(os.stat(target).st_mode) if target.exists() else None
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
        fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """`replace_atomically` for text (UTF-8) or bytes already in memory."""
    with replace_atomically(path) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def upgrade(data: dict[str, Any], migrations: Mapping[int, Migration], newest: int) -> dict[str, Any]:
    """`data`, a parsed file with its `version`, brought to version `newest` by `migrations[v]`
    (v → v + 1) in order, before it is validated; `data` itself is left as it was. ValueError,
    saying so, for a version that is not a whole number from 1 to `newest` (a newer noclip wrote
    it, or it is damaged)."""
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= newest:
        newer = " (a newer noclip wrote it)" if isinstance(version, int) and version > newest else ""
        raise ValueError(f"version {version!r} is not one this noclip reads (1 to {newest}){newer}")
    while version < newest:
        data = migrations[version](data)
        version += 1
        if data.get("version") != version:  # a step that forgot to say what it made
            raise RuntimeError(f"the migration from version {version - 1} did not make version {version}")
    return data


def _finite(text: str) -> float:
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"{text} is not a finite number")
    return x


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number a noclip file can hold (only finite numbers)")


def strict_json(text: str | bytes) -> Any:
    """One JSON document from a file or a stream that may come from anywhere (a performance file,
    a leader's follow stream): NaN, Infinity and numbers too large for a float are ValueErrors
    (JSON has none of them, Python's reader takes all three); bytes that are not UTF-8 too."""
    return json.loads(text, parse_float=_finite, parse_constant=_no_constant)


__all__ = ["Migration", "free_bytes", "free_name", "fsync_folder", "replace_atomically", "strict_json", "taken",
           "upgrade", "write_atomically"]
