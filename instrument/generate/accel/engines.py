"""TensorRT engines: built once per model, shape, precision, TensorRT version and GPU, then cached.

An engine is only valid for the TensorRT build and the GPU it was built on, and only for the
weights and shapes it was built from, so all of these go into its cache key; a changed LoRA, a
new working size or a driver upgrade that brings a new TensorRT builds afresh, and nothing stale
is ever loaded. Engines live in the user cache folder ($XDG_CACHE_HOME/noclip/engines, else
~/.cache/noclip/engines), beside a shared timing cache that makes later builds much faster.

Building takes minutes for an SD-sized UNet; `noclip build-engines` does it ahead of a show, and
a show that meets a missing engine builds it on start with a progress bar in the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from .export import FORMAT, INT8, Part, export

log = logging.getLogger("noclip")

PRECISIONS = ("fp16", "fp32", "int8", "fp8")   # int8 / fp8: experimental, for Q/DQ-quantized models
MIN_TENSORRT = 10
WORKSPACE = 8 << 30  # bytes of scratch the builder may use per layer


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "noclip" / "engines"


def cache_key(model: str, part: Part, precision: str, runtime: str, device: str) -> str:
    """The name of an engine: a hash of everything that makes it valid (see the module doc): the
    runtime's name and version, the GPU (or CPU) it was built for."""
    fields = {"format": FORMAT, "model": model, "part": part.name, "batch": list(part.batch),
              "inputs": [[n, list(s[1:]), str(d)] for n, s, d in part.inputs], "precision": precision,
              "runtime": runtime, "device": device}
    if precision == "int8":
        fields["int8"] = INT8
    digest = hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=12).hexdigest()
    return f"{part.name}-{digest}"


Builder = Callable[[Path, Path, Part, str], None]   # (onnx, engine, part, precision): writes the engine


def ensure(part: Part, key: str, precision: str, build: Builder, *, device="cpu",
           folder: Path | None = None, force: bool = False, suffix: str = ".engine") -> Path:
    """The engine file for `part`, built (export → build) unless the cache has it. A build is
    written to a temporary name and renamed into place, so a crash never leaves half an engine."""
    folder = folder or cache_dir()
    path = folder / f"{key}{suffix}"
    if path.exists() and not force:
        log.info("%s: cached engine %s", part.name, path)
        return path
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"noclip-{part.name}-", dir=folder) as tmp:
        onnx = export(part, Path(tmp) / f"{part.name}.onnx", device)
        partial = Path(tmp) / "engine"
        build(onnx, partial, part, precision)
        shutil.move(partial, path)
    meta = {"part": part.name, "precision": precision, "batch": list(part.batch),
            "inputs": {n: list(s[1:]) for n, s, _ in part.inputs}, "seconds": time.perf_counter() - start}
    Path(f"{folder / key}.json").write_text(json.dumps(meta, indent=1))
    log.info("%s: built %s in %.0f s", part.name, path, meta["seconds"])
    return path


# -- TensorRT --------------------------------------------------------------------------------------

def tensorrt_why_not(device, precision: str = "fp16") -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    if getattr(device, "type", str(device)) != "cuda":
        return f"the models run on {device}, not on a CUDA GPU"
    try:
        import tensorrt as trt
    except Exception as exc:
        return (f"the tensorrt package is not importable ({type(exc).__name__}: {exc}); "
                "pip install 'noclip[tensorrt]'")
    major = int(trt.__version__.split(".")[0])
    if major < MIN_TENSORRT:
        return f"TensorRT {trt.__version__} is too old (noclip needs {MIN_TENSORRT} or later)"
    import torch

    cc = torch.cuda.get_device_capability(device)
    if cc < (7, 5):
        name = torch.cuda.get_device_name(device)
        return f"{name} (compute {cc[0]}.{cc[1]}) is older than TensorRT 10 supports"
    if precision == "fp8" and cc < (8, 9):
        return f"fp8 needs an Ada or Hopper GPU or later (this one is compute {cc[0]}.{cc[1]})"
    return None


def gpu_name(device) -> str:
    import torch

    cc = torch.cuda.get_device_capability(device)
    return f"{torch.cuda.get_device_name(device)} sm{cc[0]}{cc[1]}"


def tensorrt_version() -> str:
    import tensorrt as trt

    return trt.__version__


def logger():
    import tensorrt as trt

    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


_LOGGER = None


def build_tensorrt(onnx: Path, engine: Path, part: Part, precision: str) -> None:
    """Parse the ONNX graph and build a serialized engine: one optimization profile over the batch
    range, the precision's builder flags, the shared timing cache, and a progress bar."""
    import tensorrt as trt

    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
    builder = trt.Builder(logger())
    network = builder.create_network(0)   # explicit batch is the only kind in TensorRT 10
    parser = trt.OnnxParser(network, logger())
    if not parser.parse_from_file(str(onnx)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {part.name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE)
    if precision != "fp32":
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
    if precision == "fp8":
        config.set_flag(trt.BuilderFlag.FP8)
    profile = builder.create_optimization_profile()
    lo, opt, hi = part.batch
    for name in part.shapes(1):
        profile.set_shape(name, part.shapes(lo)[name], part.shapes(opt)[name], part.shapes(hi)[name])
    config.add_optimization_profile(profile)
    timing_path = engine.parent.parent / "timing.cache"   # builds happen in a temp folder in the cache
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    config.set_timing_cache(timing, ignore_mismatch=True)
    monitor = _monitor(part.name)
    if monitor is not None:
        config.progress_monitor = monitor
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build {part.name} (see its log above)")
    engine.write_bytes(bytes(serialized))
    timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))


def _monitor(name: str):
    """A tqdm bar per top-level build phase (TensorRT's IProgressMonitor; None where absent)."""
    import tensorrt as trt
    from tqdm import tqdm

    if not hasattr(trt, "IProgressMonitor"):
        return None

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.bars: dict[str, tqdm] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:   # nested phases would only flicker
                self.bars[phase_name] = tqdm(total=num_steps, desc=f"{name}: {phase_name}", leave=False)

        def step_complete(self, phase_name, step):
            if phase_name in self.bars:
                self.bars[phase_name].update(1)
            return True   # False would cancel the build

        def phase_finish(self, phase_name):
            bar = self.bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return Monitor()
