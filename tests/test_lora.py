"""LoRAs played live (issue 19, item 3): on tiny SD, SDXL and SD3 tiny_folders, in diffusers', PEFT's and
kohya's layouts, each under its registry parameter (lora1 ...): 0 is exactly the model without it,
1 is the LoRA fused as trained, and a knob takes effect on the next frame with nothing reloaded.
Patches, the command line and performance files carry them; a bad LoRA is named and the show plays
without it."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import tiny_diffusers as tiny
import torch
from safetensors.torch import save_file
from test_diffusers_backend import PROMPT, frame_params, image

from instrument.generate import load_backend
from instrument.generate.catalog import LoraError, parse_lora
from instrument.patch import ConfigError, load_patch, save_patch

LAT = tiny.SIZE // 2
ATTN = "mid_block.attentions.0.transformer_blocks.0.attn1.to_q"   # a Linear of the tiny SD UNet
CONV = "down_blocks.0.resnets.0.conv1"                            # a Conv2d of it


pytestmark = pytest.mark.usefixtures("hub_offline")


def sd_lora(path, *, seed=3, layout="peft", rank=4, alpha=None):
    """A LoRA for the tiny SD UNet on one attention Linear and one 3x3 Conv2d, written to `path`."""
    g = torch.Generator().manual_seed(seed)
    down, up = torch.randn(rank, 64, generator=g) * 0.3, torch.randn(64, rank, generator=g) * 0.3
    cdown, cup = torch.randn(rank, 32, 3, 3, generator=g) * 0.1, torch.randn(32, rank, 1, 1, generator=g) * 0.1
    if layout == "peft":
        state = {f"unet.{ATTN}.lora_A.weight": down, f"unet.{ATTN}.lora_B.weight": up,
                 f"unet.{CONV}.lora_A.weight": cdown, f"unet.{CONV}.lora_B.weight": cup}
    else:  # kohya's names, with an alpha
        state = {}
        for name, (d, u) in ((ATTN, (down, up)), (CONV, (cdown, cup))):
            k = "lora_unet_" + name.replace(".", "_")
            state |= {f"{k}.lora_down.weight": d, f"{k}.lora_up.weight": u,
                      f"{k}.alpha": torch.tensor(float(alpha or rank))}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, path)
    return path


def sd3_lora(path, seed=4):
    g = torch.Generator().manual_seed(seed)
    name = "transformer_blocks.0.attn.to_q"
    save_file({f"transformer.{name}.lora_A.weight": torch.randn(4, 32, generator=g),
               f"transformer.{name}.lora_B.weight": torch.randn(32, 4, generator=g)}, path)
    return path


def call(backend, scales=None):
    """The denoiser on fixed inputs, with the LoRAs at `scales` (lora1, lora2, ...)."""
    if scales is not None:
        backend.loras(tuple(scales))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, backend.autoencoder.channels, LAT, LAT, generator=g)
    return backend.denoiser(x, torch.tensor([500]), backend.conditioner(PROMPT))


@pytest.mark.parametrize("layout", ["peft", "kohya"])
def test_a_live_lora_at_0_is_the_model_and_at_s_the_fused_lora(tiny_folders, tmp_path, layout):
    from instrument.generate.lora import fuse

    lora = sd_lora(tmp_path / "l.safetensors", layout=layout, alpha=2 if layout == "kohya" else None)
    plain = load_backend(str(tiny_folders / "sd"), "cpu")
    live = load_backend(str(tiny_folders / "sd"), "cpu", loras=(str(lora),))
    assert live.loras is not None and not live.notes
    assert torch.equal(call(live, [0.0]), call(plain))           # exactly the model without it
    want = call(plain)
    for s in (0.5, 1.0, 2.0):
        fused = load_backend(str(tiny_folders / "sd"), "cpu")
        fuse(fused.denoiser.unet, lora, "sd", scale=s)
        got, want = call(live, [s]), call(fused)
        assert torch.allclose(got, want, atol=1e-5), (s, float((got - want).abs().max()))
        assert not torch.allclose(got, call(plain), atol=1e-3)   # and it does change the answer
    assert torch.equal(call(live, [0.0]), call(plain))           # back to 0: nothing left behind


def test_two_loras_add_and_each_has_its_knob(tiny_folders, tmp_path):
    a = sd_lora(tmp_path / "a.safetensors", seed=1)
    b = sd_lora(tmp_path / "b" / "pytorch_lora_weights.safetensors", seed=2)
    both = load_backend(str(tiny_folders / "sd"), "cpu", loras=(str(a), str(tmp_path / "b") + ":0.5"))
    only_a = load_backend(str(tiny_folders / "sd"), "cpu", loras=(str(a),))
    only_b = load_backend(str(tiny_folders / "sd"), "cpu", loras=(str(b),))
    assert torch.allclose(call(both, [1.0, 0.0]), call(only_a, [1.0]), atol=1e-6)
    assert torch.allclose(call(both, [0.0, 0.7]), call(only_b, [0.7]), atol=1e-6)
    from instrument.generate.lora import fuse

    fused = load_backend(str(tiny_folders / "sd"), "cpu")   # on a shared layer the two additions sum
    fuse(fused.denoiser.unet, a, "sd")
    fuse(fused.denoiser.unet, b, "sd", scale=0.3)
    assert torch.allclose(call(both, [1.0, 0.3]), call(fused), atol=1e-5)


def test_sd3_lora_plays_on_the_transformer(tiny_folders, tmp_path):
    lora = sd3_lora(tmp_path / "sd3.safetensors")
    plain = load_backend(str(tiny_folders / "sd3"), "cpu")
    live = load_backend(str(tiny_folders / "sd3"), "cpu", loras=(str(lora),))
    assert not live.notes
    assert torch.equal(call(live, [0.0]), call(plain))
    assert not torch.allclose(call(live, [1.0]), call(plain), atol=1e-3)


# the original MMDiT's layers (sd-scripts names a LoRA's layers by them) and the diffusers modules whose
# weights each is made of (q, k, v fused in one qkv), for the tiny SD3 transformer's two joint blocks
def _mmdit_layers(blocks):
    out = {"x_embedder.proj": ["pos_embed.proj"], "context_embedder": ["context_embedder"],
           "t_embedder.mlp.0": ["time_text_embed.timestep_embedder.linear_1"],
           "t_embedder.mlp.2": ["time_text_embed.timestep_embedder.linear_2"],
           "y_embedder.mlp.0": ["time_text_embed.text_embedder.linear_1"],
           "y_embedder.mlp.2": ["time_text_embed.text_embedder.linear_2"],
           "final_layer.linear": ["proj_out"], "final_layer.adaLN_modulation.1": ["norm_out.linear"]}
    for i in range(blocks):
        d, o = f"transformer_blocks.{i}.", f"joint_blocks.{i}."
        out |= {o + "x_block.attn.qkv": [d + "attn.to_q", d + "attn.to_k", d + "attn.to_v"],
                o + "context_block.attn.qkv": [d + f"attn.add_{c}_proj" for c in "qkv"],
                o + "x_block.attn.proj": [d + "attn.to_out.0"],
                o + "x_block.adaLN_modulation.1": [d + "norm1.linear"],
                o + "x_block.mlp.fc1": [d + "ff.net.0.proj"], o + "x_block.mlp.fc2": [d + "ff.net.2"],
                o + "context_block.adaLN_modulation.1": [d + "norm1_context.linear"]}
        if i < blocks - 1:   # the last block's context side ends before its projection and MLP
            out |= {o + "context_block.attn.proj": [d + "attn.to_add_out"],
                    o + "context_block.mlp.fc1": [d + "ff_context.net.0.proj"],
                    o + "context_block.mlp.fc2": [d + "ff_context.net.2"]}
    return out


def test_kohya_sd3_loras_play_as_diffusers_converts_the_original_model(tiny_folders, tmp_path):
    """A kohya (sd-scripts) SD3 LoRA on every kind of MMDiT layer (fused qkv, the patch-embedding
    convolution, the norms whose shift and scale diffusers swaps) changes each diffusers module by
    exactly what diffusers' own converter of original SD3 checkpoints makes of the same change, and
    played at 1 equals the model with those converted changes added."""
    from diffusers.loaders.single_file_utils import convert_sd3_transformer_checkpoint_to_diffusers

    from instrument.generate.lora import read

    plain = load_backend(str(tiny_folders / "sd3"), "cpu")
    net = plain.denoiser.transformer
    layers = _mmdit_layers(len(net.transformer_blocks))
    g, rank = torch.Generator().manual_seed(5), 3
    original = {"pos_embed": torch.zeros_like(net.pos_embed.pos_embed)}  # every original tensor: no change
    for name, parts in layers.items():
        w = [net.get_submodule(p).weight for p in parts]
        original[name + ".weight"] = torch.zeros(sum(x.shape[0] for x in w), *w[0].shape[1:])
        original[name + ".bias"] = torch.zeros(sum(x.shape[0] for x in w))
    kohya = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.alpha": torch.tensor(1.0)}  # left out
    for name in layers:   # the LoRA on every layer: its change written into the original tensor too
        w = original[name + ".weight"]
        down = torch.randn(rank, *w.shape[1:], generator=g) * 0.2
        up = torch.randn(w.shape[0], rank, *([1, 1] if w.dim() == 4 else []), generator=g) * 0.2
        key = "lora_unet_" + name.replace(".", "_")
        kohya |= {f"{key}.lora_down.weight": down, f"{key}.lora_up.weight": up,
                  f"{key}.alpha": torch.tensor(2.0)}
        original[name + ".weight"] += (2.0 / rank) * (up.flatten(1) @ down.flatten(1)).reshape(w.shape)
    path = tmp_path / "kohya_sd3.safetensors"
    save_file(kohya, path)
    want = convert_sd3_transformer_checkpoint_to_diffusers(dict(original))
    got = read(path, "sd3", net)
    assert set(got) == {p for parts in layers.values() for p in parts}
    for module, layer in got.items():
        w = net.get_submodule(module).weight
        delta = layer.factor * (layer.up.flatten(1) @ layer.down.flatten(1)).reshape(w.shape)
        assert torch.allclose(delta, want[module + ".weight"], atol=1e-6), module
    live = load_backend(str(tiny_folders / "sd3"), "cpu", loras=(str(path),))
    assert not live.notes
    fused = load_backend(str(tiny_folders / "sd3"), "cpu")
    for module in got:
        fused.denoiser.transformer.get_submodule(module).weight.data += want[module + ".weight"]
    assert torch.equal(call(live, [0.0]), call(plain))
    assert torch.allclose(call(live, [1.0]), call(fused), atol=1e-5)
    assert not torch.allclose(call(live, [1.0]), call(plain), atol=1e-3)


def test_a_kohya_sd3_lora_with_a_layer_sd3_lacks_is_named(tiny_folders, tmp_path):
    path = tmp_path / "odd.safetensors"
    save_file({"lora_unet_joint_blocks_0_x_block_attn_qkvz.lora_down.weight": torch.zeros(2, 32),
               "lora_unet_joint_blocks_0_x_block_attn_qkvz.lora_up.weight": torch.zeros(96, 2)}, path)
    backend = load_backend(str(tiny_folders / "sd3"), "cpu", loras=(str(path),))
    assert len(backend.notes) == 1 and "attn_qkvz is not a layer of an SD3 transformer" in backend.notes[0]


def test_bad_loras_are_named_and_the_model_plays_without_them(tiny_folders, tmp_path):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01 not a safetensors file" * 10)
    sd_on_sd3 = sd_lora(tmp_path / "sd.safetensors")
    good = sd3_lora(tmp_path / "good.safetensors")
    backend = load_backend(str(tiny_folders / "sd3"), "cpu",
                           loras=(str(broken), str(sd_on_sd3), str(tmp_path / "gone.safetensors"), str(good)))
    notes = "\n".join(backend.notes)
    assert len(backend.notes) == 3, notes
    assert "lora1" in notes and "broken.safetensors: does not read" in notes
    assert "lora2" in notes and "another model family" in notes
    assert "lora3" in notes and "no such file" in notes and "playing without it" in notes
    plain = load_backend(str(tiny_folders / "sd3"), "cpu")
    assert torch.equal(call(backend, [1, 1, 1, 0.0]), call(plain))   # the bad ones do nothing
    assert not torch.allclose(call(backend, [1, 1, 1, 1.0]), call(plain), atol=1e-3)  # lora4 still plays
    builtin = load_backend("builtin", "cpu", loras=(str(good),))
    assert builtin.loras is None and "not the builtin" in builtin.notes[0]


def test_the_engine_plays_the_knob_within_a_frame(tiny_folders, tmp_path):
    """Through the stream engine: lora1 = 0 gives the frames of the model without the LoRA, and a
    move of the knob shows on the next frame (the similarity skip does not hide it)."""
    from instrument.generate.stream import StreamEngine
    from instrument.generate.worker import BaseFrame

    lora = sd_lora(tmp_path / "l.safetensors", seed=5)
    picture = (image(3)[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()

    def frames(backend, values):
        engine = StreamEngine(backend)
        out = []
        for n, v in enumerate(values):
            fp = frame_params(seed=2, strength=0.7, steps=2, prompt=PROMPT, similarity_skip=0.05, lora1=v)
            fp = type(fp)(n, n / 30, 1 / 30, dict(fp))
            out.append(engine(BaseFrame(picture, None, n == 0), fp))
        return out, engine

    plain, _ = frames(load_backend(str(tiny_folders / "sd"), "cpu"), [1.0] * 3)
    with_lora = load_backend(str(tiny_folders / "sd"), "cpu", loras=(str(lora),))
    live, engine = frames(with_lora, [0.0, 0.0, 1.5, 1.5])
    assert np.array_equal(live[0], plain[0]) and np.array_equal(live[1], plain[1])  # 0: the model's own
    assert not np.array_equal(live[2], live[1])   # the knob moved: the next frame shows it, never skipped
    assert engine.stats["skipped"] == 1           # frame 3: a still scene with nothing moved (1 warms the pipe)


def test_patches_and_the_command_line_name_loras(tmp_path):
    from argparse import Namespace

    from instrument.cmd import resolve_patch

    lora = sd_lora(tmp_path / "look.safetensors")
    path = tmp_path / "p.toml"
    path.write_text(f'version = 2\ndream_size = [512, 384]\nloras = ["{lora}:0.7", "org/their-lora"]\n'
                    '[params]\nlora2 = 0.3\n')
    patch = load_patch(path)
    assert patch.loras == (f"{lora}:0.7", "org/their-lora")
    assert patch.params["lora1"] == 0.7 and patch.params["lora2"] == 0.3   # the patch's own value wins
    save_patch(patch, tmp_path / "again.toml")
    assert load_patch(tmp_path / "again.toml").loras == patch.loras
    for bad, words in ((f'["{lora}:7"]', "not within 0..2"), ('"one.safetensors"', "loras = ["),
                       ('["a", "b", "c", "d", "e"]', "4 at most"), ("[3]", "PATH_OR_HUB_ID")):
        path.write_text(f"version = 2\ndream_size = [512, 384]\nloras = {bad}\n")
        with pytest.raises(ConfigError, match="loras") as err:
            load_patch(path)
        assert words in str(err.value) and err.value.line == 3
    args = Namespace(patch="default", model=None, lora=[f"{lora}:1.5"], set=None, source=None)
    patch, _ = resolve_patch(args)
    assert patch.loras == (f"{lora}:1.5",) and patch.params["lora1"] == 1.5
    with pytest.raises(SystemExit, match="--lora"):
        resolve_patch(Namespace(patch="default", model=None, lora=["x:9"], set=None, source=None))
    assert parse_lora("C:/x.safetensors") == ("C:/x.safetensors", None)
    assert parse_lora("a/b:0.5") == ("a/b", 0.5)
    with pytest.raises(LoraError):
        parse_lora("")


def test_a_performance_records_its_loras_and_a_changed_one_stops_the_rerender(tmp_path, capsys):
    from dataclasses import replace

    from instrument.cli import main
    from instrument.patch import Patch
    from instrument.record.performance import PerformanceWriter, check_loras, load_performance

    lora = sd_lora(tmp_path / "look.safetensors")
    patch = replace(Patch(model="none", size=(64, 48)), loras=(f"{lora}:0.5", "org/not-here"))
    w = PerformanceWriter(tmp_path / "show.jsonl", patch, {}, 30.0, (64, 48))
    w.close(3)
    perf = load_performance(tmp_path / "show.jsonl")
    recs = perf.header["models"]["loras"]
    assert recs[0]["path"] == str(lora) and len(recs[0]["sha256"]) == 64 and recs[1]["sha256"] is None
    assert perf.patch.loras == patch.loras and not check_loras(perf.header)
    sd_lora(lora, seed=99)   # the file changed since the show
    assert "has changed since the show" in check_loras(perf.header)[0]
    assert main(["render", str(tmp_path / "show.jsonl"), "-o", str(tmp_path / "out.mp4")]) == 2
    assert "lora1" in capsys.readouterr().err
    lora.unlink()
    assert "not on this machine" in check_loras(perf.header)[0]
    json.dumps(perf.header)  # still plain JSON


def test_a_show_with_a_bad_lora_says_so_and_dreams(ctx, tiny_folders, tmp_path):
    from instrument.clock import OfflineClock
    from instrument.patch import Patch
    from instrument.report import Reporter
    from instrument.show import Show

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"nonsense")
    reporter = Reporter()
    patch = Patch(model=str(tiny_folders / "sd"), size=(64, 48), loras=(str(bad),))
    show = Show(ctx, patch, (64, 48), clock=OfflineClock(30), reporter=reporter,
                overrides={"similarity_skip": 0.0})
    try:
        for _ in range(3):
            show.step()
        assert show.generator.latest() is not None
    finally:
        show.close()
    assert any("lora1" in m and "bad.safetensors" in m for _, m in reporter.recent)
