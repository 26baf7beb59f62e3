"""CPU runtimes (generate/accel/cpu.py): onnxruntime and OpenVINO play every backend's exported
graphs as torch does (the stream engine's features included), `auto` keeps the fastest measured
and measures once, and a runtime that is missing or cannot run is said once while torch plays."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace

import numpy as np
import pytest
import tiny_diffusers as tiny
import torch
from tiny_backend import tiny_backend

from instrument.generate import load_backend
from instrument.generate.accel import accelerate, cpu
from instrument.generate.accel.runtime import EngineChange, EngineDenoiser
from instrument.generate.stream import StreamEngine
from instrument.generate.worker import BaseFrame
from instrument.params import REGISTRY, FrameParams
from instrument.report import Reporter

pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
RUNTIMES = [r for r in cpu.RUNTIMES if cpu.why_not(r, torch.device("cpu")) is None]


@pytest.fixture(autouse=True)
def _setup(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NOCLIP_ACCEL", raising=False)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tiny.backends(tmp_path_factory.mktemp("models")) | {
        "tiny": tiny_backend((64, 48)), "builtin": load_backend("builtin", "cpu")}


def walk(size, n=7):
    """Frames that move: a pattern sliding right 2 px a frame, with its motion."""
    g = np.random.default_rng(3)
    cells = g.integers(0, 256, (size[1] // 8, size[0] // 8, 3)).astype(np.uint8)
    image = cells.repeat(8, 0).repeat(8, 1)
    motion = np.zeros((size[1], size[0], 2), np.float32)
    motion[..., 0] = 2.0
    return [BaseFrame(np.ascontiguousarray(np.roll(image, 2 * k, 1)), motion if k else None, k == 0)
            for k in range(n)]


def play(backend):
    """The engine with what it does between frames switched on: Stream Batch over 2 steps, a seed
    morph, feedback and its hold, noise warped along the motion. (latents finished, images)."""
    engine = StreamEngine(backend)
    values = {**REGISTRY.defaults(), "steps": 2, "stream_batch": True, "similarity_skip": 0.0, "seed": 5,
              "seed_morph": 0.3, "feedback": 0.4, "strength": 0.6}
    images, latents = [], []
    for n, f in enumerate(walk(backend.size)):
        images.append(engine(f, FrameParams(n, n / 30, 1 / 30, values)))
        if engine.shown is not None:
            latents.append(engine.shown.clone())
    return latents, images


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("kind", ["builtin", "sd", "taesd", "sdxl", "tiny"])
def test_each_runtime_dreams_what_torch_dreams(models, runtime, kind, tmp_path):
    backend = models[kind]
    fast = accelerate(backend, runtime, Reporter(), folder=tmp_path)
    assert isinstance(fast.denoiser, EngineDenoiser), "played on torch: the runtime did not build"
    if kind == "builtin":   # the denoiser reads the base latent; the change decoder is an engine too
        assert fast.denoiser.reads_base and isinstance(fast.change, EngineChange)
    (want, want_images), (got, got_images) = play(backend), play(fast)
    assert len(want) == len(got) >= 5
    for a, b in zip(want, got, strict=True):
        err = float((a - b).abs().max())
        assert err <= 1e-3, (runtime, kind, err)
    for a, b in zip(want_images, got_images, strict=True):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_auto_keeps_the_fastest_measured_and_measures_once(models, tmp_path, monkeypatch):
    backend = models["tiny"]
    cost = {"torch": 0.030, "onnxruntime": 0.020, "openvino": 0.025}
    measured = []

    def per_dream(b):
        name = "torch" if b.denoiser is backend.denoiser else type(b.denoiser.runner).__name__
        name = {"OrtRunner": "onnxruntime", "OpenVinoRunner": "openvino"}.get(name, name)
        measured.append(name)
        return cost[name]

    monkeypatch.setattr(cpu, "per_dream", per_dream)
    fast = accelerate(backend, "auto", Reporter(), folder=tmp_path)
    assert type(fast.denoiser.runner).__name__ == "OrtRunner"
    assert sorted(measured) == sorted(["torch", *RUNTIMES])   # no int8: not known to hold for this model
    (choice,) = tmp_path.glob("choice-*.json")
    assert json.loads(choice.read_text())["runtime"] == "onnxruntime:fp32"
    measured.clear()
    again = accelerate(tiny_backend((64, 48)), "auto", Reporter(), folder=tmp_path)   # same weights
    assert measured == [] and type(again.denoiser.runner).__name__ == "OrtRunner"
    cost["torch"] = 0.001   # torch faster: another machine would say so; here, another working size
    assert accelerate(replace(backend, size=(32, 32)), "auto", Reporter(), folder=tmp_path).denoiser \
        is backend.denoiser
    assert len(list(tmp_path.glob("choice-*.json"))) == 2


def test_choice_key_changes_with_what_the_speed_depends_on(models, monkeypatch):
    backend = models["tiny"]
    key = cpu.choice_key(backend, ["onnxruntime:fp32"])
    assert key == cpu.choice_key(tiny_backend((64, 48)), ["onnxruntime:fp32"])
    assert key != cpu.choice_key(replace(backend, size=(128, 96)), ["onnxruntime:fp32"])
    assert key != cpu.choice_key(tiny_backend((64, 48), seed=1), ["onnxruntime:fp32"])
    assert key != cpu.choice_key(backend, [])
    assert key != cpu.choice_key(backend, ["onnxruntime:int8"])
    torch.set_num_threads(2)
    assert key != cpu.choice_key(backend, ["onnxruntime:fp32"])
    torch.set_num_threads(1)
    monkeypatch.setattr(cpu, "cpu_name", lambda: "another CPU avx512f")
    assert key != cpu.choice_key(backend, ["onnxruntime:fp32"])


def test_auto_weighs_int8_only_for_a_model_whose_picture_holds_in_it(models):
    """The builtin's config says int8 was measured to hold (its dream figures unchanged): auto times
    it too; a model that does not say so is timed in fp32 only, unless int8 is asked for."""
    assert models["builtin"].int8 and not models["tiny"].int8
    assert "onnxruntime:int8" in cpu.candidates(models["builtin"], None)
    assert "onnxruntime:int8" not in cpu.candidates(models["tiny"], None)
    asked = cpu.candidates(models["tiny"], "int8")
    assert "onnxruntime:int8" in asked and all(c.endswith(":int8") for c in asked)
    assert "onnxruntime:int8" not in cpu.candidates(models["builtin"], "fp32")


def test_a_missing_runtime_is_said_once_and_torch_plays(models, monkeypatch, caplog, tmp_path):
    monkeypatch.setitem(sys.modules, "openvino", None)   # import openvino fails
    backend, reporter = models["tiny"], Reporter()
    with caplog.at_level(logging.INFO, "noclip"):
        for _ in range(3):
            assert accelerate(backend, "openvino", reporter, folder=tmp_path) is backend
    assert reporter.counts[("accel", "tiny")] == 3
    said = [r.getMessage() for r in caplog.records if "openvino not used" in r.getMessage()]
    assert len(said) == 1 and "noclip[openvino]" in said[0]
    assert "openvino" not in [r for r in cpu.RUNTIMES if cpu.why_not(r, backend.device) is None]


def test_cpu_runtimes_leave_a_gpu_model_to_torch(models):
    gpu = replace(models["tiny"], device=torch.device("cuda"))
    assert "plays models on the CPU" in cpu.why_not("onnxruntime", gpu.device)
    assert accelerate(gpu, "onnxruntime", Reporter()) is gpu


def test_a_graph_that_cannot_run_is_reported_and_torch_plays(models, monkeypatch, tmp_path):
    def broken(path, n=None):
        raise RuntimeError("kernel exploded (injected)")

    monkeypatch.setitem(cpu.RUNNERS, "onnxruntime", broken)
    backend, reporter = models["tiny"], Reporter()
    assert accelerate(backend, "onnxruntime", reporter, folder=tmp_path) is backend
    assert "kernel exploded" in reporter.recent[-1][1]


def test_int8_quantizes_the_denoiser_and_keeps_the_picture(models, tmp_path):
    """The builtin's denoiser, change decoder and encoder in int8 (their convolutions, calibrated on
    the shipped frames): the graphs really are quantized, but not the encoder's first convolution
    (it reads the picture) nor its last (it writes the latent), nor the decoder; the dream stays
    close to fp32's (a few levels in 255 on average)."""
    import onnx

    backend = models["builtin"]
    fast = accelerate(backend, "onnxruntime", Reporter(), precision="int8", folder=tmp_path)
    assert isinstance(fast.denoiser, EngineDenoiser)
    graphs = {path.name.split("-")[0]: onnx.load(path).graph for path in tmp_path.glob("*.onnx")}
    ops = {name: {n.op_type for n in g.node} for name, g in graphs.items()}
    assert "QuantizeLinear" in ops["unet"] and "QuantizeLinear" in ops["change"]
    assert "QuantizeLinear" not in ops["decoder"]
    encoder = graphs["encoder"].node
    convs = [n for n in encoder if n.op_type == "Conv"]
    fed = {out: n.op_type for n in encoder for out in n.output}
    from_int8 = [fed.get(c.input[0]) == "DequantizeLinear" for c in convs]
    assert len(convs) == 4 and from_int8 == [False, True, True, False], from_int8
    (_, want), (_, got) = play(backend), play(fast)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(want, got, strict=True)]
    assert max(diffs) <= 4.0, diffs   # measured: 2.2-2.8 (two seeds differ by ~10)
    if "openvino" in RUNTIMES:
        # OpenVINO runs the same quantized graphs in its own int8 kernels: the same picture
        vino = accelerate(backend, "openvino", Reporter(), precision="int8", folder=tmp_path)
        assert isinstance(vino.denoiser, EngineDenoiser)
        diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(want, play(vino)[1], strict=True)]
        assert max(diffs) <= 4.0, diffs


