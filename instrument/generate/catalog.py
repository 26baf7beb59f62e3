"""Which names `--model` and a patch's `model` accept, decided without importing torch.

A model is a named backend (`none`, `builtin`, or an alias below), a folder of builtin weights
(model.safetensors and config.json, as `noclip train` writes them), a local diffusers folder (with
model_index.json), a single-file checkpoint (.safetensors / .ckpt) or a Hugging Face hub id
(`org/name`, downloaded once into the hub cache by `diffusers_backend`). Patch validation and the
CLI ask `check_model`, so a typo is reported before the show starts instead of as a failed download.
"""

from __future__ import annotations

import hashlib
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


def builtin_folder(path: Path) -> bool:
    """Weights of the builtin model's kind (`noclip train`, `noclip train --from builtin --data`)."""
    return (path / "model.safetensors").is_file() and (path / "config.json").is_file() \
        and not (path / "model_index.json").is_file()


def check_model(name: object) -> str:
    """Accept `name` or raise ValueError saying what a model name may be; returns the name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a model name: " + _KINDS)
    if name in BACKENDS:
        return name
    path = local_path(name)
    if path is not None:
        if path.is_dir():
            if (path / "model_index.json").is_file() or builtin_folder(path):
                return name
            raise ValueError(f"{name!r} is a folder without model_index.json (not a diffusers model) nor "
                             "builtin weights (model.safetensors and config.json)")
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return name
        raise ValueError(f"{name!r} is not a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})")
    if _is_hub_id(name, CHECKPOINT_SUFFIXES):
        return name
    if _looks_like_path(name, CHECKPOINT_SUFFIXES):
        raise ValueError(f"{name!r}: no such file or folder")
    raise ValueError(f"unknown model {name!r}: " + _KINDS)


# -- LoRAs (generate/lora.py plays them): names, files and content hashes, without torch -------------

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # what diffusers' trainers and `noclip finetune` write
MAX_LORA_SCALE = 2.0


class LoraError(ValueError):
    """A LoRA that cannot play on this model; the message names the file and why."""


def parse_lora(spec: object) -> tuple[str, float | None]:
    """`PATH_OR_HUB_ID[:SCALE]` → (where, scale or None), or a LoraError saying what is wrong. The
    scale is a plain number after the last colon, 0 to MAX_LORA_SCALE."""
    if not isinstance(spec, str) or not spec.strip() or len(spec) > 1000:
        raise LoraError(f"a LoRA is PATH_OR_HUB_ID[:SCALE] (a string, 1,000 characters at most), not {spec!r}")
    where, sep, tail = spec.rpartition(":")
    if sep and where:
        try:
            scale = float(tail)
        except ValueError:
            return spec, None
        if not 0.0 <= scale <= MAX_LORA_SCALE:
            raise LoraError(f"LoRA {where}: scale {tail} is not within 0..{MAX_LORA_SCALE:g}")
        return where, scale
    return spec, None


def lora_file(where: str, *, download: bool = False) -> Path:
    """The weights file a LoRA name points at: a .safetensors file, a folder's (its
    pytorch_lora_weights.safetensors, or its only .safetensors), or a hub id's from the Hugging Face
    cache (fetched first with `download`: `noclip fetch --lora`, never a show)."""
    path = local_path(where)
    if path is None:
        if not _is_hub_id(where, (".safetensors",)):
            raise LoraError(f"LoRA {where}: no such file or folder")
        from huggingface_hub import snapshot_download

        try:
            path = Path(snapshot_download(where, allow_patterns=["*.safetensors", "*.json"],
                                          local_files_only=not download))
        except Exception as exc:
            raise LoraError(f"LoRA {where}: not in the Hugging Face cache, and a show never downloads: run "
                            f"`noclip fetch --lora {where}` first ({type(exc).__name__})") from None
    if path.is_dir():
        if (path / LORA_WEIGHTS).is_file():
            return path / LORA_WEIGHTS
        found = sorted(path.glob("*.safetensors"))
        if len(found) != 1:
            raise LoraError(f"LoRA {where}: a folder with {LORA_WEIGHTS} or a single .safetensors file "
                            f"({len(found)} found)")
        return found[0]
    if path.suffix.lower() != ".safetensors":
        raise LoraError(f"LoRA {where}: not a .safetensors file")
    return path


def file_sha256(path: Path) -> str:
    """A file's content hash (a performance file records its LoRAs' so a re-render plays the same)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _looks_like_path(name: str, suffixes: tuple[str, ...]) -> bool:
    return name.startswith((".", "/", "~")) or name.lower().endswith(suffixes)


def _is_hub_id(name: str, suffixes: tuple[str, ...]) -> bool:
    """`org/name` as the hub spells ids, and not a path to a missing file (one with `suffixes`)."""
    return not _looks_like_path(name, suffixes) and bool(_HUB_ID.match(name)) and ".." not in name


_KINDS = (f"one of {', '.join(BACKENDS)}, a diffusers folder, a .safetensors/.ckpt file "
          "or a hub id like org/name")
