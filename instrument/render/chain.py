"""Shader chains: a TOML file lists passes in order and declares the parameters its shaders read.

The parameters go into the one registry, so a chain's knobs appear in OSC, patches, MIDI and
`noclip params` without a second list. Passes run at their own scale (the tape's working
resolution, say), so their cost does not grow with the output resolution.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moderngl

from ..params import REGISTRY, FrameParams, ParamSpec, Registry
from ..resources import data_dir, find
from ..tomlfile import ConfigError, TomlFile
from .gl import QUAD_VERT, Program, draw, load_program, shader_path, target

SCALES = ("source", "output", "absolute")
Seconds = float  # (PassSpec has a field named `float`)
PASS_KEYS = {"name", "shader", "vertex", "scale", "size", "factor", "filter", "float", "feedback", "keep",
             "cache", "fields"}
PARAM_KEYS = {"name", "type", "default", "min", "max", "choices", "unit", "smooth", "description"}


@dataclass(frozen=True)
class PassSpec:
    name: str
    shader: Path
    scale: str = "source"
    size: tuple[int, int] | None = None
    factor: float = 1.0
    filter: str = "linear"
    float: int = 0  # bits a channel of a float target: 16 (`float = true`) or 32; 0: 8-bit unorm
    feedback: bool = False
    vertex: Path | None = None  # the pass's own vertex shader, for its per-frame constants
    # one target drawn over each frame: a pixel the shader discards keeps what it showed (`u_drawn`
    # is 0 until the target holds a frame). Cheaper than `feedback` where most of the last frame
    # stays: no second target, no fetch of it
    keep: bool = False
    # drawn again only when a parameter it reads changes, or `u_time` (given in steps of this many
    # seconds) steps; None: every frame. For a pass that reads no texture (the OSD's text)
    cache: Seconds | None = None
    # (with `keep`) the target holds an interlaced frame's two fields one above the other, field 0's
    # lines in its lower half, each half top line first at its top, so a frame that brings one field
    # (the `interlace` parameter on, the field `u_frame & 1`) is drawn over that half alone: on
    # llvmpipe a discarded pixel costs what a drawn one does, a pixel outside the scissor nothing.
    # Whatever reads the target un-weaves it (the compositor's output pass: Chain.fields)
    fields: bool = False

    def out_size(self, source: tuple[int, int], output: tuple[int, int]) -> tuple[int, int]:
        if self.scale == "absolute":
            assert self.size is not None
            return self.size
        w, h = source if self.scale == "source" else output
        return max(1, round(w * self.factor)), max(1, round(h * self.factor))


@dataclass(frozen=True)
class ChainSpec:
    name: str
    path: Path
    description: str
    params: tuple[ParamSpec, ...]
    passes: tuple[PassSpec, ...]


def load_chain_spec(name: str | Path, registry: Registry = REGISTRY) -> ChainSpec:
    """Parse and validate a chain file and declare its parameters; ConfigError names file/line/key."""
    tf = TomlFile(find("shaders", name, ".toml"))
    d = tf.data
    for key in d:
        if key not in {"version", "name", "description", "param", "pass"}:
            raise tf.error((key,), "unknown key")
    if d.get("version") != 1:
        raise tf.error(("version",), "chain files carry version = 1")
    params = []
    for i, p in enumerate(d.get("param", [])):
        for key in p:
            if key not in PARAM_KEYS:
                raise tf.error(("param", i, key), "unknown key")
        try:
            fields: dict[str, Any] = {k: tuple(v) if k == "choices" else v for k, v in p.items()}
            spec = ParamSpec(origin=str(tf.path), group=d.get("name", tf.path.stem), **fields)
        except (TypeError, ValueError) as exc:
            raise tf.error(("param", i, "name"), str(exc)) from None
        params.append(spec)
    passes = []
    for i, p in enumerate(d.get("pass", [])):
        for key in p:
            if key not in PASS_KEYS:
                raise tf.error(("pass", i, key), "unknown key")
        if "name" not in p or "shader" not in p:
            raise tf.error(("pass", i), "a pass needs a name and a shader")
        if p.get("scale", "source") not in SCALES:
            raise tf.error(("pass", i, "scale"), f"scale is one of {', '.join(SCALES)}")
        if p.get("scale") == "absolute" and not _is_size(p.get("size")):
            raise tf.error(("pass", i, "size"), "an absolute pass needs size = [width, height]")
        path = shader_path(p["shader"])
        if not path.is_file():
            raise tf.error(("pass", i, "shader"), f"no shader file {path}")
        vertex = shader_path(p["vertex"]) if "vertex" in p else None
        if vertex is not None and not vertex.is_file():
            raise tf.error(("pass", i, "vertex"), f"no shader file {vertex}")
        passes.append(PassSpec(
            name=p["name"], shader=path, scale=p.get("scale", "source"),
            size=tuple(p["size"]) if "size" in p else None, factor=float(p.get("factor", 1.0)),
            filter=p.get("filter", "linear"), float=_float(tf, i, p.get("float", False)),
            feedback=bool(p.get("feedback", False)), vertex=vertex, keep=bool(p.get("keep", False)),
            cache=_cache(tf, i, p.get("cache")), fields=bool(p.get("fields", False)),
        ))
    if not passes:
        raise tf.error(("pass",), "a chain needs at least one pass")
    for i, ps in enumerate(passes):
        if ps.fields and not ps.keep:
            raise tf.error(("pass", i, "fields"), "a pass of fields keeps its target (keep = true)")
    for spec in params:
        try:
            registry.declare(spec)
        except ValueError as exc:
            raise ConfigError(tf.path, None, spec.name, str(exc)) from None
    return ChainSpec(d.get("name", tf.path.stem), tf.path, d.get("description", ""),
                     tuple(params), tuple(passes))


def _float(tf: TomlFile, i: int, v: Any) -> int:
    bits = {False: 0, True: 16}.get(v, v) if isinstance(v, bool) else v
    if bits in (0, 16, 32) and not (bits == 0 and not isinstance(v, bool)):
        return int(bits)
    raise tf.error(("pass", i, "float"), "float is true (16-bit), 16 or 32")


def _cache(tf: TomlFile, i: int, v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
        raise tf.error(("pass", i, "cache"), "cache is the step of u_time in seconds (> 0)")
    return float(v)


def _is_size(v: Any) -> bool:
    return isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and x > 0 for x in v)


def chain_names() -> list[str]:
    return sorted(p.stem for p in data_dir("shaders").glob("*.toml"))


class _Pass:
    def __init__(self, ctx: moderngl.Context, spec: PassSpec, program: Program,
                 size: tuple[int, int]) -> None:
        self.spec, self.program, self.size = spec, program, size
        dtype = {0: "f1", 16: "f2", 32: "f4"}[spec.float]
        self.targets = [target(ctx, size, dtype, spec.filter) for _ in range(2 if spec.feedback else 1)]
        for _tex, fbo in self.targets:
            fbo.clear()
        self.current = 0
        self.drawn = False  # the target holds a frame (`keep`)
        self.key: tuple | None = None  # what the last draw was made of (`cache`)
        # the parameters the shader reads, and whether it reads the frame number: a cached pass's key
        self.reads = tuple(name for name in program.uniforms if name in REGISTRY)
        self.counts = "u_frame" in program.uniforms

    @property
    def texture(self) -> moderngl.Texture:
        return self.targets[self.current][0]

    def release(self) -> None:
        self.program.release()
        for tex, fbo in self.targets:
            fbo.release()
            tex.release()


class Chain:
    """The GL side of a ChainSpec. Building compiles every pass first, so a broken edit raises
    before anything of the running chain is touched."""

    def __init__(self, ctx: moderngl.Context, spec: ChainSpec, quad: moderngl.Buffer,
                 source_size: tuple[int, int], output_size: tuple[int, int]) -> None:
        self.ctx, self.spec = ctx, spec
        programs: list[Program] = []
        try:
            for p in spec.passes:
                programs.append(prog := load_program(ctx, p.shader, quad, p.vertex or QUAD_VERT))
                if p.cache is not None and prog.samplers:
                    raise ValueError(f"pass '{p.name}': a cached pass may read no texture")
                if p.fields and p.out_size(source_size, output_size)[1] % 2:
                    raise ValueError(f"pass '{p.name}': a pass of fields has an even number of lines")
        except Exception:
            for prog in programs:
                prog.release()
            raise
        self.passes = [_Pass(ctx, p, prog, p.out_size(source_size, output_size))
                       for p, prog in zip(spec.passes, programs, strict=True)]

    def render(self, inputs: dict[str, moderngl.Texture], fp: FrameParams,
               timings: dict[str, list[float]] | None = None, source_fields: bool = False) -> moderngl.Texture:
        """Run the passes in order. With `timings` (bench), each pass is finished and its ms kept:
        llvmpipe draws lazily, so an unfinished pass would bill its cost to the next.
        `source_fields`: the inputs hold this frame's field alone (`u_source_fields`: a pass reading
        them takes its lines as they are, not from a full frame)."""
        textures = dict(inputs)
        source = inputs["source"]
        for p in self.passes:
            if p.spec.feedback:
                textures[p.spec.name + "_prev"] = p.texture
                p.current ^= 1
            prog = p.program
            textures["source"] = source
            now = fp.time if p.spec.cache is None else math.floor(fp.time / p.spec.cache) * p.spec.cache
            if p.spec.cache is not None:
                key = (now, source.size, fp.frame if p.counts else None,
                       *(fp[name] for name in p.reads if name in fp))
                if key == p.key:
                    source = textures[p.spec.name] = p.texture
                    continue
                p.key = key
            prog.bind_textures(textures)
            prog.set_params(fp)
            prog.set("u_frame", fp.frame)
            prog.set("u_time", now)
            prog.set("u_resolution", p.size)
            prog.set("u_source_size", source.size)
            prog.set("u_drawn", int(p.drawn))
            prog.set("u_source_fields", int(source_fields))
            fbo = p.targets[p.current][1]
            if p.spec.fields and p.drawn and fp.get("interlace"):  # this frame's field alone
                fbo.scissor = (0, fp.field * p.size[1] // 2, p.size[0], p.size[1] // 2)
            if timings is not None:
                self.ctx.finish()
                t = time.perf_counter()
            draw(prog, fbo)
            fbo.scissor = None  # type: ignore[assignment]  # None turns it off; the stubs forget it
            if timings is not None:
                self.ctx.finish()
                timings.setdefault(p.spec.name, []).append((time.perf_counter() - t) * 1000.0)
            p.drawn = True
            source = textures[p.spec.name] = p.texture
        return source

    @property
    def fields(self) -> bool:
        """The chain's output holds its two fields one above the other (PassSpec.fields)."""
        return self.passes[-1].spec.fields

    def release(self) -> None:
        for p in self.passes:
            p.release()
