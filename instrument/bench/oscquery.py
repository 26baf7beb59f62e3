"""OSCQuery benches: what 20 LISTENing WebSocket clients cost the loop's rate, and the web remote's
latency in a real browser: from the input's dispatch to the frame that applied its value, and the
whole round trip the page sees (input → applied → echoed back).

The clients live in a spawned process (`listen_clients`), as VJ software on the machine would, so
their reading does not count against the show's interpreter; the show plays modulators that move
two parameters every frame, so every frame streams to every client. What serving costs is also
measured as CPU (the server's thread, the loop's publishing), apart from the unpaced loop's rate,
which on two shared cores moves by more between windows than serving costs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import multiprocessing
import queue
import random
import select
import socket
import time
import urllib.request
from dataclasses import replace
from typing import Any

import numpy as np

from ..control import ControlQueue
from ..control.oscquery import OscQueryServer
from ..report import Reporter
from .common import Readback, alternate, realtime_show, spawn, summary

MODS = ({"target": "aberration", "shape": "sine", "every": 1, "depth": 1.0},
        {"target": "bleed", "shape": "triangle", "every": 2, "depth": 0.5})


def _readable(node: dict, out: list[str]) -> list[str]:
    if "CONTENTS" in node:
        for child in node["CONTENTS"].values():
            _readable(child, out)
    elif node.get("ACCESS", 0) & 1:
        out.append(node["FULL_PATH"])
    return out


def listen_clients(port: int, clients: int, times, out) -> None:
    """`clients` WebSockets that LISTEN to every readable path and read everything they are sent
    until the wall-clock `end` of the (start, end) that comes on `times`; puts the share of a core
    this process used from `start` to `end` on `out`. Lean on purpose: websockets' sans-I/O protocol
    over plain sockets in one thread, no event loop (20 asyncio clients on the show's two cores took
    10-45 % of a core, which is what those clients cost, not what serving them costs the show);
    pings are answered, as a real client does."""
    from websockets.client import ClientProtocol
    from websockets.protocol import State
    from websockets.uri import parse_uri

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        paths = _readable(json.load(r), [])
    uri = parse_uri(f"ws://127.0.0.1:{port}/")
    conns: dict[socket.socket, ClientProtocol] = {}

    def flush(sock: socket.socket, proto: ClientProtocol) -> None:
        data = b"".join(proto.data_to_send())
        if data:
            sock.sendall(data)

    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        proto = ClientProtocol(uri, max_size=None)
        proto.send_request(proto.connect())
        flush(sock, proto)
        while proto.state is State.CONNECTING and proto.handshake_exc is None:
            proto.receive_data(sock.recv(1 << 16))
        if proto.state is not State.OPEN:
            raise ConnectionError(f"the WebSocket handshake failed: {proto.handshake_exc}")
        for path in paths:
            proto.send_text(json.dumps({"COMMAND": "LISTEN", "DATA": path}).encode())
        flush(sock, proto)
        conns[sock] = proto
    cpu, start, end = None, math.inf, math.inf
    while conns and (now := time.time()) < end:
        if end == math.inf:
            with contextlib.suppress(queue.Empty):
                start, end = times.get_nowait()
        if cpu is None and now >= start:
            cpu = (time.process_time(), now)
        for sock in select.select(list(conns), [], [], min(0.1, end - now))[0]:
            proto = conns[sock]
            data = sock.recv(1 << 16)
            proto.receive_data(data) if data else proto.receive_eof()
            proto.events_received()  # read and dropped
            flush(sock, proto)  # pongs
            if not data or proto.state is State.CLOSED:
                del conns[sock]
                sock.close()
    if cpu is not None:
        out.put((time.process_time() - cpu[0]) / max(time.time() - cpu[1], 1e-9))
    for sock, proto in conns.items():
        with contextlib.suppress(OSError):
            proto.send_close()
            flush(sock, proto)
        sock.close()


def bench_oscquery(ctx, patch, size, seconds: float, fps: float = 30.0, clients: int = 20,
                   pairs: int = 5) -> dict[str, Any]:
    """The loop's rate in alternating windows, `clients` connected and LISTENing to every value
    throughout: the server published to and streaming (odd windows) or left out of the show's
    feedback (even ones), medians compared; unpaced (what the machine can do), then paced at `fps`
    (what the audience sees). Beside it what serving costs in CPU: the server's thread, the loop's
    publishing, and the clients' own process."""
    controls, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(controls, reporter, "127.0.0.1", 0).start()

    def make(paced: bool):
        show = realtime_show(ctx, replace(patch, modulators=MODS), size, fps if paced else 1000.0, paced,
                             queue=controls, reporter=reporter, feedback=[server], outputs=[Readback()])
        show.run(frames=10)
        return show

    show = make(False)
    window, windows = max(1.0, seconds / 2), 2 * pairs
    times, shares = (multiprocessing.get_context("spawn").Queue() for _ in range(2))
    proc = spawn(listen_clients, server.address[1], clients, times, shares)

    def listens() -> int:  # paths listened to, in all (read across threads: a glance, not a lock)
        try:
            return sum(len(c.listens) for c in list(server.clients.values()))
        except RuntimeError:
            return -1

    # timed once every client listens to every path (the server parses at most its share of time)
    everything = clients * len(server._current_tree().readers)
    give_up = time.time() + 30.0
    show.run(until=lambda: listens() >= everything or not proc.is_alive() or time.time() > give_up)
    phase = windows * window + 3.0  # each phase's windows, and the paced show's making and warming
    start = time.time() + 1.0
    times.put((start, start + 2 * phase))
    listening: list[int] = []
    assert server._thread.ident is not None  # started with the server
    clock = time.pthread_getcpuclockid(server._thread.ident)  # the server thread's own CPU time
    marks: list[tuple[float, float, bool]] = []
    published = [0.0]  # seconds the loop spent publishing to the server

    class Timed:
        def publish(self, fp) -> None:
            t = time.perf_counter()
            server.publish(fp)
            published[0] += time.perf_counter() - t

    out: dict[str, Any] = {"clients": clients, "fps": fps}
    sent = 0
    for k, paced in enumerate((False, True)):
        show = show if k == 0 else make(True)

        def switch(on: bool, show=show) -> None:
            marks.append((time.perf_counter(), time.clock_gettime(clock), on))
            show.feedback = [Timed()] if on else []
            listening.append(listens())

        rates, phase_sent = alternate(show, start + k * phase, windows, window, lambda: server.stats["sent"],
                                      switch)
        marks.append((time.perf_counter(), time.clock_gettime(clock), False))
        sent += phase_sent
        show.close()
        idle, streaming = float(np.median(rates[0])), float(np.median(rates[1]))
        paired = float(np.median([s / i for s, i in zip(rates[1], rates[0], strict=False) if i]))
        out["paced" if paced else "unpaced"] = {
            "idle_fps": idle, "streaming_fps": streaming, "cost": 1.0 - streaming / idle if idle else 0.0,
            "paired_cost": 1.0 - paired, "windows": {"idle": rates[0], "streaming": rates[1]}}
    cpu = {True: [0.0, 0.0], False: [0.0, 0.0]}  # on -> [cpu seconds, wall seconds]
    for (t0, c0, on), (t1, c1, _) in itertools.pairwise(marks):
        cpu[on][0] += c1 - c0
        cpu[on][1] += t1 - t0
    proc.join(timeout=10)
    try:
        clients_share = float(shares.get(timeout=2.0))
    except queue.Empty:
        clients_share = float("nan")
    out.update({"connected": server.stats["websockets"], "listening": min(listening, default=0),
                "packets_sent": sent,
                "server_cpu_share": {"streaming": cpu[True][0] / max(cpu[True][1], 1e-9),
                                     "idle": cpu[False][0] / max(cpu[False][1], 1e-9)},
                "publish_share": published[0] / max(cpu[True][1], 1e-9), "clients_cpu_share": clients_share})
    server.close()
    return out


