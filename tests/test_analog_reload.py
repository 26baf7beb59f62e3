"""Hot reload: an edit while playing recompiles; a broken one is reported with file and line and the
previous chain keeps playing; fixing it brings the edit in."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from instrument.params import FrameParams
from instrument.render.compositor import Compositor
from instrument.render.gl import read_rgb
from instrument.report import Reporter

SIZE = (64, 48)
SHADER = """#version 330
// A flat colour, to see which build is playing.
uniform float u_time;
in vec2 uv;
out vec4 color;
void main() {
    color = vec4(%s, 1.0);
}
"""
CHAIN = """version = 1
name = "reloadtest"

[[pass]]
name = "flat"
shader = "%s"
scale = "absolute"
size = [32, 24]
"""


@pytest.fixture(scope="module")
def gl():
    from instrument.render.gl import headless_context

    ctx = headless_context()
    yield ctx
    ctx.release()


@pytest.fixture
def setup(gl, tmp_path):
    shader = tmp_path / "flat.frag"
    shader.write_text(SHADER % "0.0, 1.0, 0.0")
    chain = tmp_path / "reloadtest.toml"
    chain.write_text(CHAIN % shader)
    reporter = Reporter()
    comp = Compositor(gl, chain, SIZE, SIZE, reporter)
    comp.watcher.interval = 0.0  # look on every frame, not four times a second
    scene = gl.texture(SIZE, 4)
    yield comp, scene, shader, chain, reporter
    comp.release()
    scene.release()


def frame(comp: Compositor, scene) -> np.ndarray:
    fp = FrameParams(0, 0.0, 1 / 60, {"fade": 1.0, "fit": "stretch", "mix": 1.0})
    return read_rgb(comp.render(scene, None, fp))[SIZE[1] // 2, SIZE[0] // 2]


def edit(path: Path, text: str) -> None:
    """Write and move the mtime on, as a save a second later would (filesystems tick coarsely)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_edit_recompiles(setup):
    comp, scene, shader, _, reporter = setup
    assert list(frame(comp, scene)) == [0, 255, 0]
    edit(shader, SHADER % "1.0, 0.0, 0.0")
    assert list(frame(comp, scene)) == [255, 0, 0]
    assert not reporter.recent


def test_broken_shader_keeps_the_old_chain_and_says_where(setup):
    comp, scene, shader, _, reporter = setup
    frame(comp, scene)
    old = comp.chain
    edit(shader, (SHADER % "0.0, 0.0, 1.0").replace("    color =", "    colr =", 1))
    assert list(frame(comp, scene)) == [0, 255, 0], "the previous chain must keep playing"
    assert comp.chain is old
    message = reporter.recent[-1][1]
    assert f"{shader}:7:" in message, message  # `colr` is on line 7
    assert list(frame(comp, scene)) == [0, 255, 0] and len(reporter.recent) == 1, "reported once"
    edit(shader, SHADER % "0.0, 0.0, 1.0")  # the fix comes in by itself
    assert list(frame(comp, scene)) == [0, 0, 255]


def test_broken_chain_file_keeps_the_old_chain_and_says_where(setup):
    comp, scene, _, chain, reporter = setup
    frame(comp, scene)
    edit(chain, chain.read_text().replace('scale = "absolute"', 'scale = "sideways"'))
    assert list(frame(comp, scene)) == [0, 255, 0]
    message = reporter.recent[-1][1]
    assert f"{chain}:7:" in message, message


def test_the_vhs_chain_watches_its_own_files(gl):
    comp = Compositor(gl, "vhs", SIZE, SIZE, Reporter())
    try:
        names = {p.name for p in comp.watcher.paths}
        assert {"vhs.toml", "signal.frag", "deck.frag", "deck.vert", "frame.frag", "output.frag",
                "output.vert",
                "tape.glsl"} <= names  # what the passes include, too: an edit there rebuilds them
    finally:
        comp.release()


VERT = """#version 330
// A pass's own vertex shader: the colour worked out once a corner.
in vec2 in_pos;
flat out vec3 tint;
void main() {
    tint = vec3(%s);
    gl_Position = vec4(in_pos, 0.0, 1.0);
}
"""


def test_a_pass_vertex_shader_plays_and_reloads(setup, tmp_path):
    comp, scene, shader, chain, reporter = setup
    vert = tmp_path / "flat.vert"
    vert.write_text(VERT % "1.0, 0.0, 1.0")
    edit(shader, SHADER.replace("in vec2 uv;", "flat in vec3 tint;") % "tint")
    edit(chain, chain.read_text().replace("size = [32, 24]", f'size = [32, 24]\nvertex = "{vert}"'))
    assert list(frame(comp, scene)) == [255, 0, 255]
    edit(vert, (VERT % "0.0, 1.0, 1.0").replace("tint =", "tnt =", 1))  # broken: the old one plays on
    assert list(frame(comp, scene)) == [255, 0, 255]
    assert f"{vert}:6:" in reporter.recent[-1][1], reporter.recent[-1][1]
    edit(vert, VERT % "0.0, 1.0, 1.0")
    assert list(frame(comp, scene)) == [0, 255, 255]
    edit(chain, chain.read_text().replace(str(vert), str(tmp_path / "gone.vert")))
    assert list(frame(comp, scene)) == [0, 255, 255]
    assert "vertex" in reporter.recent[-1][1] and "gone.vert" in reporter.recent[-1][1]
