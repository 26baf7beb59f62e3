"""CPU runtimes: onnxruntime and OpenVINO running a backend's exported graphs, where torch eager
would (most people first play noclip on a laptop without an NVIDIA GPU).

The graphs are export.py's, the same TensorRT builds from; the "engine" a CPU runtime caches is the
exported ONNX file (onnxruntime optimises it as the session opens, in under a second; OpenVINO
keeps its compiled blobs in a cache folder beside it). Both run with the threads torch would have
had (`share_cpu`: half the cores, the rest left to the frame loop and llvmpipe), graph
optimisations on, and tensors passed by address both ways (onnxruntime's IO binding, OpenVINO's
shared tensors): no copy in, none out, nothing but the result allocated per call.

`auto` on a CPU measures torch and every runtime importable here on the backend's own per-dream
work (encode, one denoising step, the change or decode) and keeps the fastest; the choice is cached
by model, shapes, precision, runtime versions, CPU and threads (`choice_key`), so it is measured
once per machine and model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import quantize

log = logging.getLogger("noclip")

RUNTIMES = ("onnxruntime", "openvino")
EXTRAS = {"onnxruntime": "onnx", "openvino": "openvino"}   # pip install 'noclip[EXTRA]'
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8", "neon")


@cache
def cpu_name() -> str:
    """The CPU as a cache key sees it: its model and the vector extensions kernels are chosen by."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags = set(value.split())
                break
    except OSError:
        pass
    return " ".join([model, *(f for f in FLAGS if f in flags)])


def threads() -> int:
    """What the generator may use: torch's share (`share_cpu` has set it before engines are made)."""
    return max(1, torch.get_num_threads())


def why_not(runtime: str, device) -> str | None:
    """Why `runtime` cannot run this backend here, or None when it can."""
    if getattr(device, "type", str(device)) != "cpu":
        return f"the model runs on {device}; {runtime} plays models on the CPU"
    try:
        version(runtime)
    except Exception as exc:
        return (f"the {runtime} package is not importable ({type(exc).__name__}: {exc}); "
                f"pip install 'noclip[{EXTRAS[runtime]}]'")
    return None


def version(runtime: str) -> str:
    if runtime == "onnxruntime":
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__}"
    import openvino as ov

    return f"openvino {ov.__version__}"


_NUMPY = {torch.float32: np.float32, torch.float16: np.float16, torch.int64: np.int64, torch.int32: np.int32}


