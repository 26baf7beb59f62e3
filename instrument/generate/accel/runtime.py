"""Built engines behind the Denoiser, Autoencoder and change interfaces, so the stream engine
cannot tell.

A runner is any callable `runner(**named_tensors) -> tensor`: a TensorRT engine on the caller's
CUDA stream (`TensorRTRunner`), or onnxruntime or OpenVINO on a CPU (cpu.py). Shapes an
engine was not built for (another working size, a batch past its profile) go to the torch part
it replaces, reported once: the show never stops for a shape.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

log = logging.getLogger("noclip")


class EngineDenoiser:
    def __init__(self, runner, torch_part, part) -> None:
        self.runner, self.torch_part, self.part = runner, torch_part, part
        self.prediction, self.schedule = torch_part.prediction, torch_part.schedule
        self._fits = _Fits(part)
        self.reads_base = any(name == "base" for name, _, _ in part.inputs)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        with_base = {"base": base} if self.reads_base and base is not None else {}
        if (self.reads_base and base is None) or not self._fits(x=x, cond=cond, **with_base):
            return self.torch_part(x, t, cond, base=base)
        out = self.runner(x=x, t=t.float(), cond=cond, **with_base)
        return out.to(x.device, x.dtype)


class EngineChange:
    """An editing backend's change decoder (model.Backend.change) on an engine."""

    def __init__(self, runner, torch_part, part) -> None:
        self.runner, self.torch_part = runner, torch_part
        self._fits = _Fits(part)

    def __call__(self, x0: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        if not self._fits(x0=x0, base=base):
            return self.torch_part(x0, base)
        return self.runner(x0=x0, base=base).to(x0.device, x0.dtype)


class EngineAutoencoder:
    def __init__(self, encoder, decoder, torch_part, parts) -> None:
        self.encoder, self.decoder, self.torch_part = encoder, decoder, torch_part
        self.factor, self.channels = torch_part.factor, torch_part.channels
        self._enc, self._dec = _Fits(parts[0]), _Fits(parts[1])

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        if not self._enc(image=image):
            return self.torch_part.encode(image)
        return self.encoder(image=image).to(image.device, image.dtype)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        if not self._dec(latent=latent):
            return self.torch_part.decode(latent)
        return self.decoder(latent=latent).to(latent.device, latent.dtype)


class _Fits:
    """Does a call fit the engine's shapes? Says so once per shape that does not."""

    def __init__(self, part) -> None:
        self.part = part
        self.told: set[tuple] = set()
        self.shapes = {name: tuple(shape[1:]) for name, shape, _ in part.inputs}

    def __call__(self, **tensors: torch.Tensor) -> bool:
        lo, _, hi = self.part.batch
        ok = all(lo <= t.shape[0] <= hi and tuple(t.shape[1:]) == self.shapes[n] for n, t in tensors.items())
        if not ok:
            key = tuple((n, tuple(t.shape)) for n, t in tensors.items())
            if key not in self.told:
                self.told.add(key)
                log.warning("%s engine: built for %s (batch %d..%d), asked for %s: that call runs on torch",
                            self.part.name, self.shapes, lo, hi, dict(key))
        return ok


def _torch_dtype(trt_dtype):
    import tensorrt as trt

    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int8: torch.int8, trt.bool: torch.bool}
    for name, dtype in (("bfloat16", torch.bfloat16), ("int64", torch.int64)):
        if hasattr(trt, name):
            table[getattr(trt, name)] = dtype
    return table[trt_dtype]


class TensorRTRunner:
    """One engine, run with torch tensors bound by address on the current CUDA stream (so it
    orders with the torch work around it, no synchronisation). With `graphs`, each input shape is
    captured once as a CUDA graph and replayed: one launch instead of one per layer, which is what
    pays at a hundred-plus frames a second (NOCLIP_TRT_GRAPHS=0 turns it off)."""

    def __init__(self, path: Path, device: torch.device, graphs: bool | None = None) -> None:
        import tensorrt as trt

        from .engines import logger

        self.device = device
        self.runtime = trt.Runtime(logger())
        self.engine = self.runtime.deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{path}: TensorRT could not load this engine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        (self.output,) = [n for n in names if n not in self.inputs]
        self.dtypes = {n: _torch_dtype(self.engine.get_tensor_dtype(n)) for n in names}
        if graphs is None:
            graphs = os.environ.get("NOCLIP_TRT_GRAPHS", "1").strip().lower() not in ("0", "off", "false", "no")
        self.graphs = graphs
        self.captured: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], torch.Tensor]] = {}

    def _bind(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        for n in self.inputs:
            self.context.set_input_shape(n, tuple(inputs[n].shape))
            self.context.set_tensor_address(n, inputs[n].data_ptr())
        out = torch.empty(tuple(self.context.get_tensor_shape(self.output)), dtype=self.dtypes[self.output],
                          device=self.device)
        self.context.set_tensor_address(self.output, out.data_ptr())
        return out

    def _run(self) -> None:
        if not self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise RuntimeError("TensorRT: execute_async_v3 failed")

    def __call__(self, **tensors: torch.Tensor) -> torch.Tensor:
        inputs = {n: tensors[n].to(self.device, self.dtypes[n]).contiguous() for n in self.inputs}
        if not self.graphs:
            out = self._bind(inputs)
            self._run()
            return out
        key = tuple(tuple(inputs[n].shape) for n in self.inputs)
        if key not in self.captured:
            try:
                self.captured[key] = self._capture(inputs)
            except Exception as exc:
                log.warning("TensorRT: CUDA graph capture failed (%s: %s); running without graphs",
                            type(exc).__name__, exc)
                self.graphs = False
                return self(**tensors)
        graph, static, out = self.captured[key]
        for n in self.inputs:
            static[n].copy_(inputs[n])
        graph.replay()
        return out.clone()   # the next replay overwrites `out`; the engine keeps results across frames

    def _capture(self, inputs: dict[str, torch.Tensor]):
        static = {n: t.clone() for n, t in inputs.items()}
        out = self._bind(static)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._run()  # the first run after a shape change does deferred work that must not be captured
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._run()
        return graph, static, out
