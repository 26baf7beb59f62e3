"""Acceleration of a Backend: its denoiser and autoencoder swapped for TensorRT engines.

`accelerate(backend, mode)` returns a Backend that plays the same (same interfaces, same numbers
within fp16's tolerance) and faster, or the backend itself: with `torch`, or when TensorRT is
missing, the GPU unsupported or a build fails, it says why once and the show plays on torch.
`auto` takes TensorRT where it can run and torch silently (a note in the log) where it cannot.
Modules: export.py (the parts as ONNX graphs), engines.py (build + cache), runtime.py (engines
behind the interfaces).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...report import Reporter
from ..model import Backend

if TYPE_CHECKING:
    from .engines import Builder

log = logging.getLogger("noclip")

MODES = ("auto", "tensorrt", "torch")


def mode_from_env(mode: str | None = None) -> str:
    """The --accel choice (`noclip play/render/bench --accel`, or NOCLIP_ACCEL), default auto."""
    mode = (mode or os.environ.get("NOCLIP_ACCEL") or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(f"accel {mode!r}: one of {', '.join(MODES)}")
    return mode


@dataclass
class Toolchain:
    """What building and running engines takes; tests give their own (a failing builder, or
    onnxruntime standing in for TensorRT on a CPU)."""

    why_not: Callable[[Any, str], str | None]  # (device, precision) -> reason or None
    build: Builder                             # (onnx, engine, part, precision): writes the engine
    runner: Callable[[Path, Any], Any]         # (engine path, device) -> runner
    version: Callable[[], str]                 # the toolchain's version, for the cache key
    gpu: Callable[[Any], str]                  # (device) -> the GPU's name, for the cache key


def tensorrt_toolchain() -> Toolchain:
    from . import engines
    from .runtime import TensorRTRunner

    return Toolchain(engines.tensorrt_why_not, engines.build_tensorrt, TensorRTRunner,
                     lambda: f"tensorrt {engines.tensorrt_version()}", engines.gpu_name)


def accelerate(backend: Backend, mode: str | None = None, reporter: Reporter | None = None, *,
               precision: str | None = None, toolchain: Toolchain | None = None, folder=None,
               force: bool = False) -> Backend:
    """The backend on TensorRT engines (built or taken from the cache), or the backend itself."""
    mode = mode_from_env(mode)
    if mode == "torch":
        return backend
    reporter = reporter or Reporter()
    precision = precision or os.environ.get("NOCLIP_TRT_PRECISION", "fp16")
    chain = toolchain or tensorrt_toolchain()
    why = chain.why_not(backend.device, precision)
    if why:
        message = f"{backend.name}: TensorRT not used, playing on torch: {why}"
        if mode == "auto":   # asked for nothing in particular: the log says it, the HUD stays quiet
            log.info("accel: %s", message)
        else:
            _warn(reporter, backend.name)("accel", message)
        return backend
    try:
        return engine_backend(backend, precision, chain, folder=folder, force=force)
    except Exception as exc:
        _warn(reporter, backend.name)("accel", f"{backend.name}: TensorRT engines could not be built, "
                                               f"playing on torch ({type(exc).__name__}: {exc})")
        return backend


def _warn(reporter: Reporter, name: str):
    return lambda where, message: reporter.problem(where, name, message)


def engine_backend(backend: Backend, precision: str, chain: Toolchain, *, folder=None,
                   force: bool = False) -> Backend:
    """Export, build (or find in the cache) and load the three engines; raises when any fails."""
    from .engines import cache_key, ensure
    from .export import fingerprint, parts
    from .runtime import EngineAutoencoder, EngineDenoiser

    unet, enc, dec = parts(backend)
    version, gpu = chain.version(), chain.gpu(backend.device)
    runners = []
    for part, owner in ((unet, backend.denoiser), (enc, backend.autoencoder), (dec, backend.autoencoder)):
        key = cache_key(fingerprint(owner), part, precision, version, gpu)
        path = ensure(part, key, precision, chain.build, device=backend.device, folder=folder, force=force)
        runners.append(chain.runner(path, backend.device))
    log.info("%s: playing on %s engines (%s)", backend.name, version, precision)
    return replace(backend, denoiser=EngineDenoiser(runners[0], backend.denoiser, unet),
                   autoencoder=EngineAutoencoder(runners[1], runners[2], backend.autoencoder, (enc, dec)))


def build_engines(name: str, precision: str = "fp16", *, force: bool = False,
                  toolchain: Toolchain | None = None, folder=None, device=None) -> tuple[bool, str]:
    """`noclip build-engines`: build (or find) a model's engines ahead of a show. (done, what happened).
    Whether TensorRT can run is asked first: no model is loaded (or downloaded) for nothing."""
    import torch

    from .. import load_backend

    chain = toolchain or tensorrt_toolchain()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    why = chain.why_not(dev, precision)
    if why:
        return False, f"{name}: no TensorRT engines: {why}"
    try:
        backend = load_backend(name, str(dev))
    except Exception as exc:
        return False, f"{name}: the model did not load ({type(exc).__name__}: {exc})"
    try:
        engine_backend(backend, precision, chain, folder=folder, force=force)
    except Exception as exc:
        return False, f"{name}: the engine build failed ({type(exc).__name__}: {exc})"
    w, h = backend.size
    return True, f"{name}: engines ready ({precision}, {w}x{h}) in {folder or _cache()}"


def _cache():
    from .engines import cache_dir

    return cache_dir()
