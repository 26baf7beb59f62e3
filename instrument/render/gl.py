"""GL contexts and shader programs shared by every stage; headless and windowed use the same code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import moderngl
import numpy as np

from ..params import REGISTRY
from ..resources import data_dir

QUAD_VERT = "core/quad.vert"


class ShaderError(RuntimeError):
    """A shader that failed to compile or link, with file and line for the performer."""

    def __init__(self, path: Path, line: int | None, message: str) -> None:
        self.path, self.line = path, line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def headless_context() -> moderngl.Context:
    """An EGL context with no window (servers, CI, offline renders)."""
    return moderngl.create_standalone_context(require=330, backend="egl")


_LINE = re.compile(r"^\s*\d+:(\d+)\(\d+\):\s*(.*)$|^\s*ERROR:\s*\d+:(\d+):\s*(.*)$", re.MULTILINE)


def _shader_error(path: Path, exc: Exception) -> ShaderError:
    text = str(exc)
    for m in _LINE.finditer(text):
        line = int(m.group(1) or m.group(3))
        return ShaderError(path, line, (m.group(2) or m.group(4)).strip())
    return ShaderError(path, None, text.strip().splitlines()[-1] if text.strip() else "compile failed")


def shader_path(name: str | Path) -> Path:
    p = Path(name)
    return p if p.is_absolute() else data_dir("shaders") / p


@dataclass
class Program:
    """A fullscreen fragment program: its quad, its uniforms, and where it came from."""

    prog: moderngl.Program
    vao: moderngl.VertexArray
    path: Path
    uniforms: dict[str, moderngl.Uniform]
    samplers: list[str]

    def set(self, name: str, value: Any) -> None:
        u = self.uniforms.get(name)
        if u is not None:
            u.value = value

    def set_params(self, values: Mapping[str, Any]) -> None:
        """Every uniform named after a parameter gets that parameter's value (the registry is the map)."""
        for name, u in self.uniforms.items():
            spec = REGISTRY.get(name)
            if spec is not None and name in values:
                v = spec.to_uniform(values[name])
                if v is not None:
                    u.value = v

    def bind_textures(self, textures: Mapping[str, moderngl.Texture]) -> None:
        for unit, name in enumerate(self.samplers):
            tex = textures.get(name)
            if tex is not None:
                tex.use(unit)
                self.uniforms[name].value = unit

    def release(self) -> None:
        self.vao.release()
        self.prog.release()


def load_program(ctx: moderngl.Context, frag: str | Path, quad: moderngl.Buffer,
                 vertex: str | Path = QUAD_VERT) -> Program:
    """Compile a fragment shader over the shared quad, with the quad's own vertex shader or a pass's
    (which computes the pass's per-frame constants: four runs, not one a pixel). ShaderError names
    the file that failed and its line."""
    fpath, vpath = shader_path(frag), shader_path(vertex)
    sources = {}
    for path in (vpath, fpath):
        try:
            sources[path] = path.read_text()
        except OSError as exc:
            raise ShaderError(path, None, f"cannot read: {exc.strerror}") from None
    try:
        prog = ctx.program(vertex_shader=sources[vpath], fragment_shader=sources[fpath])
    except moderngl.Error as exc:
        # moderngl heads a compile log with the stage; a link error belongs to the pass's program
        failed = vpath if "vertex_shader" in str(exc) else fpath
        raise _shader_error(failed, exc) from None
    uniforms = {k: v for k, v in ((k, prog[k]) for k in prog) if isinstance(v, moderngl.Uniform)}
    samplers = sorted(k for k, u in uniforms.items() if u.gl_type in _SAMPLER_TYPES)
    vao = ctx.vertex_array(prog, [(quad, "2f", "in_pos")])
    return Program(prog, vao, fpath, uniforms, samplers)


_SAMPLER_TYPES = {0x8B5E, 0x8DCA}  # GL_SAMPLER_2D, GL_INT_SAMPLER_2D


def quad_buffer(ctx: moderngl.Context) -> moderngl.Buffer:
    return ctx.buffer(np.array([-1, -1, 1, -1, -1, 1, 1, 1], dtype="f4").tobytes())


def target(ctx: moderngl.Context, size: tuple[int, int], dtype: str = "f1",
           filter: str = "linear") -> tuple[moderngl.Texture, moderngl.Framebuffer]:
    """A colour texture and its framebuffer (a render target of one pass)."""
    tex = ctx.texture(size, 4, dtype=dtype)
    f = moderngl.LINEAR if filter == "linear" else moderngl.NEAREST
    tex.filter = (f, f)
    tex.repeat_x = tex.repeat_y = False
    return tex, ctx.framebuffer(color_attachments=[tex])


def draw(program: Program, fbo: moderngl.Framebuffer) -> None:
    fbo.use()
    program.vao.render(moderngl.TRIANGLE_STRIP)


def read_rgb(fbo: moderngl.Framebuffer) -> np.ndarray:
    """Read a framebuffer as top-down RGB uint8 (GL rows run bottom-up)."""
    w, h = fbo.size
    data = np.frombuffer(fbo.read(components=3, alignment=1), dtype=np.uint8).reshape(h, w, 3)
    return data[::-1]
