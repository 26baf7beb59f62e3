"""Stable Diffusion family models through diffusers: SD-Turbo, SDXL-Turbo, SD 1.5 + LCM-LoRA, SD3 and
SD3.5 (rectified flow), or any compatible model the performer brings (see generate/catalog.py for
the names).

A hub id is fetched by `noclip fetch NAME` into the Hugging Face cache (HF_HOME,
~/.cache/huggingface by default), with the hub's progress bars, and plays from there; nothing is
ever downloaded while a show plays or renders (`load` reads the cache only: a model that is not
there is a ModelUnavailable saying to fetch it), so no patch, OSC message or performance file can
start a download. Every model, fetched or local, then loads through the same code: the components
named in its model_index.json. Only what the stream needs is fetched (no safety checker, no
single-file duplicates; for the named models only the fp16 weights, which a CPU upcasts on load).
A single-file checkpoint's configs (its family's JSON and tokenizer files) are fetched the same
way. `.ckpt` files are pickles: diffusers opens them with `torch.load(weights_only=True)`, safe
from torch 2.6 on (CVE-2025-32434), which is why noclip requires it.

Options (keywords of `load`, or environment variables for the CLI):
- `taesd` / NOCLIP_TAESD: swap in the tiny autoencoder (TAESD, or TAESDXL for SDXL): 1, 0, or a
  folder or hub id of an AutoencoderTiny. Default on for the named aliases, off for other models.
- `compile` / NOCLIP_COMPILE=1: torch.compile the UNet and the autoencoder ("reduce-overhead", which
  records CUDA graphs). CUDA only; the first frames then take a while to compile.
- `t5` / NOCLIP_T5=1: SD3's third text encoder (T5-XXL, ~9 GB in fp16), fetched and played. Off by
  default: without it SD3 reads zeros in its place, as diffusers allows (text_encoder_3=None), and a
  show starts in seconds on far less memory; prompts lose some of their grip.
Half precision on CUDA (bfloat16 for SD3 where the GPU has it: SD3.5's activations overflow fp16),
full precision on CPU (SDXL's own VAE stays float32: it overflows in fp16).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import torch

from .catalog import (
    ALIASES,
    CHECKPOINT_SUFFIXES,
    TAESD,
    TAESD3,
    TAESDXL,
    LoraError,
    check_model,
    local_path,
    lora_file,
    parse_lora,
)
from .diffusers_parts import (
    ClipConditioner,
    DiffusersAutoencoder,
    SD3Conditioner,
    TransformerDenoiser,
    UNetDenoiser,
)
from .lora import LiveLoras, fuse, read
from .model import PREDICTIONS, Backend, Schedule

log = logging.getLogger("noclip")

PIPELINE_PARTS = ("unet", "transformer", "vae", "scheduler", "tokenizer", "text_encoder", "tokenizer_2",
                  "text_encoder_2", "tokenizer_3", "text_encoder_3")
T5_PARTS = ("tokenizer_3", "text_encoder_3")          # SD3's T5: loaded only when asked (the `t5` option)
_MODEL_FILES = ["*.json", "*.txt", "*.model"]         # configs, tokenizer vocabularies (T5's sentencepiece)
_SKIP = ["safety_checker/*", "*non_ema*", "*.ema.*"]  # never needed to play


class ModelUnavailable(RuntimeError):
    """The model is neither on this machine nor downloadable now; the message says what to do."""


@dataclass(frozen=True)
class Sources:
    """Where a model's weights are on this machine (after fetching what was missing)."""

    model: Path                # a diffusers folder or a single-file checkpoint
    lora: Path | None = None   # a folder with pytorch_lora_weights.safetensors, fused into the UNet
    tiny: Path | None = None   # an AutoencoderTiny folder that replaces the model's VAE


def locate(name: str, *, taesd: bool | str | None = None, t5: bool | None = None,
           download: bool = False) -> Sources:
    """Everything `load(name)` needs, from this machine (the hub cache or local paths). With
    `download` (`noclip fetch`, never a show) what is missing is fetched into the cache first."""
    check_model(name)
    alias = ALIASES.get(name)
    # named models: always their fp16 weights (half the download; a CPU upcasts them on load)
    model = local_path(name) if alias is None else None
    if model is None:
        repo, variant = (alias.repo, alias.variant) if alias else (name, None)
        model = fetch(repo, **_weights(variant, t5=bool(_option(t5, "NOCLIP_T5", False))), model=name,
                      download=download)
    elif download and model.is_file():
        _fetch_single_file_configs(model, name)
    lora = (fetch(alias.lora, ["pytorch_lora_weights.safetensors"], model=name, download=download)
            if alias and alias.lora else None)
    tiny = _option(taesd, "NOCLIP_TAESD", alias is not None)
    if tiny:
        source = tiny if isinstance(tiny, str) else {"sdxl": TAESDXL, "sd3": TAESD3}.get(_family(model), TAESD)
        tiny = local_path(source) or fetch(source, ["config.json", "diffusion_pytorch_model.safetensors"],
                                           model=name, download=download)
    return Sources(model, lora, tiny or None)


