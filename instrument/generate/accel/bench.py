"""`noclip bench --only generator --accel tensorrt`: torch against TensorRT, same models, one run.

The models are SD-Turbo-sized (SD 2.1's UNet config) and SDXL-Turbo-sized UNets with random
weights and a random TAESD-shaped tiny autoencoder: the speed of the real ones without a download
(random weights cost what trained ones cost). The stream engine runs each at 512x512 with 1 step
and 2 steps (Stream Batch), first on torch, then on the engines, and reports fps and per-frame
latency. On a machine without a CUDA GPU and TensorRT it says why and measures nothing.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from ..model import Backend, Schedule

SIZE = 512
SD21: dict[str, Any] = {"block_out_channels": (320, 640, 1280, 1280), "attention_head_dim": (5, 10, 20, 20),
        "cross_attention_dim": 1024, "use_linear_projection": True, "sample_size": 64}
SDXL: dict[str, Any] = {"block_out_channels": (320, 640, 1280), "attention_head_dim": (5, 10, 20),
        "cross_attention_dim": 2048, "use_linear_projection": True, "sample_size": 128,
        "transformer_layers_per_block": (1, 2, 10), "addition_embed_type": "text_time",
        "addition_time_embed_dim": 256, "projection_class_embeddings_input_dim": 2816,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")}
# A tiny SD-shaped UNet (two levels, cross-attention at the lower one): with it the autoencoder is
# most of a frame, as in the CPU comparison with StreamDiffusion (issue: ONNX/OpenVINO).
SD_TINY: dict[str, Any] = {"block_out_channels": (32, 64), "layers_per_block": 2, "attention_head_dim": 8,
                           "cross_attention_dim": 32, "sample_size": 32,
                           "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
                           "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D")}
MODELS = {"sd-turbo-sized": SD21, "sdxl-turbo-sized": SDXL, "sd-tiny": SD_TINY, "sd-tiny-kl": SD_TINY}


class RandomConditioner:
    """A seeded stand-in for CLIP of the right shape: the timing does not depend on its values."""

    def __init__(self, shape: tuple[int, ...], device, dtype) -> None:
        self.shape, self.device, self.dtype = shape, device, dtype

    def __call__(self, prompt: str) -> torch.Tensor:
        g = torch.Generator().manual_seed(len(prompt))
        return torch.randn(self.shape, generator=g).to(self.device, self.dtype)


def tiny_vae(kind: str) -> Any:
    """The tiny SD model's autoencoder, with SD's geometry (4 latent channels, 8 pixels a cell) and
    few channels: a four-level AutoencoderKL ("kl", SD's kind) or a four-block AutoencoderTiny
    ("taesd", TAESD's kind)."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    if kind == "kl":
        return AutoencoderKL(block_out_channels=[32, 64, 64, 64], layers_per_block=1, latent_channels=4,
                             down_block_types=["DownEncoderBlock2D"] * 4,
                             up_block_types=["UpDecoderBlock2D"] * 4, scaling_factor=0.18215)
    return AutoencoderTiny(latent_channels=4, encoder_block_out_channels=(32, 32, 32, 32),
                           decoder_block_out_channels=(32, 32, 32, 32), num_encoder_blocks=(1, 1, 1, 1),
                           num_decoder_blocks=(1, 1, 1, 1))


def sized_backend(kind: str, device: torch.device, dtype: torch.dtype = torch.float16,
                  size: int = SIZE) -> Backend:
    """A random-weight backend the size of a real one (see the module doc); `sd-tiny` a tiny UNet
    with a tiny TAESD-kind autoencoder, `sd-tiny-kl` with a tiny KL one (`tiny_vae`)."""
    from diffusers import AutoencoderTiny, UNet2DConditionModel

    from ..diffusers_parts import DiffusersAutoencoder, UNetDenoiser

    cfg = MODELS[kind]
    torch.manual_seed(0)
    # diffusers defines ModelMixin.to as functools.wraps(nn.Module.to) of an overloaded method,
    # which mypy reads as no `to` at all
    unet = UNet2DConditionModel(**cfg).to(device, dtype).eval().requires_grad_(False)  # type: ignore[attr-defined]
    vae: Any
    if kind in ("sd-tiny", "sd-tiny-kl"):
        vae = tiny_vae("kl" if kind == "sd-tiny-kl" else "taesd")
    else:
        vae = AutoencoderTiny()   # TAESD's
    vae = vae.to(device, dtype).eval().requires_grad_(False)
    sdxl = "addition_embed_type" in cfg
    dim = cfg["cross_attention_dim"]
    denoiser = UNetDenoiser(unet, "epsilon", Schedule.scaled_linear(), sdxl_factor=8 if sdxl else 0,
                            pooled_dim=1280 if sdxl else 0)
    cond = RandomConditioner((1, 78 if sdxl else 77, dim), device, dtype)
    return Backend(kind, DiffusersAutoencoder(vae), cond, denoiser, device, dtype, (size, size))


def measure(backend: Backend, seconds: float) -> dict[str, Any]:
    """fps and per-frame latency (ms) of the stream engine: 1 step, and 2 steps with Stream Batch."""
    from ...params import REGISTRY, FrameParams
    from ..stream import StreamEngine
    from ..worker import BaseFrame

    g = np.random.default_rng(0)
    frames = [BaseFrame(g.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)) for _ in range(8)]
    out: dict[str, Any] = {}
    for steps in (1, 2):
        engine = StreamEngine(backend)
        values = {**REGISTRY.defaults(), "steps": steps, "stream_batch": True, "similarity_skip": 0.0}
        for n in range(5):
            engine(frames[n % 8], FrameParams(n, n / 30.0, 1 / 30.0, values))
        lat, n, start = [], 5, time.perf_counter()
        while n < 5 + 2000 and (n < 15 or time.perf_counter() - start < seconds):
            t = time.perf_counter()
            engine(frames[n % 8], FrameParams(n, n / 30.0, 1 / 30.0, values))   # returns host pixels: synced
            lat.append(1000 * (time.perf_counter() - t))
            n += 1
        out[f"{steps}-step"] = {"fps": (n - 5) / (time.perf_counter() - start),
                                "ms_p50": float(np.percentile(lat, 50)),
                                "ms_p99": float(np.percentile(lat, 99))}
    return out


def bench_accel(seconds: float = 5.0, kinds: tuple[str, ...] = ("sd-turbo-sized", "sdxl-turbo-sized"),
                precision: str = "fp16", toolchain=None) -> dict[str, Any]:
    from . import engine_backend, tensorrt_toolchain

    chain = toolchain or tensorrt_toolchain()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    why = chain.why_not(device, precision)
    if why:
        return {"ran": False, "why": f"torch vs TensorRT needs a CUDA GPU with TensorRT 10+: {why}"}
    report: dict[str, Any] = {"ran": True, "gpu": chain.gpu(device), "tensorrt": chain.version(),
                              "size": f"{SIZE}x{SIZE}", "precision": precision, "models": {}}
    for kind in kinds:
        try:
            backend = sized_backend(kind, device)
            row: dict[str, Any] = {"torch": measure(backend, seconds)}
            start = time.perf_counter()
            fast = engine_backend(backend, precision, chain)
            row["engines_ready_s"] = time.perf_counter() - start
            row["tensorrt"] = measure(fast, seconds)
        except Exception as exc:   # one model that cannot build is a figure too
            row = {"failed": f"{type(exc).__name__}: {exc}"}
        report["models"][kind] = row
        torch.cuda.empty_cache()
    return report


def print_accel(r: dict[str, Any]) -> None:
    if not r["ran"]:
        print(f"\ngenerator, torch vs TensorRT: not measured: {r['why']}")
        return
    print(f"\ngenerator, torch vs TensorRT on {r['gpu']} ({r['tensorrt']}, {r['precision']}), "
          f"random-weight UNets + TAESD at {r['size']}, Stream Batch:")
    for kind, row in r["models"].items():
        if "failed" in row:
            print(f"  {kind}: failed: {row['failed']}")
            continue
        for steps in ("1-step", "2-step"):
            a, b = row["torch"][steps], row["tensorrt"][steps]
            print(f"  {kind} {steps}: torch {a['fps']:6.1f} fps (p50 {a['ms_p50']:.1f} ms)  "
                  f"TensorRT {b['fps']:6.1f} fps (p50 {b['ms_p50']:.1f} ms, p99 {b['ms_p99']:.1f} ms)")
        print(f"  {kind}: engines ready in {row['engines_ready_s']:.0f} s (build or cache)")
