"""Generators turn the base scene into a dreamed frame. `none` passes the scene through: a real
choice for a show that only wants the analog chain, and the baseline every backend is measured
against. Every other model is a Backend (model.py) driven by the StreamEngine (stream.py) on the
generator's own thread (worker.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Protocol

import moderngl

from ..params import FrameParams, ParamSpec
from ..report import Reporter
from . import catalog
from .catalog import BACKENDS as BACKENDS  # re-exported: the named backends, and the check a patch's
from .catalog import check_model as check_model  # model passes (paths and hub ids pass too)
from .catalog import parse_lora as parse_lora  # and a LoRA's name and scale

# The stream engine's parameters (read in stream.py) live here, so that the registry, `noclip
# params` and the none model never have to import torch.
_P: dict[str, Any] = {"origin": __name__, "group": "generator"}
LORA_PARAMS = ("lora1", "lora2", "lora3", "lora4")  # one per LoRA slot (generate/lora.py)
PARAMS = (
    ParamSpec("seed", "int", 0, min=0, max=2**31 - 1, origin=__name__,
              description="noise seed of the generator and the tape"),
    ParamSpec("strength", "float", 0.5, min=0.0, max=1.0, smooth=0.15, **_P,
              description="how far the generator may stray from the scene: 0 keeps it, 1 dreams freely"),
    ParamSpec("steps", "int", 2, min=1, max=4, **_P,
              description="denoising steps per frame: more is finer and slower "
                          "(Stream Batch lags steps-1 frames)"),
    ParamSpec("feedback", "float", 0.3, min=0.0, max=1.0, smooth=0.15, **_P,
              description="what the last output added, moved along the motion, kept in the next frame: "
                          "less flicker"),
    ParamSpec("seed_morph", "float", 0.0, min=0.0, max=1.0, smooth=0.3, **_P,
              description="travel from the noise of `seed` (0) to that of `seed + 1` (1), smoothly"),
    ParamSpec("prompt", "str", "an empty office hallway, yellow wallpaper, fluorescent lights, liminal space",
              length=1000, **_P,
              description="what the generator dreams the scene as (1,000 characters at most)"),
    ParamSpec("prompt_fade", "float", 2.0, min=0.0, max=30.0, unit="s", **_P,
              description="seconds over which a new prompt cross-fades in"),
    ParamSpec("similarity_skip", "float", 0.005, min=0.0, max=0.1, **_P,
              description="reuse the last result while the scene changed less than this "
                          "(mean difference, 0 off)"),
    ParamSpec("stream_batch", "bool", True, **_P,
              description="denoise the frames in flight as one batch: faster, output lags steps-1 frames"),
    # in the order --lora / a patch's loras name them
    *(ParamSpec(name, "float", 1.0, min=0.0, max=2.0, smooth=0.1, **_P,
                description=f"strength of LoRA {name[4:]} (--lora, a patch's loras): 0 off, 1 as trained")
      for name in LORA_PARAMS),
)


class Generator(Protocol):
    name: str
    commands: dict[str, Callable]  # commands the generator offers the show (name -> handler)

    def submit(self, scene: moderngl.Texture, fp: FrameParams, motion: moderngl.Texture | None = None,
               cut: bool = False) -> None:
        """Hand over frame n's base image and its motion (the scene's RG32F map, GL orientation);
        `cut`: frame n does not continue frame n-1. Must not block in live play."""

    def latest(self) -> moderngl.Texture | None:
        """The newest finished frame, or None to composite the scene alone. Offline: the frame just
        submitted, waited for as long as it takes. A generator that answers late says which frame's
        scene it dreamed in `base_frame` (worker.py), so the compositor can carry the dream from
        there to the frame being shown."""

    @property
    def dream(self) -> tuple[int, int] | None:
        """(frame handed over, frame whose scene it dreamed) of the texture `latest` last returned,
        or None before any: the show keeps the dream's age (the HUD, the bench). Read-only here, so
        a generator may hold it as a plain attribute of its own narrower type."""

    @property
    def base_frame(self) -> int | None:
        """The frame whose scene the texture `latest` returned is a dream of (None before any)."""

    def stats(self) -> dict[str, Any]:
        """Figures for the HUD and the logs (`done`: dreams finished so far)."""

    def ready(self) -> None:
        """Block until the model has loaded or failed to (an offline render times frames after it)."""

    def missing(self, frame: int) -> str | None:
        """Offline, after `latest`: why `frame` has no dream of its own (its engine call failed, the
        model did not load), or None. An exact render stops on it; live play never asks."""

    def release(self) -> None:
        """Stop the generator and join its thread (and process) before returning."""


class PassThrough:
    """No dream by choice: nothing is ever missing."""

    name = "none"
    dream = None
    base_frame = None
    commands: dict[str, Callable] = {}

    def stats(self) -> dict[str, Any]:
        return {}

    def submit(self, scene: moderngl.Texture, fp: FrameParams, motion: moderngl.Texture | None = None,
               cut: bool = False) -> None:
        pass

    def latest(self) -> moderngl.Texture | None:
        return None

    def ready(self) -> None:
        pass

    def missing(self, frame: int) -> str | None:
        return None

    def release(self) -> None:
        pass


def generator_device(name: str) -> str:
    """Where the model `name` would dream, without loading it or importing torch on a machine with
    no NVIDIA driver: "none" (no generator), "cuda" or "cpu"."""
    if name == "none":
        return "none"
    if not os.path.isdir("/proc/driver/nvidia/gpus") and "torch" not in sys.modules:
        return "cpu"  # no driver: no CUDA, and `play` starts without paying for torch here
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def live_rate(name: str, take: bool = False, cores: int | None = None) -> tuple[float, str]:
    """The rate a live show of model `name` plays at unless told (`--fps`), and why. A generator on
    the CPU shares the cores with the loop and the tape: on the 2-core build machine the default show
    held 30 fps with ~10 dreams a second, where at 60 it managed 45 fps. A take from the start
    (`take`) adds an encoder, which two cores do not have at 30 (28.1-29.1 fps, some frames
    dropped); at 24 they play 24.0 fps, drop none and dream 10.6 a second, 85 % of the same show
    without a take (measured 2026-12-02)."""
    device = generator_device(name)
    if device == "cpu":
        if take and (cores or os.cpu_count() or 2) <= 2:
            return 24.0, "CPU generator, a take on 2 cores"
        return 30.0, "CPU generator"
    return 60.0, "GPU generator" if device == "cuda" else "no generator"


def load_backend(name: str, device: str | None = None, loras: tuple[str, ...] = ()):
    """The models behind a model name (see generate/model.py for what a Backend is), with `loras`
    (`PATH_OR_HUB_ID[:SCALE]`) played live. Imports torch and the backend's library only when
    asked, so `noclip params` and the none model stay quick."""
    folder = catalog.local_path(name) if name != "builtin" else None
    if name == "builtin" or (folder is not None and catalog.builtin_folder(folder)):
        from dataclasses import replace

        from .builtin import WEIGHTS
        from .builtin import load as load_builtin
        backend = load_builtin(device, folder or WEIGHTS)
        if folder is not None:   # a performer's own builtin weights: named as given
            backend = replace(backend, name=name)
        if loras:  # a LoRA is for a diffusers model; the builtin learns a look by `noclip train --from`
            return replace(backend, notes=("LoRAs play on diffusers models (SD, SDXL, SD3), not the builtin "
                                           "one (teach it a look with `noclip train --from builtin`); "
                                           "playing without them",))
        return backend
    from .diffusers_backend import load as load_diffusers
    return load_diffusers(name, device, loras=tuple(loras))


def make_generator(name: str, ctx: moderngl.Context, size: tuple[int, int], reporter: Reporter | None = None,
                   *, live: bool = True, loras: tuple[str, ...] = ()) -> Generator:
    """The generator for a model name. The model loads on the generator's thread, so the show plays
    the scene meanwhile; live, the loop never waits for it; offline (`live=False`) each frame waits
    for its own generation, however long it takes. The engine runs in a process of its own
    (remote.py: live, no fight with the loop for the interpreter lock; offline, a render that can be
    stopped at once and survives the OOM killer); NOCLIP_GENERATOR=thread keeps it in this one. A
    model that fails to load is reported and the show plays the scene alone: the show never stops
    (an offline render asks `missing` and decides)."""
    if name == "none":
        return PassThrough()
    from functools import partial

    from .worker import ThreadedGenerator

    reporter = Reporter() if reporter is None else reporter
    load = partial(load_backend, loras=tuple(loras)) if loras else load_backend
    if os.environ.get("NOCLIP_GENERATOR", "process") == "process":
        from .remote import RemoteEngine

        # the child loads with load_backend as this module holds it now (pickled by its name)
        remote = RemoteEngine(name, load=load, live=live)
        return ThreadedGenerator(name, None, ctx, size, reporter, live=live, load=remote.start,
                                 interrupt=remote.kill)

    return ThreadedGenerator(name, None, ctx, size, reporter, live=live,
                             load=lambda: open_engine(name, load, reporter))


def open_engine(name: str, load, reporter: Reporter):
    """The stream engine for a model: `load(name)`'s backend, torch given its share of the cores
    first (a CPU runtime takes the same thread count), then on engines where --accel / NOCLIP_ACCEL
    asks and they can run (torch where they cannot). In the show's process or the generator's own."""
    from .accel import accelerate
    from .stream import StreamEngine, share_cpu

    backend = load(name)
    share_cpu(backend)
    return StreamEngine(accelerate(backend, None, reporter))