def test_bf16_is_openvinos_and_only_where_the_cpu_has_it(models, monkeypatch):
    """bf16 is the fp32 graph computed in bf16 by OpenVINO's CPU plugin: onnxruntime refuses it, and
    so does OpenVINO on a CPU without bf16 in hardware (it would be emulated, slower than fp32)."""
    cpu_ = torch.device("cpu")
    assert "openvino" in (cpu.toolchain("onnxruntime", models["tiny"], "bf16").why_not(cpu_, "bf16") or "")
    monkeypatch.setattr(cpu, "has_bf16", lambda: False)
    assert "avx512_bf16" in (cpu.toolchain("openvino", models["tiny"], "bf16").why_not(cpu_, "bf16") or "")
    assert "openvino:bf16" not in cpu.candidates(models["builtin"], None)   # asked for by name only


@pytest.mark.skipif("openvino" not in RUNTIMES or not cpu.has_bf16(), reason="OpenVINO on a CPU with bf16")
def test_bf16_keeps_the_picture(models, tmp_path):
    """On a CPU with bf16 (AVX512_BF16 or AMX): the builtin's dream within a level or two of fp32's
    (measured: a tiny KL model 0.43 levels on average, p99 2, where its int8 is 0.85, p99 3)."""
    backend = models["builtin"]
    fast = accelerate(backend, "openvino", Reporter(), precision="bf16", folder=tmp_path)
    assert isinstance(fast.denoiser, EngineDenoiser) and "bf16" in fast.runtime
    (_, want), (_, got) = play(backend), play(fast)
    diffs = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(want, got, strict=True)]
    assert max(diffs) <= 3.0, diffs


def test_a_show_on_auto_plays_the_builtin_on_the_fastest_runtime(tmp_path):
    """`noclip render` as a performer runs it, `--accel auto` on a fresh cache: the builtin is
    measured on torch and each runtime here, plays on the fastest, and the render is whole; the
    second render takes the remembered choice without measuring again."""
    import os
    import subprocess

    from conftest import ROOT

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "NOCLIP_ACCEL": "auto"}
    said = []
    for take in (1, 2):
        out = tmp_path / f"{take}.mkv"
        r = subprocess.run([sys.executable, "-m", "instrument.cli", "render", "-o", str(out),
                            "--seconds", "0.5", "--fps", "10", "--size", "256x192", "--codec", "ffv1"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        said.append([line for line in r.stderr.splitlines() if "the fastest here" in line])
    (line,) = said[0]
    assert "builtin: dreams on" in line and "ms a dream: torch" in line, said
    assert said[1] == said[0]   # the figures remembered, not measured anew
    (choice,) = (tmp_path / "cache" / "noclip" / "engines").glob("choice-*.json")
    chosen = json.loads(choice.read_text())["runtime"]
    assert chosen in ("torch", *cpu.candidates(load_backend("builtin"), None))
