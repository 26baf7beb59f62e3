"""`noclip finetune` (issue 19, item 4) on tiny SD and SD3 tiny_folders: a LoRA trained for a few steps on
images and a video changes the model's answer, plays with --lora DIR (0 = the model itself), comes
with its card, resumes exactly, and names bad data."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from PIL import Image

from instrument.generate import load_backend
from instrument.tools.finetune import Finetune, FinetuneError, load_data, run, video_frames

pytestmark = pytest.mark.usefixtures("hub_offline")


def write_video(path, frames: int = 12, size=(48, 32)):
    import av

    with av.open(str(path), "w") as box:
        stream = box.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for n in range(frames):
            a = np.zeros((size[1], size[0], 3), np.uint8)
            a[..., 0] = 200
            a[:, (n * 3) % size[0]:, 2] = 180   # a magenta look, with a moving edge
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
    return path


@pytest.fixture()
def footage(tmp_path):
    d = tmp_path / "footage"
    d.mkdir()
    for i in range(2):
        a = np.zeros((40, 40, 3), np.uint8)
        a[::4] = (220, 40, 200)
        a[:, i * 10:] += 30
        Image.fromarray(a).save(d / f"still{i}.png")
    (d / "still0.txt").write_text("a magenta tape")
    write_video(d / "clip.mp4")
    (d / "notes.md").write_text("not footage")   # other files in a folder are passed over
    return d


def answer(backend, scale=None):
    if scale is not None:
        backend.loras((scale,))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, backend.autoencoder.channels, 16, 16, generator=g)
    return backend.denoiser(x, torch.tensor([500]), backend.conditioner("a magenta tape"))


@pytest.mark.parametrize("kind", ["sd", "sd3"])
def test_a_finetuned_lora_changes_the_model_and_plays_with_lora_dir(tiny_folders, footage, tmp_path, kind):
    out = tmp_path / "look"
    job = Finetune(str(tiny_folders / kind), [footage], out, steps=12, lr=5e-3, rank=4, frames=4, every=5)
    weights = run(job, progress=False)
    assert weights == out / "pytorch_lora_weights.safetensors" and weights.is_file()
    for name in ("README.md", "loss.png", "sample.png", "checkpoint.pt"):
        assert (out / name).is_file(), name
    card = (out / "README.md").read_text()
    assert "6 frames from 3 files" in card and "--lora" in card and "Steps: 12" in card
    plain = load_backend(str(tiny_folders / kind), "cpu")
    live = load_backend(str(tiny_folders / kind), "cpu", loras=(str(out),))
    assert not live.notes
    assert torch.equal(answer(live, 0.0), answer(plain))
    assert (answer(live, 1.0) - answer(plain)).abs().max() > 1e-3   # it learned something
    sample = Image.open(out / "sample.png")
    assert sample.size == (3 * 32, 32)   # frame | without | with


def test_a_resumed_run_is_the_unbroken_run(tiny_folders, footage, tmp_path):
    from safetensors.torch import load_file

    job = dict(steps=8, lr=5e-3, rank=4, frames=3, every=4, seed=3)
    run(Finetune(str(tiny_folders / "sd"), [footage], tmp_path / "whole", **job), progress=False)
    half = {**job, "steps": 4}
    run(Finetune(str(tiny_folders / "sd"), [footage], tmp_path / "parts", **half), progress=False)
    resumed = Finetune(str(tiny_folders / "sd"), [footage], tmp_path / "parts", **job)
    run(resumed, progress=False)
    a = load_file(tmp_path / "whole" / "pytorch_lora_weights.safetensors")
    b = load_file(tmp_path / "parts" / "pytorch_lora_weights.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert len(resumed.losses) == 8


def test_bad_data_is_named(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("nothing here")
    with pytest.raises(FinetuneError, match="empty: no usable images or videos"):
        load_data([empty], (32, 32), 4, "")
    with pytest.raises(FinetuneError, match="no such file"):
        load_data([tmp_path / "gone"], (32, 32), 4, "")
    clip = write_video(tmp_path / "cut.mkv", frames=40)   # (an mp4 cut short loses its index: none decodes)
    whole = len(video_frames(clip, 100))
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])   # a copy that stopped part-way
    kept = video_frames(clip, 100)
    assert 0 < len(kept) < whole
    (tmp_path / "broken.png").write_bytes(b"not a png")
    pairs = load_data([clip, tmp_path / "broken.png"], (32, 32), 8, "tape")
    assert 0 < len(pairs) <= 8 and pairs[0][0].shape == (3, 32, 32) and pairs[0][1] == "tape"
    assert "broken.png" in caplog.text


def test_the_command_line(tiny_folders, footage, tmp_path, capsys):
    from instrument.cli import main

    args = ["finetune", "--model", str(tiny_folders / "sd"), "--data", str(footage),
            "--out", str(tmp_path / "o"), "--steps", "3", "--rank", "2", "--frames", "2"]
    assert main(args) == 0 and "--lora" in capsys.readouterr().out
    assert main(args) == 2 and "--resume" in capsys.readouterr().err   # an earlier run is not overwritten
    assert main([*args[:-6], "--steps", "4", "--rank", "2", "--frames", "2", "--resume"]) == 0
    assert main(["finetune", "--model", "builtin", "--data", str(footage), "--out", str(tmp_path / "b")]) == 2
    assert "noclip train --from builtin" in capsys.readouterr().err
