"""Base imagery the generator dreams on. A scene renders frame n into a texture at the working size."""

from __future__ import annotations

from typing import Protocol

import moderngl

from ..params import FrameParams


class Scene(Protocol):
    size: tuple[int, int]

    def render(self, fp: FrameParams) -> moderngl.Texture: ...

    def release(self) -> None: ...


def make_scene(name: str, ctx: moderngl.Context, size: tuple[int, int]) -> Scene:
    from .testcard import TestCard

    scenes = {"testcard": TestCard}
    if name not in scenes:
        raise ValueError(f"unknown scene '{name}' (have: {', '.join(scenes)})")
    return scenes[name](ctx, size)


SCENES = ("testcard",)
