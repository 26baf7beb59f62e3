"""Recording: takes on command, sound in sync, files that survive kill -9, checked by decoding."""

import json
import os
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest
from conftest import ROOT, free_udp_port, noclip
from pythonosc.udp_client import SimpleUDPClient

from instrument.clock import OfflineClock, RealtimeClock
from instrument.patch import load_patch
from instrument.record.audio import RATE, FileSoundtrack, LiveSoundtrack
from instrument.record.deck import RecordDeck
from instrument.record.video import VideoRecorder
from instrument.report import Reporter
from instrument.show import Show

SIZE = (160, 120)


def click_file(path, seconds=3.0, at=1.0):
    """A quiet tone with one loud click at `at` seconds, to find in the recording."""
    t = np.arange(int(RATE * seconds)) / RATE
    x = 0.1 * np.sin(2 * np.pi * 440 * t)
    x[int(at * RATE):int(at * RATE) + 48] = 0.9
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=RATE)
        s.layout = "mono"
        f = av.AudioFrame.from_ndarray((x * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        f.sample_rate = RATE
        for p in [*s.encode(f), *s.encode()]:
            c.mux(p)
    return path


def first_loud(path):
    """Time of the first loud sample, from the decoded stream's own timestamps."""
    with av.open(str(path)) as c:
        for f in c.decode(audio=0):
            x = f.to_ndarray()
            x = x.reshape(-1, 2)[:, 0] / 32768 if f.format.name == "s16" else x[0]
            idx = np.nonzero(np.abs(x) > 0.5)[0]
            if len(idx):
                return f.time + idx[0] / RATE
    return None


def ffprobe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=codec_type,codec_name,nb_read_frames,duration:format=duration",
                          "-of", "json", str(path)], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def h264_with_aac(path, frames: int) -> dict:
    """The file's streams by kind, checked: H.264 with exactly `frames` pictures, and AAC sound."""
    kinds = {s["codec_type"]: s for s in ffprobe(path)["streams"]}
    assert kinds["video"]["codec_name"] == "h264" and int(kinds["video"]["nb_read_frames"]) == frames
    assert kinds["audio"]["codec_name"] == "aac"
    return kinds


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_picture_and_sound_in_sync(ctx, tmp_path, suffix):
    """A white frame at 1.0 s and a click at 1.0 s come out of the decoder at the same time."""
    tex = ctx.texture(SIZE, 3)
    fbo = ctx.framebuffer([tex])
    rec = VideoRecorder(tmp_path / f"sync{suffix}", SIZE, 30, live=False,
                        audio=FileSoundtrack(click_file(tmp_path / "click.wav")))
    for i in range(60):
        fbo.use()
        ctx.clear(1.0 if i == 30 else 0.0, 0.0, 0.0)
        rec.write(fbo, None)
    rec.close()
    with av.open(str(rec.path)) as c:
        white = [f.time for f in c.decode(video=0) if f.to_ndarray(format="rgb24")[0, 0, 0] > 128]
    assert len(white) == 1 and rec.frames == 60
    assert abs(first_loud(rec.path) - white[0]) < 0.5 / 30  # well inside one frame
    tex.release()
    fbo.release()


def test_sound_does_not_drift_over_a_long_take(ctx, tmp_path):
    """Frame-exact placement: a click 59.5 s into a minute-long take lands on its frame."""
    rec = VideoRecorder(tmp_path / "long.mkv", (32, 32), 30, live=False,
                        audio=FileSoundtrack(click_file(tmp_path / "c.wav", 60.0, 59.5)))
    blank = np.zeros((32, 32, 3), np.uint8)
    for _ in range(1800):
        rec.push(blank)
    rec.close()
    assert abs(first_loud(rec.path) - 59.5) < 1 / 30


def test_live_input_keeps_within_a_frame_of_the_picture():
    """A device whose clock runs 0.3 % fast for ten minutes never gets a frame ahead: the surplus
    is dropped a frame's worth at a time, and a late device is padded, both counted."""

    class FakeStream:
        def __init__(self, callback, **kw):
            self.callback = callback

        def start(self): ...
        def stop(self): ...
        def close(self): ...

    src = LiveSoundtrack(stream_factory=FakeStream)
    per_frame, block = RATE // 30, 256
    produced = 0.0
    worst = 0
    for _frame in range(30 * 600):  # ten minutes at 30 fps
        produced += per_frame * 1.003
        while produced >= block:
            src._callback(np.zeros((block, 2), np.float32), block, None, None)
            produced -= block
        src.take(0, per_frame)
        worst = max(worst, src.queued)
    assert worst <= 2 * per_frame + block  # the picture is never more than ~1 frame behind the sound
    assert src.dropped > 0 and src.padded < 5


def test_record_commands_make_takes_over_osc(ctx, tmp_path):
    """record/start and /stop over real OSC cut takes at the frames they arrive on; REC shows."""
    from instrument.control.osc import OscControl

    reporter = Reporter()
    deck = RecordDeck(SIZE, 30, reporter, first=tmp_path / "take.mkv", codec="ffv1")
    # paced as a live show is: a take drops frames (counted) only when the encoder falls behind the show
    show = Show(ctx, load_patch("testcard"), SIZE, clock=RealtimeClock(30), outputs=[deck], reporter=reporter)
    osc = OscControl(show.queue, reporter, "127.0.0.1", 0)
    client = SimpleUDPClient("127.0.0.1", osc.address[1])
    try:
        def send_and_wait(address):  # until the command waits in the queue for the next frame
            client.send_message(address, [])
            while len(show.queue) == 0:
                osc.poll()  # as the loop's idle wait does
                time.sleep(0.002)

        show.run(frames=5)
        send_and_wait("/noclip/cmd/record/start")
        show.run(frames=12)
        assert show.fp["recording"] is True
        send_and_wait("/noclip/cmd/record/toggle")
        show.run(frames=3)
        assert show.fp["recording"] is False
        send_and_wait("/noclip/cmd/record/toggle")
        show.run(frames=7)
    finally:
        osc.close()
        show.close()
    assert [p.name for p in deck.takes] == ["take.mkv", "take-2.mkv"]
    counts = [int(ffprobe(p)["streams"][0]["nb_read_frames"]) for p in deck.takes]
    assert counts == [12, 7] and deck.dropped == 0


def test_render_with_audio_file(tmp_path):
    out = tmp_path / "demo.mp4"
    r = noclip("render", "--patch", "testcard", "--seconds", "2", "--fps", "30", "--size", "160x120",
               "-o", str(out), "--audio", str(click_file(tmp_path / "click.wav")))
    assert r.returncode == 0, r.stderr
    assert abs(float(h264_with_aac(out, 60)["audio"]["duration"]) - 2.0) < 0.1


def test_kill_9_keeps_the_recording(tmp_path):
    """A live take killed mid-show still decodes, up to within about a second of the kill."""
    out = tmp_path / "live.mp4"
    cmd = [sys.executable, "-m", "instrument.cli", "play", "--headless", "--patch", "testcard", "--fps", "30",
           "--size", "160x120",
           "--record", str(out), "--osc", f"127.0.0.1:{free_udp_port()}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        time.sleep(4.0)
        proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with av.open(str(out)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    kept = frames / 30
    assert kept >= (killed - started) - 1.5, f"only {kept:.2f} s of {killed - started:.2f} s survived"


@pytest.mark.parametrize("suffix,codec", [(".mkv", "ffv1"), (".mp4", "h264")])
def test_resumed_render_equals_an_unbroken_one(tmp_path, suffix, codec):
    """A render cut short (the file truncated as a crash leaves it) resumes: it keeps the frames
    before the last keyframe, renders the rest, and the whole is the unbroken render's frames."""
    from instrument.record.render import kept_frames

    args = ["render", "--patch", "testcard", "--seconds", "3", "--fps", "30", "--size", "160x120",
            "--codec", codec, "--set", "seed=5"]
    full, part = tmp_path / f"full{suffix}", tmp_path / f"part{suffix}"
    assert noclip(*args, "-o", str(full)).returncode == 0
    data = full.read_bytes()
    part.write_bytes(data[:int(len(data) * 0.45)])
    have, keep = kept_frames(part, 30)
    assert 0 < keep <= have < 90
    r = noclip(*args, "-o", str(part), "--resume")
    assert r.returncode == 0, r.stderr
    assert f"keeping its first {keep} frames" in r.stderr
    with av.open(str(full)) as a, av.open(str(part)) as b:
        fa = [f.to_ndarray(format="rgb24") for f in a.decode(video=0)]
        fb = [f.to_ndarray(format="rgb24") for f in b.decode(video=0)]
    assert len(fb) == 90
    if codec == "ffv1":  # lossless: bit for bit
        assert all(np.array_equal(x, y) for x, y in zip(fa, fb, strict=True))
    else:  # the tail is encoded afresh from a keyframe: the same pictures within coding noise, in place
        def d(x, y):
            return np.abs(x.astype(int) - y.astype(int)).mean()
        for i in range(1, 89):
            assert d(fa[i], fb[i]) < min(d(fa[i], fb[i - 1]), d(fa[i], fb[i + 1])), i
        assert all(d(fa[i], fb[i]) == 0 for i in range(keep))  # the kept frames are the very packets


def test_a_live_headless_take_with_sound(tmp_path):
    """`play --headless --record` for 2 s at 30 fps: 60 frames, 2 s, H.264 with AAC beside it."""
    out = tmp_path / "live.mp4"
    r = noclip("play", "--headless", "--patch", "testcard", "--seconds", "2", "--fps", "30", "--size",
               "160x120", "--record", str(out), "--audio", str(click_file(tmp_path / "c.wav")),
               "--osc", f"127.0.0.1:{free_udp_port()}", "--midi", "off")
    assert r.returncode == 0, r.stderr
    h264_with_aac(out, 60)
    assert abs(float(ffprobe(out)["format"]["duration"]) - 2.0) < 0.15
    assert out.with_suffix(".performance.jsonl").is_file()


def test_a_take_runs_on_through_a_patch_load(ctx, tmp_path):
    """REC is the deck's state, not a patch value: loading a patch mid-take neither stops the take
    nor turns the tape's REC to PLAY (a follower catching up later would never have started it)."""
    from instrument.events import ControlEvent

    deck = RecordDeck(SIZE, 30, Reporter(), first=tmp_path / "take.mkv", codec="ffv1")
    show = Show(ctx, load_patch("testcard"), SIZE, clock=OfflineClock(30), outputs=[deck])
    try:
        show.queue.put(ControlEvent("test", "cmd/record/start"))
        show.run(frames=3)
        show.queue.put(ControlEvent("test", "cmd/patch/load", "clean_broadcast"))
        show.run(frames=3)
        assert show.patch.name == "clean_broadcast"
        assert show.fp["recording"] is True and deck.recording
    finally:
        show.close()
