"""`noclip train --from builtin --data PATH...` (issue 19, item 4): the shipped builtin model
fine-tuned on footage for a few steps gives a folder that `--model DIR` plays; the neutralised bases
carry the scene's colour statistics; the look distance measures what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from instrument.generate import check_model, load_backend
from instrument.tools.restyle import channel_histograms, look, neutralise, restyle


@pytest.fixture()
def footage(tmp_path):
    d = tmp_path / "footage"
    d.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        a = rng.integers(0, 60, (96, 128, 3)).astype(np.uint8)
        a[..., 1] += 120 + 20 * i   # a green look
        Image.fromarray(a).save(d / f"f{i}.png")
    return d


def test_a_fine_tune_on_footage_plays_as_a_model_folder(footage, tmp_path):
    from safetensors.torch import load_file

    from instrument.generate.builtin import WEIGHTS

    out = restyle([footage], tmp_path / "green", tmp_path / "work", steps=3, change_steps=2, frames=2,
                  progress=False)
    assert check_model(str(out)) == str(out)
    told = json.loads((out / "config.json").read_text())
    assert told["restyled"]["steps"] == 3 and told["restyled"]["frames"] == 3
    assert told["restyled"]["change_steps"] == 2
    # the change decoder learnt the footage's changes too (a look moves every pixel)
    theirs, ours = load_file(str(WEIGHTS / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert not torch.equal(theirs["change.out.weight"], ours["change.out.weight"])
    assert torch.equal(theirs["dec.out.weight"], ours["dec.out.weight"])
    mine, shipped = load_backend(str(out), "cpu"), load_backend("builtin", "cpu")
    assert mine.name == str(out) and mine.size == shipped.size
    x, t = torch.randn(1, 8, 48, 64, generator=torch.Generator().manual_seed(1)), torch.tensor([600])
    base = torch.randn(1, 8, 48, 64, generator=torch.Generator().manual_seed(2))
    cond = shipped.conditioner("level 0")
    with torch.no_grad():
        assert not torch.allclose(mine.denoiser(x, t, cond, base=base), shipped.denoiser(x, t, cond, base=base))
        # the autoencoder is the shipped one: only the denoiser and the change decoder learned
        picture = torch.rand(1, 3, 192, 256) * 2 - 1
        assert torch.equal(mine.autoencoder.encode(picture), shipped.autoencoder.encode(picture))


def test_neutralised_frames_take_the_scenes_colours():
    ramp = np.linspace(0, 1, 50)[None, None, :, None] * np.linspace(0.5, 1, 40)[None, :, None, None]
    frames = (np.repeat(ramp, 2, 0) * np.array([40, 200, 60]) + np.array([10, 30, 90])).astype(np.uint8)
    rng = np.random.default_rng(0)
    scene = rng.normal([150.0, 130.0, 90.0], [40.0, 35.0, 30.0], (4, 30, 30, 3))
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    out = neutralise(frames, channel_histograms(scene)).astype(np.float64)
    assert np.allclose(out.mean(axis=(0, 1, 2)), scene.reshape(-1, 3).mean(0), atol=3)
    assert np.allclose(out.std(axis=(0, 1, 2)), scene.reshape(-1, 3).std(0), rtol=0.1)
    # one curve for the set, monotonic: a brighter pixel of the footage stays brighter
    assert (np.diff(out[0, 20, :, 1]) >= -1).all() and out[0, 20, -1, 1] > out[0, 20, 0, 1] + 50
    grain = np.clip(frames[:1] + rng.normal(0, 20, frames[:1].shape), 0, 255).astype(np.uint8)

    def fine(x):   # pixel-to-pixel change: what grain is made of
        return np.diff(x.astype(np.float64), axis=2).std()

    # matched to its own colours, a picture only loses its grain
    assert fine(neutralise(grain, channel_histograms(grain))) < 0.6 * fine(grain)


def test_look_is_zero_for_the_footage_and_grows_with_difference():
    rng = np.random.default_rng(2)
    foot = rng.integers(0, 256, (4, 48, 64, 3)).astype(np.uint8)
    assert look(foot, foot) == {"histogram": 0.0, "spectrum": 0.0}
    tinted = foot.copy()
    tinted[..., 1] //= 2
    smooth = np.repeat(np.repeat(foot[:, ::4, ::4], 4, 1), 4, 2)
    assert look(tinted, foot)["histogram"] > max(0.5, look(smooth, foot)["histogram"])
    assert look(smooth, foot)["spectrum"] > look(tinted, foot)["spectrum"] > 0   # detail lost: the spectrum


def test_the_command_line_guards_the_shipped_weights(footage, tmp_path, capsys):
    from instrument.cli import main
    from instrument.generate.builtin import WEIGHTS

    assert main(["train", "--from", "builtin", "--data", str(footage), "--out", str(WEIGHTS),
                 "--work", str(tmp_path / "w")]) == 2
    assert "shipped model" in capsys.readouterr().err
    assert main(["train", "--data", str(footage), "--out", str(tmp_path / "o"),
                 "--work", str(tmp_path / "w")]) == 2
    assert "go together" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--from", "builtin", "--data", str(empty), "--out", str(tmp_path / "o"),
                 "--work", str(tmp_path / "w")]) == 2
    assert "no usable images or videos" in capsys.readouterr().err
