"""TOML with errors a performer can act on: file, line and key (tomllib itself gives no positions).

A file that is not UTF-8 text, or that sets a number to `inf` or `nan` (TOML allows both; no
parameter, range, size or rate of ours means anything by them), is a ConfigError like any other.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

_ARRAY = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]")
_TABLE = re.compile(r"^\[\s*([^\]]+?)\s*\]")


class ConfigError(ValueError):
    """A problem in a patch or chain file; str() is `file:line: key: message`."""

    def __init__(self, path: Path | str, line: int | None, key: str, message: str) -> None:
        self.path, self.line, self.key, self.message = Path(path), line, key, message
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")


def _header(name: str) -> tuple[str, ...]:
    return tuple(p.strip().strip('"') for p in name.split("."))


def line_of(text: str, path: tuple[str | int, ...]) -> int | None:
    """1-based line where the key at `path` is set (("params", "seed"), ("pass", 2, "shader"))."""
    want_table = tuple(path[:-1])
    key = str(path[-1])
    current: tuple[str | int, ...] = ()
    arrays: Counter[tuple[str, ...]] = Counter()
    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if m := _ARRAY.match(s):
            name = _header(m.group(1))
            current = (*name, arrays[name])
            arrays[name] += 1
            if current == tuple(path):
                return i
            continue
        if m := _TABLE.match(s):
            current = _header(m.group(1))
            if current == tuple(path):
                return i
            continue
        k = s.split("=", 1)[0].strip().strip('"') if "=" in s else None
        if k == key and current == want_table:
            return i
        if k is not None and current + _header(k) == tuple(path):
            return i
    return None


def _non_finite(value: Any, path: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """The key path of the first inf or nan in parsed TOML, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, (*path, key))
        if found is not None:
            return found
    return None


class TomlFile:
    """A parsed file that remembers its text, so any later complaint can point at a line."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(self.path, None, "", f"cannot read: {exc.strerror}") from None
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ConfigError(self.path, line, "", f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                              "save the file as UTF-8") from None
        try:
            self.data: dict[str, Any] = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            raise ConfigError(self.path, int(m.group(1)) if m else None, "", str(exc)) from None
        bad = _non_finite(self.data, ())
        if bad is not None:
            while isinstance(bad[-1], int):  # an array's item: the line is its key's
                bad = bad[:-1]
            raise self.error(bad, "not a finite number (inf and nan mean nothing here)")

    def error(self, path: tuple[str | int, ...], message: str) -> ConfigError:
        key = ".".join(str(p) for p in path if not isinstance(p, int))
        return ConfigError(self.path, line_of(self.text, path), key, message)
