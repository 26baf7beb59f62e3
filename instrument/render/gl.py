"""GL contexts and shader programs shared by every stage; headless and windowed use the same code."""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Callable, Mapping, Sequence
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
    # moderngl's stubs type every **settings value as a dict; backend is a str at run time
    return moderngl.create_standalone_context(require=330, backend="egl")  # type: ignore[arg-type]


# GL_RENDERER of the renderers that draw on the CPU (Mesa's llvmpipe and softpipe, SwiftShader)
_SOFTWARE = ("llvmpipe", "softpipe", "swiftshader", "software rasterizer")


@functools.cache
def _gl_finish() -> Callable[[], None] | None:
    """glFinish from the system's GL dispatch library, called through ctypes (which lets go of the
    GIL for the call), or None where there is none to load."""
    for name in ("libOpenGL.so.0", "libGL.so.1"):
        try:
            fn = ctypes.CDLL(name).glFinish
        except (OSError, AttributeError):
            continue
        fn.restype, fn.argtypes = None, []
        return fn
    return None


def settler(ctx: moderngl.Context) -> Callable[[], None] | None:
    """What to call after each draw on `ctx`, or None. On a renderer that draws on the CPU, glFinish
    through ctypes: llvmpipe draws a pass while the next call waits for it, and moderngl holds the GIL
    through every call, so every other Python thread (the OSCQuery server reading a fader, NDI's
    sender, the recorder) stood still for most of each frame (measured: a thread beside a 50-70 ms
    draw counted 2-4 % as far as beside a sleep; 60 % through ctypes). The wait is the same, now
    with the GIL free. On a GPU nothing: a pass waits for none, the driver orders them."""
    return _gl_finish() if software(ctx) else None


def finisher(ctx: moderngl.Context) -> Callable[[], None]:
    """How to wait for everything drawn on `ctx`: as `settler` on a CPU renderer (the GIL let go),
    else moderngl's own finish."""
    return settler(ctx) or ctx.finish


def software(ctx: moderngl.Context) -> bool:
    """Whether `ctx` draws on the CPU: there every pass takes the cores the show and its generator
    share, and work a GPU would do for free may cost more than it saves elsewhere."""
    renderer = str(ctx.info.get("GL_RENDERER", "")).lower()
    return any(name in renderer for name in _SOFTWARE)


_LINE = re.compile(r"^\s*\d+:(\d+)\(\d+\):\s*(.*)$|^\s*ERROR:\s*\d+:(\d+):\s*(.*)$", re.MULTILINE)
_INCLUDE = re.compile(r'^[ \t]*#include[ \t]+"([^"\n]*)"[ \t]*$', re.MULTILINE)
# Lines set aside for each file of a joined source: `#line` numbers line n of its file k as
# k * FILE_LINES + n, so a compile log's line names the file and its line. (Mesa logs every error
# as source string 0, whatever `#line` says, so the line number has to carry the file.)
FILE_LINES = 10000


def line_directive(index: int, line: int = 1) -> str:
    """The `#line` that makes the next line line `line` of file `index` of a joined source."""
    return f"#line {index * FILE_LINES + line}\n"


def shader_error(exc: Exception, vertex: Sequence[Path], fragment: Sequence[Path]) -> ShaderError:
    """The ShaderError for a failed compile or link: moderngl heads the log with the failing stage,
    Mesa writes `0:LINE(COL): msg`, other drivers `ERROR: 0:LINE: msg`; LINE is split by FILE_LINES
    into the stage's file (its index in `vertex` or `fragment`, as joined) and that file's line. A
    log with no line names the stage's first file."""
    text = str(exc)
    files = vertex if "vertex_shader" in text else fragment
    for m in _LINE.finditer(text):
        index, line = divmod(int(m.group(1) or m.group(3)), FILE_LINES)
        if index >= len(files):
            index, line = 0, int(m.group(1) or m.group(3))
        return ShaderError(files[index], line, (m.group(2) or m.group(4)).strip())
    return ShaderError(files[0], None, text.strip().splitlines()[-1] if text.strip() else "compile failed")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ShaderError(path, None, f"cannot read: {exc.strerror}") from None


def shader_source(name: str | Path) -> tuple[str, list[Path]]:
    """A shader's text with each `#include "name"` line (a name under shaders/, like a chain's) replaced
    by that file, so a fact several passes share (the tape's figures in vhs/tape.glsl) is written
    once; and the files it was joined from, in the order `shader_error` counts them. Included files
    include nothing themselves: one level keeps the numbering and the watch list simple."""
    path = shader_path(name)
    text = _read(path)
    files = [path]

    def expand(m: re.Match) -> str:
        piece = shader_path(m.group(1))
        body = _read(piece)
        if _INCLUDE.search(body):
            raise ShaderError(piece, None, "an included file may not include another")
        files.append(piece)
        after = text.count("\n", 0, m.start()) + 2  # the including file's line after the #include
        return line_directive(len(files) - 1) + body + "\n" + line_directive(0, after).rstrip("\n")

    return _INCLUDE.sub(expand, text), files


def shader_files(name: str | Path) -> list[Path]:
    """The files a shader is built from (itself and what it includes): what a live reload watches."""
    path = shader_path(name)
    try:
        return shader_source(path)[1]
    except ShaderError:
        return [path]  # unreadable now: watch the file itself, whose fix is the edit to see


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
    settle: Callable[[], None] | None = None   # called after each draw (settler)

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
                 vertex: str | Path = QUAD_VERT, defines: Sequence[str] = ()) -> Program:
    """Compile a fragment shader over the shared quad, with the quad's own vertex shader or a pass's
    (which computes the pass's per-frame constants: four runs, not one a pixel), and `defines` (names
    #defined in the fragment shader, for a variant of it). ShaderError names the file that failed
    and its line."""
    fpath, vpath = shader_path(frag), shader_path(vertex)
    (vsource, vfiles), (fsource, ffiles) = shader_source(vpath), shader_source(fpath)
    if defines:  # after the #version line; the lines after it keep their numbers
        first, _, rest = fsource.partition("\n")
        fsource = first + "\n" + "".join(f"#define {d}\n" for d in defines) + line_directive(0, 2) + rest
    try:
        prog = ctx.program(vertex_shader=vsource, fragment_shader=fsource)
    except moderngl.Error as exc:
        raise shader_error(exc, vfiles, ffiles) from None  # a link error: the pass's fragment shader
    uniforms = {k: v for k, v in ((k, prog[k]) for k in prog) if isinstance(v, moderngl.Uniform)}
    # gl_type is set by moderngl's C extension; its stubs leave it out
    samplers = sorted(k for k, u in uniforms.items() if u.gl_type in _SAMPLER_TYPES)  # type: ignore[attr-defined]
    vao = ctx.vertex_array(prog, [(quad, "2f", "in_pos")])
    return Program(prog, vao, fpath, uniforms, samplers, settler(ctx))


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
    if program.settle is not None:
        program.settle()


def read_rgb(fbo: moderngl.Framebuffer) -> np.ndarray:
    """Read a framebuffer as top-down RGB uint8 (GL rows run bottom-up)."""
    w, h = fbo.size
    data = np.frombuffer(fbo.read(components=3, alignment=1), dtype=np.uint8).reshape(h, w, 3)
    return data[::-1]