def load(name: str, device: str | torch.device | None = None, *, taesd: bool | str | None = None,
         compile: bool | None = None, t5: bool | None = None, loras: tuple[str, ...] = ()) -> Backend:
    """The backend of model `name`, with the LoRAs named in `loras` (`PATH_OR_HUB_ID[:SCALE]`, the
    scale being the patch's business) played live under lora1, lora2, ...; a LoRA that cannot play
    is left out, the reason in the backend's notes."""
    t5 = bool(_option(t5, "NOCLIP_T5", False))
    src = locate(name, taesd=taesd, t5=t5)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    family = _family(src.model)
    dtype = torch.float32
    if dev.type == "cuda":
        dtype = torch.bfloat16 if family == "sd3" and torch.cuda.is_bf16_supported() else torch.float16
    parts = (_from_single_file(src.model, dtype) if src.model.is_file()
             else _from_folder(src.model, dtype, t5=t5))
    if src.lora is not None:
        n = fuse(parts["unet"], lora_file(str(src.lora)), family)
        log.info("%s: fused the LoRA in %s into %d UNet layers", name, src.lora, n)
    if src.tiny is not None:
        from diffusers import AutoencoderTiny

        parts["vae"] = AutoencoderTiny.from_pretrained(src.tiny, torch_dtype=dtype)
    elif dtype == torch.float16 and parts.get("text_encoder_2") and parts["vae"].config.get("force_upcast"):
        parts["vae"] = parts["vae"].to(torch.float32)  # SDXL's VAE overflows in fp16 (as its pipelines know)
    alias = ALIASES.get(name)
    compiled = bool(_option(compile, "NOCLIP_COMPILE", False)) and not loras  # hooks would be traced away
    backend = assemble(name, parts, dev, dtype, size=alias.size if alias else None, compile=compiled)
    if not loras:
        return backend
    net = parts["transformer"] if parts.get("transformer") is not None else parts["unet"]
    return hook_loras(backend, net, family, loras)


def hook_loras(backend: Backend, net: torch.nn.Module, family: str, loras: tuple[str, ...]) -> Backend:
    """The backend with `loras` hooked onto its network (lora.LiveLoras), in order; one that cannot
    play is skipped (its slot stays empty, so lora2 stays the second LoRA named) and noted."""
    from dataclasses import replace

    live, notes = LiveLoras(net, backend.dtype), []
    for i, spec in enumerate(loras, 1):
        try:
            path = lora_file(parse_lora(spec)[0])
            n = live.add(path, read(path, family, net), family, slot=i - 1)
            log.info("%s: LoRA %s on %d layers, played as lora%d", backend.name, path, n, i)
        except LoraError as exc:
            notes.append(f"lora{i}: {exc}; playing without it")
    return replace(backend, loras=live.set, notes=backend.notes + tuple(notes))


def assemble(name: str, parts: dict[str, Any], device: torch.device, dtype: torch.dtype,
             *, size: int | None = None, compile: bool = False) -> Backend:
    """Wrap loaded diffusers components (unet or transformer, vae, scheduler, tokenizer(s), text
    encoder(s))."""
    if parts.get("transformer") is not None:
        return _assemble_sd3(name, parts, device, dtype, size=size, compile=compile)
    unet, vae, sched = parts["unet"], parts["vae"], parts["scheduler"]
    for m in (unet, vae, parts["text_encoder"], parts.get("text_encoder_2")):
        if m is not None:
            m.requires_grad_(False).eval().to(device)  # already in its dtype (from_pretrained)
    prediction = sched.config.get("prediction_type", "epsilon")
    if prediction not in PREDICTIONS:
        raise ValueError(f"{name}: scheduler predicts {prediction!r}, not one of {', '.join(PREDICTIONS)}")
    autoencoder = DiffusersAutoencoder(vae)
    side = size or unet.config.sample_size * autoencoder.factor
    encoders = [e for e in (parts["text_encoder"], parts.get("text_encoder_2")) if e is not None]
    tokenizers = [t for t in (parts["tokenizer"], parts.get("tokenizer_2")) if t is not None]
    sdxl = len(encoders) == 2
    conditioner = ClipConditioner(tokenizers, encoders, device, sdxl=sdxl)
    denoiser = UNetDenoiser(unet, prediction, Schedule(sched.alphas_cumprod),
                            sdxl_factor=autoencoder.factor if sdxl else 0, pooled_dim=conditioner.pooled_dim)
    if compile and device.type == "cuda":
        unet.to(memory_format=torch.channels_last)
        denoiser.unet = torch.compile(unet, mode="reduce-overhead")
        vae.encoder = torch.compile(vae.encoder, mode="reduce-overhead")
        vae.decoder = torch.compile(vae.decoder, mode="reduce-overhead")
        autoencoder.graphs = denoiser.graphs = True
    elif compile:
        log.info("%s: compile asked for, but it only pays on CUDA; playing uncompiled", name)
    return Backend(name=name, autoencoder=autoencoder, conditioner=conditioner, denoiser=denoiser,
                   device=device, dtype=dtype, size=(side, side))


