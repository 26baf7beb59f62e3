"""The three parts of a Backend as fixed ONNX graphs: what TensorRT (or onnxruntime) can build.

A part is exported through its interface, not its library: the denoiser's graph calls
`denoiser(x, t, cond)` and the autoencoder's graphs call `encode` / `decode`, so whatever the
wrapper does around its network (dtype casts, SDXL's packed pooled embedding and micro-conditioning,
LCM's guidance embedding, the latent scale) is traced into the graph, and any Denoiser/Autoencoder
made of torch modules (diffusers' or the builtin model's) exports the same way. Shapes are static
at the working size; only the batch is dynamic (Stream Batch runs up to `MAX_STEPS` frames at once).
The timestep enters as float32 (TensorRT is happiest without int64 inputs; the values are whole).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..model import Backend
from ..stream import MAX_STEPS
from .upsample import transposed

log = logging.getLogger("noclip")

OPSET = 17
FORMAT = 4  # bump when the graphs' inputs or outputs change: it is part of every cache key
# 2: the denoiser of an editing backend reads the base latent; the change decoder is a part
# 3: for a CPU, a nearest doubling and its convolution are one transposed convolution (upsample.py)
# 4: the builtin's denoiser answers its edit of the base ("edit"), no longer that edit said as v
INT8 = 2    # bump when what an int8 graph quantizes changes: it is part of every int8 cache key
# 2: the encoder's inner convolutions too (accel/quantize.py)


@dataclass(frozen=True)
class Part:
    """One graph to export: its inputs (name, shape at batch 1, dtype), one output, a batch range."""

    name: str                                   # unet, encoder, decoder
    graph: nn.Module
    inputs: tuple[tuple[str, tuple[int, ...], torch.dtype], ...]
    output: str
    batch: tuple[int, int, int] = (1, 1, MAX_STEPS)   # min, opt, max

    def example(self, batch: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        """Inputs to trace with (or to check a built engine on): seeded, in range."""
        g = torch.Generator().manual_seed(0)
        out = []
        for name, shape, dtype in self.inputs:
            if name == "t":
                x = torch.randint(1, 999, (batch,), generator=g).to(dtype)
            else:
                x = torch.randn((batch, *shape[1:]), generator=g).to(dtype)
            out.append(x.to(device))
        return tuple(out)

    def shapes(self, batch: int) -> dict[str, tuple[int, ...]]:
        return {name: (batch, *shape[1:]) for name, shape, _ in self.inputs}


class Graph(nn.Module):
    """A callable of the interfaces as an nn.Module, so the exporter finds its weights: every
    torch module the owner holds (its network; or the owner itself) becomes a submodule."""

    def __init__(self, owner: object, call: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.call = call
        self.parts = nn.ModuleList(modules_of(owner))

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        return self.call(*args)


def modules_of(owner: object) -> list[nn.Module]:
    if isinstance(owner, nn.Module):
        return [owner]
    return [v for v in vars(owner).values() if isinstance(v, nn.Module)]


def parts(backend: Backend, size: tuple[int, int] | None = None) -> list[Part]:
    """The unet, encoder and decoder graphs of a backend at a working size (its own by default), and
    its change decoder's where it has one. The denoiser of an editing backend reads the base latent
    (model.Backend.edits), so its graph takes it."""
    ae, den = backend.autoencoder, backend.denoiser
    w, h = size or backend.size
    f = ae.factor
    latent = (1, ae.channels, h // f, w // f)
    dtype = _io_dtype(den) if modules_of(den) else backend.dtype
    cond = backend.conditioner("")  # its shape: (1, ...)
    ae_dtype = _io_dtype(ae) if modules_of(ae) else backend.dtype
    unet_inputs = [("x", latent, dtype), ("t", (1,), torch.float32), ("cond", tuple(cond.shape), dtype)]
    if backend.edits:
        unet_inputs.append(("base", latent, dtype))
        unet = Graph(den, lambda x, t, c, base: den(x, t, c, base=base))
    else:
        unet = Graph(den, lambda x, t, c: den(x, t, c))
    out = [
        Part("unet", unet, tuple(unet_inputs), "out"),
        Part("encoder", Graph(ae, ae.encode), (("image", (1, 3, h, w), ae_dtype),), "latent"),
        Part("decoder", Graph(ae, ae.decode), (("latent", latent, ae_dtype),), "image"),
    ]
    change = backend.change
    if change is not None:
        out.append(Part("change", Graph(change, change), (("x0", latent, ae_dtype), ("base", latent, ae_dtype)),
                        "change"))
    return out


def _io_dtype(owner: object) -> torch.dtype:
    return next(p for m in modules_of(owner) for p in m.parameters()).dtype


def export(part: Part, path: Path, device: torch.device | str = "cpu") -> Path:
    """Export `part` to `path` (weights over 2 GB go to files beside it, which TensorRT's parser
    and onnxruntime find). The TorchScript exporter: no onnxscript needed, and its graphs are the
    ones TensorRT's ONNX parser has been tested on longest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, _, _ in part.inputs]
    dynamic = {n: {0: "batch"} for n in [*names, part.output]}
    example = part.example(max(2, part.batch[0]), device)  # batch 2: no size-1 broadcast is baked in
    cpu = torch.device(device).type == "cpu"
    with torch.no_grad(), warnings.catch_warnings(), transposed([part.graph] if cpu else []):
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes (static here)
        torch.onnx.export(part.graph.eval(), example, str(path), input_names=names,
                          output_names=[part.output], dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    log.info("exported %s to %s", part.name, path)
    return path


def fingerprint(owner: object) -> str:
    """What makes two parts the same model: the owner's class, its plain settings (numbers,
    strings, small tensors like an LCM guidance embedding) and every weight, byte for byte."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{type(owner).__module__}.{type(owner).__qualname__}".encode())
    for key, value in sorted(vars(owner).items()):
        if key.startswith("_") or isinstance(value, nn.Module):
            continue
        _setting(h, key, value)
        if hasattr(value, "__dict__") and not isinstance(value, type):  # e.g. the denoiser's Schedule
            for k, v in sorted(vars(value).items()):
                _setting(h, f"{key}.{k}", v)
    for module in modules_of(owner):
        h.update(type(module).__qualname__.encode())
        config = getattr(module, "config", None)
        if config is not None:
            h.update(repr(sorted(dict(config).items())).encode())
        for key, value in module.state_dict().items():
            h.update(key.encode())
            _tensor(h, value)
    return h.hexdigest()


def _setting(h, key: str, value: object) -> None:
    if isinstance(value, bool | int | float | str | torch.dtype):
        h.update(f"{key}={value!r};".encode())
    elif isinstance(value, torch.Tensor):
        h.update(key.encode())
        _tensor(h, value)


def _tensor(h, value: torch.Tensor) -> None:
    h.update(f"{tuple(value.shape)}{value.dtype}".encode())
    h.update(value.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
