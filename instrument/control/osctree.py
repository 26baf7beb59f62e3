"""The show's OSCQuery address space (Vidvox's OSCQueryProposal), derived from the registry.

Nothing here is a second list of parameters: every node comes from a ParamSpec (its OSC address in
natural units, and `/noclip/norm/<name>` in 0..1) or a declared command (`/noclip/cmd/...`), plus
a few read-only nodes of where the music is (`/noclip/state/...`). The tree is rebuilt only when
the registry's version changes (a patch whose chain declares parameters), and `diff` names what
changed so the server can tell its clients (PATH_ADDED, PATH_CHANGED, PATH_REMOVED).

Values are read from a `Snapshot`, which the frame loop publishes once a frame (`snapshot`): an
immutable record of the frame's values, never the show itself, so the server's thread reads it
without a lock and without reaching into the loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import SYNC
from ..commands import CMD_ADDRESS
from ..params import FrameParams, ParamSpec, Registry
from .oscroute import NORM, PREFIX, REPLIES
from .oscwire import build

# OSCQueryProposal's unit names where it has one for ours (units.md), else ours as it is
UNITS = {"s": "time.second", "bpm": "time.bpm", "m/s": "speed.m/s", "px": "distance.pixels",
         "ms": "time.ms", "hz": "time.hz", "Hz": "time.hz"}
# attributes a node may be asked for (`/path?NAME`); anything else is a 400
ATTRIBUTES = ("FULL_PATH", "CONTENTS", "TYPE", "VALUE", "RANGE", "ACCESS", "UNIT", "DESCRIPTION",
              "CLIPMODE", "TAGS")
EXTENSIONS = {**dict.fromkeys(ATTRIBUTES[2:], True), "LISTEN": True, "PATH_CHANGED": True,
              "PATH_ADDED": True, "PATH_REMOVED": True, "PATH_RENAMED": False, "EXTENDED_TYPE": False,
              "OVERLOADS": False, "CRITICAL": False, "HTML": False}
# commands that are not a performer's: the UDP port's replies, and the reports of devices on this
# machine (audio features, outside clocks), which take tables no OSC message can carry
HIDDEN = (*REPLIES, "audio", SYNC)
# the argument a command takes, where it takes one ("N": none, a momentary button)
COMMAND_ARGS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "tracking/jump": ("f", {"MIN": 0.0, "MAX": 1.0}),
    "patch/load": ("s", None),
}
STATE = PREFIX + "state/"
# read-only nodes: where the music is, whatever clock it follows (name -> type, unit, description)
STATE_NODES = {
    "tempo": ("f", "time.bpm", "the tempo the beat follows now (an outside clock's while one runs)"),
    "beat": ("i", "", "beats since the show's start (or the outside clock's): changes on each beat"),
    "bar_beat": ("i", "", "the beat within the bar, 0 .. numerator-1"),
    "clock": ("s", "", "the clock the beat follows: link, ableton, midi, tap or internal"),
}


@dataclass(frozen=True)
class Snapshot:
    """What the loop publishes once a frame for the server's thread to read (never mutated)."""

    version: tuple[int, int]           # (the registry's version, commands declared): the tree's key
    specs: tuple[ParamSpec, ...]
    commands: tuple[tuple[str, str], ...]
    values: Mapping[str, Any]          # the frame's values (FrameParams), or the defaults
    state: tuple[Any, ...]             # STATE_NODES' values, in order
    frame: int = -1


def snapshot(registry: Registry, commands: Mapping[str, str], fp: FrameParams | None,
             previous: Snapshot | None = None) -> Snapshot:
    """The loop's half: copy the specs only when the registry changed; the rest is references."""
    version = (registry.version, len(commands))
    if previous is not None and previous.version == version:
        specs, cmds = previous.specs, previous.commands
    else:
        specs = tuple(registry)
        cmds = tuple(sorted((k, v) for k, v in dict(commands).items() if k not in HIDDEN))
    if fp is None:
        values: Mapping[str, Any] = {s.name: s.default for s in specs}
        return Snapshot(version, specs, cmds, values, (float(values.get("tempo", 120.0)), 0, 0, "internal"))
    beat = fp.beat
    if beat is None:
        state = (float(fp.get("tempo", 120.0)), 0, 0, "internal")
    else:
        n = math.floor(beat.beat)
        state = (float(beat.tempo), n, n % max(1, beat.numerator), str(beat.source))
    return Snapshot(version, specs, cmds, fp, state, fp.frame)


