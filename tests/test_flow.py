"""Motion estimated for a base that is only a picture (scene/flow.py): a known translation of a
textured pattern comes back as its vector, a video file played as `--source` gives the motion of
its frames (the same every time), none across its loop, and none with `flow` off."""

import av
import numpy as np
from PIL import Image

from instrument.params import REGISTRY, FrameParams
from instrument.scene import make_scene
from instrument.scene.flow import BlockFlow, flow_size

SIZE = (320, 240)


def pattern(w, h, seed=0):
    """Grey texture with detail at several scales (as a picture has), 0..255."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for cell, amp in ((2, 0.5), (8, 1.0), (32, 1.0)):
        small = rng.standard_normal((h // cell + 2, w // cell + 2)).astype(np.float32)
        grown = ((w // cell + 2) * cell, (h // cell + 2) * cell)
        up = Image.fromarray(small).resize(grown, Image.Resampling.BILINEAR)
        img += amp * np.asarray(up)[:h, :w]
    return np.clip(128 + 40 * img, 0, 255).astype(np.uint8)


def rgba(grey):
    """Top-down grey → RGBA rows bottom-up, as a texture holds them."""
    return np.ascontiguousarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)])[::-1]).tobytes()


def test_known_translation_recovers_its_vector(ctx):
    w, h = SIZE
    big = pattern(w + 80, h + 80)
    flow = BlockFlow(ctx, SIZE)
    tex = ctx.texture(SIZE, 4)
    _, ratio = flow_size(SIZE)
    gw, gh = flow.grid
    inner = (slice(2, gh - 2), slice(2, gw - 2))  # blocks whose content stayed in the picture
    for dx, dy in ((0, 0), (6, 0), (-9, 5), (14, -11)):  # image pixels, +y down
        tex.write(rgba(big[40:40 + h, 40:40 + w]))
        flow.forget()
        flow(tex)
        tex.write(rgba(big[40 - dy:40 - dy + h, 40 - dx:40 - dx + w]))  # content moved by (dx, dy)
        flow(tex)
        v = flow.field()[inner]
        # GL orientation: +y up, so a move down is negative
        err = np.abs(v - np.array([dx, -dy], np.float32))
        assert np.median(err) < 0.5 * ratio, (dx, dy, np.median(v, axis=(0, 1)))
        assert np.percentile(err, 90) < ratio, (dx, dy, np.percentile(err, 90))  # within a texel of its grid
        motion = np.frombuffer(flow.motion.read(), np.float32).reshape(h, w, 2)
        assert np.abs(motion[h // 2, w // 2] - [dx, -dy]).max() < ratio
    tex.release()
    flow.release()


def moving_video(path, frames=6, step=(3, 2), fps=10):
    """A textured pattern sliding `step` pixels (right, down) a frame, lossless."""
    w, h = SIZE
    big = pattern(w + 60, h + 60, seed=3)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "bgr0"
        for n in range(frames):
            x, y = 40 - n * step[0], 40 - n * step[1]
            grey = big[y:y + h, x:x + w]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.dstack([grey] * 3), format="rgb24")))
        out.mux(stream.encode())
    return path


def play(scene, frames, fps=10.0, **values):
    """Render frames 0..frames-1; the motion of each (h, w, 2) and whether it was a cut."""
    out = []
    for n in range(frames):
        scene.render(FrameParams(n, n / fps, 1 / fps, {**REGISTRY.defaults(), **values}))
        w, h = scene.size
        out.append((np.frombuffer(scene.motion.read(), np.float32).reshape(h, w, 2).copy(), scene.cut,
                    scene.tracked))
    return out


def test_video_source_moves_repeatably_and_not_across_its_loop(ctx, tmp_path):
    path = moving_video(tmp_path / "slide.mkv")
    runs = []
    for _ in range(2):
        scene = make_scene(str(path), ctx, SIZE)
        runs.append(play(scene, 8))
        scene.release()
    w, h = SIZE
    middle = (slice(h // 4, 3 * h // 4), slice(w // 4, 3 * w // 4))
    first = runs[0]
    assert all(tracked for _, _, tracked in first)
    assert not first[0][0].any()                                   # the first frame: nothing before it
    for n in range(1, 6):                                          # 3 right, 2 down a frame (GL: -2)
        assert np.abs(np.median(first[n][0][middle], axis=(0, 1)) - [3, -2]).max() < 1.0, n
    assert first[6][1] and not first[6][0].any()                   # frame 6 is frame 0 again: a cut
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(*runs, strict=True))  # a function of the frames


def test_flow_off_gives_no_motion_and_a_still_has_none(ctx, tmp_path):
    scene = make_scene(str(moving_video(tmp_path / "slide.mkv", frames=3)), ctx, SIZE)
    for motion, _, tracked in play(scene, 3, flow=False):
        assert not tracked and not motion.any()
    for n in range(3):  # nobody reads the motion (no generator): no flow is made after the first
        scene.render(FrameParams(n, n / 10, 0.1, REGISTRY.defaults()))
        assert scene.flow.have == (n == 0)
    scene.release()
    still = tmp_path / "still.png"
    Image.fromarray(pattern(*SIZE)).save(still)
    scene = make_scene(str(still), ctx, SIZE)
    assert scene.flow is None
    for motion, _, tracked in play(scene, 2):
        assert not tracked and not motion.any()
    scene.release()
