"""LoRAs: low-rank additions to a diffusion model's layers, read from diffusers' or kohya's files and
played live (each under a registry parameter, `lora1` ... `lora4`) or fused for good (LCM-LoRA).

Live, each LoRA stays apart from the weights: a forward hook on every layer it touches adds
`scale * alpha / rank * up(down(x))` to the layer's output, with the scale read from its parameter
every frame. A knob therefore takes effect on the next denoiser call with nothing reloaded or
re-fused, a scale of 0 skips the LoRA altogether (exactly the picture without it), and several
LoRAs on one layer add up. The cost is two thin matrix products per touched layer (rank 4-64
against widths of 320-1536).

Files (found by catalog.lora_file, which needs no torch): a `.safetensors` file, or a folder holding
`pytorch_lora_weights.safetensors` (what diffusers' trainers and `noclip finetune` write) or a single
`.safetensors`; or a hub id already in the Hugging Face cache (`noclip fetch --lora ID`; a show
never downloads). diffusers reads and converts the names (its own, PEFT's, and kohya's for SD
1.x/2.x and SDXL); for SD3 and SD3.5 diffusers' layout is read as it is and kohya's (sd-scripts: the
original MMDiT's module names, q, k and v fused in one `qkv`) is converted here, as diffusers converts
the original checkpoint itself (`kohya_sd3`). Text-encoder parts are left out (a prompt's encoding
is cached, so it could not follow the knob), and the log says so.

Bad input is named and the show plays without the LoRA: a file that does not read, one for another
model family (its layers are not this model's, or not their shapes), one with no weights for the
model's network.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import LORA_PARAMS
from .catalog import LoraError

log = logging.getLogger("noclip")

MAX_LORAS = len(LORA_PARAMS)    # lora1 ... lora4: registry parameters (generate/__init__.py)
_NET = {"sd": "unet", "sdxl": "unet", "sd3": "transformer"}  # the prefix of a family's network keys


@dataclass(frozen=True)
class Layer:
    """One layer's low-rank addition: out += scale * factor * up(down(x))."""

    down: torch.Tensor   # (rank, in) for a Linear; (rank, in, kh, kw) for a Conv2d
    up: torch.Tensor     # (out, rank) or (out, rank, 1, 1)
    factor: float        # alpha / rank (1 where the file names no alpha)


def read(path: Path, family: str, net: nn.Module) -> dict[str, Layer]:
    """The layers of `net` (the family's network) a LoRA file changes, by module name: diffusers
    reads and converts the file for the family ("sd", "sdxl", "sd3"); kohya's SD3 names are
    converted by `kohya_sd3`."""
    import diffusers
    from diffusers.utils import convert_unet_state_dict_to_peft

    pipe = {"sd": diffusers.StableDiffusionPipeline, "sdxl": diffusers.StableDiffusionXLPipeline,
            "sd3": diffusers.StableDiffusion3Pipeline}[family]
    prefix = _NET[family]
    try:
        loaded = pipe.lora_state_dict(str(path.parent), weight_name=path.name)
    except Exception as exc:
        raise LoraError(f"LoRA {path}: does not read ({type(exc).__name__}: {exc})") from None
    state, alphas = loaded if isinstance(loaded, tuple) else (loaded, None)
    if family == "sd3" and any(k.startswith(KOHYA) for k in state):
        return _kohya_layers(path, state, len(list(net.get_submodule("transformer_blocks").children())))
    mine = {k.removeprefix(prefix + "."): v for k, v in state.items() if k.startswith(prefix + ".")}
    others = len(state) - len(mine)
    if others:
        log.info("LoRA %s: %d tensors for the text encoders left out (only the %s plays live)",
                 path, others, prefix)
    if prefix == "unet":
        mine = convert_unet_state_dict_to_peft(mine)
    factors: dict[str, float] = {}
    for key, alpha in (alphas or {}).items():  # alpha keys name the layer as the weights did
        layer_key = key.removeprefix(prefix + ".").removesuffix(".alpha")
        (layer,) = (convert_unet_state_dict_to_peft({layer_key: 0}) if prefix == "unet" else {layer_key: 0})
        factors[layer.removesuffix(".lora_A.weight")] = float(alpha)
    for key in [k for k in mine if k.endswith(".alpha")]:  # PEFT-style alphas in the weights
        factors[key.removesuffix(".alpha")] = float(mine.pop(key))
    layers = {}
    for key, down in mine.items():
        if not key.endswith(".lora_A.weight"):
            continue
        name = key.removesuffix(".lora_A.weight")
        up = mine.get(name + ".lora_B.weight")
        if up is None:
            raise LoraError(f"LoRA {path}: {name} has lora_A without lora_B")
        rank = down.shape[0]
        layers[name] = Layer(down.float(), up.float(), factors.get(name, rank) / rank)
    if not layers:
        raise LoraError(f"LoRA {path}: no {prefix} LoRA weights in it (a LoRA for another model family?)")
    return layers


