"""Shared fixtures: a real EGL context, a real Xvfb display, a free UDP port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    """The registries as every entry point has them (catalogue.assemble), before any test module is
    imported, plus the bundled vhs chain's parameters (every bundled patch plays it): each test sees
    the same registry whatever ran before it, in any order."""
    from instrument.catalogue import assemble
    from instrument.render.chain import load_chain_spec

    # The test models are Python (a denoiser that sleeps, counts or fails on cue): played as written,
    # on torch, not exported to a CPU runtime that would drop what they do. The runtimes' own tests
    # (test_cpu_runtimes.py, test_tensorrt.py) choose theirs, auto included.
    os.environ.setdefault("NOCLIP_ACCEL", "torch")

    assemble()
    load_chain_spec("vhs")


@pytest.fixture(scope="session")
def ctx():
    from instrument.render.gl import headless_context

    context = headless_context()
    yield context
    context.release()


@pytest.fixture
def hub_offline(monkeypatch):
    """The Hugging Face hub switched off (tests never download) and torch on the machine's 2 cores."""
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_folders(tmp_path_factory):
    """Tiny SD and SD3 diffusers folders (tests/tiny_diffusers.py) under one root: "sd", "sd3"."""
    import tiny_diffusers as tiny

    root = tmp_path_factory.mktemp("tiny-models")
    tiny.sd_pipeline(root / "sd")
    tiny.sd3_pipeline(root / "sd3")
    return root


@pytest.fixture(scope="module")
def rig(ctx):
    """The analog chain fed exact images (tests/analog_rig.py)."""
    from analog_rig import Rig

    r = Rig(ctx)
    yield r
    r.release()


@pytest.fixture(scope="session")
def xvfb():
    """A real X server for window tests; skipped with the reason where Xvfb is not installed."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb); .ci/run installs it")
    for n in range(91, 120):
        if not Path(f"/tmp/.X{n}-lock").exists():
            break
    proc = subprocess.Popen([exe, f":{n}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if Path(f"/tmp/.X11-unix/X{n}").exists():
            break
        time.sleep(0.05)
    yield f":{n}"
    proc.terminate()
    proc.wait(timeout=5)


@pytest.fixture
def no_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


def free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def noclip(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess, as a performer would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "instrument.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=ROOT)
