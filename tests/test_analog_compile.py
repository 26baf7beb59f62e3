"""Every GLSL file compiles: in Mesa through EGL (what plays), and in glslangValidator (the reference
front end, stricter about the spec than any one driver)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from instrument.render.chain import chain_names, load_chain_spec
from instrument.render.gl import QUAD_VERT, load_program, quad_buffer, shader_path, shader_source
from instrument.resources import data_dir

ALL = sorted(p for p in data_dir("shaders").rglob("*") if p.suffix in (".frag", ".vert", ".glsl"))
# standalone shaders start with #version; pieces (the scene's level shaders) are assembled by their
# consumer, and are compiled below the way it assembles them
SHADERS = [p for p in ALL if p.read_text().startswith("#version")]
IDS = [str(p.relative_to(data_dir("shaders"))) for p in SHADERS]
# fragment programs drawn with a pass's own vertex shader (the chain files say which)
PAIRED = {p.shader: p.vertex for name in chain_names() for p in load_chain_spec(name).passes if p.vertex}
PAIRED[shader_path("core/output.frag")] = shader_path("core/output.vert")
LEVELS = sorted(int(p.stem.removeprefix("level")) for p in data_dir("shaders").glob("scene/level*.frag"))


@pytest.fixture(scope="module")
def gl():
    from instrument.render.gl import headless_context

    ctx = headless_context()
    yield ctx
    ctx.release()


def test_the_chain_has_its_stages():
    names = set(IDS)
    assert {
        "vhs/signal.frag",
        "vhs/chroma.frag",
        "vhs/smear.frag",
        "vhs/deck.frag",
        "vhs/osd.frag",
        "vhs/frame.frag",
    } <= names


@pytest.mark.parametrize(
    "path",
    [p for p in SHADERS if p.suffix == ".frag"],
    ids=[i for i, p in zip(IDS, SHADERS, strict=True) if p.suffix == ".frag"],
)
def test_compiles_in_mesa(gl, path):
    quad = quad_buffer(gl)
    program = load_program(gl, path, quad, PAIRED.get(path, QUAD_VERT))  # linked as it plays
    program.release()
    quad.release()


def test_a_pass_vertex_shader_error_names_its_file(gl, tmp_path):
    from instrument.render.gl import ShaderError

    broken = tmp_path / "broken.vert"
    broken.write_text(shader_path("vhs/deck.vert").read_text().replace("taps1 = vec3(", "taps1 = vec2("))
    quad = quad_buffer(gl)
    with pytest.raises(ShaderError) as err:
        load_program(gl, "vhs/deck.frag", quad, broken)
    assert err.value.path == broken and err.value.line is not None
    quad.release()


def test_an_error_in_an_included_file_names_that_file_and_line(gl, tmp_path):
    from instrument.render.gl import ShaderError

    tape = tmp_path / "tape.glsl"
    lines = shader_path("vhs/tape.glsl").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("const float ACTIVE_US"))
    lines[at] = lines[at].replace("52.6", "fifty")
    tape.write_text("\n".join(lines) + "\n")
    deck = tmp_path / "deck.frag"
    deck.write_text(shader_path("vhs/deck.frag").read_text().replace('"vhs/tape.glsl"', f'"{tape}"'))
    quad = quad_buffer(gl)
    with pytest.raises(ShaderError) as err:
        load_program(gl, deck, quad, shader_path("vhs/deck.vert"))
    assert err.value.path == tape and err.value.line == at + 1, err.value
    # and a line of the including file after the include keeps its own number
    deck.write_text(shader_path("vhs/deck.frag").read_text().replace("void main() {", "void main() { oops;"))
    with pytest.raises(ShaderError) as err:
        load_program(gl, deck, quad, shader_path("vhs/deck.vert"))
    main = shader_path("vhs/deck.frag").read_text().splitlines().index("void main() {") + 1
    assert err.value.path == deck and err.value.line == main, err.value
    deck.write_text('#version 330\n#include "no/such.glsl"\nvoid main() {}\n')
    with pytest.raises(ShaderError, match="cannot read") as err:
        load_program(gl, deck, quad)
    assert err.value.path == shader_path("no/such.glsl")
    quad.release()


def test_the_tapes_figures_are_written_once():
    """LUMA_MHZ, CHROMA_MHZ, DELAY_SAMPLES, FSC4_MHZ, ACTIVE_US: defined in vhs/tape.glsl alone, and
    every pass that uses one includes it."""
    tape = shader_path("vhs/tape.glsl")
    names = ("LUMA_MHZ", "CHROMA_MHZ", "DELAY_SAMPLES", "FSC4_MHZ", "ACTIVE_US")
    for name in names:
        defined = [p for p in ALL if f"const float {name}" in p.read_text()]
        assert defined == [tape], (name, defined)
    users = [p for p in SHADERS if any(n in p.read_text() for n in names)]
    assert len(users) >= 3
    for path in users:
        assert tape in shader_source(path)[1], path


@pytest.mark.parametrize("path", SHADERS, ids=IDS)
def test_compiles_in_glslang(path, tmp_path):
    exe = shutil.which("glslangValidator")
    if exe is None:
        pytest.skip("glslangValidator not installed (Debian: apt-get install glslang-tools)")
    joined = tmp_path / path.name  # as load_program hands it to the driver: its includes expanded
    joined.write_text(shader_source(path)[0])
    run = subprocess.run([exe, str(joined)], check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("level", LEVELS)
def test_level_shaders_compile_as_assembled(gl, level, tmp_path):
    from instrument.scene import backrooms

    for material in backrooms.MATERIALS:
        backrooms._compile(gl, level, material).release()
    exe = shutil.which("glslangValidator")
    if exe is not None:
        common = shader_path("scene/common.glsl").read_text()
        frag = shader_path(f"scene/level{level}.frag").read_text()
        for material in backrooms.MATERIALS:
            joined = tmp_path / f"level{level}.frag"
            joined.write_text(f"#version 330\n#define WINDOW {backrooms.WINDOW}\n#define KIND {material}\n"
                              f"{common}\n{frag}")
            run = subprocess.run([exe, str(joined)], check=False, capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stdout + run.stderr


def test_shaders_say_what_they_model():
    assert LEVELS and len(ALL) > len(SHADERS)
    for path in ALL:
        lines = path.read_text().splitlines()
        if path in SHADERS:
            assert lines[0].startswith("#version 330"), path
            lines = lines[1:]
        assert lines[0].startswith("//"), f"{path}: the first comment says what the stage models"


def test_quad_vert_is_the_vertex_shader():
    assert shader_path(QUAD_VERT) in SHADERS