# -- kohya's SD3 LoRAs -------------------------------------------------------------------------------

KOHYA = "lora_unet_"   # sd-scripts' prefix of the MMDiT's layers (lora_te1_, _te2_, _te3_: text encoders)

# an MMDiT layer (its original module name, dots as underscores) -> diffusers' module names; a fused
# qkv names three (its up matrix is cut in three along the output, the down matrix shared)
_BLOCK = re.compile(r"joint_blocks_(\d+)_(x|context)_block_"
                    r"(attn2?_qkv|attn2?_proj|mlp_fc1|mlp_fc2|adaLN_modulation_1)$")
_SIDE = {("x", "attn_qkv"): ("attn.to_q", "attn.to_k", "attn.to_v"),
         ("context", "attn_qkv"): ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
         ("x", "attn2_qkv"): ("attn2.to_q", "attn2.to_k", "attn2.to_v"),
         ("x", "attn_proj"): ("attn.to_out.0",), ("context", "attn_proj"): ("attn.to_add_out",),
         ("x", "attn2_proj"): ("attn2.to_out.0",),
         ("x", "mlp_fc1"): ("ff.net.0.proj",), ("x", "mlp_fc2"): ("ff.net.2",),
         ("context", "mlp_fc1"): ("ff_context.net.0.proj",), ("context", "mlp_fc2"): ("ff_context.net.2",),
         ("x", "adaLN_modulation_1"): ("norm1.linear",),
         ("context", "adaLN_modulation_1"): ("norm1_context.linear",)}
_OUTER = {"x_embedder_proj": "pos_embed.proj", "context_embedder": "context_embedder",
          "t_embedder_mlp_0": "time_text_embed.timestep_embedder.linear_1",
          "t_embedder_mlp_2": "time_text_embed.timestep_embedder.linear_2",
          "y_embedder_mlp_0": "time_text_embed.text_embedder.linear_1",
          "y_embedder_mlp_2": "time_text_embed.text_embedder.linear_2",
          "final_layer_linear": "proj_out", "final_layer_adaLN_modulation_1": "norm_out.linear"}


def kohya_sd3(name: str, blocks: int) -> tuple[tuple[str, ...], bool] | None:
    """diffusers' module names for kohya's SD3 layer `name` (without the prefix) in a transformer of
    `blocks` joint blocks, and whether the up matrix's halves swap (the final norm's and the last
    block's context norm: the original modulates shift then scale, diffusers scale then shift); None
    for a name that is not an MMDiT layer."""
    if name in _OUTER:
        return (_OUTER[name],), name == "final_layer_adaLN_modulation_1"
    m = _BLOCK.match(name)
    if m is None or (m[2], m[3]) not in _SIDE:
        return None
    i, side, layer = int(m[1]), m[2], m[3]
    return (tuple(f"transformer_blocks.{i}.{n}" for n in _SIDE[side, layer]),
            side == "context" and layer == "adaLN_modulation_1" and i == blocks - 1)


def _kohya_layers(path: Path, state: dict[str, torch.Tensor], blocks: int) -> dict[str, Layer]:
    """The layers of a kohya SD3 LoRA's state, in diffusers' names (`kohya_sd3`)."""
    names = {k.removeprefix(KOHYA).split(".")[0] for k in state if k.startswith(KOHYA)}
    others = sum(1 for k in state if not k.startswith(KOHYA))
    if others:
        log.info("LoRA %s: %d tensors for the text encoders left out (only the transformer plays live)",
                 path, others)
    layers: dict[str, Layer] = {}
    for name in sorted(names):
        key = KOHYA + name
        down, up = state.get(key + ".lora_down.weight"), state.get(key + ".lora_up.weight")
        target = kohya_sd3(name, blocks)
        if target is None:
            raise LoraError(f"LoRA {path}: {key} is not a layer of an SD3 transformer")
        if down is None or up is None:
            raise LoraError(f"LoRA {path}: {key} lacks its lora_down or lora_up weight")
        rank = down.shape[0]
        alpha = state.get(key + ".alpha")
        factor = (float(alpha) if alpha is not None else rank) / rank
        modules, swap = target
        if up.shape[0] % len(modules) or (swap and up.shape[0] % 2):
            raise LoraError(f"LoRA {path}: {key}'s up matrix {tuple(up.shape)} does not split as {name} does")
        if swap:
            shift, scale = up.chunk(2, dim=0)
            up = torch.cat([scale, shift])
        for module, part in zip(modules, up.chunk(len(modules), dim=0), strict=True):
            layers[module] = Layer(down.float(), part.float(), factor)
    return layers


