"""Base imagery the generator dreams on. A scene renders frame n into textures at the working size.

Every scene gives three textures per frame: colour (what `render` returns), `depth` (R32F, metres
along the view axis; 0 where unknown) and `motion` (RG32F, screen-space motion in pixels of the
working size, GL orientation +x right +y up, from frame n-1 to frame n: the surface seen at pixel
p in frame n was at p - motion in frame n-1, which is the backward map a generator needs to warp
its previous output onto the new frame). A scene whose motion and depth are blanks says so with
`tracked = False` (nothing can be carried along them). A scene may offer commands (`commands`: name → handler),
which the show adds to its own.

A `--source` (a video or image file, a capture device) is a picture, not a scene: `source` names
what a spec is, and `Moving` (flow.py) makes its picture a scene, its motion estimated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import moderngl

from ..params import FrameParams
from .backrooms import Backrooms
from .capture import Capture, parse_device, probe_device
from .flow import Moving, PictureSource
from .ndi_source import NdiSource, ndi_name
from .source import SOURCE_SUFFIXES, Footage, SourceError, probe
from .testcard import TestCard


class Scene(Protocol):
    size: tuple[int, int]
    depth: moderngl.Texture
    tracked: bool  # depth and motion are the picture's own (False: blanks, nothing can be carried)
    cut: bool      # the frame just rendered does not continue the one before
    commands: dict[str, Callable]  # commands the scene offers the show (name -> handler)

    @property
    def motion(self) -> moderngl.Texture: ...  # read-only: a source's is estimated when read (flow.py)

    def render(self, fp: FrameParams) -> moderngl.Texture: ...

    def skip(self, fp: FrameParams) -> None:
        """Frame `fp.frame` passes undrawn: what carries to the next frame (a camera's walk) moves
        on exactly as `render` would have moved it (a farm's chunk fast-forwards so)."""

    def release(self) -> None: ...


SCENES = ("testcard", "backrooms")
SOURCES_HELP = ("a video or image file, a capture device (/dev/video0, v4l2:, avfoundation:, dshow:, lavfi:) "
                "or ndi:NAME")


@dataclass(frozen=True)
class Source:
    """What a `--source` spec names: how to open its picture, how to check it before the show
    (SourceError, `spec: what is wrong`), and whether it is live (a device: what it showed cannot
    be played again, so a performance over it cannot be re-rendered)."""

    open: Callable[..., PictureSource]  # (ctx, size, fields=False)
    probe: Callable[[], None]
    live: bool = False


def source(spec: str) -> Source | None:
    """The source `spec` names, None when it names none. Every kind of `--source` is one branch here."""
    try:
        ndi = ndi_name(spec)
    except ValueError as exc:
        raise SourceError(str(exc)) from None
    if ndi is not None:  # found once playing (said while it is not there): nothing to check first
        return Source(partial(NdiSource, name=ndi), lambda: None, live=True)
    device = parse_device(spec)  # SourceError for a device spec that is wrong
    if device is not None:
        return Source(partial(Capture, device=device), partial(probe_device, device), live=True)
    path = Path(spec)
    if path.suffix.lower() in SOURCE_SUFFIXES and path.is_file():
        return Source(partial(Footage, path=path), partial(probe, path))
    return None


def live_source(spec: str) -> bool:
    """Whether `spec` names a live source (a device), whose pictures cannot be played again."""
    try:
        found = source(spec)
    except SourceError:
        return False
    return found is not None and found.live


def make_scene(name: str, ctx: moderngl.Context, size: tuple[int, int], fields: bool = False) -> Scene:
    """A named scene, or a `--source` (a file, a device, an NDI source) as the base, its motion
    estimated. With `fields`, `size` is one field of a picture twice as tall (patch.Patch.fields):
    the Backrooms draw each frame's own field, a source is averaged line pair by line pair, the test
    card (a pattern, not a picture) is drawn into the field as it is."""
    if name == "testcard":
        return TestCard(ctx, size)
    if name == "backrooms":
        return Backrooms(ctx, size, fields)
    found = source(name)
    if found is not None:
        return Moving(ctx, found.open(ctx, size, fields=fields))
    raise ValueError(f"unknown scene '{name}' (have: {', '.join(SCENES)}, or {SOURCES_HELP})")


__all__ = ["SCENES", "SOURCES_HELP", "Scene", "Source", "SourceError", "live_source", "make_scene", "source"]
