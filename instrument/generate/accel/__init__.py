"""Acceleration of a Backend: its denoiser, autoencoder and change decoder swapped for engines:
TensorRT on a CUDA GPU, onnxruntime or OpenVINO on a CPU.

`accelerate(backend, mode)` returns a Backend that plays the same (same interfaces, same numbers
within fp16's tolerance on a GPU, 1e-3 on a CPU) and faster, or the backend itself: with `torch`,
or when the runtime asked for is missing, the device unsupported or a build fails, it says why once
and the show plays on torch. `auto` takes TensorRT on a GPU, and on a CPU the fastest of torch,
onnxruntime and OpenVINO measured on this model (cpu.py), silently (a note in the log) where none
can run. Modules: export.py (the parts as ONNX graphs), engines.py (build + cache), runtime.py
(engines behind the interfaces), cpu.py (the CPU runtimes and the measured choice).
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
from . import cpu

if TYPE_CHECKING:
    from .engines import Builder

log = logging.getLogger("noclip")

MODES = ("auto", "tensorrt", "onnxruntime", "openvino", "torch")


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
    gpu: Callable[[Any], str]                  # (device) -> the GPU's (or CPU's) name, for the cache key
    suffix: str = ".engine"                    # what a built engine file is
    name: str = "TensorRT"


def tensorrt_toolchain() -> Toolchain:
    from . import engines
    from .runtime import TensorRTRunner

    return Toolchain(engines.tensorrt_why_not, engines.build_tensorrt, TensorRTRunner,
                     lambda: f"tensorrt {engines.tensorrt_version()}", engines.gpu_name)


def accelerate(backend: Backend, mode: str | None = None, reporter: Reporter | None = None, *,
               precision: str | None = None, toolchain: Toolchain | None = None, folder=None,
               force: bool = False) -> Backend:
    """The backend on engines (built or taken from the cache), or the backend itself."""
    mode = mode_from_env(mode)
    if mode == "torch":
        return backend
    reporter = reporter or Reporter()
    if backend.loras is not None:  # an engine would freeze the LoRAs' scales at their export values
        message = f"{backend.name}: its LoRAs play live on torch (an engine would fix their scales)"
        if mode == "auto":
            log.info("accel: %s", message)
        else:
            _warn(reporter, backend.name)("accel", message)
        return backend
    if toolchain is None and (mode in cpu.RUNTIMES or (mode == "auto" and backend.device.type == "cpu")):
        return _on_cpu(backend, mode, reporter, precision or os.environ.get("NOCLIP_CPU_PRECISION") or None,
                       folder, force)
    precision = precision or os.environ.get("NOCLIP_TRT_PRECISION", "fp16")
    chain = toolchain or tensorrt_toolchain()
    why = chain.why_not(backend.device, precision)
    if why:
        message = f"{backend.name}: {chain.name} not used, playing on torch: {why}"
        if mode == "auto":   # asked for nothing in particular: the log says it, the HUD stays quiet
            log.info("accel: %s", message)
        else:
            _warn(reporter, backend.name)("accel", message)
        return backend
    try:
        return engine_backend(backend, precision, chain, folder=folder, force=force)
    except Exception as exc:
        _warn(reporter, backend.name)("accel", f"{backend.name}: {chain.name} engines could not be built, "
                                               f"playing on torch ({type(exc).__name__}: {exc})")
        return backend


def _on_cpu(backend: Backend, mode: str, reporter: Reporter, precision: str | None, folder,
            force: bool) -> Backend:
    """A CPU runtime asked for by name (in fp32 unless a precision is asked for), or (auto) the
    fastest measured on this model (cpu.candidates)."""
    def build(runtime: str) -> Backend:
        name, _, asked = runtime.partition(":")
        chain = cpu.toolchain(name, backend, asked or "fp32")
        why = chain.why_not(backend.device, asked or "fp32")
        if why:
            raise RuntimeError(why)
        return engine_backend(backend, asked or "fp32", chain, folder=Path(folder) if folder else None,
                              force=force)

    if mode == "auto":
        try:
            _, fast, seconds = cpu.fastest(backend, precision, build, Path(folder or _cache()))
        except Exception as exc:
            log.info("accel: %s: no CPU runtime measured, playing on torch (%s: %s)", backend.name,
                     type(exc).__name__, exc)
            return backend
        figures = ", ".join(f"{k} {1000 * v:.1f}" for k, v in seconds.items())
        return replace(fast, runtime=f"{fast.runtime}, the fastest here (ms a dream: {figures})")
    precision = precision or "fp32"
    why = cpu.toolchain(mode, backend).why_not(backend.device, precision)
    if why:
        _warn(reporter, backend.name)("accel", f"{backend.name}: {mode} not used, playing on torch: {why}")
        return backend
    try:
        return build(f"{mode}:{precision}")
    except Exception as exc:
        _warn(reporter, backend.name)("accel", f"{backend.name}: {mode} could not run it, playing on torch "
                                               f"({type(exc).__name__}: {exc})")
        return backend


def _warn(reporter: Reporter, name: str):
    return lambda where, message: reporter.problem(where, name, message)


def engine_backend(backend: Backend, precision: str, chain: Toolchain, *, folder=None,
                   force: bool = False) -> Backend:
    """Export, build (or find in the cache) and load each part's engine; raises when any fails."""
    from .engines import cache_key, ensure
    from .export import fingerprint, parts
    from .runtime import EngineAutoencoder, EngineChange, EngineDenoiser

    graphs = parts(backend)
    version, device = chain.version(), chain.gpu(backend.device)
    owners = {"unet": backend.denoiser, "encoder": backend.autoencoder, "decoder": backend.autoencoder,
              "change": backend.change}
    runners = {}
    for part in graphs:
        key = cache_key(fingerprint(owners[part.name]), part, precision, version, device)
        path = ensure(part, key, precision, chain.build, device=backend.device, folder=folder, force=force,
                      suffix=chain.suffix)
        runners[part.name] = chain.runner(path, backend.device)
    log.info("%s: playing on %s engines (%s)", backend.name, version, precision)
    by = {p.name: p for p in graphs}
    change = backend.change
    if change is not None:
        change = EngineChange(runners["change"], change, by["change"])
    return replace(backend, denoiser=EngineDenoiser(runners["unet"], backend.denoiser, by["unet"]),
                   autoencoder=EngineAutoencoder(runners["encoder"], runners["decoder"], backend.autoencoder,
                                                 (by["encoder"], by["decoder"])), change=change,
                   runtime=f"{version} {precision}")


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
