"""TensorRT acceleration (generate/accel): exports that compute what torch computes, cache keys that
change with everything an engine depends on, and a show that plays on torch when TensorRT cannot.
On CPU, onnxruntime stands in for TensorRT's runtime; the GPU tests skip with the reason."""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import replace

import numpy as np
import pytest
import tiny_diffusers as tiny
import torch
from tiny_backend import tiny_backend

from instrument.generate import load_backend
from instrument.generate.accel import Toolchain, accelerate, build_engines, engine_backend
from instrument.generate.accel.cpu import OrtRunner
from instrument.generate.accel.engines import cache_key, tensorrt_why_not
from instrument.generate.accel.export import export, fingerprint, parts
from instrument.generate.accel.runtime import EngineAutoencoder, EngineDenoiser
from instrument.generate.stream import MAX_STEPS, StreamEngine
from instrument.generate.worker import BaseFrame
from instrument.params import REGISTRY, FrameParams
from instrument.report import Reporter

onnxruntime = pytest.importorskip("onnxruntime", reason="onnx/onnxruntime are in the test extra")
pytest.importorskip("onnx", reason="onnx/onnxruntime are in the test extra")


@pytest.fixture(autouse=True)
def _setup(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("NOCLIP_ACCEL", raising=False)
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    loaded = tiny.backends(tmp_path_factory.mktemp("models"))
    return loaded | {"tiny": tiny_backend((64, 48))}


def onnx_toolchain(built: list | None = None, fail: bool = False) -> Toolchain:
    """onnxruntime in TensorRT's place: the 'engine' is the ONNX graph itself."""
    def build(onnx, engine, part, precision):
        if fail:
            raise RuntimeError("builder exploded (injected)")
        if built is not None:
            built.append(part.name)
        shutil.copy(onnx, engine)

    return Toolchain(why_not=lambda device, precision: None, build=build,
                     runner=lambda path, device: OrtRunner(path), version=lambda: "onnxruntime",
                     gpu=lambda device: "cpu")


# -- export ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sd", "taesd", "sdxl", "tiny", "builtin"])
def test_onnx_export_matches_torch_at_every_batch(models, tmp_path, kind):
    """UNet (dynamic batch, timestep, conditioning; SDXL's packed pooled embedding inside; the
    builtin's base latent), encoder, decoder and the builtin's change decoder: onnxruntime on the
    exported graph computes what the torch part computes."""
    backend = load_backend("builtin", "cpu") if kind == "builtin" else models[kind]
    names = [p.name for p in parts(backend)]
    assert names == ["unet", "encoder", "decoder", *(["change"] if kind == "builtin" else [])]
    for part in parts(backend):
        runner = OrtRunner(export(part, tmp_path / f"{part.name}.onnx"))
        for batch in (1, MAX_STEPS):
            inputs = part.example(batch)
            with torch.no_grad():
                want = part.graph(*inputs)
            got = runner(**{name: x for (name, _, _), x in zip(part.inputs, inputs, strict=True)})
            assert got.shape == want.shape
            err = float((got - want).abs().max())
            assert err <= 1e-4 * max(1.0, float(want.abs().max())), (kind, part.name, batch, err)


# -- cache keys ------------------------------------------------------------------------------------

def test_cache_keys_change_with_everything_an_engine_depends_on():
    backend = tiny_backend((64, 48))
    unet = parts(backend)[0]
    model = fingerprint(backend.denoiser)

    def key(**kw):
        args = {"model": model, "part": unet, "precision": "fp16", "runtime": "tensorrt 10.9",
                "device": "H100 sm90"}
        return cache_key(**(args | kw))

    base = key()
    assert base == key() and model == fingerprint(tiny_backend((64, 48)).denoiser)  # deterministic
    changed = {
        "weights": key(model=fingerprint(_nudged(tiny_backend((64, 48)).denoiser))),
        "schedule": key(model=fingerprint(_rescheduled(tiny_backend((64, 48)).denoiser))),
        "working size": key(part=parts(backend, (128, 96))[0]),
        "conditioning": key(part=parts(replace(backend, conditioner=lambda p: torch.zeros(1, 8)))[0]),
        "batch range": key(part=replace(unet, batch=(1, 2, 8))),
        "part": key(part=parts(backend)[1]),
        "precision": key(precision="fp32"),
        "tensorrt": key(runtime="tensorrt 10.10"),
        "runtime": key(runtime="onnxruntime 1.32.0"),
        "gpu": key(device="RTX 4090 sm89"),
    }
    for what, k in changed.items():
        assert k != base, what
    assert len(set(changed.values())) == len(changed)


def _nudged(den):
    with torch.no_grad():
        den.out.bias[0] += 1e-3
    return den


def _rescheduled(den):
    den.schedule = type(den.schedule).scaled_linear(beta_end=0.02)
    return den


# -- fallback --------------------------------------------------------------------------------------

def test_tensorrt_absent_is_said_once_and_torch_plays(monkeypatch, caplog):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)   # import tensorrt fails, as here
    why = tensorrt_why_not(torch.device("cuda"))
    assert "tensorrt" in why and "noclip[tensorrt]" in why
    backend = replace(tiny_backend((64, 48)), device=torch.device("cuda"))  # as if on a GPU
    reporter = Reporter()
    with caplog.at_level(logging.INFO, "noclip"):
        for _ in range(3):
            assert accelerate(backend, "tensorrt", reporter) is backend
    assert reporter.counts[("accel", "tiny")] == 3
    said = [r.getMessage() for r in caplog.records if "TensorRT not used" in r.getMessage()]
    assert len(said) == 1 and "not importable" in said[0]
    # auto: torch without a word on the HUD; torch: not even asked
    assert accelerate(backend, "auto", reporter) is backend and reporter.counts[("accel", "tiny")] == 3
    assert accelerate(backend, "torch", reporter) is backend


