"""SD3.5 Medium and Large (Turbo) at their published shapes with random weights: how fast noclip's SD3
path plays them where the weights cannot be had (gated on the hub; a GPU machine with no network,
as issue 19's GPU figures were taken on). A network's speed does not depend on the values of its
weights, so these are speed figures only; the picture they make is noise.

What is real: the transformer (SD3Transformer2DModel with each release's transformer/config.json:
2.24 B and 8.06 B parameters), the autoencoder (SD3's 16-channel VAE, or TAESD3's shape, which the
catalogue's aliases play), the scheduler (rectified flow, shift 3), the stream engine and its walk.
What is not: the CLIP text encoders are tiny (a prompt is encoded once and cached, so they cost no
frame), with the real projection widths so the pooled embedding has its real 2,048 values; T5 is off,
as noclip plays SD3 by default.

    python -m instrument.bench.sd3_shapes --save-frames walk.npz    (anywhere with GL: the walk)
    python -m instrument.bench.sd3_shapes --frames walk.npz         (on a CUDA machine: the figures)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

COMMON = dict(sample_size=128, patch_size=2, in_channels=16, out_channels=16, attention_head_dim=64,
              joint_attention_dim=4096, pooled_projection_dim=2048, qk_norm="rms_norm")
TRANSFORMERS: dict[str, dict[str, Any]] = {  # each release's transformer/config.json, beyond COMMON
    "sd35-medium": dict(num_layers=24, num_attention_heads=24, caption_projection_dim=1536,
                        pos_embed_max_size=384, dual_attention_layers=tuple(range(13))),
    "sd35-large-turbo": dict(num_layers=38, num_attention_heads=38, caption_projection_dim=2432,
                             pos_embed_max_size=192),
}
VAE = dict(in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
           up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512],
           layers_per_block=2, latent_channels=16, norm_num_groups=32, scaling_factor=1.5305,
           shift_factor=0.0609, use_quant_conv=False, use_post_quant_conv=False)
SIZE = 512


def transformer(name: str, device: Any = "meta"):
    """The release's transformer with random weights (on `device`; "meta" allocates nothing)."""
    import torch
    from diffusers import SD3Transformer2DModel

    with torch.device(device):
        return SD3Transformer2DModel(**COMMON, **TRANSFORMERS[name])


def parts(name: str, device: Any, dtype: Any, *, tiny_vae: bool = True) -> dict[str, Any]:
    """The components diffusers_backend.assemble takes, built in memory (see the module doc)."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny, FlowMatchEulerDiscreteScheduler
    from transformers import CLIPTextModelWithProjection

    from .tinyclip import clip_config, tokenizer

    torch.manual_seed(0)
    with torch.device(device):
        vae: Any = AutoencoderTiny(latent_channels=16) if tiny_vae else AutoencoderKL(**VAE)
        encoders = [CLIPTextModelWithProjection(clip_config(projection_dim=width, hidden_act="gelu"))
                    for width in (768, 1280)]
    folder = Path(tempfile.mkdtemp(prefix="noclip-sd3-shapes-"))
    return {"transformer": transformer(name, device).to(dtype), "vae": vae.to(dtype),
            "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),
            "text_encoder": encoders[0].to(dtype), "tokenizer": tokenizer(folder / "l"),
            "text_encoder_2": encoders[1].to(dtype), "tokenizer_2": tokenizer(folder / "g")}


def save_frames(path: Path, size: int = SIZE, count: int = 8) -> None:
    """The default walk as the generator receives it, at size x size, for a machine without GL."""
    from ..render.gl import headless_context
    from .generator import walk_frames

    ctx = headless_context()
    frames = walk_frames(ctx, (size, size), count)
    np.savez_compressed(path, image=np.stack([f.image for f in frames]),
                        motion=np.stack([f.motion for f in frames]).astype(np.float16))


def load_frames(path: Path) -> list:
    from ..generate.worker import BaseFrame

    data = np.load(path)
    return [BaseFrame(i, m.astype(np.float32)) for i, m in zip(data["image"], data["motion"], strict=True)]


def run(frames: list, seconds: float, names: list[str], *, compile_seconds: float,
        device: str = "cuda") -> dict[str, Any]:
    """fps of the stream engine at 512 x 512 for each release: TAESD3 and the full VAE, 1, 2 and 4
    steps, Stream Batch on and off; then, with TAESD3, compiled (torch.compile with CUDA graphs, as
    NOCLIP_COMPILE plays) for each release begun before the run is `compile_seconds` old."""
    import torch

    from ..generate.diffusers_backend import assemble
    from .generator import bench_engine

    start, dev = time.perf_counter(), torch.device(device)
    cuda = dev.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32  # as diffusers_backend.load plays SD3
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else device,
                           "torch": torch.__version__, "size": [SIZE, SIZE], "dtype": str(dtype)}
    plain = [(name, tiny, False) for name in names for tiny in (True, False)]
    for name, tiny, compiled in plain + [(name, True, True) for name in names]:
        if compiled and time.perf_counter() - start > compile_seconds:
            continue
        key = f"{name} {'taesd3' if tiny else 'vae'}{' compiled' if compiled else ''}"
        t0 = time.perf_counter()
        try:
            built = parts(name, dev, dtype, tiny_vae=tiny)
            backend = assemble(name, built, dev, dtype, size=SIZE, compile=compiled)
            params = sum(p.numel() for p in built["transformer"].parameters())
            figures = bench_engine(None, backend, (SIZE, SIZE), seconds, steps=(1, 2, 4), frames=frames)
            out[key] = {"fps": figures, "transformer_parameters": params,
                        "seconds_to_build_and_bench": time.perf_counter() - t0,
                        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None}
            del built, backend
        except Exception as exc:  # a figure that could not be taken is a figure too
            out[key] = f"failed: {type(exc).__name__}: {exc}"
        print(key, json.dumps(out[key]), flush=True)
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instrument.bench.sd3_shapes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save-frames", type=Path, help="render the walk to this .npz and stop")
    ap.add_argument("--frames", type=Path, help="the walk rendered by --save-frames")
    ap.add_argument("--model", action="append", choices=sorted(TRANSFORMERS), help="(default: both)")
    ap.add_argument("--seconds", type=float, default=4.0, help="timed per figure")
    ap.add_argument("--compile-seconds", type=float, default=0.0,
                    help="compile too (torch.compile, CUDA graphs) while the run is younger than this")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    from .. import catalogue

    catalogue.assemble()  # the registry: the scene's and the engine's parameters
    if args.save_frames:
        return save_frames(args.save_frames)
    frames = load_frames(args.frames) if args.frames else None
    if frames is None:
        from ..render.gl import headless_context
        from .generator import walk_frames

        frames = walk_frames(headless_context(), (SIZE, SIZE), 8)
    out = run(frames, args.seconds, args.model or sorted(TRANSFORMERS), compile_seconds=args.compile_seconds,
              device=args.device)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
