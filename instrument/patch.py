"""Patches: a performer's saved instrument — parameter values, the scene, the model, the chain.

Validation is complete before anything is applied, so a bad patch loaded mid-show is reported
(file, line, key) and the good one keeps playing.
"""

from __future__ import annotations

import difflib
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from . import generate, scene
from .control import modulators
from .control.midimap import load_bindings
from .params import REGISTRY, ParamError, Registry
from .render.chain import load_chain_spec
from .resources import data_dir, find
from .tomlfile import ConfigError, TomlFile

VERSION = 1
MAX_BYTES = 1 << 20  # a patch file's size at most
KEYS = {"version", "name", "description", "scene", "model", "chain", "size", "dream_size", "params",
        "midi", "modulator"}


@dataclass(frozen=True)
class Patch:
    name: str = "default"
    description: str = ""
    scene: str = "testcard"
    model: str = "builtin"
    chain: str = "vhs"
    size: tuple[int, int] = (512, 384)  # the scene's working resolution
    # the generator's, when smaller: it dreams on the scene shrunk to this and the compositor carries
    # the scene's finer detail over the dream (render/shrink.py); None: the scene's own size
    dream_size: tuple[int, int] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    midi: tuple[dict[str, Any], ...] = ()  # the [[midi]] binding tables, validated (control/midimap.py)
    modulators: tuple[dict[str, Any], ...] = ()  # the validated [[modulator]] tables

    @property
    def dream(self) -> tuple[int, int]:
        """The size the generator works at."""
        return self.dream_size or self.size

    def with_params(self, **values: Any) -> Patch:
        return replace(self, params={**self.params, **values})


def load_patch(name: str | Path, registry: Registry = REGISTRY) -> Patch:
    """Load and validate; raises ConfigError naming file, line and key."""
    if registry is REGISTRY and not registry.assembled:  # a new entry point that forgot the catalogue
        raise RuntimeError("the parameter registry is empty: call instrument.catalogue.assemble() first")
    path = find("patches", name, ".toml")
    _check_size(path)
    tf = TomlFile(path)
    d = tf.data
    for key in d:
        if key not in KEYS:
            raise tf.error((key,), f"unknown key{_hint(key, KEYS)}")
    if "version" not in d:
        raise tf.error(("version",), f"missing: patches carry version = {VERSION}")
    if d["version"] != VERSION:
        raise tf.error(("version",), f"version {d['version']!r} is not one this noclip reads ({VERSION})")
    if "scene" in d and d["scene"] not in scene.SCENES:
        raise tf.error(("scene",), f"{d['scene']!r} is not one of {', '.join(scene.SCENES)}")
    if "model" in d:
        try:
            generate.check_model(d["model"])
        except ValueError as exc:
            raise tf.error(("model",), str(exc)) from None
    chain = d.get("chain", Patch.chain)
    if not isinstance(chain, str):
        raise tf.error(("chain",), "a chain name or path")
    try:
        load_chain_spec(chain, registry)  # declares the chain's parameters before we check them
    except FileNotFoundError as exc:
        raise tf.error(("chain",), str(exc)) from None
    size = d.get("size", list(Patch.size))
    if not is_size(size):
        raise tf.error(("size",), "size = [width, height] in pixels, 16..4096")
    dream = d.get("dream_size")
    if dream is not None and not is_size(dream, tuple(size)):
        raise tf.error(("dream_size",), f"dream_size = [width, height] in pixels, 16..4096 and at most "
                                        f"size ({size[0]}x{size[1]})")
    params = d.get("params", {})
    if not isinstance(params, dict):
        raise tf.error(("params",), "params is a table of name = value")
    values = {}
    for key, raw in params.items():
        spec = registry.get(key)
        if spec is None:
            raise tf.error(("params", key), f"unknown parameter{_hint(key, [s.name for s in registry])}")
        try:
            values[key] = spec.coerce(raw)
        except ParamError as exc:
            raise tf.error(("params", key), str(exc)) from None
    load_bindings(tf, registry)  # raises ConfigError naming the binding's line and key
    mods = d.get("modulator", [])
    modulators.parse(mods, tf.error, registry)
    return Patch(name=d.get("name", tf.path.stem), description=d.get("description", ""),
                 scene=d.get("scene", Patch.scene), model=d.get("model", Patch.model), chain=chain,
                 size=(size[0], size[1]), dream_size=None if dream is None else (dream[0], dream[1]),
                 params=values, path=tf.path, midi=tuple(d.get("midi", ())),
                 modulators=tuple(mods))


def is_size(value: Any, most: tuple[int, int] = (4096, 4096)) -> bool:
    """[width, height] in whole pixels, each from 16 to `most` (patches and performance headers)."""
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 16 <= v <= m
                    for v, m in zip(value, most, strict=True)))


def _check_size(path: Path) -> None:
    """A patch is a regular file of at most MAX_BYTES: never a device or a pipe (/dev/zero would be
    read forever), never megabytes of TOML parsed on the frame loop's thread."""
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(path, None, "", f"cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(path, None, "", "not a regular file")
    if st.st_size > MAX_BYTES:
        raise ConfigError(path, None, "", f"{st.st_size:,} bytes: a patch is at most {MAX_BYTES:,}")


def save_patch(patch: Patch, path: Path) -> None:
    data = {"version": VERSION, "name": patch.name, "description": patch.description,
            "scene": patch.scene, "model": patch.model, "chain": patch.chain,
            "size": list(patch.size), "params": dict(sorted(patch.params.items()))}
    if patch.dream_size:
        data["dream_size"] = list(patch.dream_size)
    if patch.midi:
        data["midi"] = [dict(t) for t in patch.midi]
    if patch.modulators:
        data["modulator"] = list(patch.modulators)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")


def patch_names() -> list[str]:
    return sorted(p.stem for p in data_dir("patches").glob("*.toml"))


def _hint(key: str, names: Any) -> str:
    close = difflib.get_close_matches(key, list(names), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


__all__ = ["ConfigError", "Patch", "is_size", "load_patch", "patch_names", "save_patch"]