def drive_remote(url: str, seconds: float, out) -> None:
    """The web remote in headless Chromium, driven from a process of its own as a phone is a machine
    of its own (its driving, over the DevTools protocol, would otherwise take the show's interpreter:
    a fifth of its samples): a fader touched at random places and moments for `seconds`. Puts
    (marks, rtts, errors) on `out`: each input's perf_counter before dispatch (the system's monotonic
    clock, the same in the show's process) with the value the page sent, and the page's own round
    trips (input event to the show's echo of the value)."""
    from .browser import Browser, find_chromium

    marks: list[tuple[float, float]] = []
    rtts: list[float] = []
    errors: list[str] = []
    browser = None
    try:
        browser = Browser(find_chromium() or "chromium")
        browser.goto(url)
        browser.wait("window.remote && window.remote.ready")
        browser.tap('.tab[data-group="generator"]')
        rng, end = random.Random(3), time.monotonic() + seconds
        x, y, w, h = browser.rect('[data-path="/noclip/prompt_fade"] .fader')
        while time.monotonic() < end:  # a click at a random place: one value, timed alone
            at = {"x": x + rng.random() * w, "y": y + h / 2, "button": "left", "clickCount": 1}
            t0 = time.perf_counter()
            browser.call("Input.dispatchMouseEvent", type="mousePressed", **at)
            browser.call("Input.dispatchMouseEvent", type="mouseReleased", **at)
            marks.append((t0, browser.eval("remote.controls.get('/noclip/prompt_fade').value")))
            time.sleep(rng.uniform(0.03, 0.12))
        time.sleep(0.5)
        rtts = browser.eval("remote.rtts")
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if browser is not None:
            browser.close()
        out.put((marks, rtts, errors))


