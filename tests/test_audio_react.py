"""Audio reactivity on generated signals, through the same path as the live stream callback."""

import time
from types import SimpleNamespace

import numpy as np
import pytest

from instrument.clock import OfflineClock
from instrument.control import ControlEvent, ControlQueue
from instrument.control.audio import HOP, AudioAnalyser, AudioControl, frame_features
from instrument.patch import load_patch
from instrument.show import Show

RATE = 48_000


def tone(freq, seconds, amp=0.5):
    t = np.arange(int(seconds * RATE)) / RATE
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def hihat(seconds, amp=0.5):
    """White noise through a crude high-pass (first difference twice): a hi-hat's hiss."""
    rng = np.random.default_rng(3)
    n = rng.standard_normal(int(seconds * RATE) + 2)
    return (amp * np.diff(n, 2) / 4).astype(np.float32)


def test_a_sine_burst_gives_an_onset_at_its_frame():
    start = int(0.5 * RATE) + 100
    x = np.zeros(RATE, np.float32)
    x[start:start + RATE // 5] = tone(1000, 0.2)
    feats = frame_features(x, RATE, 60)
    onset_frames = [n for n in range(1, len(feats)) if feats[n]["onset"] > feats[n - 1]["onset"] + 0.5]
    assert onset_frames == [start * 60 // RATE]  # frame 30, and nothing on the silence or the tail
    assert feats[29]["level"] == 0.0 and feats[40]["level"] > 0.8


def test_band_energies_separate_a_bass_tone_from_a_hihat():
    a = AudioAnalyser(RATE)
    bass = a.feed(tone(60, 0.5))
    b = AudioAnalyser(RATE)
    hat = b.feed(hihat(0.5))
    assert bass["low"] > 0.8 and bass["low"] - bass["high"] > 0.5 and bass["low"] - bass["mid"] > 0.3
    assert hat["high"] > hat["mid"] > hat["low"] and hat["high"] - hat["low"] > 0.3


def test_attack_is_fast_release_is_slow():
    def after_silence(release):
        a = AudioAnalyser(RATE, attack=0.005, release=release)
        up = a.feed(tone(440, 0.032))["level"]  # 3 hops
        return up, a.feed(np.zeros(RATE // 10, np.float32))["level"]

    up, slow = after_silence(0.5)
    assert up == pytest.approx(0.9, abs=0.02)  # -6 dBFS on a 60 dB scale, reached within 3 hops
    assert 0.65 < slow < 0.8  # 100 ms into silence, a 0.5 s release has let go by a fifth
    assert after_silence(0.02)[1] < 0.05


def test_block_sizes_do_not_change_the_answer():
    x = np.concatenate([np.zeros(RATE // 4, np.float32), tone(200, 0.25), hihat(0.25)])
    one = AudioAnalyser(RATE)
    one.feed(x)
    many = AudioAnalyser(RATE)
    rng = np.random.default_rng(0)
    i = 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        many.feed(x[i:i + n])
        i += n
    assert one.features == many.features and one.onsets == many.onsets


class FakeStream:
    """sounddevice.InputStream's shape: the test plays PortAudio, calling back with blocks."""

    def __init__(self, samplerate, channels, dtype, device, blocksize, callback):
        self.callback, self.blocksize, self.started = callback, blocksize, False

    def start(self):
        self.started = True

    def stop(self):
        self.started = False

    def close(self):
        pass


def test_live_input_posts_features_and_counts_overflows():
    q = ControlQueue()
    inp = AudioControl(q, stream_factory=FakeStream).start()
    x = tone(60, 0.2)[:, None]
    for i in range(0, len(x) - HOP + 1, HOP):
        status = SimpleNamespace(input_overflow=(i == 0))
        inp.stream.callback(x[i:i + HOP], HOP, None, status)
        if i % (3 * HOP) == 0:
            inp.poll()  # a frame now and then: the blocks since are heard together
    inp.poll()
    inp.close()
    events = q.drain()
    assert inp.analysed == inp.blocks == len(x) // HOP and inp.overflows == 1 and inp.dropped == 0
    assert len(events) == 1 + (inp.blocks - 1) // 3 + 1
    assert events[-1].target == "cmd/audio" and events[-1].value["low"] > 0.8


def test_the_callback_only_copies_and_the_frame_hears_it():
    """PortAudio's thread must not wait on the analysis: the callback keeps a copy of the block (its
    buffer is PortAudio's again once it returns); the show's next frame analyses it, stamped with
    the block's arrival."""
    q = ControlQueue()
    inp = AudioControl(q, stream_factory=FakeStream, backlog=0.1)
    buf = tone(60, HOP / RATE)[:, None].copy()
    inp.stream.callback(buf, HOP, None, None)
    buf[:] = 0.0  # PortAudio reuses its buffer
    assert inp.blocks == 1 and inp.analysed == 0 and q.drain() == []
    arrived = inp._pending[-1][0]
    assert inp.poll() == 1 and inp.poll() == 0
    (e,) = q.drain()
    assert e.time == arrived and e.value["level"] > 0.5  # the tone (one hop into its attack), not zeros
    for _ in range(20):  # a stall of 20 blocks (213 ms) against a 0.1 s backlog: skip to the present
        inp.stream.callback(tone(60, HOP / RATE)[:, None], HOP, None, None)
    assert inp.poll() == 9 and inp.dropped == 11 and inp.analysed == 10


def test_the_show_hears_its_audio_input_in_the_frame_it_builds(ctx, tmp_path):
    """As a source of the show, the input is polled before the queue is drained: blocks that
    arrived before a frame modulate that frame."""
    q = ControlQueue()
    inp = AudioControl(q, stream_factory=FakeStream)
    p = tmp_path / "a.toml"
    p.write_text("version = 1\n")
    show = Show(ctx, load_patch(p), (64, 36), clock=OfflineClock(60), queue=q, sources=[inp])
    show.step()
    assert show.audio == {}
    for _ in range(4):
        inp.stream.callback(tone(60, HOP / RATE)[:, None], HOP, None, None)
    show.step()
    assert show.audio["low"] > 0.8 and inp.analysed == 4
    show.close()


def test_analysis_keeps_up_in_real_time():
    """The callback's cost per 512-sample block (10.7 ms of sound) must be a small fraction of it."""
    a = AudioAnalyser(RATE)
    x = hihat(2.0)
    t0 = time.perf_counter()
    for i in range(0, len(x) - HOP, HOP):
        a.feed(x[i:i + HOP])
    per_block = (time.perf_counter() - t0) / (len(x) // HOP)
    assert per_block < 0.1 * HOP / RATE


def test_audio_modulates_a_parameter_in_the_show(ctx, tmp_path):
    p = tmp_path / "a.toml"
    p.write_text('version = 1\n[params]\naberration = 1.0\n'
                 '[[modulator]]\ntarget = "aberration"\nshape = "audio"\nsource = "low"\ndepth = 2.0\n')
    show = Show(ctx, load_patch(p), (64, 36), clock=OfflineClock(60))
    assert show.step()["aberration"] == 1.0
    heard = {"level": 0.5, "low": 0.75, "mid": 0, "high": 0, "onset": 0}
    show.queue.put(ControlEvent("audio", "cmd/audio", heard))
    assert show.step()["aberration"] == pytest.approx(2.5)
    show.close()


def test_render_with_a_sound_file_hears_it_frame_by_frame(tmp_path):
    """`noclip render --audio song.wav`: the file's features, frame by frame, as the show would."""
    import wave

    from instrument.record.audio import FileSoundtrack
    from instrument.record.performance import Performance
    from instrument.record.render import heard

    x = np.zeros(RATE, np.float32)
    x[RATE // 2:] = tone(60, 0.5)
    path = tmp_path / "song.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    sound = FileSoundtrack(path)
    feats = heard(lambda: sound, 30)
    assert len(feats) == 30 and feats[10]["low"] == 0.0 and feats[25]["low"] > 0.8
    assert max(range(30), key=lambda n: feats[n]["onset"]) == 15  # the bass comes in at 0.5 s
    live = Performance(path, {}, {3: [ControlEvent("audio", "cmd/audio", {"low": 1.0})]}, 30)
    assert heard(lambda: sound, 30, live) == []  # what the live show heard rules


def test_a_real_capture_device_keeps_pace():
    """Where a capture device exists (README: on a machine without a sound card, a PulseAudio null
    sink's monitor is one), the live path takes the sound as fast as it comes: a second of it in
    a second, nothing flagged lost, every block heard. NOCLIP_AUDIO_DEVICE picks the device."""
    import os

    from instrument.bench.audio import find_input

    try:
        device, _ = find_input(os.environ.get("NOCLIP_AUDIO_DEVICE") or None)
    except LookupError as exc:
        pytest.skip(f"no capture device: {exc}")
    q = ControlQueue()
    inp = AudioControl(q, device).start()
    try:
        end = time.perf_counter() + 5.0  # PulseAudio's first block can take a second or two
        while not inp.blocks and time.perf_counter() < end:
            time.sleep(0.01)
        assert inp.blocks, "the device started but delivered nothing in 5 s"
        b0, t0 = inp.blocks, time.perf_counter()
        while time.perf_counter() < t0 + 1.0:
            inp.poll()
            time.sleep(1 / 60)
        taken = (inp.blocks - b0) * HOP / (time.perf_counter() - t0) / RATE
    finally:
        inp.close()
    inp.poll()
    assert 0.9 < taken < 1.1 and inp.overflows == 0 and inp.analysed == inp.blocks and q.drain()
