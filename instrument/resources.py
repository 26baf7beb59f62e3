"""Where shaders, patches and models live: inside the wheel when installed, beside the package in a
checkout (so an editable install plays the files the performer is editing)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (shaders, patches, models), installed copy first."""
    for candidate in (_PKG / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"noclip data folder '{name}' not found beside {_PKG}")


def find(kind: str, name: str | Path, suffix: str) -> Path:
    """Resolve a user-given name: an existing path wins, else `<data>/<kind>/<name><suffix>`."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = data_dir(kind) / (path.name if path.suffix == suffix else f"{path}{suffix}")
    if candidate.is_file():
        return candidate
    what = {"patches": "patch", "shaders": "shader chain", "models": "model"}.get(kind, kind)
    looked = f"{path} and {candidate}" if path != candidate else str(path)
    raise FileNotFoundError(f"no {what} '{name}' (looked for {looked})")
