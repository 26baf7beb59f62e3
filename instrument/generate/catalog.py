"""Which names `--model` and a patch's `model` accept, decided without importing torch.

A model is a named backend (`none`, `builtin`, or an alias below), a local diffusers folder (with
model_index.json), a single-file checkpoint (.safetensors / .ckpt) or a Hugging Face hub id
(`org/name`, downloaded once into the hub cache by `diffusers_backend`). Patch validation and the
CLI ask `check_model`, so a typo is reported before the show starts instead of as a failed download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TAESD = "madebyollin/taesd"      # tiny autoencoder for the SD 1.x / 2.x latent space
TAESDXL = "madebyollin/taesdxl"  # and for SDXL's
TAESD3 = "madebyollin/taesd3"    # and for SD3's (16 channels)


@dataclass(frozen=True)
class Alias:
    repo: str                # hub id of the diffusers model
    size: int                # working size (square) the model plays best at
    lora: str | None = None  # hub id of a LoRA fused into the UNet (LCM-LoRA)
    variant: str | None = "fp16"  # weight variant to fetch (None: the plain weights, SD3's repositories
                                  # keep their half-precision weights under the plain names)


ALIASES: dict[str, Alias] = {
    "sd-turbo": Alias("stabilityai/sd-turbo", 512),
    "sdxl-turbo": Alias("stabilityai/sdxl-turbo", 512),  # trained at 512; 1024 works, 4x the cost
    "sd15-lcm": Alias("stable-diffusion-v1-5/stable-diffusion-v1-5", 512,
                      lora="latent-consistency/lcm-lora-sdv1-5"),
    # rectified-flow models (SD3's MMDiT; gated on the hub: accept the licence, then `hf auth login`)
    "sd3-medium": Alias("stabilityai/stable-diffusion-3-medium-diffusers", 512, variant=None),
    "sd35-medium": Alias("stabilityai/stable-diffusion-3.5-medium", 512, variant=None),
    "sd35-large-turbo": Alias("stabilityai/stable-diffusion-3.5-large-turbo", 512, variant=None),
}
BACKENDS = ("none", "builtin", *ALIASES)
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")


def local_path(name: str) -> Path | None:
    """The file or folder a model name points at, if it exists on this machine."""
    p = Path(name).expanduser()
    return p if p.exists() else None


def check_model(name: object) -> str:
    """Accept `name` or raise ValueError saying what a model name may be; returns the name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a model name: " + _KINDS)
    if name in BACKENDS:
        return name
    path = local_path(name)
    if path is not None:
        if path.is_dir():
            if (path / "model_index.json").is_file():
                return name
            raise ValueError(f"{name!r} is a folder without model_index.json (not a diffusers model)")
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return name
        raise ValueError(f"{name!r} is not a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})")
    looks_like_path = name.startswith((".", "/", "~")) or name.lower().endswith(CHECKPOINT_SUFFIXES)
    if not looks_like_path and _HUB_ID.match(name) and ".." not in name:
        return name
    if looks_like_path:
        raise ValueError(f"{name!r}: no such file or folder")
    raise ValueError(f"unknown model {name!r}: " + _KINDS)


_KINDS = (f"one of {', '.join(BACKENDS)}, a diffusers folder, a .safetensors/.ckpt file "
          "or a hub id like org/name")
