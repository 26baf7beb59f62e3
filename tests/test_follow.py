"""Follow mode: `noclip play --lead` and `noclip play --follow`, in real processes over real TCP, the
leader steered over real OSC; frames decoded from lossless takes and compared by frame number. A
leader of our own making (a thread here) sends a follower damage; the leader's own object is fed a
follower that never reads."""

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import av
import numpy as np
from conftest import free_udp_port, noclip
from pythonosc.udp_client import SimpleUDPClient

from instrument.control import ControlEvent
from instrument.control.followwire import hello, line
from instrument.patch import load_patch
from instrument.record.lead import SLOW_BYTES, Leader
from instrument.record.performance import make_header
from instrument.report import Reporter

SMALL = """version = 2
name = "small"
scene = "backrooms"
model = "none"
chain = "vhs"
size = [128, 96]
dream_size = [128, 96]
"""
FPS = 15


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def play(*args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "instrument.cli", "play", "--headless", "--midi", "off",
                             "--size", "128x96", "--codec", "ffv1", "--record-quality", "best", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)


def by_frame(path, first: int = 0) -> dict[int, np.ndarray]:
    """A take's pictures by show frame: its first frame is `first`, a dropped one leaves its gap."""
    out = {}
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out[first + round(float(f.pts * f.time_base) * FPS)] = f.to_ndarray(format="rgb24")
    return out


def test_followers_make_the_leaders_frames_and_a_late_joiner_catches_up(tmp_path):
    (tmp_path / "small.toml").write_text(SMALL)
    osc, lead = free_udp_port(), free_tcp_port()
    leader = play("--patch", "small.toml", "--fps", str(FPS), "--seconds", "12", "--osc", f"127.0.0.1:{osc}",
                  "--oscquery", "off", "--lead", str(lead), "--record", "leader.mkv", cwd=tmp_path)
    early = play("--follow", f"127.0.0.1:{lead}", "--record", "early.mkv", cwd=tmp_path)  # waits for it
    client, stop = SimpleUDPClient("127.0.0.1", osc), threading.Event()

    def steer():  # the performer, all through the run
        i = 0
        while not stop.wait(0.2):
            client.send_message("/noclip/speed", 0.4 + 0.3 * (i % 7))
            client.send_message("/noclip/fog", 0.1 * (i % 6))
            client.send_message("/noclip/seed", i % 5)
            if i % 9 == 4:
                client.send_message("/noclip/cmd/tracking/jump", 0.8)
            if i in (2, 7):  # level changes: the late joiner fast-forwards to the second one's cut
                client.send_message("/noclip/level", str(1 - i % 2))
            i += 1

    leader_perf = tmp_path / "leader.performance.jsonl"
    deadline = time.monotonic() + 30
    while not leader_perf.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the leader's show is made (on a loaded machine, seconds): the steering lands
    steering = threading.Thread(target=steer, daemon=True)
    steering.start()
    time.sleep(2.5)
    deadline = time.monotonic() + 10  # its second level change played (the header names "level" once)
    while leader_perf.read_text().count('"level"') < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)  # and its cut (midway through the lights' 1.6 s change)
    late = play("--follow", f"127.0.0.1:{lead}", "--record", "late.mkv", cwd=tmp_path)
    try:
        _, lead_err = leader.communicate(timeout=90)
    finally:
        stop.set()
        for f in (early, late):
            time.sleep(0.3)
            f.send_signal(signal.SIGINT)  # the leader is gone: they would play on by themselves
    errs = {name: f.communicate(timeout=60)[1] for name, f in (("early", early), ("late", late))}
    assert leader.returncode == 0, lead_err
    ours = by_frame(tmp_path / "leader.mkv")
    assert len(ours) >= 10 * FPS - 2
    perf = [json.loads(x) for x in (tmp_path / "leader.performance.jsonl").read_text().splitlines()[1:]]
    osc_frames = [e["f"] for e in perf if e.get("src") == "osc"]
    for name, err in errs.items():
        assert early.returncode == 0 and late.returncode == 0, err
        caught = re.search(r"caught up at frame (\d+)", err)
        assert caught, (name, err)
        joined = int(caught.group(1))
        theirs = by_frame(tmp_path / f"{name}.mkv", joined)
        common = sorted(set(theirs) & set(ours))
        assert common and common[0] == joined  # identical from its first frame on
        if name == "late":
            assert joined >= 3 * FPS  # it joined late and caught up on what it missed
            # ... drawing only from the last cut before it joined (nothing before it carries)
            cut = re.search(r"fast-forwarded to its cut at frame (\d+)", err)
            assert cut and FPS < int(cut.group(1)) < joined, err
        assert len(common) >= 2 * FPS, (name, joined, len(theirs))
        differ = [f for f in common if not np.array_equal(ours[f], theirs[f])]
        assert not differ, f"{name}: {len(differ)} of {len(common)} frames differ: {differ[:5]}"
        # the performer steered while these frames played, and the picture moved
        assert sum(common[0] <= f <= common[-1] for f in osc_frames) > 10
        assert not np.array_equal(ours[common[0]], ours[common[-1]])
        lag = re.search(r"behind the leader by ([\d.]+) ms \(median\)", err)
        assert lag and float(lag.group(1)) < 1000 / FPS, err  # within a frame
    assert "2 joined" in lead_err


