"""A patch of `fields` (issue 16: the default show carries the tape's detail on two cores). The scene
draws one field of the 480-line picture a frame, each field's lines where the whole frame has them;
the tape reads that field line for line; patches and performance headers carry the choice."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from instrument.bench.dream import luma, render
from instrument.params import REGISTRY, FrameParams
from instrument.patch import ConfigError, load_patch, save_patch
from instrument.record.performance import header_patch, make_header
from instrument.scene.backrooms import Backrooms

STILL = {"speed": 0.0, "wander": 0.0, "flicker": 0.0, "level": "0", "level_seed": 3}


def _fp(n: int, **values) -> FrameParams:
    return FrameParams(n, n / 30, 1 / 30, {**REGISTRY.defaults(), **STILL, **values})


def _top_first(tex, comps: int = 4, dtype=np.uint8) -> np.ndarray:
    w, h = tex.size
    return np.flipud(np.frombuffer(tex.read(), dtype).reshape(h, w, comps)).astype(np.float32)


def test_each_field_holds_the_whole_frames_lines_of_its_parity(ctx):
    """Field 0 is the frame's even lines (0 at the top), field 1 its odd ones: the tape weaves 480
    different lines, not 240 twice."""
    whole, field = Backrooms(ctx, (320, 240)), Backrooms(ctx, (320, 120), fields=True)
    try:
        for n in range(4):
            fp = _fp(n, interlace=True)
            frame = _top_first(whole.render(fp))[..., :3]
            got = _top_first(field.render(fp))[..., :3]
            own = np.abs(got - frame[fp.field::2]).mean()
            other = np.abs(got - frame[1 - fp.field::2]).mean()
            assert own < 0.5 * other, (n, own, other)
    finally:
        whole.release()
        field.release()


def test_the_field_step_is_motion_a_carried_dream_follows(ctx):
    """The camera standing still, field 0 -> field 1 samples one frame line lower, so the picture
    moves up half a field line (GL +y is up), and back; without interlace every frame is field 0 and
    nothing moves."""
    scene = Backrooms(ctx, (160, 60), fields=True)
    try:
        for interlace, steps in ((True, (0.5, -0.5)), (False, (0.0, 0.0))):
            for n, step in zip((1, 2), steps, strict=True):
                if n == 1:
                    scene.render(_fp(0, interlace=interlace))
                scene.render(_fp(n, interlace=interlace))
                dy = _top_first(scene.motion, 2, np.float32)[..., 1]
                assert float(np.median(dy)) == pytest.approx(step, abs=0.05), (interlace, n)
    finally:
        scene.release()


def test_the_tape_reads_a_field_line_for_line(tmp_path):
    """Stripes two frame lines tall: each field line of the source is all dark or all bright, and the
    tape (clean, 240p: each field line shown twice) keeps them whole, not blended with the next."""
    y = np.arange(480)[:, None]
    img = np.where((y // 2) % 2 == 0, 40, 215).astype(np.uint8) * np.ones((1, 640), np.uint8)
    Image.fromarray(img).convert("RGB").save(tmp_path / "stripes.png")
    frames = render(tmp_path, "stripes", "default", "--source", str(tmp_path / "stripes.png"),
                    "--model", "none", seconds=0.2)
    rows = luma(frames[max(frames)])[40:440, 64:576].mean(axis=1)
    dark, bright = rows[(np.arange(40, 440) // 2) % 2 == 0], rows[(np.arange(40, 440) // 2) % 2 == 1]
    assert bright.mean() - dark.mean() > 0.8 * (215 - 40), (dark.mean(), bright.mean())


def test_patches_and_headers_carry_fields(tmp_path):
    shipped = load_patch("default")
    assert shipped.fields and shipped.size == (640, 240) and shipped.dream == (256, 192)
    save_patch(shipped, tmp_path / "saved.toml")
    assert load_patch(tmp_path / "saved.toml").fields
    header = json.loads(json.dumps(make_header(shipped, {}, 30.0, (640, 480))))["patch"]
    assert header_patch(header) == replace(shipped, path=header_patch(header).path)
    with pytest.raises(ValueError, match="fields"):
        header_patch({**header, "fields": "yes"})
    bad = tmp_path / "bad.toml"
    bad.write_text((tmp_path / "saved.toml").read_text().replace("fields = true", "fields = 2"))
    with pytest.raises(ConfigError, match="fields"):
        load_patch(bad)