def _assemble_sd3(name: str, parts: dict[str, Any], device: torch.device, dtype: torch.dtype,
                  *, size: int | None = None, compile: bool = False) -> Backend:
    """SD3 / SD3.5: the MMDiT transformer on a rectified-flow schedule with the scheduler's shift,
    its 16-channel VAE (scaling and shift factors), two CLIP encoders and T5 where loaded."""
    transformer, vae, sched = parts["transformer"], parts["vae"], parts["scheduler"]
    encoders = [parts["text_encoder"], parts.get("text_encoder_2")]
    if encoders[1] is None:
        raise ValueError(f"{name}: an SD3 model needs text_encoder_2 (both CLIP encoders)")
    t5 = (parts["tokenizer_3"], parts["text_encoder_3"]) if parts.get("text_encoder_3") is not None else None
    for m in (transformer, vae, *encoders, t5[1] if t5 else None):
        if m is not None:
            m.requires_grad_(False).eval().to(device)
    if sched.config.get("use_dynamic_shifting"):
        raise ValueError(f"{name}: the scheduler shifts by resolution (use_dynamic_shifting); noclip plays "
                         "SD3's fixed shift")
    autoencoder = DiffusersAutoencoder(vae)
    conditioner = SD3Conditioner([parts["tokenizer"], parts["tokenizer_2"]], encoders, t5,
                                 transformer.config.joint_attention_dim, device)
    schedule = Schedule.flow(sched.config.num_train_timesteps, float(sched.config.shift))
    denoiser = TransformerDenoiser(transformer, schedule, conditioner.pooled_dim)
    if compile and device.type == "cuda":
        denoiser.transformer = torch.compile(transformer, mode="reduce-overhead")
        autoencoder.graphs = denoiser.graphs = True
    side = size or transformer.config.sample_size * autoencoder.factor
    return Backend(name=name, autoencoder=autoencoder, conditioner=conditioner, denoiser=denoiser,
                   device=device, dtype=dtype, size=(side, side))


# -- where the weights come from ---------------------------------------------------------------

def fetch(repo: str, allow: list[str], *, model: str, ignore: list[str] | None = None,
          download: bool = False) -> Path:
    """The local snapshot of a hub repository (only `allow`ed files), from the cache; with
    `download` (and the hub not switched off) fetched into it first."""
    from huggingface_hub import constants, snapshot_download

    offline = _offline() or not download
    try:
        return Path(snapshot_download(repo, allow_patterns=allow, ignore_patterns=ignore,
                                      local_files_only=offline))
    except Exception as exc:  # not cached, no network, no such repository, no access
        if not download:
            raise ModelUnavailable(
                f"model {model!r} needs {repo!r}, which is not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}); a show never downloads. Run `noclip fetch {model}` "
                f"first (or `hf download {repo}`; on a machine without a network, fetch elsewhere "
                f"and copy the cache here), or give --model a local diffusers folder or a "
                f".safetensors checkpoint.") from None
        why = "the hub is switched off (HF_HUB_OFFLINE)" if offline else f"{type(exc).__name__}: {exc}"
        raise ModelUnavailable(
            f"model {model!r} needs {repo!r}, which is not in the Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and could not be downloaded: {why}. On a machine with a "
            f"network run `noclip fetch {model}` (or `hf download {repo}`) and copy the cache here, "
            f"or give --model a local diffusers folder or a .safetensors checkpoint.") from None


def _fetch_single_file_configs(path: Path, model: str) -> Path:
    """The configs and tokenizer files of a checkpoint's model family (diffusers infers which from
    its keys), fetched so that `_from_single_file` can build it without the network."""
    from diffusers.loaders.single_file_utils import fetch_diffusers_config, load_single_file_checkpoint

    try:
        repo = fetch_diffusers_config(load_single_file_checkpoint(str(path)))["pretrained_model_name_or_path"]
    except Exception as exc:
        raise ModelUnavailable(f"{path}: diffusers does not recognise this checkpoint ({exc})") from None
    return fetch(repo, ["**/*.json", "*.json", "*.txt", "**/*.txt", "**/*.model"], model=model, download=True)


