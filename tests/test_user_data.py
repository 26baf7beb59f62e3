"""Nothing the performer made is lost: a take never overwrites an earlier one, `noclip train`
keeps its checkpoints unless told, caches and exports are replaced whole or not at all, `learn`
keeps a symlinked patch a symlink and its mode; and a show never starts a download."""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
from pathlib import Path

import pytest
from conftest import noclip

from instrument.files import free_name, replace_atomically, write_atomically
from instrument.record.deck import RecordDeck, free_take
from instrument.report import Reporter


def digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


# -- takes -----------------------------------------------------------------------------------------

def test_a_second_record_to_the_same_name_keeps_the_first(tmp_path):
    take = tmp_path / "take.mp4"
    args = ("play", "--headless", "--patch", "testcard", "--size", "64x48", "--fps", "30", "--osc", "off",
            "--midi", "off", "--seconds", "0.5", "--record", str(take))
    r = noclip(*args)
    assert r.returncode == 0, r.stderr
    first = {p.name: digest(p) for p in tmp_path.iterdir()}
    assert sorted(first) == ["take.mp4", "take.performance.jsonl"]
    r = noclip(*args)
    assert r.returncode == 0, r.stderr
    assert f"{take} is taken: recording to {tmp_path / 'take-2.mp4'}" in r.stderr
    assert "performance in " + str(tmp_path / "take-2.performance.jsonl") in r.stderr
    now = {p.name: digest(p) for p in tmp_path.iterdir()}
    assert sorted(now) == ["take-2.mp4", "take-2.performance.jsonl", "take.mp4", "take.performance.jsonl"]
    assert all(now[name] == first[name] for name in first)  # the first show's files, byte for byte


def test_free_names_skip_takes_and_their_performance_files(tmp_path):
    (tmp_path / "show.mp4").write_bytes(b"1")
    (tmp_path / "show-2.performance.jsonl").write_text("{}")  # a take whose video was deleted
    assert free_take(tmp_path / "show.mp4") == tmp_path / "show-3.mp4"
    assert free_take(tmp_path / "new.mp4") == tmp_path / "new.mp4"
    assert free_name(tmp_path / "show.mp4", skip=[tmp_path / "show-2.mp4"]) == tmp_path / "show-3.mp4"
    link = tmp_path / "gone.mp4"
    link.symlink_to(tmp_path / "nowhere.mp4")  # a dangling link is somebody's too
    assert free_name(link) == tmp_path / "gone-2.mp4"
    assert free_name(Path("/dev/null")) == Path("/dev/null")  # a device is not a file to protect


def test_later_takes_of_a_show_skip_names_already_there(ctx, tmp_path):
    from instrument.clock import OfflineClock
    from instrument.control import ControlEvent
    from instrument.patch import load_patch
    from instrument.show import Show

    (tmp_path / "take-2.mkv").write_bytes(b"an earlier show's second take")
    deck = RecordDeck((64, 48), 30, Reporter(), first=tmp_path / "take.mkv", codec="ffv1")
    show = Show(ctx, load_patch("testcard"), (64, 48), clock=OfflineClock(30), outputs=[deck])
    for _ in range(3):
        show.queue.put(ControlEvent("test", "cmd/record/toggle"))
        show.run(frames=4)
        show.queue.put(ControlEvent("test", "cmd/record/toggle"))
        show.run(frames=2)
    show.close()
    assert [p.name for p in deck.takes] == ["take.mkv", "take-3.mkv", "take-4.mkv"]
    assert (tmp_path / "take-2.mkv").read_bytes() == b"an earlier show's second take"


# -- whole-file replacement ------------------------------------------------------------------------

def test_a_failed_replacement_leaves_the_old_file_and_no_litter(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"old")
    with pytest.raises(OSError), replace_atomically(path) as tmp:
        tmp.write_bytes(b"half of the ne")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert path.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["weights.bin"]


