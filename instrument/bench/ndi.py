"""NDI out's cost: the show's rate with and without `--ndi` at the output's size, a receiver in
another process connected throughout (as Resolume or OBS would be: with nobody connected the
runtime may skip work, and that would measure nothing).

Alternating windows compared by their medians (common.alternate), first unpaced (what the NDI
thread's read-back and compression take from the loop's rate), then paced at the show's rate (does
the show still hold it, and does every frame go out, or how many are dropped).
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import numpy as np

from ..record.ndi import NdiOutput
from ..report import Reporter
from .common import alternate, realtime_show, spawn


def receive(name: str, end: float, counts) -> None:
    """Receive `name`'s video until wall-clock `end`; put (frames received, seconds connected)."""
    from cyndilib.finder import Finder
    from cyndilib.receiver import ReceiveFrameType, Receiver
    from cyndilib.video_frame import VideoRecvFrame
    from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

    from ..scene.ndi_source import matches

    finder = Finder()
    finder.open()
    receiver = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=RecvBandwidth.highest)
    frame = VideoRecvFrame()
    receiver.set_video_frame(frame)
    found, frames, since = False, 0, time.time()
    while time.time() < end:
        if not found:
            finder.wait_for_sources(0.2)
            finder.update_sources()
            for listed in finder.get_source_names():
                if matches(name, listed):
                    receiver.set_source(finder.get_source(listed))
                    found, since = True, time.time()
            continue
        video = ReceiveFrameType.recv_video
        if receiver.receive(video, 100) & video:  # read out, as a receiver shows it (else its buffers fill)
            data = np.empty(frame.get_data_size(), np.uint8)
            frames += bool(frame.fill_p_data(data))
    receiver.disconnect()
    finder.close()
    counts.put((frames, time.time() - since if found else 0.0))


def bench_ndi(ctx, patch, size, seconds: float, fps: float, pairs: int = 5) -> dict[str, Any]:
    import multiprocessing

    name = f"noclip-bench-{os.getpid()}"
    reporter = Reporter()
    ndi = NdiOutput(name, fps, reporter)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    out: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "fps": fps, "window_s": window}
    counts = multiprocessing.get_context("spawn").Queue()
    try:
        for paced in (False, True):
            show = realtime_show(ctx, patch, size, fps if paced else 1000.0, paced, reporter=reporter,
                                 outputs=[ndi])
            show.run(frames=10)  # the source is announced: the receiver finds it while the show warms
            start = time.time() + 4.0
            proc = spawn(receive, name, start + windows * window, counts)
            sent0, dropped0 = ndi.sent, ndi.dropped

            def switch(on: bool, show=show) -> None:
                show.outputs = [ndi] if on else []

            rates, sent = alternate(show, start, windows, window, lambda: ndi.sent, switch)
            proc.join(timeout=30)
            try:
                received, connected = counts.get(timeout=10)
            except queue.Empty:  # the receiver process failed: nothing was received
                received, connected = 0, 0.0
            show.outputs = []
            show.close()
            without, with_ndi = float(np.median(rates[0])), float(np.median(rates[1]))
            paired = float(np.median([w / o for w, o in zip(rates[1], rates[0], strict=False) if o]))
            out["paced" if paced else "unpaced"] = {
                "without_fps": without, "with_fps": with_ndi,
                "cost": 1.0 - with_ndi / without if without else 0.0,
                "paired_cost": 1.0 - paired, "sent_in_windows": sent, "sent": ndi.sent - sent0,
                "dropped": ndi.dropped - dropped0, "received": received, "receiver_connected_s": connected,
                "windows": {"without": rates[0], "with": rates[1]}}
    finally:
        ndi.close()
    return out


def print_ndi(r: dict[str, Any]) -> None:
    print(f"\nNDI out at {r['size']}, a receiver in another process, alternating {r['window_s']:g} s windows:")
    for key, what in (("unpaced", "unpaced"), ("paced", f"paced at {r['fps']:g} fps")):
        if key in r:
            s = r[key]
            print(f"  {what}: {s['without_fps']:.1f} fps without, {s['with_fps']:.1f} with (cost "
                  f"{100 * s['cost']:.1f}% by the medians, {100 * s['paired_cost']:.1f}% by the pairs' "
                  f"median); "
                  f"{s['sent']} frames sent, {s['dropped']} dropped, {s['received']} received")
