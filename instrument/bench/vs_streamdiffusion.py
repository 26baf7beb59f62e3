"""noclip's stream engine against StreamDiffusion on the same model, on a CPU (not part of CI).

StreamDiffusion (PyPI `streamdiffusion` 0.1.1) pins diffusers 0.24, so it runs in a virtual
environment of its own, made once:

    python3 -m venv ../sdvenv
    ../sdvenv/bin/pip install torch==2.13.0 streamdiffusion==0.1.1 "huggingface_hub<0.26"
    .venv/bin/python -m instrument.bench.vs_streamdiffusion --sd-python ../sdvenv/bin/python \\
        --size 256,512 --vae taesd,kl --threads 1 --runs 3

Both sides load one tiny SD-shaped model saved to disk here (random weights: generate/accel/bench.py's
`sd-tiny` UNet, its tiny TAESD-kind or KL autoencoder (`tiny_vae`), a tiny CLIP) and
run 1-step img2img on the same random frames: 5 warm-up, then 40 timed. Each run is a fresh
process, the engines alternate run by run so the machine's drift lands on all of them, and the
table gives medians. StreamDiffusion's CUDA timing events are swapped for perf_counter so that it
runs on a CPU. This file runs as a script in StreamDiffusion's environment (`sd` mode): the top
level imports nothing of noclip.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARM, TIMED = 5, 40


def save_model(folder: Path, vae: str, size: int) -> None:
    """The model both sides load (our diffusers writes it; 0.24 reads it)."""
    import torch
    from diffusers import LCMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    from ..generate.accel.bench import SD_TINY, tiny_vae
    from .tinyclip import clip_config, tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**{**SD_TINY, "sample_size": size // 8})
    ae = tiny_vae(vae)
    scheduler = LCMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    pipe = StableDiffusionPipeline(vae=ae, text_encoder=CLIPTextModel(clip_config()),
                                   tokenizer=tokenizer(folder / "_vocab"), unet=unet, scheduler=scheduler,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)  # type: ignore[attr-defined]
    for name in ("vocab.json", "merges.txt"):   # the files an older transformers' tokenizer reads
        (folder / "tokenizer" / name).write_bytes((folder / "_vocab" / name).read_bytes())


def _frames(size: int):
    import numpy as np

    g = np.random.default_rng(0)
    return [g.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(8)]


def _time(step) -> float:
    for i in range(WARM):
        step(i)
    start = time.perf_counter()
    for i in range(TIMED):
        step(i)
    return TIMED / (time.perf_counter() - start)


def run_streamdiffusion(model: Path, size: int, threads: int) -> float:
    """fps of StreamDiffusion's img2img, 1 step (t_index 32 of 50, LCM), no CFG, on the CPU."""
    import torch

    class Event:   # torch.cuda.Event's timing, on the host clock
        def __init__(self, **_) -> None:
            self.t = 0.0

        def record(self, *_) -> None:
            self.t = time.perf_counter()

        def elapsed_time(self, other) -> float:
            return (other.t - self.t) * 1000.0

    torch.cuda.Event = Event   # type: ignore[misc,assignment]
    torch.cuda.synchronize = lambda *_: None
    torch.set_num_threads(threads)
    from diffusers import StableDiffusionPipeline
    from streamdiffusion import StreamDiffusion

    pipe = StableDiffusionPipeline.from_pretrained(str(model), torch_dtype=torch.float32, safety_checker=None)
    stream = StreamDiffusion(pipe, t_index_list=[32], torch_dtype=torch.float32, width=size, height=size,
                             cfg_type="none", frame_buffer_size=1, use_denoising_batch=True)
    stream.prepare("", num_inference_steps=50, guidance_scale=1.0)
    frames = [torch.from_numpy(f).permute(2, 0, 1).float()[None] / 255.0 for f in _frames(size)]
    with torch.inference_mode():
        return _time(lambda i: stream(frames[i % len(frames)]))