def test_replacement_follows_links_keeps_modes_and_fsyncs(tmp_path, monkeypatch):
    target = tmp_path / "real" / "set.toml"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "set.toml"
    link.symlink_to(target)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                 real_fsync(fd)))
    write_atomically(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert synced[-1] == str(target.parent)  # the rename is made durable too
    assert any(p.startswith(str(target.parent / ".set.toml.")) for p in synced[:-1])  # the data first


def test_learn_writes_through_a_symlinked_patch(tmp_path, monkeypatch):
    from instrument.learn import write_binding

    real = tmp_path / "sets" / "friday.toml"
    real.parent.mkdir()
    real.write_text('# mine\nversion = 1\nname = "friday"\n')
    os.chmod(real, 0o600)
    link = tmp_path / "friday.toml"
    link.symlink_to(real)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    write_binding(link, {"device": "nanoKONTROL2", "channel": 1, "cc": 16, "param": "bleed"})
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "# mine" in real.read_text() and "cc = 16" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600 and len(synced) >= 2
    assert sorted(os.listdir(real.parent)) == ["friday.toml"]


# -- training --------------------------------------------------------------------------------------

TRAIN = ["--ae-steps", "2", "--unet-steps", "2", "--change-steps", "2", "--clips", "1", "--per-clip", "2",
         "--threads", "1"]


def test_train_keeps_checkpoints_unless_fresh(tmp_path, capsys):
    from instrument.cli import main
    from instrument.generate.builtin import load

    work, out = tmp_path / "w", tmp_path / "out"
    assert main(["train", "--work", str(work), "--out", str(out), *TRAIN]) == 0
    assert load("cpu", out).name == "builtin"  # the command's export is a model that plays
    kept = {p.name: digest(p) for p in work.glob("*.pt")}
    assert sorted(kept) == ["ae.pt", "change.pt", "unet.pt"]
    capsys.readouterr()
    assert main(["train", "--work", str(work), "--out", str(out), *TRAIN]) == 2
    assert "--resume continues it, --fresh starts over" in capsys.readouterr().err
    assert {p.name: digest(p) for p in work.glob("*.pt")} == kept
    assert main(["train", "--work", str(work), "--out", str(out), "--fresh", *TRAIN]) == 0
    assert sorted(p.name for p in work.glob("*.pt")) == ["ae.pt", "change.pt", "unet.pt"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "losses.json", "model.safetensors"]
    assert not [p for p in work.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_an_export_that_fails_keeps_the_old_weights(tmp_path, monkeypatch):
    import safetensors.torch
    import torch

    from instrument.generate.builtin.model import Config, Decoder, Encoder, UNet
    from instrument.tools.plan import small_plan
    from instrument.tools.train import Trainer

    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"the weights of last week")
    c = Config()
    trainer = Trainer(tmp_path / "w", out, small_plan(), c, progress=False)

    def full_disk(state, path):
        Path(path).write_bytes(b"\0" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(OSError, match="No space"):
        trainer.export(Encoder(c), Decoder(c), UNet(c), torch.zeros(c.latent), torch.ones(c.latent))
    assert (out / "model.safetensors").read_bytes() == b"the weights of last week"
    assert sorted(os.listdir(out)) == ["model.safetensors"]


# -- downloads -------------------------------------------------------------------------------------

@pytest.fixture
def online(monkeypatch, tmp_path):
    """The hub switched on (as on a performer's machine), an empty cache, and any attempt to reach
    the network recorded (and refused)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    tried = []

    def refuse(*args, **kwargs):
        tried.append(args)
        raise OSError(errno.ENETUNREACH, "no network in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tried


@pytest.mark.parametrize("model", ["noclip-tests/no-such-model", "sd-turbo", "sd15-lcm"])
def test_a_show_never_downloads(online, model):
    from instrument.generate.diffusers_backend import ModelUnavailable, locate

    with pytest.raises(ModelUnavailable) as err:
        locate(model)
    assert online == []  # not one connection
    assert f"noclip fetch {model}" in str(err.value) and "a show never downloads" in str(err.value)


def test_a_patch_naming_a_hub_model_plays_the_scene_without_a_download(ctx, online, tmp_path):
    from instrument.clock import OfflineClock
    from instrument.patch import load_patch
    from instrument.show import Show

    patch = tmp_path / "hub.toml"
    patch.write_text('version = 1\nscene = "testcard"\nmodel = "noclip-tests/no-such-model"\n')
    reporter = Reporter()
    show = Show(ctx, load_patch(patch), (64, 48), clock=OfflineClock(30), reporter=reporter)
    show.run(frames=3)
    show.close()
    assert online == [] and any("noclip fetch noclip-tests/no-such-model" in m for _, m in reporter.recent)


def test_fetch_is_what_downloads(online, monkeypatch):
    import huggingface_hub

    from instrument.generate.diffusers_backend import ModelUnavailable, locate

    asked = []

    def snapshot_download(repo, **kw):
        asked.append((repo, kw["local_files_only"]))
        raise OSError("no network in tests")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(ModelUnavailable, match="could not be downloaded"):
        locate("sd-turbo", download=True)
    assert asked == [("stabilityai/sd-turbo", False)]
    asked.clear()
    with pytest.raises(ModelUnavailable, match="a show never downloads"):
        locate("sd-turbo")
    assert asked == [("stabilityai/sd-turbo", True)]


def test_torch_is_one_that_loads_ckpt_files_safely():
    """`.ckpt` files are pickles; torch.load(weights_only=True) is only safe from 2.6 (CVE-2025-32434)."""
    import tomllib

    import torch

    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    deps = pyproject["project"]["dependencies"]
    assert "torch>=2.6" in deps
    major, minor = (int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    assert (major, minor) >= (2, 6)


def test_a_damaged_checkpoint_is_named_by_resume(tmp_path, capsys):
    from instrument.cli import main

    work = tmp_path / "w"
    work.mkdir()
    (work / "ae.pt").write_bytes(b"PK\x03\x04 half a zip")
    assert main(["train", "--work", str(work), "--out", str(tmp_path / "out"), "--resume", *TRAIN]) == 2
    assert f"noclip train: {work / 'ae.pt'}: not a checkpoint this run can resume" in capsys.readouterr().err
    assert (work / "ae.pt").read_bytes() == b"PK\x03\x04 half a zip"  # still there to look at
