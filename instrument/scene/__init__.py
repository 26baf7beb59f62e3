"""Base imagery the generator dreams on. A scene renders frame n into textures at the working size.

Every scene gives three textures per frame: colour (what `render` returns), `depth` (R32F, metres
along the view axis; 0 where unknown) and `motion` (RG32F, screen-space motion in pixels of the
working size, GL orientation +x right +y up, from frame n-1 to frame n: the surface seen at pixel
p in frame n was at p - motion in frame n-1, which is the backward map a generator needs to warp
its previous output onto the new frame). A scene whose motion and depth are blanks says so with
`tracked = False` (nothing can be carried along them). A scene may offer commands (`commands`: name → handler),
which the show adds to its own.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import moderngl

from ..params import FrameParams
from .backrooms import Backrooms
from .ndi_source import NdiSource, ndi_name
from .source import SOURCE_SUFFIXES, Footage
from .testcard import TestCard


class Scene(Protocol):
    size: tuple[int, int]
    depth: moderngl.Texture
    motion: moderngl.Texture
    tracked: bool  # depth and motion are the picture's own (False: blanks, nothing can be carried)
    cut: bool      # the frame just rendered does not continue the one before
    commands: dict[str, Callable]  # commands the scene offers the show (name -> handler)

    def render(self, fp: FrameParams) -> moderngl.Texture: ...

    def release(self) -> None: ...


SCENES = ("testcard", "backrooms")


def make_scene(name: str, ctx: moderngl.Context, size: tuple[int, int]) -> Scene:
    """A named scene, a video or still image file (`--source PATH`), or an NDI source
    (`--source ndi:NAME`) as the base."""
    ndi = ndi_name(name)
    if ndi is not None:
        return NdiSource(ctx, size, ndi)
    if name == "testcard":
        return TestCard(ctx, size)
    if name == "backrooms":
        return Backrooms(ctx, size)
    if Path(name).suffix.lower() in SOURCE_SUFFIXES and Path(name).is_file():
        return Footage(ctx, size, Path(name))
    raise ValueError(f"unknown scene '{name}' (have: {', '.join(SCENES)}, or a video or image file)")


__all__ = ["SCENES", "Scene", "make_scene"]