def test_damage_on_the_follow_stream_is_dropped_and_counted_and_the_show_plays_on(tmp_path):
    """A leader of our own: a hello, frames at 20 fps, damage of every kind between them, a valid
    event after the damage, then the connection cut and the same show served again."""
    (tmp_path / "small.toml").write_text(SMALL)
    header = make_header(load_patch(tmp_path / "small.toml"), {}, 20.0, (128, 96))
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(30)
    port = server.getsockname()[1]
    follower = play("--follow", f"127.0.0.1:{port}", "--seconds", "4", "--log", "events.jsonl", cwd=tmp_path)
    history = []
    damage = [b"not json", b"\xff\xfe\x00", b"[1, 2]", b'{"f": -3}', b'{"f": true}', b'{"f": 6, "ev": "x"}',
              b'{"f": 6, "ev": [[1, 2, 3]]}', b'{"f": 6, "w": NaN}', b'{"f": 1e999}', b'{"ev": []}',
              b"x" * (1 << 21)]  # a line over the 1 MiB limit

    def serve():
        conn, _ = server.accept()
        conn.sendall(hello(header, -1))
        t0, frame = time.perf_counter(), 0
        while frame < 400:  # frames by the wall clock, as a leader plays them, till the follower leaves
            time.sleep(max(0.0, t0 + frame / 20 - time.perf_counter()))
            message = {"f": frame}
            if frame == 10:
                message["ev"] = [["osc", "seed", 7]]
                history.append(line(message))
            if frame == 70:
                message["ev"] = [["osc", "fog", 0.7]]
            if conn is None:  # the same show again, its history first, from the frame it is at
                conn, _ = server.accept()
                frame = round((time.perf_counter() - t0) * 20)
                conn.sendall(hello(header, frame - 1) + b"".join(history) + line({"f": frame - 1}))
                continue
            if frame == 5:
                conn.sendall(b"\n".join(damage) + b"\n")
            if frame == 9:
                conn.sendall(line({"f": 3}))  # out of order
            if frame == 20:  # cut: the follower plays on alone, and reconnects
                conn.close()
                conn = None
                continue
            try:
                conn.sendall(line(message))
            except OSError:  # the follower played its 4 s and left
                break
            frame += 1
        conn.close()

    leader = threading.Thread(target=serve, daemon=True)
    leader.start()
    _, err = follower.communicate(timeout=60)
    server.close()
    assert follower.returncode == 0, err
    assert "follow malformed" in err and "follow oversize" in err and "lost the leader" in err
    said = re.search(r"followed .*: played (\d+) frames \(live from frame (\d+)\).*; (.*)$", err, re.M)
    assert said, err
    assert int(said.group(1)) == int(said.group(2)) + 80  # caught up (the show took a moment to build), 4 s
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", said.group(3)))
    assert counts.get("malformed") == len(damage) - 1 and counts.get("oversize") == 1, counts
    assert counts.get("out of order") == 1 and counts.get("lost") == 1, counts
    assert "late" not in counts  # the leader said nothing while it was away: nothing was missed
    rows = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(r["frame"], r["target"], r["value"]) for r in rows] == [(10, "seed", 7), (70, "fog", 0.7)]