def check(net: nn.Module, layers: dict[str, Layer], path: Path,
          family: str) -> dict[str, nn.Linear | nn.Conv2d]:
    """The modules the layers name, each a Linear or Conv2d of the LoRA's shapes, or a LoraError
    naming the first that is not (the mark of a LoRA for another model)."""
    found: dict[str, nn.Linear | nn.Conv2d] = {}
    for name, layer in layers.items():
        try:
            module = net.get_submodule(name)
        except AttributeError:
            raise LoraError(f"LoRA {path}: this {family} model has no layer {name} (a LoRA for another "
                            "model family?)") from None
        if isinstance(module, nn.Linear):
            shape_ok = layer.down.dim() == 2 and (layer.down.shape[1], layer.up.shape[0]) == (
                module.in_features, module.out_features)
        elif isinstance(module, nn.Conv2d):
            shape_ok = layer.down.dim() == 4 and (layer.down.shape[1], layer.up.shape[0]) == (
                module.in_channels, module.out_channels)
        else:
            raise LoraError(f"LoRA {path}: {name} is a {type(module).__name__}, not a Linear or Conv2d")
        if not shape_ok or layer.up.shape[1] != layer.down.shape[0]:
            raise LoraError(f"LoRA {path}: {name} is {tuple(module.weight.shape)} in this {family} model, the "
                            f"LoRA's is {tuple(layer.up.shape[:1]) + tuple(layer.down.shape[1:])} (a LoRA for "
                            "another model family?)")
        found[name] = module
    return found


def fuse(net: nn.Module, path: Path, family: str, scale: float = 1.0) -> int:
    """Fuse the LoRA file at `path` into the weights for good: W += scale * factor * up @ down
    (LCM-LoRA: it costs nothing per frame). Returns the layers changed."""
    layers = read(path, family, net)
    for name, module in check(net, layers, path, family).items():
        layer, w = layers[name], module.weight
        delta = (layer.up.flatten(1) @ layer.down.flatten(1)).reshape(w.shape)
        w.data += (scale * layer.factor * delta).to(w.device, w.dtype)
    return len(layers)


class LiveLoras:
    """LoRAs hooked onto a network, each with its own scale (`set`), applied in every forward."""

    def __init__(self, net: nn.Module, dtype: torch.dtype) -> None:
        self.net, self.dtype = net, dtype
        self.scales = [0.0] * MAX_LORAS   # by slot: lora1 is slot 0
        self._on: dict[nn.Module, list[tuple[int, Layer]]] = {}

    def add(self, path: Path, layers: dict[str, Layer], family: str, slot: int) -> int:
        """Hook one LoRA's layers as lora{slot + 1} (checked first: nothing is hooked for a LoRA that
        does not fit). Returns the layers hooked."""
        if not 0 <= slot < MAX_LORAS:
            raise LoraError(f"LoRA {path}: {MAX_LORAS} LoRAs at most (lora1 ... lora{MAX_LORAS})")
        modules = check(self.net, layers, path, family)
        index = slot
        device = next(self.net.parameters()).device
        for name, module in modules.items():
            layer = layers[name]
            moved = Layer(layer.down.to(device, self.dtype), layer.up.to(device, self.dtype), layer.factor)
            if module not in self._on:
                self._on[module] = []
                module.register_forward_hook(self._hook)  # for the network's life, as the LoRA is
            self._on[module].append((index, moved))
        self.scales[slot] = 1.0
        return len(modules)

    def set(self, scales: tuple[float, ...] | list[float]) -> None:
        """The scales by slot (the lora1, lora2, ... values; missing ones are 0: off)."""
        for i in range(MAX_LORAS):
            self.scales[i] = float(scales[i]) if i < len(scales) else 0.0

    def _hook(self, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> torch.Tensor:
        x = inputs[0]
        for index, layer in self._on[module]:
            s = self.scales[index]
            if s == 0.0:
                continue
            if isinstance(module, nn.Conv2d):
                h = F.conv2d(x, layer.down, stride=module.stride, padding=module.padding,
                             dilation=module.dilation)
                out = out + (s * layer.factor) * F.conv2d(h, layer.up)
            else:
                out = out + (s * layer.factor) * F.linear(F.linear(x, layer.down), layer.up)
        return out
