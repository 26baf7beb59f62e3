"""NDI out's cost: the show's rate with and without `--ndi` at the output's size, a receiver in
another process connected throughout (as Resolume or OBS would be).

Alternating windows compared by their medians (common.alternate), first unpaced (what the NDI
thread's packing, read-back and compression take from the loop's rate), then paced at the show's
rate (does the show still hold it, and does every frame go out, or how many are dropped).

During the timed windows the receiver takes metadata only. The runtime compresses every frame
whether anyone receives it or not (measured on this runtime: the sender's CPU a 720p frame is the
same with nobody connected, a metadata-only receiver and a decoding one), so the sender does its
whole work; what it leaves out is putting the compressed video on the wire (over loopback ~0.25 ms
of kernel time a frame, measured) and, above all, the decoding, which a rig's receiver does on its
own machine but one here would do on the show's two cores (a decoding receiver took ~3 s of CPU in
12 s). That the stream is real is checked apart: after the paced windows a receiver that decodes
counts the frames that arrive in a window of its own, against those sent in it.
"""

from __future__ import annotations

import os
import queue
import time
from typing import Any

import numpy as np

from ..record.ndi import NdiOutput
from ..report import Reporter
from .common import alternate, past, realtime_show, spawn

COUNT_S = 4.0  # the decoding receiver's window


def receive(name: str, start: float, end: float, decode: bool, counts) -> None:
    """Connect to `name` and stay connected until wall-clock `end`; put (video frames received from
    `start` on, seconds connected). `decode`: the video at full bandwidth, decoded and read out as a
    receiver shows it; else metadata only (no video sent to it, nothing decoded)."""
    from cyndilib.finder import Finder
    from cyndilib.metadata_frame import MetadataRecvFrame
    from cyndilib.receiver import ReceiveFrameType, Receiver
    from cyndilib.video_frame import VideoRecvFrame
    from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

    from ..scene.ndi_source import matches

    finder = Finder()
    finder.open()
    bandwidth = RecvBandwidth.highest if decode else RecvBandwidth.metadata_only
    receiver = Receiver(color_format=RecvColorFormat.RGBX_RGBA, bandwidth=bandwidth)
    frame = VideoRecvFrame()
    receiver.set_video_frame(frame)
    receiver.set_metadata_frame(MetadataRecvFrame())
    found, frames, since = False, 0, time.time()
    wanted = ReceiveFrameType.recv_video if decode else ReceiveFrameType.recv_metadata
    while time.time() < end:
        if not found:
            finder.wait_for_sources(0.2)
            finder.update_sources()
            for listed in finder.get_source_names():
                if matches(name, listed):
                    receiver.set_source(finder.get_source(listed))
                    found, since = True, time.time()
            continue
        got = receiver.receive(wanted, 100)
        if decode and got & wanted:  # read out (else the receiver's buffers fill)
            data = np.empty(frame.get_data_size(), np.uint8)
            frames += bool(frame.fill_p_data(data)) and time.time() >= start
    receiver.disconnect()
    finder.close()
    counts.put((frames, time.time() - since if found else 0.0))


def _result(counts, proc) -> tuple[int, float]:
    proc.join(timeout=30)
    try:
        return counts.get(timeout=10)
    except queue.Empty:  # the receiver process failed: nothing was received
        return 0, 0.0


def bench_ndi(ctx, patch, size, seconds: float, fps: float, pairs: int = 5) -> dict[str, Any]:
    import multiprocessing

    name = f"noclip-bench-{os.getpid()}"
    reporter = Reporter()
    ndi = NdiOutput(name, fps, reporter)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    out: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "fps": fps, "window_s": window,
                           "receiver": "metadata only in the timed windows; a decoding one counts apart"}
    counts = multiprocessing.get_context("spawn").Queue()
    try:
        for paced in (False, True):
            show = realtime_show(ctx, patch, size, fps if paced else 1000.0, paced, reporter=reporter,
                                 outputs=[ndi])
            show.run(frames=10)  # the source is announced: the receiver finds it while the show warms
            start = time.time() + 4.0
            proc = spawn(receive, name, start, start + windows * window, False, counts)
            sent0, dropped0, cpu0 = ndi.sent, ndi.dropped, ndi.send_cpu

            def switch(on: bool, show=show) -> None:
                show.outputs = [ndi] if on else []

            rates, sent = alternate(show, start, windows, window, lambda: ndi.sent, switch)
            _, connected = _result(counts, proc)
            phase_sent = ndi.sent - sent0
            without, with_ndi = float(np.median(rates[0])), float(np.median(rates[1]))
            paired = float(np.median([w / o for w, o in zip(rates[1], rates[0], strict=False) if o]))
            result = out["paced" if paced else "unpaced"] = {
                "without_fps": without, "with_fps": with_ndi,
                "cost": 1.0 - with_ndi / without if without else 0.0,
                "paired_cost": 1.0 - paired, "sent_in_windows": sent, "sent": phase_sent,
                "dropped": ndi.dropped - dropped0, "receiver_connected_s": connected,
                "send_cpu_ms": 1000 * (ndi.send_cpu - cpu0) / phase_sent if phase_sent else 0.0,
                "windows": {"without": rates[0], "with": rates[1]}}
            if paced:  # the stream is real: a decoding receiver counts what arrives in a window of its own
                show.outputs = [ndi]
                t0 = time.time() + 4.0
                proc = spawn(receive, name, t0, t0 + COUNT_S, True, counts)
                show.run(until=past(t0))
                s0 = ndi.sent
                show.run(until=past(t0 + COUNT_S))
                received, _ = _result(counts, proc)
                result["count_window"] = {"seconds": COUNT_S, "sent": ndi.sent - s0, "received": received}
            show.outputs = []
            show.close()
    finally:
        ndi.close()
    return out


def print_ndi(r: dict[str, Any]) -> None:
    print(f"\nNDI out at {r['size']}, alternating {r['window_s']:g} s windows; a receiver in another process "
          f"takes metadata only in them (the sender compresses every frame all the same), a decoding one "
          f"counts apart:")
    for key, what in (("unpaced", "unpaced"), ("paced", f"paced at {r['fps']:g} fps")):
        if key in r:
            s = r[key]
            print(f"  {what}: {s['without_fps']:.1f} fps without, {s['with_fps']:.1f} with (cost "
                  f"{100 * s['cost']:.1f}% by the medians, {100 * s['paired_cost']:.1f}% by the pairs' "
                  f"median); {s['sent']} frames sent, {s['dropped']} dropped, "
                  f"{s['send_cpu_ms']:.1f} ms of the NDI thread's CPU a frame")
            c = s.get("count_window")
            if c:
                print(f"    a decoding receiver, {c['seconds']:g} s: {c['received']} of the {c['sent']} "
                      f"frames sent arrived")