def run_noclip(model: Path, size: int, threads: int, runtime: str) -> float:
    """fps of noclip's stream engine on the same model, 1 step, on `runtime` (precision after ':')."""
    import torch

    torch.set_num_threads(threads)
    from .. import catalogue
    from ..generate import load_backend
    from ..generate.accel import accelerate
    from ..generate.stream import StreamEngine
    from ..generate.worker import BaseFrame
    from ..params import REGISTRY, FrameParams

    catalogue.assemble()
    name, _, precision = runtime.partition(":")
    backend = load_backend(str(model), "cpu")
    with tempfile.TemporaryDirectory() as cache:
        played = accelerate(backend, name, precision=precision or "fp32", folder=cache)
        if name != "torch" and played is backend:
            raise RuntimeError(f"{runtime} did not build")
        engine = StreamEngine(played, (size, size))
        values = {**REGISTRY.defaults(), "steps": 1, "similarity_skip": 0.0, "feedback": 0.0}
        frames = [BaseFrame(f) for f in _frames(size)]
        return _time(lambda i: engine(frames[i % len(frames)], FrameParams(i, i / 30, 1 / 30, values)))


def compare(args: argparse.Namespace) -> None:
    engines = ["streamdiffusion", *(f"noclip-{r}" for r in args.accel.split(","))]
    here = Path(__file__).resolve()
    root = here.parents[2]
    rows = []
    for vae in args.vae.split(","):
        for size in (int(s) for s in args.size.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                model = Path(tmp) / "model"
                save_model(model, vae, size)
                for threads in (int(t) for t in args.threads.split(",")):
                    fps: dict[str, list[float]] = {e: [] for e in engines}
                    for _ in range(args.runs):
                        for e in engines:
                            if e == "streamdiffusion":
                                cmd = [args.sd_python, str(here), "sd", str(model), str(size), str(threads)]
                            else:
                                cmd = [sys.executable, "-m", "instrument.bench.vs_streamdiffusion", "noclip",
                                       str(model), str(size), str(threads), e.removeprefix("noclip-")]
                            r = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=1800)
                            lines = r.stdout.strip().splitlines()
                            if r.returncode != 0 or not lines:
                                print(f"{e} failed: {r.stderr[-600:]}", file=sys.stderr)
                                continue
                            fps[e].append(json.loads(lines[-1])["fps"])
                    med = {e: statistics.median(v) for e, v in fps.items() if v}
                    rows.append({"vae": vae, "size": size, "threads": threads, "fps": med, "runs": fps})
                    sd = med.get("streamdiffusion")
                    cells = "  ".join(f"{e} {v:6.2f}" + (f" ({v / sd:.2f}x)" if sd and e != "streamdiffusion"
                                                         else "") for e, v in med.items())
                    print(f"{vae:5s} {size}px {threads} thread(s): {cells}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["sd"], ["noclip"]):   # one timed run, in a process of its own
        mode, model, size, threads, *rest = argv
        fps = (run_streamdiffusion(Path(model), int(size), int(threads)) if mode == "sd" else
               run_noclip(Path(model), int(size), int(threads), rest[0]))
        print(json.dumps({"fps": fps}))
        return
    ap = argparse.ArgumentParser(prog="python -m instrument.bench.vs_streamdiffusion", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sd-python", required=True, help="the python of StreamDiffusion's environment")
    ap.add_argument("--size", default="256,512")
    ap.add_argument("--vae", default="taesd,kl")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--accel", default="torch,onnxruntime,openvino",
                    help="noclip's runtimes (onnxruntime:int8 …)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write the figures here too")
    compare(ap.parse_args(argv))


if __name__ == "__main__":
    if __package__ in (None, ""):   # run by path in StreamDiffusion's environment: only `sd` mode
        fps = run_streamdiffusion(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps({"fps": fps}))
    else:
        main()
