"""The take a new user makes: `noclip play --headless --seconds S --record take.mp4`, no other flag,
on the patch people play, measured from the outside (the command's own log and the file it wrote),
beside the same show without a take, so the cost of recording to the dream is in the open."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import av


def _play(patch: str, seconds: float, record: bool, folder: Path, fps: float | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "instrument.cli", "play", "--headless", "--patch", patch,
           "--seconds", f"{seconds:g}", "--osc", "off", "--midi", "off"]
    if fps:
        cmd += ["--fps", f"{fps:g}"]
    if record:
        cmd += ["--record", str(folder / "take.mp4")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=folder, timeout=seconds * 4 + 120)
    log = proc.stderr
    out: dict[str, Any] = {"exit": proc.returncode}
    if m := re.search(r"playing at ([\d.]+) fps", log):
        out["rate"] = float(m.group(1))
    if m := re.search(r"played (\d+) frames at ([\d.]+) fps", log):
        out["frames"], out["fps"] = int(m.group(1)), float(m.group(2))
    if m := re.search(r"dreamed \d+ frames \(([\d.]+) a second\)", log):
        out["dreams"] = float(m.group(1))
    if record:
        m = re.search(r"recording \S+ at (\d+x\d+), (\w+)", log)
        out["encoded"] = f"{m.group(1)} {m.group(2)}" if m else None
        m = re.search(r"(\d+) of (\d+) frames dropped", log)
        out["dropped"] = int(m.group(1)) if m else 0
        take = folder / "take.mp4"
        with av.open(str(take)) as f:
            out["file_frames"] = sum(1 for _ in f.decode(video=0))
        out["performance"] = (folder / "take.performance.jsonl").is_file()
    if proc.returncode != 0:
        out["log"] = log[-2000:]
    return out


def bench_take(patch: str, seconds: float) -> dict[str, Any]:
    """The show with a take, then the same show without one at the rate the take chose (each in a
    fresh process, as a performer starts it)."""
    with tempfile.TemporaryDirectory() as tmp:
        rec = _play(patch, seconds, True, Path(tmp))
        idle = _play(patch, seconds, False, Path(tmp), rec.get("rate"))
    ratio = rec.get("dreams", 0.0) / idle["dreams"] if idle.get("dreams") else None
    return {"seconds": seconds, "patch": patch, "idle": idle, "recording": rec, "dream_ratio": ratio}


def print_take(t: dict[str, Any]) -> None:
    idle, rec = t["idle"], t["recording"]
    print(f"\na take as a new user makes it ({t['patch']}, {t['seconds']:g} s, `--record` and nothing else):")
    for name, run in (("without a take", idle), ("recording", rec)):
        if run.get("exit"):
            print(f"  {name}: exit {run['exit']}\n{run.get('log', '')}")
            continue
        line = (f"  {name}: {run.get('fps', 0):.1f} fps of {run.get('rate', 0):g}, "
                f"{run.get('frames', 0)} frames played, {run.get('dreams', 0):.1f} dreams/s")
        if "file_frames" in run:
            line += (f"; encoded {run['encoded']}, {run['dropped']} dropped, {run['file_frames']} frames "
                     f"in the file, performance file {'written' if run['performance'] else 'MISSING'}")
        print(line)
    if t["dream_ratio"] is not None:
        print(f"  dreams while recording: {100 * t['dream_ratio']:.0f} % of the show without a take")
