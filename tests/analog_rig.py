"""A bench for the analog chain: exact images in as the chain's source, any pass's output out.

Feeding a float texture straight into a Chain (no scene, no compositor) keeps test patterns exact,
so measured responses are the chain's and nothing else's.
"""

from __future__ import annotations

import numpy as np

from instrument.bench.dream import cycles_per_px
from instrument.params import REGISTRY, FrameParams
from instrument.render.chain import Chain, load_chain_spec
from instrument.render.gl import quad_buffer

TAPE = (640, 480)
RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.5959, -0.2746, -0.3213], [0.2115, -0.5227, 0.3112]])
YIQ2RGB = np.linalg.inv(RGB2YIQ)

# every artifact off, every display stage flat: what is left is the tape's filtering
QUIET = {
    "luma_noise": 0.0,
    "chroma_noise": 0.0,
    "snow": 0.0,
    "tracking": 0.0,
    "tracking_jump": 0.0,
    "head_switch": 0.0,
    "edge_wave": 0.0,
    "dropouts": 0.0,
    "chroma_loss": 0.0,
    "sharpen": 0.0,
    "ringing": 0.0,
    "bleed": 0.0,
    "aberration": 0.0,
    "crt": False,
    "osd": False,
    "interlace": False,
}


def mhz_to_cycles_per_px(mhz: float | np.ndarray, width: int = TAPE[0]) -> float | np.ndarray:
    """The tape's active line (shaders/vhs/tape.glsl) spread over `width` px."""
    return cycles_per_px(mhz, width)


class Rig:
    def __init__(self, ctx, chain: str = "vhs") -> None:
        self.ctx = ctx
        self.spec = load_chain_spec(chain)
        self.quad = quad_buffer(ctx)
        self.chain = Chain(ctx, self.spec, self.quad, TAPE, TAPE)
        self.source = ctx.texture(TAPE, 4, dtype="f4")

    def fresh(self) -> Rig:
        """A second chain from the same files: empty feedback buffers, newly compiled programs."""
        other = object.__new__(Rig)
        other.ctx, other.spec, other.quad, other.source = (
            self.ctx,
            self.spec,
            self.quad,
            self.source,
        )
        other.chain = Chain(self.ctx, self.spec, self.quad, TAPE, TAPE)
        return other

    def render(self, rgb: np.ndarray, frame: int = 0, **params) -> dict[str, np.ndarray]:
        """Top-down float RGB image in; every pass's output, top-down, as float arrays."""
        h, w, _ = rgb.shape
        rgba = np.concatenate([rgb, np.ones((h, w, 1))], axis=2).astype("f4")
        self.source.write(np.ascontiguousarray(rgba[::-1]).tobytes())
        values = {**REGISTRY.defaults(), **params}
        fp = FrameParams(frame, frame / 60.0, 1 / 60.0, values)
        self.chain.render(
            {"source": self.source, "scene": self.source, "original": self.source}, fp
        )
        return {p.spec.name: read(p.texture, p.spec.fields) for p in self.chain.passes}

    def release(self) -> None:
        self.chain.release()


def read(tex, fields: bool = False) -> np.ndarray:
    """A pass's output, top-down; a target of fields (PassSpec.fields) woven back into a frame."""
    w, h = tex.size
    if tex.dtype == "f1":
        data = np.frombuffer(tex.read(), dtype=np.uint8).reshape(h, w, 4) / 255.0
    else:
        data = np.frombuffer(tex.read(), dtype=np.float16 if tex.dtype == "f2" else np.float32)
        data = data.reshape(h, w, 4).astype(np.float64)
    data = data[::-1, :, :3]
    if fields:  # line L is field L & 1's line L >> 1: that field's half (field 0 below), top first
        lines = np.arange(h)
        data = data[h - 1 - ((lines & 1) * (h // 2) + h // 2 - 1 - (lines >> 1))]
    return data


