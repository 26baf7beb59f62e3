"""Patches: a performer's saved instrument — parameter values, the scene, the model, the chain.

Validation is complete before anything is applied, so a bad patch loaded mid-show is reported
(file, line, key) and the good one keeps playing.

A patch file carries its format's `version`; one an older noclip wrote is upgraded as it is read
(MIGRATIONS, one step per version, applied by files.upgrade), so it plays as it always did.
Version 2 (this noclip's) always names `dream_size`, the size the generator works at: equal to
`size` when that is the scene's own. Version 1 files may leave it out, meaning the scene's size.
`fields = true` (optional, false when absent) makes `size` one field of an interlaced picture with
twice its lines: the scene draws the lines of the field the tape records that frame (640x240: the
480-line frame's 240, every other one), which is all the tape stages read.
"""

from __future__ import annotations

import difflib
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeGuard

import tomli_w

from . import generate, scene
from .control import modulators
from .control.midimap import load_bindings
from .files import Migration, upgrade
from .params import REGISTRY, ParamError, Registry
from .render.chain import load_chain_spec
from .resources import data_dir, find
from .tomlfile import ConfigError, TomlFile

VERSION = 2
MAX_BYTES = 1 << 20  # a patch file's size at most
KEYS = {"version", "name", "description", "scene", "model", "loras", "chain", "size", "dream_size", "fields",
        "params", "midi", "modulator"}


@dataclass(frozen=True)
class Patch:
    name: str = "default"
    description: str = ""
    scene: str = "testcard"
    model: str = "builtin"
    # LoRAs played live on the model, `PATH_OR_HUB_ID[:SCALE]`, the n-th under parameter `lora{n}` (its
    # scale, when given, is that parameter's value in `params`)
    loras: tuple[str, ...] = ()
    chain: str = "vhs"
    size: tuple[int, int] = (512, 384)  # the scene's working resolution
    # the generator's, when smaller: it dreams on the scene shrunk to this and the compositor carries
    # the scene's finer detail over the dream (render/shrink.py); None: the scene's own size
    dream_size: tuple[int, int] | None = None
    # `size` is one field of an interlaced picture twice as tall: the scene draws, each frame, the
    # lines of the field the tape records then (a 4:3 picture at 640x240 is half of 640x480)
    fields: bool = False
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


@dataclass(frozen=True)
class ChainPreset:
    """A tape chain and the values of the parameters it declares, which a show keeps whatever patch
    it loads (a follower's own tape, `noclip play --follow --chain-from P`: the leader plays the
    show, each tile keeps its own look)."""

    chain: str
    values: dict[str, Any]  # every parameter the chain declares: the patch's value, else its default

    def apply(self, patch: Patch) -> Patch:
        """`patch` with this chain and these values in place of its own."""
        return replace(patch, chain=self.chain, params={**patch.params, **self.values})


def chain_preset(patch: Patch, registry: Registry = REGISTRY) -> ChainPreset:
    """The chain `patch` plays and its values for that chain's parameters."""
    spec = load_chain_spec(patch.chain, registry)
    return ChainPreset(patch.chain, {p.name: patch.params.get(p.name, p.default) for p in spec.params})


def with_loras(patch: Patch, specs: Sequence[object]) -> Patch:
    """`patch` playing the LoRAs `specs` (`PATH_OR_HUB_ID[:SCALE]`): a scale given becomes its
    `lora{n}` value unless the patch's params set one. A ValueError says what is wrong with a spec
    (whether the file plays is the generator's to find out: the show plays on without it)."""
    if len(specs) > len(generate.LORA_PARAMS):
        raise ValueError(f"{len(specs)} LoRAs: {len(generate.LORA_PARAMS)} at most (lora1 ... "
                         f"lora{len(generate.LORA_PARAMS)})")
    values = {}
    for name, spec in zip(generate.LORA_PARAMS, specs, strict=False):
        scale = generate.parse_lora(spec)[1]
        if scale is not None:
            values[name] = scale
    return replace(patch, loras=tuple(str(s) for s in specs), params={**values, **patch.params})


def _v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    """dream_size became part of the format: a version-1 file without it dreamed at the scene's
    size, its `size` (or the default size when it named none)."""
    if "dream_size" in d:
        return {**d, "version": 2}
    size = d.get("size", list(Patch.size))
    return {**d, "version": 2, "dream_size": list(size) if isinstance(size, list) else size}


# version v → v + 1, applied in order up to VERSION as a file is read (files.upgrade)
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2}


def load_patch(name: str | Path, registry: Registry = REGISTRY) -> Patch:
    """Load and validate; raises ConfigError naming file, line and key."""
    if registry is REGISTRY and not registry.assembled:  # a new entry point that forgot the catalogue
        raise RuntimeError("the parameter registry is empty: call instrument.catalogue.assemble() first")
    path = find("patches", name, ".toml")
    _check_size(path)
    tf = TomlFile(path)
    if "version" not in tf.data:
        raise tf.error(("version",), f"missing: patches carry version = {VERSION}")
    try:
        d = upgrade(tf.data, MIGRATIONS, VERSION)  # an older file as this version says the same
    except ValueError as exc:
        raise tf.error(("version",), str(exc)) from None
    for key in d:
        if key not in KEYS:
            raise tf.error((key,), f"unknown key{_hint(key, KEYS)}")
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
    if "dream_size" not in d:
        raise tf.error(("dream_size",), f"missing: version {VERSION} patches carry dream_size = [width, "
                                        "height], equal to size when the generator works at the scene's size")
    dream = d["dream_size"]
    if not is_size(dream, tuple(size)):
        raise tf.error(("dream_size",), f"dream_size = [width, height] in pixels, 16..4096 and at most "
                                        f"size ({size[0]}x{size[1]})")
    if not isinstance(d.get("fields", False), bool):
        raise tf.error(("fields",), "fields = true (size is one field of a picture twice as tall) or false")
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
    patch = Patch(name=d.get("name", tf.path.stem), description=d.get("description", ""),
                  scene=d.get("scene", Patch.scene), model=d.get("model", Patch.model), chain=chain,
                  size=(size[0], size[1]), dream_size=_dream_size(dream, size), fields=d.get("fields", False),
                  params=values, path=tf.path, midi=tuple(d.get("midi", ())),
                  modulators=tuple(mods))
    loras = d.get("loras", [])
    if not isinstance(loras, list):
        raise tf.error(("loras",), 'loras = ["PATH_OR_HUB_ID[:SCALE]", ...]')
    try:
        return with_loras(patch, loras)
    except ValueError as exc:
        raise tf.error(("loras",), str(exc)) from None


def _dream_size(dream: list[int], size: list[int]) -> tuple[int, int] | None:
    """A file's dream_size as Patch holds it: None when it is the scene's size (so the dream
    follows the scene's size wherever a patch is resized), else (width, height)."""
    return None if dream == size else (dream[0], dream[1])


def is_size(value: Any, most: Sequence[int] = (4096, 4096)) -> TypeGuard[list[int]]:
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
    data: dict[str, Any] = {
        "version": VERSION, "name": patch.name, "description": patch.description, "scene": patch.scene,
        "model": patch.model, "chain": patch.chain, "size": list(patch.size), "dream_size": list(patch.dream),
        "params": dict(sorted(patch.params.items()))}
    if patch.fields:
        data["fields"] = True
    if patch.loras:
        data["loras"] = list(patch.loras)
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


__all__ = ["MIGRATIONS", "VERSION", "ConfigError", "Patch", "is_size", "load_patch", "patch_names",
           "save_patch"]