class OrtRunner:
    """An exported graph in onnxruntime: named torch tensors in, one torch tensor out, both bound
    by address (IO binding). All graph optimisations (ORT_ENABLE_ALL: fusions and the CPU's blocked
    layouts); intra-op threads as torch's, no spinning between calls (a spinning pool takes the
    cores the frame loop needs)."""

    def __init__(self, path: Path, n: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = n or threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        output = self.session.get_outputs()[0]
        self.output = output.name
        self.dtype = torch.float16 if output.type == "tensor(float16)" else torch.float32
        self.binding = self.session.io_binding()
        self.shapes: dict[tuple, tuple[int, ...]] = {}   # the output's shape for each input shape met

    def __call__(self, **tensors: torch.Tensor) -> torch.Tensor:
        b = self.binding
        xs = [tensors[name].detach().contiguous() for name in self.inputs]   # alive until the run is over
        for name, x in zip(self.inputs, xs, strict=True):
            b.bind_input(name, "cpu", 0, _NUMPY[x.dtype], tuple(x.shape), x.data_ptr())
        key = tuple(tuple(x.shape) for x in xs)
        shape = self.shapes.get(key)
        if shape is None:   # the first call of a shape: the runtime allocates, and says the shape
            b.bind_output(self.output, "cpu")
            self.session.run_with_iobinding(b)
            out = torch.from_numpy(b.get_outputs()[0].numpy())
            self.shapes[key] = tuple(out.shape)
            return out
        out = torch.empty(shape, dtype=self.dtype)
        b.bind_output(self.output, "cpu", 0, _NUMPY[self.dtype], shape, out.data_ptr())
        self.session.run_with_iobinding(b)
        return out


class OpenVinoRunner:
    """An exported graph compiled by OpenVINO's CPU plugin for latency, once per batch size met
    (static shapes compile to faster kernels than a dynamic batch), with its threads as torch's, no
    pinning (the cores are shared with the frame loop) and f32 arithmetic wherever the graph is f32.
    Inputs are shared with the torch tensors; each call writes into a fresh output tensor."""

    def __init__(self, path: Path, n: int | None = None, precision: str = "fp32") -> None:
        import openvino as ov

        self.core = ov.Core()
        self.core.set_property({"CACHE_DIR": str(Path(path).parent / "openvino")})
        self.model = self.core.read_model(str(path))
        # f32 said outright unless bf16 is asked for: on a CPU with bf16 (AVX512_BF16, AMX) the plugin's
        # default precision is bf16, and the dream would drift from torch's by tenths unasked
        # (measured: TAESD 0.06 on latents)
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": n or threads(),
                       "ENABLE_CPU_PINNING": False,
                       "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        self.names = [p.get_any_name() for p in self.model.inputs]
        self.compiled: dict[tuple, Any] = {}

    def _request(self, shapes: tuple):
        if shapes not in self.compiled:
            model = self.model.clone()
            model.reshape(dict(zip(self.names, shapes, strict=True)))
            compiled = self.core.compile_model(model, "CPU", self.config)
            self.compiled[shapes] = (compiled, compiled.create_infer_request())
        return self.compiled[shapes]

    def __call__(self, **tensors: torch.Tensor) -> torch.Tensor:
        import openvino as ov

        xs = [tensors[n].detach().contiguous() for n in self.names]
        compiled, request = self._request(tuple(tuple(x.shape) for x in xs))
        for i, x in enumerate(xs):
            request.set_input_tensor(i, ov.Tensor(x.numpy(), shared_memory=True))
        out = torch.empty(tuple(compiled.output(0).get_shape()), dtype=torch.float32)
        request.set_output_tensor(0, ov.Tensor(out.numpy(), shared_memory=True))
        request.infer()
        return out


RUNNERS: dict[str, Callable[[Path], Any]] = {"onnxruntime": OrtRunner, "openvino": OpenVinoRunner}


# int8: convolutions (quantize.py). OpenVINO runs the same quantized graph in its own int8 kernels,
# faster than onnxruntime's at the larger sizes (builtin at 512x384, 1 thread: denoiser 33 ms against
# 39, encoder 24 against 27); at 256x192 they are level.
# bf16: OpenVINO's CPU plugin computes an fp32 graph in bf16 where the CPU has it in hardware
# (AVX512_BF16, AMX); asked for by name only (`openvino:bf16`), as its picture is the model's to hold.
PRECISIONS = ("fp32", "int8", "bf16")
BF16 = ("avx512_bf16", "amx_bf16")


def has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (where OpenVINO's bf16 is faster, not emulated):
    read from cpu_name, which keeps the flags kernels are chosen by (BF16 among them)."""
    return any(flag in cpu_name().split() for flag in BF16)


def toolchain(runtime: str, backend=None, precision: str = "fp32"):
    """A runtime as the Toolchain engine_backend builds with, for `precision`: the ONNX export is the
    engine, or in int8 its quantized graph (quantize.py; calibrated on `backend`'s own parts); bf16
    is the fp32 graph computed in bf16 (OpenVINO, a CPU with bf16)."""
    import shutil

    from . import Toolchain

    def build(onnx: Path, engine: Path, part, precision: str) -> None:
        if precision == "int8" and part.name in quantize.QUANTIZED:
            quantize.quantize(onnx, engine, backend, part)
        else:
            shutil.copy(onnx, engine)

    def refuse(device, precision: str) -> str | None:
        if precision not in PRECISIONS or (precision == "int8" and backend is None):
            return f"{precision} is not a precision {runtime} plays here (fp32; int8 for a model it calibrates)"
        if precision == "bf16" and (runtime != "openvino" or not has_bf16()):
            return f"bf16 is played by openvino on a CPU with {' or '.join(BF16)}, not by {runtime} here"
        return why_not(runtime, device)

    def runner(path: Path, device):
        return OpenVinoRunner(path, precision=precision) if runtime == "openvino" else RUNNERS[runtime](path)

    return Toolchain(why_not=refuse, build=build, runner=runner,
                     version=lambda: version(runtime), gpu=lambda device: f"{cpu_name()} x{threads()}",
                     suffix=".onnx", name=runtime)


# -- auto: the fastest measured ---------------------------------------------------------------------

def per_dream(backend, repeats: int = 12) -> float:
    """Median seconds of one dream's network work at batch 1: encode the frame, one denoising step
    on it, then the change (or the decode)."""
    from ..stream import dreamed

    ae, den = backend.autoencoder, backend.denoiser
    w, h = backend.size
    g = torch.Generator().manual_seed(0)
    image = torch.rand((1, 3, h, w), generator=g) * 2 - 1
    cond = backend.conditioner("").to(backend.dtype)
    t = torch.tensor([den.schedule.T // 2])
    times = []
    with torch.inference_mode():
        for i in range(repeats + 3):
            start = time.perf_counter()
            base = ae.encode(image.to(backend.dtype))
            out = den(base, t, cond, base=base)
            dreamed(backend, out, base, image)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return float(np.median(times))


# bump when how a runtime plays changes what `auto` measured (2: OpenVINO held to f32 where a CPU has
# bf16; its f32 times measured before were bf16's)
CHOICE = 2


def choice_key(backend, runtimes: list[str]) -> str:
    from .export import fingerprint

    owners = [backend.denoiser, backend.autoencoder, *([backend.change] if backend.change else [])]
    named = [f"{version(r.partition(':')[0])}:{r.partition(':')[2]}" for r in runtimes]
    fields = {"choice": CHOICE, "models": [fingerprint(o) for o in owners], "size": list(backend.size),
              "torch": torch.__version__, "runtimes": named, "cpu": cpu_name(), "threads": threads()}
    return hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(), digest_size=12).hexdigest()


def candidates(backend, precision: str | None) -> list[str]:
    """What `auto` measures besides torch: each runtime importable here (`name`, or `name:precision`),
    in the precision asked for, else fp32, and int8 too for a model whose picture is known to hold
    in int8 (Backend.int8)."""
    here = [r for r in RUNTIMES if why_not(r, backend.device) is None]
    if precision is not None:
        return [f"{r}:{precision}" for r in here]
    return [f"{r}:fp32" for r in here] + ([f"{r}:int8" for r in here] if backend.int8 else [])


def fastest(backend, precision: str | None, build: Callable[[str], Any],
            folder: Path) -> tuple[str, Any, dict]:
    """(runtime, backend on it, seconds per dream of each) for the fastest of torch and the
    `candidates`; measured once and remembered in `folder`."""
    runtimes = candidates(backend, precision)
    path = folder / f"choice-{choice_key(backend, runtimes)}.json"
    try:
        known = json.loads(path.read_text())
        name = known["runtime"]
        if name == "torch" or name in runtimes:
            return name, backend if name == "torch" else build(name), known["seconds"]
    except (OSError, ValueError, KeyError):
        pass
    seconds, built = {"torch": per_dream(backend)}, {"torch": backend}
    for name in runtimes:
        try:
            built[name] = build(name)
            seconds[name] = per_dream(built[name])
        except Exception as exc:   # a runtime that cannot build this model is not a choice
            log.info("accel: %s could not run %s (%s: %s)", name, backend.name, type(exc).__name__, exc)
    best = min(seconds, key=seconds.__getitem__)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"runtime": best, "seconds": seconds, "cpu": cpu_name(), "threads": threads()},
                              indent=1))
    tmp.replace(path)
    return best, built[best], seconds
