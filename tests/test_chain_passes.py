"""What a chain pass may ask of the chain besides its shader: `keep` (one target drawn over each frame,
discarded pixels keep the last frame) and `cache` (drawn again only when what it reads changes)."""

import numpy as np
import pytest

from instrument.params import REGISTRY, FrameParams
from instrument.render import chain as chain_module
from instrument.render.chain import Chain, load_chain_spec
from instrument.render.gl import quad_buffer

KEEP = """#version 330
uniform float u_time;
uniform int u_drawn;
out vec4 color;
void main() {
    if (u_drawn != 0 && int(gl_FragCoord.x) % 2 == 1)
        discard;  // odd columns keep what they showed
    color = vec4(u_time / 10.0, 0.0, 0.0, 1.0);
}
"""
CACHED = """#version 330
uniform float u_time;
uniform float bleed;
out vec4 color;
void main() { color = vec4(u_time / 10.0, bleed, 0.0, 1.0); }
"""
READS = """#version 330
uniform sampler2D source;
out vec4 color;
void main() { color = texture(source, vec2(0.5)); }
"""


def chain_file(tmp_path, shader: str, keys: str):
    """A one-pass chain file of `shader` with the pass's `keys` (TOML lines)."""
    (tmp_path / "pass.frag").write_text(shader)
    toml = tmp_path / "c.toml"
    toml.write_text(f'version = 1\nname = "c"\n[[pass]]\nname = "p"\nshader = "{tmp_path / "pass.frag"}"\n'
                    f'{keys}\n')
    return toml


def chain(ctx, tmp_path, shader: str, extra: str) -> Chain:
    toml = chain_file(tmp_path, shader, f'scale = "absolute"\nsize = [8, 2]\nfloat = true\n{extra}')
    return Chain(ctx, load_chain_spec(toml), quad_buffer(ctx), (8, 2), (8, 2))


def run(ctx, c: Chain, t: float, **params) -> np.ndarray:
    fp = FrameParams(round(t * 60), t, 1 / 60, {**REGISTRY.defaults(), **params})
    tex = c.render({"source": ctx.texture((1, 1), 4)}, fp)
    return np.frombuffer(tex.read(), np.float16).reshape(2, 8, 4)[..., :2].astype(float)


def test_a_kept_pass_draws_whole_once_then_only_what_it_does_not_discard(ctx, tmp_path):
    c = chain(ctx, tmp_path, KEEP, "keep = true")
    assert len(c.passes[0].targets) == 1
    assert np.allclose(run(ctx, c, 1.0)[..., 0], 0.1, atol=1e-3)  # a fresh target: every pixel
    got = run(ctx, c, 5.0)[..., 0]
    assert np.allclose(got[:, 0::2], 0.5, atol=1e-3) and np.allclose(got[:, 1::2], 0.1, atol=1e-3)
    c.release()


def test_a_cached_pass_is_drawn_when_what_it_reads_changes(ctx, tmp_path, monkeypatch):
    c = chain(ctx, tmp_path, CACHED, "cache = 0.5")
    draws = []
    real = chain_module.draw
    monkeypatch.setattr(chain_module, "draw", lambda *a: (draws.append(1), real(*a)))
    assert np.allclose(run(ctx, c, 1.1, bleed=0.25)[0, 0], [0.1, 0.25], atol=1e-3)  # time in 0.5 s steps
    run(ctx, c, 1.4, bleed=0.25)
    assert len(draws) == 1  # the same step, the same parameters: not drawn again
    assert np.allclose(run(ctx, c, 1.6, bleed=0.25)[0, 0], [0.15, 0.25], atol=1e-3)
    assert np.allclose(run(ctx, c, 1.7, bleed=0.5)[0, 0], [0.15, 0.5], atol=1e-3)
    assert len(draws) == 3
    c.release()


def test_a_cached_pass_may_not_read_a_texture(ctx, tmp_path):
    with pytest.raises(ValueError, match="cached pass"):
        chain(ctx, tmp_path, READS, "cache = 1")


@pytest.mark.parametrize(("value", "dtype"), [("true", "f2"), ("16", "f2"), ("32", "f4"), ("false", "f1")])
def test_a_pass_target_has_the_precision_asked_for(ctx, tmp_path, value, dtype):
    toml = chain_file(tmp_path, CACHED, f'scale = "absolute"\nsize = [8, 2]\nfloat = {value}')
    c = Chain(ctx, load_chain_spec(toml), quad_buffer(ctx), (8, 2), (8, 2))
    assert c.passes[0].texture.dtype == dtype
    c.release()


def test_a_float_of_another_width_is_refused(tmp_path):
    with pytest.raises(Exception, match="float"):
        load_chain_spec(chain_file(tmp_path, CACHED, "float = 8"))


FIELDS = """#version 330
uniform int u_frame;
out vec4 color;
void main() { color = vec4(float(u_frame) / 10.0, 0.0, 0.0, 1.0); }
"""


def test_a_pass_of_fields_draws_the_half_of_the_field_that_came(ctx, tmp_path):
    """Interlaced, a frame brings one field (u_frame & 1): only that half of the target (field 0's
    below) is drawn, once the target holds a frame; 240p (interlace off) draws both."""
    c = chain(ctx, tmp_path, FIELDS, "keep = true\nfields = true")
    assert c.fields
    rows = run(ctx, c, 0.0, interlace=True)[..., 0]           # GL rows: [0] the lower half (field 0)
    assert np.allclose(rows, 0.0)                              # a fresh target: drawn whole
    rows = run(ctx, c, 1 / 60, interlace=True)[..., 0]         # frame 1 brings field 1: the upper half
    assert np.allclose(rows[1], 0.1, atol=1e-3) and np.allclose(rows[0], 0.0)
    rows = run(ctx, c, 2 / 60, interlace=True)[..., 0]         # frame 2, field 0: the lower half
    assert np.allclose(rows[1], 0.1, atol=1e-3) and np.allclose(rows[0], 0.2, atol=1e-3)
    rows = run(ctx, c, 3 / 60, interlace=False)[..., 0]        # 240p: both
    assert np.allclose(rows, 0.3, atol=1e-3)
    c.release()


def test_a_pass_of_fields_keeps_its_target(tmp_path):
    with pytest.raises(Exception, match="keep"):
        load_chain_spec(chain_file(tmp_path, FIELDS, "fields = true"))