def test_cpu_is_not_a_tensorrt_device():
    assert "not on a CUDA GPU" in tensorrt_why_not(torch.device("cpu"))
    done, message = build_engines("sd-turbo", device="cpu")   # asks before loading (or fetching) anything
    assert not done and "not on a CUDA GPU" in message


def test_a_failing_build_is_reported_and_the_show_generates_on_torch(ctx, tmp_path, monkeypatch):
    import instrument.generate as gen
    import instrument.generate.accel as accel

    backend = tiny_backend((64, 48))
    monkeypatch.setattr(gen, "load_backend", lambda name, device=None: backend)
    monkeypatch.setattr(accel, "tensorrt_toolchain", lambda: onnx_toolchain(fail=True))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("NOCLIP_ACCEL", "tensorrt")
    monkeypatch.setenv("NOCLIP_GENERATOR", "thread")  # in this process, where the patches are
    reporter = Reporter()
    generator = gen.make_generator("tiny", ctx, (64, 48), reporter, live=False)
    try:
        deadline = time.monotonic() + 30
        while generator.worker.loading and time.monotonic() < deadline:  # it loads on its own thread
            time.sleep(0.01)
        assert generator.engine is not None             # torch plays
        assert reporter.counts[("accel", "tiny")] == 1
        assert "builder exploded" in reporter.recent[-1][1]
        assert not list((tmp_path / "noclip" / "engines").glob("*.engine"))   # nothing half-built kept
    finally:
        generator.release()


# -- engines behind the interfaces -----------------------------------------------------------------

def frames(size, n=6):
    g = np.random.default_rng(3)
    base = g.integers(0, 256, (size[1] // 8, size[0] // 8, 3)).astype(np.uint8)
    return [BaseFrame(np.ascontiguousarray(np.roll(base, k, 1).repeat(8, 0).repeat(8, 1))) for k in range(n)]


def play(backend, size, steps):
    engine = StreamEngine(backend, size)
    values = {**REGISTRY.defaults(), "steps": steps, "stream_batch": True, "similarity_skip": 0.0, "seed": 5}
    return [engine(f, FrameParams(n, n / 30, 1 / 30, values)) for n, f in enumerate(frames(size))]


def test_engines_play_like_torch_and_are_built_once(tmp_path):
    backend, built = tiny_backend((64, 48)), []
    fast = engine_backend(backend, "fp16", onnx_toolchain(built), folder=tmp_path)
    assert isinstance(fast.denoiser, EngineDenoiser) and isinstance(fast.autoencoder, EngineAutoencoder)
    assert built == ["unet", "encoder", "decoder"]
    for steps in (1, 2):
        for a, b in zip(play(backend, (64, 48), steps), play(fast, (64, 48), steps), strict=True):
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    engine_backend(tiny_backend((64, 48)), "fp16", onnx_toolchain(built), folder=tmp_path)
    assert built == ["unet", "encoder", "decoder"]              # the same model again: from the cache
    engine_backend(backend, "fp32", onnx_toolchain(built), folder=tmp_path)
    assert built[3:] == ["unet", "encoder", "decoder"]          # another precision: built anew
    # a working size the engines were not built for runs on torch, the same frames
    for a, b in zip(play(backend, (32, 32), 2), play(fast, (32, 32), 2), strict=True):
        assert np.array_equal(a, b)


def test_bench_says_why_it_cannot_measure_here():
    from instrument.generate.accel.bench import bench_accel

    r = bench_accel(0.1, toolchain=Toolchain(lambda d, p: "no GPU (test)", None, None, None, None))
    assert r == {"ran": False, "why": "torch vs TensorRT needs a CUDA GPU with TensorRT 10+: no GPU (test)"}


# -- on a GPU with TensorRT ------------------------------------------------------------------------

def _gpu_reason() -> str | None:
    if not torch.cuda.is_available():
        return "needs a CUDA GPU (none here)"
    return tensorrt_why_not(torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_reason() is not None, reason=f"TensorRT: {_gpu_reason()}")
def test_tensorrt_engines_match_torch_in_fp16(tmp_path):
    tiny.sd_pipeline(tmp_path / "sd", tiny_vae=True)
    backend = load_backend(str(tmp_path / "sd"), "cuda")
    fast = accelerate(backend, "tensorrt", Reporter(), folder=tmp_path / "engines")
    assert isinstance(fast.denoiser, EngineDenoiser)
    for steps in (1, 2):
        for a, b in zip(play(backend, backend.size, steps), play(fast, backend.size, steps), strict=True):
            assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0