def _weights(variant: str | None, *, t5: bool = False) -> dict[str, list[str]]:
    skip = _SKIP if t5 else [*_SKIP, *(f"{part}/*" for part in T5_PARTS)]
    if variant:
        return {"allow": [*_MODEL_FILES, f"*/*.{variant}.safetensors"], "ignore": skip}
    return {"allow": [*_MODEL_FILES, "*/*.safetensors"], "ignore": [*skip, "*.fp16.*"]}


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    return flag or bool(constants.HF_HUB_OFFLINE)


def _from_folder(folder: Path, dtype: torch.dtype, *, t5: bool = False) -> dict[str, Any]:
    """The pipeline parts of a diffusers folder, each by the class its model_index.json names (SD3's
    T5 only with `t5`)."""
    index = json.loads((folder / "model_index.json").read_text())
    if (index.get("transformer") or [None, None])[1] not in (None, "SD3Transformer2DModel"):
        raise ValueError(f"{folder}: its transformer is a {index['transformer'][1]}; noclip plays SD, SDXL "
                         "and SD3 models (SD3Transformer2DModel)")
    parts: dict[str, Any] = {}
    for part in PIPELINE_PARTS:
        entry = index.get(part)
        if not entry or entry[0] is None or (part in T5_PARTS and not t5):
            continue
        library, cls_name = entry
        if library not in ("diffusers", "transformers"):
            raise ValueError(f"{folder}: {part} is a {library}.{cls_name}; noclip plays diffusers models")
        cls = getattr(import_module(library), cls_name)
        kw: dict[str, Any] = {}
        if not part.startswith(("tokenizer", "scheduler")):
            kw["torch_dtype" if library == "diffusers" or _transformers_4() else "dtype"] = dtype
            kw["variant"] = _variant(folder / part)
        parts[part] = cls.from_pretrained(folder / part, **kw)
    net = "transformer" if "transformer" in parts else "unet"
    for need in (net, "vae", "scheduler", "tokenizer", "text_encoder"):
        if need not in parts:
            raise ValueError(f"{folder}: no {need} in model_index.json (noclip plays SD, SDXL and SD3 models)")
    return parts


def _transformers_4() -> bool:
    import transformers

    return int(transformers.__version__.split(".")[0]) < 5  # it took torch_dtype, 5 takes dtype


def _variant(part: Path) -> str | None:
    """fp16 when the folder only has the fp16 weights (a snapshot fetched for half precision)."""
    names = [p.name for p in part.glob("*.safetensors")]
    plain = [n for n in names if n.count(".") == 1]  # model.safetensors, sharded model-00001-of-00002…
    return "fp16" if not plain and any(".fp16." in n for n in names) else None


def _from_single_file(path: Path, dtype: torch.dtype) -> dict[str, Any]:
    """A checkpoint in the original (LDM) layout. diffusers converts it with its family's configs,
    read from the hub cache only (`noclip fetch PATH` puts them there)."""
    import diffusers

    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise ValueError(f"{path}: not a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)})")
    cls = diffusers.StableDiffusionXLPipeline if _is_sdxl(path) else diffusers.StableDiffusionPipeline
    kw: dict[str, Any] = {"torch_dtype": dtype, "local_files_only": True}  # a show never downloads
    if cls is diffusers.StableDiffusionPipeline:
        kw.update(safety_checker=None, requires_safety_checker=False)
    try:
        pipe = cls.from_single_file(str(path), **kw)
    except OSError as exc:
        raise ModelUnavailable(f"{path}: diffusers could not set up this checkpoint ({exc}); its "
                               f"family's configs must be in the hub cache: run `noclip fetch {path}` "
                               "where there is a network, or convert it to a diffusers folder") from None
    return {part: getattr(pipe, part, None) for part in PIPELINE_PARTS}


def _family(path: Path) -> str:
    """"sd3" (a transformer), "sdxl" (two text encoders, or a checkpoint's second embedder) or "sd"."""
    if path.is_dir():
        index = json.loads((path / "model_index.json").read_text())
        if (index.get("transformer") or [None])[0]:
            return "sd3"
    return "sdxl" if _is_sdxl(path) else "sd"


def _is_sdxl(path: Path) -> bool:
    """An SDXL model (two text encoders) or checkpoint (a second embedder)?"""
    if path.is_dir():
        entry = json.loads((path / "model_index.json").read_text()).get("text_encoder_2")
        return bool(entry and entry[0])
    if path.suffix.lower() != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return any(k.startswith("conditioner.embedders.1.") for k in f.keys())  # noqa: SIM118 (safe_open is no dict)


def _option(value: Any, env: str, default: Any) -> Any:
    """A keyword wins; else the environment variable (1/0/on/off/true/false or a name); else default."""
    if value is not None:
        return value
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if raw.lower() in ("1", "on", "true", "yes"):
        return True
    if raw.lower() in ("0", "off", "false", "no"):
        return False
    return raw