def bench_remote(ctx, patch, size, seconds: float, fps: float = 60.0, name: str = "") -> dict[str, Any]:
    """The web remote in headless Chromium at phone size (`drive_remote`, a process of its own), the
    show (patch `name`) paced at `fps` (from `run_bench`: the show people play at its rate, and the
    test card at 640x360 at 60 fps, where what is measured is the remote's own path and a frame is
    half as long; a two-core machine holds 60 fps there beside the browser): each value's round trip
    timed by the page from the input event to the show's echo of it (the value applied at a frame's
    start, then streamed back); from the input's dispatch to the frame that applied it; and, in the
    show, each event's wait from the server's receipt to the frame that applied it."""
    from .browser import find_chromium

    if find_chromium() is None:
        return {"skipped": "no chromium (apt-get install chromium)"}
    controls, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(controls, reporter, "127.0.0.1", 0).start()
    show = realtime_show(ctx, patch, size, fps, True, queue=controls, reporter=reporter, feedback=[server])
    show.run(frames=10)
    applied = Applied("prompt_fade")
    show.add_sink(applied)
    results = multiprocessing.get_context("spawn").Queue()
    proc = spawn(drive_remote, f"http://127.0.0.1:{server.address[1]}/remote", seconds, results)
    got: list[tuple[list, list, list]] = []

    def finished() -> bool:
        if not got:
            try:
                got.append(results.get_nowait())
            except queue.Empty:
                if not proc.is_alive() and proc.exitcode is not None:   # died without a word
                    got.append(([], [], [f"the browser's process ended ({proc.exitcode})"]))
        return bool(got)

    show.stats.measure_latency = True
    show.run(until=finished)
    proc.join(timeout=10)
    marks, rtts, errors = got[0]
    received = np.array(show.stats.latencies) * 1000.0
    fps_seen = show.stats.fps()
    show.close()
    server.close()
    rtt = summary(rtts or [])
    period = 1000.0 / fps_seen if fps_seen else 1000.0 / fps  # frames of the rate the show held
    lat = applied.latencies([tuple(m) for m in marks])
    to_applied: dict[str, Any] = summary(lat)
    to_applied["worst"] = sorted(lat)[-5:]
    out = {"patch": name, "size": f"{size[0]}x{size[1]}", "fps": fps, "fps_seen": fps_seen,
           "round_trip_ms": rtt, "server_to_frame_ms": summary(received),
           "input_to_applied_ms": to_applied, "inputs": len(marks), "period_ms": period, "errors": errors}
    if rtt.get("n"):
        out["round_trip_p99_frames"] = rtt["p99"] / period
    if to_applied.get("n"):
        out["input_to_applied_p99_frames"] = to_applied["p99"] / period
    return out


class Applied:
    """An event sink: when the show applied each value of one parameter (perf_counter, value)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[tuple[float, Any]] = []

    def applied(self, event, frame: int, value: Any) -> None:
        if event.target == self.name:
            self.rows.append((time.perf_counter(), value))

    def close(self, frames: int) -> None:
        pass

    def latencies(self, marks: list[tuple[float, float]]) -> list[float]:
        """ms from each input's dispatch to the first application of its value after it (the value
        travels as a 32-bit float); inputs whose value never applied are left out."""
        out = []
        for t0, value in marks:
            for t, v in self.rows:
                if t >= t0 and abs(v - value) <= 1e-4 * max(1.0, abs(value)):
                    out.append((t - t0) * 1000.0)
                    break
        return out


def print_oscquery(r: dict[str, Any]) -> None:
    print(f"\nOSCQuery, {r['clients']} WebSocket clients LISTENing to every value, alternating windows:")
    for key, what in (("unpaced", "unpaced"), ("paced", f"paced at {r['fps']:g} fps")):
        if key in r:
            s = r[key]
            print(f"  {what}: {s['idle_fps']:.1f} fps not served, {s['streaming_fps']:.1f} served and "
                  f"streaming (cost {100 * s['cost']:.1f}% by the medians, {100 * s['paired_cost']:.1f}% by "
                  f"the pairs' median)")
    print(f"  the server's thread used {100 * r['server_cpu_share']['streaming']:.2f}% of a core streaming "
          f"({100 * r['server_cpu_share']['idle']:.2f}% not served) and the loop's publishing "
          f"{100 * r.get('publish_share', 0.0):.2f}% of its time, {r['packets_sent']} packets sent; the "
          f"clients' process (lean readers) {100 * r.get('clients_cpu_share', float('nan')):.1f}% of a core")


def print_remote(r: dict[str, Any]) -> None:
    if "skipped" in r:
        print(f"\nweb remote: skipped ({r['skipped']})")
        return
    t, a, i = r["round_trip_ms"], r["server_to_frame_ms"], r["input_to_applied_ms"]
    if not t.get("n"):
        print(f"\nweb remote: no round trips measured {r['errors']}")
        return
    print(f"\nweb remote in headless Chromium, {r.get('patch') or 'the'} show at {r.get('size', '')} "
          f"{r['fps']:g} fps ({r['fps_seen']:.1f} seen), {t['n']} "
          f"values: input → applied → echoed back p50 {t['p50']:.1f} ms  p99 {t['p99']:.1f} ms "
          f"({r['round_trip_p99_frames']:.2f} frames); input → applied p50 {i.get('p50', 0):.1f} ms "
          f"p99 {i.get('p99', 0):.1f} ms ({r.get('input_to_applied_p99_frames', 0):.2f} frames, {i['n']} of "
          f"{r['inputs']}); server receipt → frame p50 {a.get('p50', 0):.1f} ms p99 {a.get('p99', 0):.1f} ms")