def _json(spec: ParamSpec, value: Any) -> Any:
    return float(value) if spec.type == "float" else value


class Tree:
    """The address space of one registry version: static attributes per path, values from snapshots."""

    def __init__(self, snap: Snapshot) -> None:
        self.version = snap.version
        self.static: dict[str, dict[str, Any]] = {}
        self.children: dict[str, list[str]] = {}
        self.readers: dict[str, tuple[str, Any]] = {}  # path -> ("param"|"norm"|"state", spec or index)
        self._container("/", "noclip, a live visual instrument")
        self._container(PREFIX[:-1], "every playable parameter, in natural units")
        for spec in snap.specs:
            self._param(spec)
        self._container(NORM[:-1], "the same parameters as 0..1 (faders, DAW automation, MIDI)")
        for spec in snap.specs:
            if spec.type != "str":
                self._norm(spec)
        self._container(CMD_ADDRESS[:-1], "momentary actions")
        for name, description in snap.commands:
            self._command(name, description)
        self._container(STATE[:-1], "where the show is (read only)")
        for i, (key, (tag, unit, description)) in enumerate(STATE_NODES.items()):
            node = {"TYPE": tag, "ACCESS": 1, "DESCRIPTION": description, "TAGS": ["state"]}
            if unit:
                node["UNIT"] = [unit]
            self._method(STATE + key, node, ("state", i))

    # -- building ------------------------------------------------------------------------------

    def _link(self, path: str) -> None:
        """Hang a node under its parent (made as a container when needed); a node that would hang
        under a method (a parameter named "cmd") is left out."""
        parent, _, name = path.rpartition("/")
        parent = parent or "/"
        if parent not in self.static:
            self._container(parent, "")
        if parent not in self.children:
            self.static.pop(path, None)
            self.readers.pop(path, None)
            self.children.pop(path, None)
            return
        if name not in self.children[parent]:
            self.children[parent].append(name)

    def _container(self, path: str, description: str) -> None:
        if path in self.static:
            return
        parent = path.rpartition("/")[0]
        if parent in self.static and parent not in self.children:  # under a method: not made
            return
        self.static[path] = {"FULL_PATH": path, "ACCESS": 0, "DESCRIPTION": description}
        self.children[path] = []
        if path != "/":
            self._link(path)

    def _method(self, path: str, attributes: dict[str, Any], reader: tuple[str, Any] | None) -> None:
        parent = path.rpartition("/")[0]
        # a parameter named like a container ("norm", "cmd", "state"): the first declared wins
        if path in self.static or (parent in self.static and parent not in self.children):
            return
        self.static[path] = {"FULL_PATH": path, **attributes}
        if reader is not None:
            self.readers[path] = reader
        self._link(path)

    def _param(self, spec: ParamSpec) -> None:
        node: dict[str, Any] = {"ACCESS": 3, "DESCRIPTION": spec.description, "TAGS": [spec.group]}
        if spec.type in ("float", "int"):
            node.update(TYPE="f" if spec.type == "float" else "i",
                        RANGE=[{"MIN": _json(spec, spec.min), "MAX": _json(spec, spec.max)}],
                        CLIPMODE=["both"])
        elif spec.type == "bool":
            node["TYPE"] = "T"
        elif spec.type == "enum":
            node.update(TYPE="s", RANGE=[{"VALS": list(spec.choices)}])
        else:
            node["TYPE"] = "s"
        if spec.unit:
            node["UNIT"] = [UNITS.get(spec.unit, spec.unit)]
        self._method(PREFIX + spec.name, node, ("param", spec))

    def _norm(self, spec: ParamSpec) -> None:
        node = {"TYPE": "f", "ACCESS": 3, "RANGE": [{"MIN": 0.0, "MAX": 1.0}], "CLIPMODE": ["both"],
                "DESCRIPTION": f"{spec.name} as 0..1", "TAGS": [spec.group, "norm"]}
        self._method(NORM + spec.name, node, ("norm", spec))

    def _command(self, name: str, description: str) -> None:
        tag, rng = COMMAND_ARGS.get(name, ("N", None))
        node: dict[str, Any] = {"TYPE": tag, "ACCESS": 2, "DESCRIPTION": description, "TAGS": ["command"]}
        if rng is not None:
            node["RANGE"] = [rng]
        self._method(CMD_ADDRESS + name, node, None)

    # -- reading -------------------------------------------------------------------------------

    def value(self, path: str, snap: Snapshot) -> list[Any] | None:
        """The VALUE array of a readable node, None for containers and commands."""
        reader = self.readers.get(path)
        if reader is None:
            return None
        kind, what = reader
        if kind == "state":
            return [snap.state[what]]
        value = snap.values.get(what.name, what.default)
        if kind == "norm":
            try:
                return [float(what.to_norm(value))]
            except (ValueError, TypeError):  # a value from before its spec changed: not readable now
                return [0.0]
        return [_json(what, value)]

    def node(self, path: str, snap: Snapshot) -> dict[str, Any]:
        """The JSON object of a node and everything under it, with the snapshot's values."""
        out = dict(self.static[path])
        value = self.value(path, snap)
        if value is not None:
            out["VALUE"] = value
        if path in self.children:
            base = "" if path == "/" else path
            out["CONTENTS"] = {name: self.node(f"{base}/{name}", snap) for name in self.children[path]}
        return out

    def attribute(self, path: str, name: str, snap: Snapshot) -> tuple[int, dict[str, Any] | None]:
        """`/path?NAME`: (HTTP status, JSON body). 204 where the node has no such attribute (VALUE of
        a command or container), 400 for a name OSCQuery does not define or this server lacks."""
        if name not in ATTRIBUTES:
            return 400, None
        if name == "CONTENTS":
            node = self.node(path, snap)
            return (200, {"CONTENTS": node["CONTENTS"]}) if "CONTENTS" in node else (204, None)
        if name == "VALUE":
            value = self.value(path, snap)
            return (200, {"VALUE": value}) if value is not None else (204, None)
        attrs = self.static[path]
        return (200, {name: attrs[name]}) if name in attrs else (204, None)

    def message(self, path: str, snap: Snapshot) -> bytes | None:
        """The node's current value as the OSC message a LISTENer is streamed."""
        value = self.value(path, snap)
        if value is None:
            return None
        try:
            return build(path, *value)
        except (OverflowError, TypeError, ValueError):
            return None

    def paths(self) -> set[str]:
        return set(self.static)


def diff(old: Tree, new: Tree) -> tuple[list[str], list[str], list[str]]:
    """(added, changed, removed) paths between two trees, each sorted."""
    before, after = old.paths(), new.paths()
    changed = [p for p in sorted(before & after) if old.static[p] != new.static[p]]
    return sorted(after - before), changed, sorted(before - after)


def changed_paths(old: Snapshot, new: Snapshot, tree: Tree) -> list[str]:
    """The readable paths whose value differs between two snapshots (a parameter moves both its
    natural and its 0..1 address)."""
    out: list[str] = []
    if old.values is not new.values:
        ov, nv = old.values, new.values
        for spec in new.specs:
            name = spec.name
            if ov.get(name) != nv.get(name):
                out.append(PREFIX + name)
                if spec.type != "str":
                    out.append(NORM + name)
    if old.state != new.state:
        out.extend(STATE + key for key, a, b in zip(STATE_NODES, old.state, new.state, strict=True) if a != b)
    return [p for p in out if p in tree.readers]
