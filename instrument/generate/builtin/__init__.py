"""The builtin backend: our own small diffusion model, trained on our own Backrooms and shipped in
models/builtin/ (a few MB), so noclip dreams on any machine with no download and no GPU.

Prompts are levels: "level 0" (the Lobby), "level 1" (the Habitable Zone), also "0", "1", "lobby",
"habitable"; the empty prompt (or anything else) is unconditional. Class embeddings blend linearly,
so a prompt change cross-fades like a text prompt would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ...resources import data_dir
from ..model import Backend, Schedule
from .model import Change, Config, Decoder, Encoder, UNet, channels_last, cosine_alphas, shifted


def _weights() -> Path:
    try:
        return data_dir("models") / "builtin"   # inside the wheel when installed
    except FileNotFoundError:
        return Path(__file__).resolve().parents[3] / "models" / "builtin"


WEIGHTS = _weights()
NAMES = {"lobby": 0, "habitable": 1, "habitable zone": 1}


class Autoencoder:
    """Encoder/decoder with the latent normalisation folded in (unit variance, zero mean)."""

    def __init__(self, config: Config, enc: Encoder, dec: Decoder, shift: torch.Tensor, scale: torch.Tensor):
        self.factor, self.channels = config.factor, config.latent
        self.enc, self.dec = enc, dec
        self.shift, self.scale = shift.reshape(1, -1, 1, 1), scale.reshape(1, -1, 1, 1)

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        return (self.enc(image.contiguous(memory_format=torch.channels_last)) - self.shift) * self.scale

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.dec((latent / self.scale + self.shift).contiguous(memory_format=torch.channels_last))


class Conditioner:
    def __init__(self, unet: UNet, classes: int) -> None:
        self.table, self.classes = unet.classes, classes

    def index(self, prompt: str) -> int:
        text = prompt.strip().lower()
        if text in NAMES:
            return NAMES[text]
        m = re.fullmatch(r"(?:level\s*)?(\d+)", text)
        return int(m.group(1)) if m and int(m.group(1)) < self.classes else self.classes

    def __call__(self, prompt: str) -> torch.Tensor:
        w = self.table.weight
        return w[self.index(prompt)][None].detach().clone()


class Denoiser:
    """The UNet on the playing schedule: timestep t means training timestep `where[t]`. It reads the
    clean latent of the frame (`base`) when its config says so (model.py)."""

    def __init__(self, unet: UNet, schedule: Schedule, prediction: str, where: torch.Tensor) -> None:
        self.unet, self.schedule, self.prediction, self.where = unet, schedule, prediction, where

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        t = self.where.to(t.device)[t.long()]
        cl = torch.channels_last
        return self.unet(x.contiguous(memory_format=cl), t, cond,
                         None if base is None else base.contiguous(memory_format=cl))


class ChangeDecoder:
    """The Change network on the engine's latents (channels last, as the other parts run)."""

    def __init__(self, net: Change) -> None:
        self.net = net

    def __call__(self, x0: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        cl = torch.channels_last
        return self.net(x0.contiguous(memory_format=cl), base.contiguous(memory_format=cl))


def read_config(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def config_of(meta: dict) -> Config:
    """The architecture a config.json describes; weights from before version 2 (no `base` key) have
    a denoiser that does not read the base latent, those without a `change` key no change
    decoder (the engine decodes both latents); each names its prediction (before session 18's
    "edit", "v_prediction")."""
    return Config(**{"base": False, "change": 0, **meta["config"]})


def build(meta: dict, state: dict[str, torch.Tensor], device: str | torch.device = "cpu") -> Backend:
    """A Backend from a config dict and a flat state dict (enc.*, dec.*, unet.*, latent_*)."""
    config = config_of(meta)
    device = torch.device(device)
    enc, dec, unet = Encoder(config), Decoder(config), UNet(config)
    change = Change(config) if config.change else None
    parts = [("enc.", enc), ("dec.", dec), ("unet.", unet)] + ([("change.", change)] if change else [])
    for prefix, module in parts:
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        channels_last(module.eval().requires_grad_(False), device)
    ae = Autoencoder(config, enc, dec, state["latent_shift"].to(device), state["latent_scale"].to(device))
    played, where = shifted(cosine_alphas(config.T), config.shift)
    return Backend("builtin", ae, Conditioner(unet, config.classes),
                   Denoiser(unet, Schedule(played), config.prediction, where), device, torch.float32,
                   (config.width, config.height), edits=config.base,
                   change=None if change is None else ChangeDecoder(change), int8=config.int8)


def choose_device(device: str | torch.device | None = None) -> tuple[torch.device, str]:
    """Where the model runs, and why: as asked, else a CUDA GPU where there is one, else the CPU,
    which plays this model at tape resolution in real time on two cores."""
    if device is not None:
        return torch.device(device), "as asked"
    if torch.cuda.is_available():
        return torch.device("cuda"), f"CUDA GPU found ({torch.cuda.get_device_name(0)})"
    return torch.device("cpu"), "no CUDA GPU; the builtin model is small enough for the CPU"


def describe(device: str | torch.device | None = None, folder: Path = WEIGHTS) -> str:
    """One line for `noclip devices` and `noclip bench`: which model runs where, and why."""
    where, why = choose_device(device)
    weights = Path(folder) / "model.safetensors"
    if not weights.is_file():
        return f"builtin: weights missing ({weights}); run `noclip train`"
    c = config_of(read_config(Path(folder)))
    return (f"builtin: bundled model ({weights.stat().st_size / 2**20:.1f} MB, no download) at "
            f"{c.width}x{c.height}, latents {c.latent}x{c.height // c.factor}x{c.width // c.factor}, "
            f"on {where.type} ({why})")


def load(device: str | torch.device | None = None, folder: Path = WEIGHTS) -> Backend:
    """The shipped model, on `device` or the best one found (see choose_device)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"{folder}/model.safetensors missing: run `noclip train` to make it")
    where, _ = choose_device(device)
    return build(read_config(folder), load_file(str(folder / "model.safetensors")), where)
