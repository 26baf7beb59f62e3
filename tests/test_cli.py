"""The `noclip` command as a performer runs it, in subprocesses; video checked by decoding it."""

import json
import shutil
import subprocess
import sys
import threading
import time

import av
from conftest import ROOT, free_udp_port, noclip
from pythonosc.udp_client import SimpleUDPClient


def decoded_frames(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        n = sum(1 for _ in c.decode(stream))
        return n, stream.codec_context.name, (stream.width, stream.height)


def test_render_writes_a_decodable_file_with_the_right_frame_count(tmp_path):
    out = tmp_path / "out.mp4"
    r = noclip("render", "-o", str(out), "--seconds", "1.5", "--fps", "24", "--size", "320x240",
               "--set", "tracking=0.4")
    assert r.returncode == 0, r.stderr
    assert decoded_frames(out) == (36, "h264", (320, 240))
    if shutil.which("ffprobe"):
        probe = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
                                "-show_entries", "stream=nb_read_frames,codec_name", "-of", "json",
                                str(out)], capture_output=True, text=True, check=True)
        s = json.loads(probe.stdout)["streams"][0]
        assert s["codec_name"] == "h264" and int(s["nb_read_frames"]) == 36


def test_params_json_is_the_registry():
    r = noclip("params", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {p["name"] for p in data["params"]}
    assert {"seed", "aberration", "bleed", "tracking", "fade", "mix"} <= names
    bleed = next(p for p in data["params"] if p["name"] == "bleed")
    assert bleed["osc"] == "/noclip/bleed" and bleed["osc_norm"] == "/noclip/norm/bleed"
    assert {"/noclip/cmd/seed/next", "/noclip/cmd/quit", "/noclip/cmd/subscribe"} <= set(data["commands"])
    assert "aberration" in noclip("params").stdout


def test_bad_set_and_bad_patch_are_clear_errors(tmp_path):
    r = noclip("render", "-o", str(tmp_path / "x.mp4"), "--seconds", "1", "--set", "blead=1")
    assert r.returncode != 0 and "blead" in r.stderr and "unknown parameter" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n[params]\nseed = -5\ncolour = 1\n")
    r = noclip("render", "-o", str(tmp_path / "x.mp4"), "--seconds", "1", "--patch", str(bad))
    assert r.returncode == 2 and f"{bad}:4: params.colour" in r.stderr


def test_play_without_display_falls_back_to_a_headless_demo(tmp_path, no_display):
    r = subprocess.run([sys.executable, "-m", "instrument.cli", "play", "--seconds", "0.5", "--fps", "30",
                        "--osc", "off"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "headless demo" in r.stderr
    n, codec, size = decoded_frames(tmp_path / "noclip-demo.mp4")
    assert codec == "h264" and size == (1280, 720) and n == 15  # exact: rendered offline


def test_windowed_without_display_is_an_error(no_display):
    r = noclip("play", "--windowed", "--seconds", "0.5", "--osc", "off")
    assert r.returncode == 2 and "--windowed" in r.stderr and "display" in r.stderr


def test_devices_reports_each_section(no_display):
    r = noclip("devices")
    assert r.returncode == 0, r.stderr
    for section in ("Monitors:", "MIDI inputs:", "Audio inputs:", "Generator backends:"):
        assert section in r.stdout


def test_headless_play_logs_osc_events(tmp_path):
    port = free_udp_port()
    log = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "instrument.cli", "play", "--headless", "--seconds", "4",
                             "--osc", f"127.0.0.1:{port}", "--log", str(log), "--size", "320x180",
                             "--patch", "testcard", "--midi", "off"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = SimpleUDPClient("127.0.0.1", port)
    stop = threading.Event()

    def send():
        i = 0
        while not stop.is_set():
            client.send_message("/noclip/seed", 100 + i % 3)
            i += 1
            time.sleep(0.05)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        _out, err = proc.communicate(timeout=60)
    finally:
        stop.set()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) > 10
    for r in rows:
        assert r["source"] == "osc" and r["target"] == "seed" and r["value"] in (100, 101, 102)
    # stamps are the kernel's: a packet sent while the show was still starting waited for it; once it
    # plays, a value is applied within a frame or two (a loaded CI machine once stalled one 107 ms)
    waits = sorted(r["applied"] - r["arrival"] for r in rows if r["arrival"] >= 0)
    assert len(waits) > 10 and waits[0] >= 0 and waits[-1] < 0.5
    assert waits[len(waits) // 2] < 0.05
    assert [r["frame"] for r in rows] == sorted(r["frame"] for r in rows)


def test_params_doc_is_generated_from_the_registry():
    r = noclip("params", "--markdown")
    assert r.returncode == 0, r.stderr
    doc = (ROOT / "docs" / "PARAMS.md").read_text()
    assert doc == r.stdout, "docs/PARAMS.md is stale: run `noclip params --markdown > docs/PARAMS.md`"


def test_a_show_that_cannot_be_built_leaves_no_socket_behind(tmp_path, monkeypatch):
    """Sources open before the show; when building the show fails, play closes them and the error
    is the show's."""
    import pytest

    import instrument.control.osc
    import instrument.record.session
    from instrument.cli import main

    opened = []

    class Recorded(instrument.control.osc.OscControl):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    def broken(*args, **kwargs):
        raise RuntimeError("no show tonight (injected)")

    monkeypatch.setattr(instrument.control.osc, "OscControl", Recorded)
    monkeypatch.setattr(instrument.record.session, "Show", broken)
    with pytest.raises(RuntimeError, match="injected"):
        main(["play", "--headless", "--patch", "testcard", "--midi", "off", "--seconds", "0.1",
              "--osc", f"127.0.0.1:{free_udp_port()}", "--takes", str(tmp_path)])
    assert len(opened) == 1 and opened[0].sock.fileno() == -1   # closed, not left to the collector
