"""OSCQuery over real HTTP and WebSockets on loopback: the tree from the registry, attribute
queries, LISTEN streaming, OSC in over the WebSocket under the UDP port's rules, and the bounds a
hostile client meets."""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import socket
import sys
import time

import pytest
from websockets.sync.client import connect

from instrument.clock import OfflineClock
from instrument.commands import COMMANDS
from instrument.control import ControlQueue
from instrument.control import oscquery as oq
from instrument.control.osc import OscControl
from instrument.control.oscquery import OscQueryServer
from instrument.control.osctree import HIDDEN
from instrument.control.oscwire import build, parse
from instrument.params import REGISTRY, FrameParams, Registry, declare
from instrument.patch import load_patch
from instrument.report import Reporter
from instrument.show import Show


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def get_json(port: int, path: str) -> dict:
    status, _, body = get(port, path)
    assert status == 200, (path, status, body)
    return json.loads(body)


def until(cond, timeout: float = 3.0, step=None) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if step is not None:
            step()
        if cond():
            return True
        time.sleep(0.005)
    return cond()


def messages(ws, timeout: float = 2.0) -> list[tuple[str, list]]:
    """Every OSC message in the next binary frame (a message or a bundle)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        data = ws.recv(timeout=max(0.01, end - time.monotonic()))
        if isinstance(data, bytes):
            return [(a, args) for a, args, _ in parse(data)]
    raise TimeoutError


def methods(node: dict) -> list[str]:
    """The FULL_PATH of every method (a node without CONTENTS) under `node`."""
    if "CONTENTS" not in node:
        return [node["FULL_PATH"]]
    return [p for child in node["CONTENTS"].values() for p in methods(child)]


def cut_off(sock: socket.socket, timeout: float = 3.0) -> bool:
    """The server closed (or reset) the connection without answering."""
    sock.settimeout(timeout)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def live(ctx):
    """A show on the offline clock with its UDP OSC port and OSCQuery server, both on loopback."""
    queue, reporter = ControlQueue(), Reporter()
    osc = OscControl(queue, reporter, "127.0.0.1", 0)
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, osc=osc.address).start()
    show = Show(ctx, load_patch("testcard"), (160, 120), clock=OfflineClock(60), queue=queue,
                reporter=reporter, feedback=[osc, server], sources=[osc])
    show.step()
    yield show, server, osc
    show.close()
    server.close()
    osc.close()


def test_the_tree_is_the_registry(live):
    show, server, _ = live
    port = server.address[1]
    root = get_json(port, "/")
    assert root["FULL_PATH"] == "/" and "noclip" in root["CONTENTS"]
    noclip = root["CONTENTS"]["noclip"]["CONTENTS"]
    for spec in REGISTRY:
        node = noclip[spec.name]
        assert node["FULL_PATH"] == f"/noclip/{spec.name}"
        assert node["ACCESS"] == 3 and node["DESCRIPTION"] == spec.description and node["TAGS"] == [spec.group]
        assert node["TYPE"] == {"float": "f", "int": "i", "bool": "T", "enum": "s", "str": "s"}[spec.type]
        if spec.type in ("float", "int"):
            assert node["RANGE"] == [{"MIN": spec.min, "MAX": spec.max}] and node["CLIPMODE"] == ["both"]
        if spec.type == "enum":
            assert node["RANGE"] == [{"VALS": list(spec.choices)}]
        value = show.fp[spec.name]
        assert node["VALUE"] == [pytest.approx(value) if isinstance(value, float) else value]
        if spec.type != "str":
            norm = noclip["norm"]["CONTENTS"][spec.name]
            assert norm["TYPE"] == "f" and norm["RANGE"] == [{"MIN": 0.0, "MAX": 1.0}]
            assert norm["VALUE"] == [pytest.approx(spec.to_norm(value))]
        else:
            assert spec.name not in noclip["norm"]["CONTENTS"]
    assert noclip["aberration"]["UNIT"] == ["distance.pixels"] and noclip["tempo"]["UNIT"] == ["time.bpm"]
    cmd = noclip["cmd"]["CONTENTS"]
    assert cmd["seed"]["CONTENTS"]["next"] == {"FULL_PATH": "/noclip/cmd/seed/next", "TYPE": "N", "ACCESS": 2,
                                               "DESCRIPTION": COMMANDS["seed/next"], "TAGS": ["command"]}
    assert cmd["tracking"]["CONTENTS"]["jump"]["TYPE"] == "f"
    assert "noclip" in cmd  # the scene's own command is there too
    assert set(methods(root["CONTENTS"]["noclip"]["CONTENTS"]["cmd"])) == {
        f"/noclip/cmd/{name}" for name in COMMANDS if name not in HIDDEN}
    state = noclip["state"]["CONTENTS"]
    assert state["tempo"]["ACCESS"] == 1 and state["tempo"]["VALUE"] == [pytest.approx(120.0)]
    # one node alone, and its parts
    assert get_json(port, "/noclip/aberration")["RANGE"] == [{"MIN": 0.0, "MAX": 16.0}]
    assert get_json(port, "/noclip/norm")["FULL_PATH"] == "/noclip/norm"
    assert get_json(port, "/noclip/fit?RANGE") == {"RANGE": [{"VALS": ["fit", "fill", "stretch"]}]}
    assert get_json(port, "/noclip/seed?TYPE") == {"TYPE": "i"}


def test_attribute_queries_and_errors(live):
    show, server, osc = live
    port = server.address[1]
    assert get_json(port, "/noclip/aberration?VALUE") == {"VALUE": [pytest.approx(show.fp["aberration"])]}
    assert get(port, "/noclip/cmd/seed/next?VALUE")[0] == 204      # a command has no value
    assert get(port, "/noclip/aberration?UNIT")[0] == 200
    assert get(port, "/noclip/crt?UNIT")[0] == 204                  # no unit on this one
    assert get(port, "/noclip/aberration?GABBAGABBAHEY")[0] == 400  # not an attribute
    assert get(port, "/noclip/nothing_here")[0] == 404
    assert get(port, "/noclip/aberration/")[0] == 200
    info = get_json(port, "/?HOST_INFO")
    assert info["NAME"] == "noclip" and info["OSC_TRANSPORT"] == "UDP"
    assert (info["OSC_IP"], info["OSC_PORT"]) == osc.address
    assert info["EXTENSIONS"]["LISTEN"] is True and info["EXTENSIONS"]["VALUE"] is True
    assert info["EXTENSIONS"]["PATH_ADDED"] is True


def test_a_websocket_sets_values_like_osc_and_listens_to_changes(live):
    show, server, osc = live
    port = server.address[1]
    with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
        ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/noclip/prompt_fade"}))
        assert messages(ws) == [("/noclip/prompt_fade", [pytest.approx(show.fp["prompt_fade"])])]
        ws.send(build("/noclip/prompt_fade", 7.25))
        assert until(lambda: show.fp["prompt_fade"] == 7.25, step=show.step)
        assert get_json(port, "/noclip/prompt_fade?VALUE") == {"VALUE": [7.25]}
        assert messages(ws) == [("/noclip/prompt_fade", [7.25])]
        ws.send(build("/noclip/norm/prompt_fade", 0.5))                # 0..1 on its norm address
        assert until(lambda: show.fp["prompt_fade"] == 15.0, step=show.step)
        assert messages(ws) == [("/noclip/prompt_fade", [15.0])]
        # a change from the UDP port streams too, as an OSC message in a binary frame
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.sendto(build("/noclip/prompt_fade", 3.0), osc.address)
        udp.close()
        assert until(lambda: show.fp["prompt_fade"] == 3.0, step=show.step)
        assert messages(ws) == [("/noclip/prompt_fade", [3.0])]
        # a command over the WebSocket
        seed = show.fp["seed"]
        ws.send(build("/noclip/cmd/seed/next"))
        assert until(lambda: show.fp["seed"] == seed + 1, step=show.step)
        # IGNORE: nothing more comes
        ws.send(json.dumps({"COMMAND": "IGNORE", "DATA": "/noclip/prompt_fade"}))
        time.sleep(0.1)
        ws.send(build("/noclip/prompt_fade", 1.0))
        assert until(lambda: show.fp["prompt_fade"] == 1.0, step=show.step)
        with pytest.raises(TimeoutError):
            messages(ws, timeout=0.3)
    rows = [r for r in show.glance.recent if r[1] == "prompt_fade"]
    assert rows and rows[-1][0] in ("oscquery", "osc")


def test_one_frame_of_changes_is_one_bundle(live):
    show, server, _ = live
    with connect(f"ws://127.0.0.1:{server.address[1]}/", open_timeout=5) as ws:
        for path in ("/noclip/prompt_fade", "/noclip/norm/prompt_fade", "/noclip/similarity_skip"):
            ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": path}))
            messages(ws)
        ws.send(build("/noclip/prompt_fade", 6.0))
        ws.send(build("/noclip/similarity_skip", 0.05))
        assert until(lambda: show.fp["similarity_skip"] == pytest.approx(0.05), step=show.step)
        got: dict[str, float] = {}
        while "/noclip/similarity_skip" not in got or "/noclip/norm/prompt_fade" not in got:
            got.update({a: args[0] for a, args in messages(ws)})
        assert got["/noclip/prompt_fade"] == 6.0 and got["/noclip/norm/prompt_fade"] == pytest.approx(0.2)


def test_remote_senders_meet_the_udp_rules(ctx):
    """A WebSocket client beyond this machine (local=() makes loopback count as remote): no quit,
    patches by name only, NaN dropped, values clamped."""
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, local=()).start()
    show = Show(ctx, load_patch("testcard"), (160, 120), clock=OfflineClock(60), queue=queue,
                reporter=reporter, feedback=[server])
    try:
        with connect(f"ws://127.0.0.1:{server.address[1]}/", open_timeout=5) as ws:
            ws.send(build("/noclip/cmd/quit"))
            ws.send(build("/noclip/cmd/patch/load", "/etc/passwd"))
            ws.send(build("/noclip/aberration", math.nan))
            ws.send(build("/noclip/aberration", 1e9))
            ws.send(b"\x00garbage that is not OSC")
            assert until(lambda: server.stats["malformed"] >= 1)
            for _ in range(5):
                show.step()
        assert show.running
        assert server.stats["refused"] == 2 and server.stats["non-finite"] == 1
        assert show.bank.targets["aberration"] == 16.0
    finally:
        show.close()
        server.close()


def test_allow_list_cuts_off_on_accept():
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, allow=["10.0.0.0/8"]).start()
    try:
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            get(server.address[1], "/")
        assert until(lambda: server.stats["denied"] >= 1)
    finally:
        server.close()


def test_browser_pages_from_elsewhere_and_rebinding_are_refused():
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0).start()
    port = server.address[1]
    try:
        assert get(port, "/", {"Host": "evil.example:80"})[0] == 421
        assert get(port, "/", {"Host": f"localhost:{port}"})[0] == 200
        with pytest.raises(Exception, match="403"):
            connect(f"ws://127.0.0.1:{port}/", origin="http://evil.example", open_timeout=5)
        with connect(f"ws://127.0.0.1:{port}/", origin=f"http://127.0.0.1:{port}", open_timeout=5) as ws:
            ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": "/noclip/tempo"}))
            assert messages(ws)[0][0] == "/noclip/tempo"
        status, headers, body = get(port, "/remote")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"noclip remote" in body and "default-src 'self'" in headers["Content-Security-Policy"]
    finally:
        server.close()


def test_clients_are_capped_and_slow_requests_cut_off(monkeypatch):
    monkeypatch.setattr(oq, "OPEN_TIMEOUT", 0.5)
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, max_clients=4).start()
    port = server.address[1]
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        for s in idle:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
        extra = socket.create_connection(("127.0.0.1", port))
        assert cut_off(extra)  # on accept
        extra.close()
        assert until(lambda: server.stats["full"] >= 1)
        # the slow ones are cut off after OPEN_TIMEOUT, and the server answers again
        for s in idle:
            assert cut_off(s)
        assert get(port, "/?HOST_INFO")[0] == 200
    finally:
        for s in idle:
            s.close()
        server.close()


@pytest.mark.parametrize("request_bytes", [
    b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",              # a 20 KB line
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",      # 200 headers
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 4,       # not HTTP at all
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n",
])
def test_hostile_requests_get_a_bounded_answer(request_bytes):
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0).start()
    try:
        s = socket.create_connection(("127.0.0.1", server.address[1]))
        s.settimeout(3)
        try:
            s.sendall(request_bytes)
        except OSError:
            pass  # cut off while still sending: bounded too
        answer = b""
        try:
            while chunk := s.recv(4096):
                answer += chunk
        except OSError:
            pass
        s.close()
        assert answer == b"" or answer.split(b" ")[1][:1] in (b"4", b"5")
        assert get(server.address[1], "/?HOST_INFO")[0] == 200  # and it serves the next one
    finally:
        server.close()


def test_a_client_that_never_reads_is_bounded_and_the_loop_is_not_held():
    """LISTEN to everything, then never read while 100 KB of values change every frame: the server
    keeps at most MAX_BUFFERED (plus a frame) waiting for it, and `publish` stays a reference swap."""
    reg = Registry()
    for i in range(20):
        declare(f"p{i}", "str", "", length=5000, registry=reg, origin="test")
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, registry=reg, commands={}).start()
    try:
        with connect(f"ws://127.0.0.1:{server.address[1]}/", open_timeout=5, max_size=None) as ws:
            for i in range(20):
                ws.send(json.dumps({"COMMAND": "LISTEN", "DATA": f"/noclip/p{i}"}))
            assert until(lambda: sum(len(c.listens) for c in server.clients.values()) == 20)
            times, after, end = [], 0, time.monotonic() + 20
            while after < 30 and time.monotonic() < end:  # a 60 fps show, until 30 frames past behind
                n = len(times)
                text = "x" * 4999 + chr(97 + n % 26)
                fp = FrameParams(n, n / 60, 1 / 60, {f"p{i}": text for i in range(20)})
                t0 = time.perf_counter()
                server.publish(fp)
                times.append(time.perf_counter() - t0)
                time.sleep(1 / 60)
                after += server.stats["behind"] > 0
            assert server.stats["behind"] >= 1
            client = next(iter(server.clients.values()))
            assert client.stale and client.buffered() <= oq.MAX_BUFFERED + 128 * 1024
        times.sort()
        assert times[len(times) // 2] < 0.0005, f"publish took {times[len(times) // 2] * 1000:.3f} ms"
    finally:
        server.close()


def test_a_websocket_flood_waits_on_its_budget():
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0).start()
    try:
        with connect(f"ws://127.0.0.1:{server.address[1]}/", open_timeout=5) as ws:
            big = build("/noclip/tempo", *([1.0] * 4000))  # 16 KB of arguments to parse, then refused
            for _ in range(100):
                ws.send(big)
            ws.send(build("/noclip/tempo", 99.0))
            assert until(lambda: any(e.value == 99.0 for e in queue.drain()), timeout=20)
        assert server.stats["waited"] >= 1  # its reading waited on the budget (the TCP window filled)
        assert server.stats["bad value"] == 100
    finally:
        server.close()


def test_a_chain_that_declares_parameters_adds_paths():
    reg = Registry()
    declare("alpha", "float", 0.5, min=0.0, max=1.0, registry=reg, origin="test")
    queue, reporter = ControlQueue(), Reporter()
    server = OscQueryServer(queue, reporter, "127.0.0.1", 0, registry=reg, commands={}).start()
    port = server.address[1]
    try:
        assert get(port, "/noclip/beta")[0] == 404
        with connect(f"ws://127.0.0.1:{port}/", open_timeout=5) as ws:
            assert until(lambda: server._connected == 1)
            declare("beta", "int", 3, min=0, max=9, registry=reg, origin="a chain", group="vhs")
            server.publish(FrameParams(0, 0.0, 1 / 60, {"alpha": 0.5, "beta": 3}))
            notes = set()
            while len(notes) < 2:
                data = ws.recv(timeout=2)
                if isinstance(data, str):
                    msg = json.loads(data)
                    notes.add((msg["COMMAND"], msg["DATA"]))
            assert notes == {("PATH_ADDED", "/noclip/beta"), ("PATH_ADDED", "/noclip/norm/beta")}
        node = get_json(port, "/noclip/beta")
        assert node["TYPE"] == "i" and node["VALUE"] == [3] and node["TAGS"] == ["vhs"]
    finally:
        server.close()


def test_play_options_and_exposure(caplog):
    from instrument.cli import parser
    from instrument.cmd.play import _exposure, _oscquery, oscquery_address

    def args(*argv):
        return parser().parse_args(["play", *argv])

    assert oscquery_address(args("--osc", "127.0.0.1:9000")) == ("127.0.0.1", 9001)
    assert oscquery_address(args("--osc", "127.0.0.1:0")) == ("127.0.0.1", 0)
    assert oscquery_address(args("--osc", "off")) is None
    assert oscquery_address(args("--oscquery", "off")) is None
    assert oscquery_address(args("--oscquery", "127.0.0.1:7000")) == ("127.0.0.1", 7000)
    assert _exposure(args("--oscquery", "127.0.0.1:7000")) is None
    assert "--osc-allow" in _exposure(args("--oscquery", "0.0.0.0:9001"))
    assert _exposure(args("--oscquery", "0.0.0.0:9001", "--osc-allow", "192.168.1.0/24")) is None
    assert "HOST:PORT" in _exposure(args("--oscquery", "here:there"))
    # a port that is taken: logged, and the show plays without OSCQuery
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        with caplog.at_level(logging.ERROR, logger="noclip"):
            server, advert = _oscquery(args("--oscquery", f"127.0.0.1:{taken.getsockname()[1]}"),
                                       ControlQueue(), Reporter(), None)
        assert server is None and advert is None
        assert "the show plays without it" in caplog.text
    finally:
        taken.close()
    assert isinstance(args(), argparse.Namespace)


def test_mdns_services_and_a_missing_zeroconf(monkeypatch, caplog):
    from instrument.control.mdns import OSC, OSCJSON, Advert, services

    infos = services("noclip", "192.168.1.20", 9001, ("192.168.1.20", 9000))
    assert [(i.type, i.port, i.parsed_addresses()) for i in infos] == [
        (OSCJSON, 9001, ["192.168.1.20"]), (OSC, 9000, ["192.168.1.20"])]
    monkeypatch.setitem(sys.modules, "zeroconf", None)  # as if not installed
    with caplog.at_level(logging.INFO, logger="noclip"):
        advert = Advert("noclip", "192.168.1.20", 9001, None).start()
        advert.close()
    assert caplog.text.count("python-zeroconf is not installed") == 1


def test_mdns_on_every_address_advertises_v6_addresses_as_text(monkeypatch):
    """`::` advertises every address: zeroconf lists a v6 one as ((address, flow, scope), index),
    and only the address is advertised, never loopback (mypy found the whole tuple passed on)."""
    import zeroconf

    from instrument.control.mdns import services

    monkeypatch.setattr(zeroconf, "get_all_addresses", lambda: ["127.0.0.1", "192.168.1.20"])
    monkeypatch.setattr(zeroconf, "get_all_addresses_v6",
                        lambda: [(("::1", 0, 0), 1), (("fd00::2", 0, 0), 4)])
    (info,) = services("noclip", "::", 9001, None)
    assert info.parsed_addresses() == ["192.168.1.20", "fd00::2"]


def test_the_benchs_lean_clients_listen_to_everything_and_read_the_stream(live):
    """`noclip bench --only oscquery`'s clients (sans-I/O, one thread): every client LISTENs to every
    readable path, reads what a frame streams, and reports its own CPU between the times it is given."""
    import queue as queues
    import threading

    from instrument.bench.oscquery import listen_clients

    show, server, _ = live
    times, shares = queues.Queue(), queues.Queue()
    worker = threading.Thread(target=listen_clients, args=(server.address[1], 3, times, shares), daemon=True)
    worker.start()
    readable = len(server._current_tree().readers)
    assert until(lambda: sum(len(c.listens) for c in list(server.clients.values())) == 3 * readable,
                 timeout=20.0)
    sent = server.stats["sent"]
    start = time.time()
    times.put((start, start + 1.0))
    for v in (0.2, 0.8, 0.4):  # three frames that change a value: one bundle to each client each
        show.bank.set("aberration", v, immediate=True)
        show.step()
        time.sleep(0.05)
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    assert server.stats["sent"] - sent >= 3 * 3
    share = shares.get(timeout=1.0)
    assert 0.0 <= share < 1.0