def test_a_leader_never_waits_on_a_follower_that_does_not_read():
    header = {"kind": "noclip performance", "version": 2}
    leader = Leader("127.0.0.1", 0, header, Reporter())
    stuck = socket.create_connection(leader.address)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader = socket.create_connection(leader.address)
    reader.sendall(b"anything a follower says is read and dropped\n" * 100)
    got = bytearray()

    def read():
        while chunk := reader.recv(1 << 16):
            got.extend(chunk)

    reading = threading.Thread(target=read, daemon=True)
    reading.start()
    while len(leader.followers) < 2:
        leader.poll()
    big = "x" * 60_000
    times = []
    for frame in range(400):
        leader.applied(ControlEvent("osc", "prompt", big), frame, big)
        t = time.perf_counter()
        leader.publish(SimpleNamespace(frame=frame))
        leader.poll()
        times.append(time.perf_counter() - t)
    assert leader.stats["slow"] == 1 and len(leader.followers) == 1  # the stuck one, dropped
    assert SLOW_BYTES < 400 * 60_000  # (it fell that far behind)
    # a frame's serving is sub-millisecond; the worst of 400 is a GIL hand-off to the reading thread
    # beside it (0.108 s once in a full suite run), far from a send that waits on a full socket
    assert sorted(times)[len(times) // 2] < 0.005 and max(times) < 0.25
    leader.close()
    reading.join(10)
    lines = bytes(got).splitlines()
    assert json.loads(lines[0])["header"] == header
    frames = [json.loads(x) for x in lines[1:]]
    assert [f["f"] for f in frames] == list(range(400)) and all(f["ev"][0][2] == big for f in frames)
    stuck.close()
    reader.close()


def test_a_leader_beyond_loopback_serves_only_who_is_allowed():
    leader = Leader("127.0.0.1", 0, {}, Reporter(), allow=["10.0.0.0/8"])
    knock = socket.create_connection(leader.address)
    deadline = time.monotonic() + 5
    while not leader.stats["denied"] and time.monotonic() < deadline:
        leader.poll()
    knock.settimeout(5)
    assert leader.stats["denied"] == 1 and not leader.followers and knock.recv(100) == b""
    leader.close()
    knock.close()


def test_leading_beyond_this_machine_must_name_who_may_follow():
    r = noclip("play", "--headless", "--osc", "off", "--lead", "0.0.0.0:9100")
    assert r.returncode == 2 and "--lead 0.0.0.0:9100 listens beyond this machine" in r.stderr
    r = noclip("play", "--headless", "--osc", "off", "--lead", "9100", "--follow", "127.0.0.1:9101")
    assert r.returncode == 2 and "--lead and --follow" in r.stderr


CLEAN = SMALL.replace('name = "small"', 'name = "clean"') + """
[params]
bleed = 0.0
snow = 0.0
luma_noise = 0.0
chroma_noise = 0.0
dropouts = 0.0
osd = false
"""


def test_a_follower_keeps_its_own_tape_through_the_leaders_events_and_patch_loads(tmp_path):
    """`--chain-from clean.toml`: the leader's show (its walk, fog, a patch load) on a clean tape. Its
    frames are those of the leader's performance re-rendered with that tape (the leader's events at
    the tape dropped, its patch load loading the clean patch), and not the leader's own."""
    (tmp_path / "small.toml").write_text(SMALL)
    (tmp_path / "clean.toml").write_text(CLEAN)
    for name, text in (("small", SMALL), ("clean", CLEAN)):  # what OSC may load: a name (a file here wins)
        (tmp_path / name).write_text(text)
    osc, lead = free_udp_port(), free_tcp_port()
    leader = play("--patch", "small.toml", "--fps", str(FPS), "--seconds", "5", "--osc", f"127.0.0.1:{osc}",
                  "--oscquery", "off", "--lead", str(lead), "--record", "leader.mkv", cwd=tmp_path)
    tile = play("--follow", f"127.0.0.1:{lead}", "--chain-from", "clean.toml", "--record", "tile.mkv",
                cwd=tmp_path)
    client, stop = SimpleUDPClient("127.0.0.1", osc), threading.Event()

    def steer():
        i = 0
        while not stop.wait(0.2):
            client.send_message("/noclip/speed", 0.5 + 0.4 * (i % 5))
            client.send_message("/noclip/fog", 0.1 * (i % 6))
            client.send_message("/noclip/bleed", 0.2 * (i % 4))  # the tape's: not this tile's
            if i % 5 == 2:
                client.send_message("/noclip/cmd/tracking/jump", 0.8)
            if i == 8:
                client.send_message("/noclip/cmd/patch/load", "small")  # the leader's tape again
            i += 1

    said: list[str] = []
    reading = threading.Thread(target=lambda: said.extend(tile.stderr), daemon=True)
    reading.start()
    deadline = time.monotonic() + 30
    while not any("caught up" in x for x in said) and time.monotonic() < deadline:
        time.sleep(0.05)  # the tile plays the show: the patch load lands while it is live
    steering = threading.Thread(target=steer, daemon=True)
    steering.start()
    try:
        _, lead_err = leader.communicate(timeout=60)
    finally:
        stop.set()
        time.sleep(0.3)
        tile.send_signal(signal.SIGINT)
    tile.wait(timeout=60)
    reading.join(10)
    err = "".join(said)
    assert leader.returncode == 0 and tile.returncode == 0, lead_err + err
    own = re.search(r"(\d+) own chain", err)
    assert own and int(own.group(1)) >= 15, err  # bleed and jolts, counted and not applied

    # the leader's show on the clean tape: the performance with the tape's events taken out
    lines = (tmp_path / "leader.performance.jsonl").read_text().splitlines()
    header, rows = json.loads(lines[0]), [json.loads(x) for x in lines[1:]]
    clean = {"bleed": 0.0, "snow": 0.0, "luma_noise": 0.0, "chroma_noise": 0.0, "dropouts": 0.0, "osd": False}
    header["patch"]["params"], header["start"] = clean, {**header["start"], **clean}
    assert any(r.get("t") == "cmd/patch/load" for r in rows), lead_err
    kept = [{**r, "v": ["clean"]} if r.get("t") == "cmd/patch/load" else r for r in rows
            if r.get("t") not in ("bleed", "cmd/tracking/jump")]
    (tmp_path / "clean.performance.jsonl").write_text("\n".join(json.dumps(x) for x in [header, *kept]) + "\n")
    for name in ("clean", "leader"):
        r = subprocess.run([sys.executable, "-m", "instrument.cli", "render", f"{name}.performance.jsonl",
                            "-o", f"{name}-again.mkv", "--codec", "ffv1"], cwd=tmp_path, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    joined = int(re.search(r"caught up at frame (\d+)", err).group(1))
    theirs, ours = by_frame(tmp_path / "tile.mkv", joined), by_frame(tmp_path / "leader.mkv")
    wanted, again = by_frame(tmp_path / "clean-again.mkv"), by_frame(tmp_path / "leader-again.mkv")
    common = sorted(set(theirs) & set(wanted) & set(ours))
    assert len(common) >= 2 * FPS
    # (a live show and its re-render differ on a few frames after a patch load, the leader's own
    # included: seen at frames 31-32 after a load at 24. Those frames are left out here.)
    exact = [f for f in common if np.array_equal(ours[f], again[f])]
    assert len(exact) >= 0.8 * len(common), (len(exact), len(common))
    differ = [f for f in exact if not np.array_equal(theirs[f], wanted[f])]
    assert not differ, f"{len(differ)} of {len(exact)} differ from the clean re-render: {differ[:5]}; {err}"
    assert all(not np.array_equal(theirs[f], ours[f]) for f in common)  # the leader's tape is not this one
