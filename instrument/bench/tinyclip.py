"""Tiny CLIP text encoders and tokenizers with random weights, built here without a download: what a
diffusers pipeline needs to load and run in a bench (vs_streamdiffusion.py) or a test
(tests/tiny_diffusers.py) when only the speed or the plumbing is measured."""

from __future__ import annotations

import json
from pathlib import Path


def _bytes_to_unicode() -> list[str]:
    """CLIP's printable stand-ins for the 256 byte values (as in openai/CLIP's tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tokenizer(folder: Path):
    """A CLIPTokenizer over bytes plus a few merges (enough for prompts to tokenize differently)."""
    from transformers import CLIPTokenizer

    chars = _bytes_to_unicode()
    merges = [("h", "a"), ("l", "l</w>"), ("ha", "ll</w>"), ("w", "a"), ("wa", "y</w>")]
    vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges),
             "<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def clip_config(**extra):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37,
                          layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=5, pad_token_id=1,
                          vocab_size=1000, **extra)
