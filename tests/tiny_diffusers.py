"""Tiny diffusers pipelines built from small configs (the shapes diffusers' own tests use) and saved
to a folder, so tests load them exactly as a performer's model folder is loaded. No downloads: the
CLIP tokenizer is built from a byte-level vocabulary (instrument/bench/tinyclip.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from instrument.bench.tinyclip import clip_config, tokenizer

SIZE = 32  # image pixels per side the tiny models play at (latents 16 x 16)


def _scheduler():
    from diffusers import LCMScheduler

    return LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                        prediction_type="epsilon", steps_offset=1)


def _vae(tiny: bool):
    from diffusers import AutoencoderKL, AutoencoderTiny

    if tiny:
        return AutoencoderTiny(in_channels=3, out_channels=3, latent_channels=4,
                               encoder_block_out_channels=(32, 32), decoder_block_out_channels=(32, 32),
                               num_encoder_blocks=(1, 2), num_decoder_blocks=(2, 1))
    return AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                         down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                         up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4,
                         scaling_factor=0.18215)


def sd_pipeline(folder: Path, *, tiny_vae: bool = False, lcm: bool = False, seed: int = 0):
    """A tiny SD 1.x/2.x-shaped StableDiffusionImg2ImgPipeline, saved to `folder`; with `lcm`, an
    LCM-distilled one (its UNet takes a guidance embedding): a LatentConsistencyModelImg2ImgPipeline."""
    from diffusers import (
        LatentConsistencyModelImg2ImgPipeline,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=SIZE // 2,
                                in_channels=4, out_channels=4, cross_attention_dim=32,
                                time_cond_proj_dim=32 if lcm else None,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    cls = LatentConsistencyModelImg2ImgPipeline if lcm else StableDiffusionImg2ImgPipeline
    pipe = cls(
        vae=_vae(tiny_vae), text_encoder=CLIPTextModel(clip_config()), tokenizer=tokenizer(folder / "_vocab"),
        unet=unet, scheduler=_scheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.save_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sdxl_pipeline(folder: Path, *, seed: int = 0):
    """A tiny SDXL-shaped StableDiffusionXLImg2ImgPipeline (two text encoders, text-time
    micro-conditioning), saved to `folder`."""
    from diffusers import StableDiffusionXLImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=2, sample_size=SIZE // 2,
                                in_channels=4, out_channels=4, attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 2),
                                projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + 32 pooled
                                cross_attention_dim=64,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    cfg = clip_config(projection_dim=32, hidden_act="gelu")
    pipe = StableDiffusionXLImg2ImgPipeline(
        vae=_vae(False), text_encoder=CLIPTextModel(cfg), text_encoder_2=CLIPTextModelWithProjection(cfg),
        tokenizer=tokenizer(folder / "_vocab"), tokenizer_2=tokenizer(folder / "_vocab2"), unet=unet,
        scheduler=_scheduler(), requires_aesthetics_score=False, force_zeros_for_empty_prompt=False)
    pipe.save_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def backends(root: Path) -> dict:
    """The tiny SD (KL and TAESD) and SDXL pipelines saved under `root` and loaded as a performer's
    folders are, on the CPU: {"sd", "taesd", "sdxl"}."""
    from instrument.generate import load_backend

    sd_pipeline(root / "sd")
    sd_pipeline(root / "taesd", tiny_vae=True)
    sdxl_pipeline(root / "sdxl")
    return {k: load_backend(str(root / k), "cpu") for k in ("sd", "taesd", "sdxl")}


def t5_tokenizer():
    """A T5 tokenizer (fast, a unigram model over single characters, no sentencepiece file)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    chars = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789 ,.") - {" "})
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0),
             *((c, -3.0) for c in chars), *(("▁" + c, -2.5) for c in chars)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                           extra_ids=0)


def sd3_pipeline(folder: Path, *, t5: bool = False, joint: int = 96, seed: int = 0, stochastic: bool = True):
    """A tiny SD3-shaped StableDiffusion3Img2ImgPipeline (an MMDiT transformer on rectified flow with
    shift 3, a 16-channel VAE with SD3's shift and scaling factors, two CLIP encoders with
    projection, and with `t5` a T5 encoder of width `joint`), saved to `folder`. `stochastic`: the
    scheduler re-noises each step's clean estimate with fresh noise (diffusers' stochastic_sampling),
    which is what the stream engine does."""
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Img2ImgPipeline,
    )
    from transformers import CLIPTextModelWithProjection, T5Config, T5EncoderModel

    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(sample_size=SIZE // 2, patch_size=2, in_channels=16, out_channels=16,
                                        num_layers=2, attention_head_dim=8, num_attention_heads=4,
                                        caption_projection_dim=32, joint_attention_dim=joint,
                                        pooled_projection_dim=64, pos_embed_max_size=32)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=16,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], use_quant_conv=False,
                        use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5305)
    cfg = clip_config(projection_dim=32, hidden_act="gelu")
    tokenizer_3 = text_encoder_3 = None
    if t5:
        tokenizer_3 = t5_tokenizer()
        text_encoder_3 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_3), d_model=joint, d_kv=16, d_ff=64,
                                                 num_layers=2, num_heads=4, dropout_rate=0.0))
    pipe = StableDiffusion3Img2ImgPipeline(
        transformer=transformer, vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, stochastic_sampling=stochastic),
        text_encoder=CLIPTextModelWithProjection(cfg), tokenizer=tokenizer(folder / "_vocab"),
        text_encoder_2=CLIPTextModelWithProjection(cfg), tokenizer_2=tokenizer(folder / "_vocab2"),
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3)
    pipe.save_pretrained(folder)
    pipe.set_progress_bar_config(disable=True)
    return pipe
