"""Generators turn the base scene into a dreamed frame. `none` passes the scene through: a real
choice for a show that only wants the analog chain, and the baseline every backend is measured
against."""

from __future__ import annotations

from typing import Protocol

import moderngl

from ..params import FrameParams, declare
from .catalog import BACKENDS, check_model  # noqa: F401  (named backends; paths and hub ids pass too)

declare("seed", "int", 0, min=0, max=2**31 - 1, origin=__name__,
        description="noise seed of the generator and the tape")


class Generator(Protocol):
    name: str

    def submit(self, scene: moderngl.Texture, fp: FrameParams) -> None:
        """Hand over frame n's base image; must not block in live play."""

    def latest(self) -> moderngl.Texture | None:
        """The newest finished frame, or None to composite the scene alone."""

    def release(self) -> None: ...


class PassThrough:
    name = "none"

    def submit(self, scene: moderngl.Texture, fp: FrameParams) -> None:
        pass

    def latest(self) -> moderngl.Texture | None:
        return None

    def release(self) -> None:
        pass


def load_backend(name: str, device: str | None = None):
    """The models behind a model name (see generate/model.py for what a Backend is). Imports torch
    and the backend's library only when asked, so `noclip params` and the none model stay quick."""
    if name == "builtin":
        from .builtin import load
        return load(device)
    from .diffusers_backend import load
    return load(name, device)


def make_generator(name: str, ctx: moderngl.Context, size: tuple[int, int]) -> Generator:
    if name != "none":
        raise ValueError(f"unknown model '{name}' (have: {', '.join(BACKENDS)})")
    return PassThrough()
