"""int8 on a CPU: the denoiser's, the change decoder's and the encoder's convolutions quantized, one
graph that onnxruntime and OpenVINO both play.

Measured on the builtin (2-core build machine, 1 thread, onnxruntime 1.32): the convolutions are
83 % of the denoiser's time and already run at ~80 GFLOP/s in fp32, near what AVX2's FMAs give a
core, so fp32 cannot go much faster; int8 (u8 activations, s8 weights per channel, AVX2's
multiply-add of bytes) runs the denoiser 1.6-1.8x faster. What is quantized was chosen by the error
it leaves on real frames: every op of the denoiser, 37-40 % of its output wrong (the timestep and
class embeddings' Gemms lose their range); its convolutions only, 5 %; the change decoder's, 13 % of a
change that is itself a small part of the picture (0.2 of a level in 255). The encoder's first
convolution reads the picture itself and its last writes the latent: quantized with the rest they
left the dream 1.5 levels in 255 from torch's (p99 11; the other parts alone: 0.64, p99 2), so only
the convolutions between them are (0.66, p99 3; the encoder 1.25x faster at 512x384).

Activation ranges are calibrated on real inputs: frames of the Backrooms shipped with the package
(models/calibration, two levels, level seeds the builtin never trained on), encoded by the
backend's own encoder and noised along its own schedule at the strengths a show plays, so any
backend can be calibrated without a download or a GL context.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...resources import data_dir
from ..model import Backend
from .export import Part

QUANTIZED = ("unet", "change", "encoder")   # the parts whose convolutions are quantized (see the module doc)
INNER = ("encoder",)   # parts whose first and last convolutions stay fp32: they touch the picture or the latent
STRENGTHS = (0.3, 0.45, 0.6, 0.75)


def calibration_images(size: tuple[int, int]) -> torch.Tensor:
    """The shipped calibration frames at `size`, (N, 3, H, W) in [-1, 1]."""
    try:
        folder = data_dir("models") / "calibration"
    except FileNotFoundError:
        folder = Path(__file__).resolve().parents[3] / "models" / "calibration"
    frames = np.load(folder / "frames.npz")["frames"]
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    w, h = size
    if x.shape[-2:] != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x


def feeds(backend: Backend, part: Part) -> list[dict[str, np.ndarray]]:
    """What `part` sees in a show, one frame at a time: the calibration frames themselves for the
    encoder; for the others encoded, noised at the strengths a show plays (each frame its own seed
    and level prompt) and, for the change decoder, denoised by the torch denoiser."""
    ae, den = backend.autoencoder, backend.denoiser
    images = calibration_images(backend.size).to(backend.device, backend.dtype)
    prompts = ("level 0", "level 1", "")
    out = []
    with torch.inference_mode():
        for i, image in enumerate(images):
            if part.name == "encoder":
                out.append({"image": image[None].detach().cpu().float().numpy()})
                continue
            base = ae.encode(image[None])
            g = torch.Generator().manual_seed(i)
            eps = torch.randn(base.shape, generator=g).to(base)
            strength = STRENGTHS[i % len(STRENGTHS)]
            t = torch.tensor([den.schedule.timesteps(strength, 1)[0]], device=base.device)
            x = den.schedule.noise(base, eps, t)
            cond = backend.conditioner(prompts[i % len(prompts)]).to(base)
            if part.name == "unet":
                feed = {"x": x, "t": t.float(), "cond": cond, "base": base}
            else:
                x0 = den.schedule.x0(x, den(x, t, cond, base=base), t, den.prediction, base)
                feed = {"x0": x0, "base": base}
            names = [name for name, _, _ in part.inputs]
            out.append({k: v.detach().cpu().float().numpy() for k, v in feed.items() if k in names})
    return out


def outer_convolutions(graph: Path, part: Part) -> list[str]:
    """The first and last convolutions of a part in `INNER` (graph order is topological), else none."""
    if part.name not in INNER:
        return []
    import onnx

    convs = [node.name for node in onnx.load(str(graph)).graph.node if node.op_type == "Conv"]
    return sorted({convs[0], convs[-1]}) if convs else []


def quantize(onnx: Path, out: Path, backend: Backend, part: Part) -> None:
    """Write `part`'s graph with its convolutions in int8 (QDQ, per-channel weights) to `out`."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, items: list[dict[str, np.ndarray]]) -> None:
            self.items = iter(items)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    prepared = out.with_name(f"{out.stem}-prepared.onnx")
    quant_pre_process(str(onnx), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(feeds(backend, part)), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv"], nodes_to_exclude=outer_convolutions(prepared, part))
    prepared.unlink()
