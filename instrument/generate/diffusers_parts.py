"""diffusers and transformers modules behind the three interfaces of generate/model.py.

Each wrapper does what diffusers' own image-to-image pipelines do with the same module, no more, so
the stream engine on these parts computes what the pipeline computes (tests/test_diffusers_backend
and tests/test_sd3_backend hold them to it). Inputs are cast to the module's dtype and results back
to the caller's.

Pooled packing (SDXL, SD3): the denoiser wants the prompt's token states *and* a pooled text
embedding. The conditioner returns both in one tensor, (1, L + r, D): the L token rows, then the
pooled embedding laid over r = ceil(pooled_dim / D) rows (zeros after it; r is 1 for SDXL and SD3's
real sizes). Linear blends of two prompts stay valid (both parts blend linearly), and repeating it
along the batch repeats both.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F

from .model import Schedule


class DiffusersAutoencoder:
    """AutoencoderKL (the posterior's mean) or AutoencoderTiny (TAESD); latents times scaling_factor."""

    def __init__(self, vae: Any) -> None:
        """`vae`: diffusers' AutoencoderKL or AutoencoderTiny (a torch Module whose config diffusers
        sets at run time, so typed Any)."""
        cfg = vae.config
        blocks = getattr(cfg, "block_out_channels", None) or cfg.encoder_block_out_channels
        self.vae, self.factor = vae, 2 ** (len(blocks) - 1)
        self.channels: int = cfg.latent_channels
        self.scale = float(cfg.scaling_factor)
        self.shift = float(getattr(cfg, "shift_factor", None) or 0.0)  # SD3's latents are centred first
        self.tiny = type(vae).__name__ == "AutoencoderTiny"
        self.dtype = next(vae.parameters()).dtype
        self.graphs = False  # set when compiled with CUDA graphs (diffusers_backend.assemble)

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> torch.Tensor:
        _step(self.graphs)
        enc = self.vae.encode(image.to(self.dtype))
        z = enc.latents if self.tiny else enc.latent_dist.mean
        return (self.scale * (z - self.shift)).to(image.dtype)

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        _step(self.graphs)
        z = latent / self.scale + self.shift
        return self.vae.decode(z.to(self.dtype)).sample.to(latent.dtype, copy=self.graphs)


def pack_pooled(tokens: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
    """(1, L, D) token states and a (1, P) pooled embedding as one (1, L + ceil(P / D), D) tensor."""
    d = tokens.shape[-1]
    rows = math.ceil(pooled.shape[-1] / d)
    laid = F.pad(pooled.to(tokens.dtype), (0, rows * d - pooled.shape[-1])).reshape(1, rows, d)
    return torch.cat([tokens, laid], dim=1)


def unpack_pooled(cond: torch.Tensor, pooled_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """pack_pooled's inverse, along a batch: (B, L, D) token states, (B, pooled_dim) pooled."""
    rows = math.ceil(pooled_dim / cond.shape[-1])
    return cond[:, :-rows], cond[:, -rows:].flatten(1)[:, :pooled_dim]


class ClipConditioner:
    """CLIP text conditioning as SD's pipelines compute it (no classifier-free guidance: the turbo
    and LCM models need none). SD: the last hidden states. SDXL: both encoders' penultimate
    states side by side, plus the pooled embedding of the second, packed (see the module doc).
    Encodings are cached per prompt (the newest `keep`): a prompt played again costs nothing."""

    def __init__(self, tokenizers: list[Any], encoders: list[Any], device: torch.device,
                 *, sdxl: bool, keep: int = 64) -> None:
        """`tokenizers`, `encoders`: transformers' CLIP tokenizers and text models (typed Any, as
        their configs are set at run time)."""
        self.tokenizers, self.encoders, self.device, self.sdxl = tokenizers, encoders, device, sdxl
        self.pooled_dim: int = encoders[-1].config.projection_dim if sdxl else 0
        self._cached = lru_cache(maxsize=keep)(self._encode)

    def __call__(self, prompt: str) -> torch.Tensor:
        return self._cached(prompt)

    @torch.no_grad()
    def _encode(self, prompt: str) -> torch.Tensor:
        states, pooled = [], None
        for tok, enc in zip(self.tokenizers, self.encoders, strict=True):
            ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids.to(self.device)
            out = enc(ids, output_hidden_states=self.sdxl)
            states.append(out.hidden_states[-2] if self.sdxl else out[0])
            pooled = out[0]
        if not self.sdxl:
            return states[0]
        assert pooled is not None  # SDXL has two encoders
        return pack_pooled(torch.cat(states, dim=-1), pooled)


class SD3Conditioner:
    """SD3's text conditioning as its pipelines compute it (no classifier-free guidance): both CLIP
    encoders' penultimate states side by side, zero-padded to the joint width, then T5's states
    (`max_length` rows; zeros where the model plays without T5, as diffusers does with
    text_encoder_3=None), and both CLIP pooled embeddings, packed (see the module doc). Cached per
    prompt as ClipConditioner is."""

    def __init__(self, tokenizers: list[Any], encoders: list[Any], t5: tuple[Any, Any] | None,
                 joint_dim: int, device: torch.device, *, max_length: int = 256, keep: int = 64) -> None:
        """`tokenizers`, `encoders`: the two CLIP tokenizers and text models with projection; `t5`:
        (tokenizer, T5EncoderModel) or None; `joint_dim`: the transformer's joint_attention_dim."""
        self.tokenizers, self.encoders, self.t5, self.device = tokenizers, encoders, t5, device
        self.joint_dim, self.max_length = joint_dim, max_length
        self.pooled_dim: int = sum(e.config.projection_dim for e in encoders)
        self._cached = lru_cache(maxsize=keep)(self._encode)

    def __call__(self, prompt: str) -> torch.Tensor:
        return self._cached(prompt)

    @torch.no_grad()
    def _encode(self, prompt: str) -> torch.Tensor:
        states, pooled = [], []
        for tok, enc in zip(self.tokenizers, self.encoders, strict=True):
            ids = tok(prompt, padding="max_length", max_length=tok.model_max_length, truncation=True,
                      return_tensors="pt").input_ids.to(self.device)
            out = enc(ids, output_hidden_states=True)
            states.append(out.hidden_states[-2])
            pooled.append(out[0])
        clip = torch.cat(states, dim=-1)                                  # (1, 77, 2 x CLIP width)
        if self.t5 is None:
            t5 = clip.new_zeros(1, self.max_length, self.joint_dim)
        else:
            tok, enc = self.t5
            ids = tok(prompt, padding="max_length", max_length=self.max_length, truncation=True,
                      add_special_tokens=True, return_tensors="pt").input_ids.to(self.device)
            t5 = enc(ids)[0].to(clip.dtype)                               # (1, max_length, joint)
        tokens = torch.cat([F.pad(clip, (0, t5.shape[-1] - clip.shape[-1])), t5], dim=-2)
        return pack_pooled(tokens, torch.cat(pooled, dim=-1))


class UNetDenoiser:
    """UNet2DConditionModel called as the pipelines call it. SDXL (`sdxl_factor`: the autoencoder's
    pixels per latent cell) also gets its micro-conditioning for the picture the latents make, as
    its pipelines do: original size = target size = (h, w), crop (0, 0). A guidance-distilled UNet
    (LCM-distilled models: config time_cond_proj_dim) gets the embedding of `guidance`, as the LCM
    pipelines give it (their default 8.5); LCM-LoRA and turbo models have no such input."""

    def __init__(self, unet: Any, prediction: str, schedule: Schedule,
                 *, sdxl_factor: int = 0, pooled_dim: int = 0, guidance: float = 8.5) -> None:
        self.unet, self.prediction, self.schedule = unet, prediction, schedule
        self.sdxl_factor, self.pooled_dim = sdxl_factor, pooled_dim
        self.dtype = next(unet.parameters()).dtype
        self.device = next(unet.parameters()).device
        self.graphs = False
        self._time_ids: dict[tuple[int, int], torch.Tensor] = {}
        dim = unet.config.get("time_cond_proj_dim")
        self.w_embedding = guidance_embedding(guidance - 1, dim).to(self.device, self.dtype) if dim else None

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        # no no_grad: the weights are frozen (assemble), so only a fine-tune's LoRA builds a graph
        # (tools/finetune.py); the engine calls it under inference_mode
        cond = cond.to(self.device, self.dtype)
        kwargs: dict[str, Any] = {}
        if self.w_embedding is not None:
            kwargs["timestep_cond"] = self.w_embedding.expand(x.shape[0], -1)
        if self.sdxl_factor:
            cond, pooled = unpack_pooled(cond, self.pooled_dim)
            kwargs["added_cond_kwargs"] = {"text_embeds": pooled,
                                           "time_ids": self.time_ids(x).expand(x.shape[0], -1)}
        _step(self.graphs)
        out = self.unet(x.to(self.dtype), t.to(self.device), encoder_hidden_states=cond,
                        return_dict=False, **kwargs)[0]
        return out.to(x.dtype, copy=self.graphs)

    def time_ids(self, x: torch.Tensor) -> torch.Tensor:
        h, w = (n * self.sdxl_factor for n in x.shape[-2:])
        if (h, w) not in self._time_ids:
            self._time_ids[h, w] = torch.tensor([[h, w, 0, 0, h, w]], dtype=self.dtype, device=self.device)
        return self._time_ids[h, w]


class TransformerDenoiser:
    """SD3Transformer2DModel called as SD3's pipelines call it: a rectified-flow velocity from the
    latents, the timestep as the scheduler gives it (sigma x T, a float), the token states and the
    pooled embedding (unpacked from the conditioning)."""

    prediction = "flow"

    def __init__(self, transformer: Any, schedule: Schedule, pooled_dim: int) -> None:
        self.transformer, self.schedule, self.pooled_dim = transformer, schedule, pooled_dim
        self.dtype = next(transformer.parameters()).dtype
        self.device = next(transformer.parameters()).device
        self.graphs = False
        self._timesteps = (schedule.sigma * schedule.T).to(self.device, torch.float32)

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
                 base: torch.Tensor | None = None) -> torch.Tensor:
        # no no_grad: the weights are frozen (assemble), so only a fine-tune's LoRA builds a graph
        # (tools/finetune.py); the engine calls it under inference_mode
        tokens, pooled = unpack_pooled(cond.to(self.device, self.dtype), self.pooled_dim)
        _step(self.graphs)
        timestep = self._timesteps[t.to(self.device).long()]
        out = self.transformer(hidden_states=x.to(self.dtype), timestep=timestep, encoder_hidden_states=tokens,
                               pooled_projections=pooled, return_dict=False)[0]
        return out.to(x.dtype, copy=self.graphs)


def guidance_embedding(w: float, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a guidance scale w (x1000), (1, dim): LCM's, as diffusers has it."""
    half = dim // 2
    step = torch.log(torch.tensor(10000.0)) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -step)
    emb = (w * 1000.0) * freqs[None, :]
    return torch.nn.functional.pad(torch.cat([torch.sin(emb), torch.cos(emb)], dim=1), (0, dim % 2))


def _step(graphs: bool) -> None:
    """A CUDA-graph run reuses its output memory on the next run: tell torch a new step begins
    (results are copied out above, so the engine may keep them across frames)."""
    if graphs:
        torch.compiler.cudagraph_mark_step_begin()

