"""The compositor: scene and generated frame in, the chain between, one scaled output frame out.

It owns the master parameters a chain file can't be trusted to implement (`mix`, `fade`, `fit`),
carries a late dream to the frame being shown (`reproject`, reproject.py), keeps the last good
chain when a new one fails to build, and rebuilds whatever shader or chain file was edited while it
plays (hot reload, polled from `render`).
"""

from __future__ import annotations

from pathlib import Path

import moderngl

from ..params import FrameParams, ParamSpec
from ..report import Reporter
from .chain import Chain, ChainSpec, load_chain_spec
from .gl import QUAD_VERT, Program, draw, load_program, quad_buffer, shader_files, shader_path, target
from .reload import FileWatcher
from .reproject import Carry, Ring, SceneMotion, ring_grid

# the compositor's own programs: attribute -> (fragment, vertex shader)
PROGRAMS = {"mixer": ("core/mix.frag", QUAD_VERT), "out": ("core/output.frag", "core/output.vert"),
            "pack": ("core/pack.frag", QUAD_VERT), "reproject": ("core/reproject.frag", QUAD_VERT),
            "mixer_grid": ("core/mix.frag", QUAD_VERT), "mixer_scene": ("core/mix.frag", QUAD_VERT),
            "reproject_odd": ("core/reproject.frag", QUAD_VERT),
            "mixer_carry": ("core/mix.frag", QUAD_VERT), "mixer_carry_odd": ("core/mix.frag", QUAD_VERT)}
# variants of a program (names #defined): the mix where scene, dream and `low` share the scene's grid;
# the mix where the scene alone is on the target's (a dream smaller than the scene: the default show's
# 256x192 on its 640x240 field); the carry for an odd age, which takes one single step before its
# two-frame ones; the mix that carries the dream as it mixes, where scene, dream and the ring share
# one grid: one pass fewer, and the carried picture is never written and read back
DEFINES = {"mixer_grid": ("SAME_GRID",), "mixer_scene": ("SCENE_GRID",), "reproject_odd": ("ODD",),
           "mixer_carry": ("SAME_GRID", "CARRY"),
           "mixer_carry_odd": ("SAME_GRID", "CARRY", "ODD")}

PARAMS = (
    ParamSpec("mix", "float", 1.0, min=0.0, max=1.0, smooth=0.1, origin=__name__,
              description="generated frame over the base scene (0 = scene only)"),
    ParamSpec("detail", "float", 1.0, min=0.0, max=1.0, smooth=0.1, origin=__name__,
              description="the scene's fine detail carried over a dream made smaller than the scene "
                          "(a patch's dream_size): 0 is the dream alone"),
    ParamSpec("reproject", "bool", True, origin=__name__,
              description="carry a late dream along the scene's motion to the frame shown, so it moves "
                          "with the camera (off: the newest dream as it is)"),
    ParamSpec("fade", "float", 1.0, min=0.0, max=1.0, smooth=0.25, origin=__name__,
              description="master fade: 0 is black"),
    ParamSpec("fit", "enum", "fit", choices=("fit", "fill", "stretch"), origin=__name__,
              description="how the 4:3 tape frame meets the output: pillarbox, crop or stretch"),
    # The screen the tape is watched on, drawn by the output pass at output resolution: one pass fewer
    # than a CRT stage of its own, and its scanlines are as sharp as the output allows.
    ParamSpec("crt", "bool", True, origin=__name__,
              description="show the tape on a CRT (scanlines, curvature, vignette); off is a flat panel"),
    ParamSpec("scanlines", "float", 0.35, min=0.0, max=1.0, smooth=0.1, origin=__name__,
              description="dark gaps between the CRT's 240 field lines"),
    ParamSpec("curvature", "float", 0.3, min=0.0, max=1.0, smooth=0.1, origin=__name__,
              description="bulge of the CRT glass"),
    ParamSpec("vignette", "float", 0.35, min=0.0, max=1.0, smooth=0.1, origin=__name__,
              description="darkening towards the CRT's corners"),
)


class Compositor:
    def __init__(self, ctx: moderngl.Context, chain: str | Path, source_size: tuple[int, int],
                 output_size: tuple[int, int], reporter: Reporter, watch: bool = True,
                 fields: bool = False) -> None:
        self.ctx, self.reporter = ctx, reporter
        self.fields = fields  # the scene is one field a frame (patch.Patch.fields): the tape reads it as such
        self.source_size, self.output_size = source_size, output_size
        self.quad = quad_buffer(ctx)
        self.mixer, self.out = self._program("mixer"), self._program("out")
        self.mixer_grid, self.mixer_scene = self._program("mixer_grid"), self._program("mixer_scene")
        self.pack, self.reproject = self._program("pack"), self._program("reproject")
        self.reproject_odd = self._program("reproject_odd")
        self.mixer_carry, self.mixer_carry_odd = self._program("mixer_carry"), self._program("mixer_carry_odd")
        self.ring: Ring | None = None  # the scene's recent motion and depth, made at its first frame
        self.carry = Carry()  # how the last dream composited was carried (HUD, bench)
        self.core = {shader_path(f) for pair in PROGRAMS.values() for f in pair}
        self.own = self.core - {shader_path(QUAD_VERT)}  # quad.vert: the chain's passes use it too
        self.watcher = FileWatcher() if watch else None
        self.mixed, self.mixed_fbo = target(ctx, source_size)
        self.texture, self.fbo = target(ctx, output_size)
        self._box: tuple[int, int, int, int] | None = None
        # the picture before the tape, at the scene's size: the dream mixed over the scene (or the
        # scene alone), as the last frame made it; what `--ndi-source clean` sends
        self.clean: moderngl.Texture | None = None
        self.chain: Chain | None = None
        if not self.load_chain(chain):
            raise RuntimeError(f"the shader chain '{chain}' could not be built (see the log)")

    def load_chain(self, name: str | Path) -> bool:
        """Build a chain; on any failure report it and keep playing the previous one."""
        spec = None
        try:
            spec = load_chain_spec(name)
            new = Chain(self.ctx, spec, self.quad, self.source_size, self.output_size)
        except Exception as exc:
            self.reporter.error("chain", str(exc))
            if (self.watcher is not None and self.chain is not None and spec is not None
                    and spec.path == self.chain.spec.path):
                self.watcher.add(_files(spec))   # a shader the edit added: fixing it must be seen
            return False
        if self.chain is not None:
            self.chain.release()
        self.chain = new
        if self.watcher is not None:
            self.watcher.watch([*sorted(self.core), *_files(spec)])
        return True

    def poll(self) -> None:
        """Rebuild what was edited since the last look: the running chain, or the core programs."""
        edited = set(self.watcher.changed()) if self.watcher is not None else set()
        if not edited:
            return
        if edited & self.core:
            for attr in PROGRAMS:
                try:
                    program = self._program(attr)
                except Exception as exc:
                    self.reporter.error("shader", str(exc))
                    continue
                getattr(self, attr).release()
                setattr(self, attr, program)
        if self.chain is not None and edited - self.own:
            self.load_chain(self.chain.spec.path)

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        """Where the picture sits in the output (x, y, w, h), once a frame has been composited."""
        return self._box

    def _program(self, attr: str) -> Program:
        return core_program(self.ctx, self.quad, attr)

    def resize(self, output_size: tuple[int, int]) -> None:
        """New output size (window resized or went fullscreen): new targets, same chain."""
        if output_size == self.output_size or 0 in output_size:
            return
        self.output_size = output_size
        self.texture.release()
        self.fbo.release()
        self.texture, self.fbo = target(self.ctx, output_size)
        self._box = None
        if self.chain is not None:
            self.load_chain(self.chain.spec.path)

    def render(self, scene: moderngl.Texture, generated: moderngl.Texture | None,
               fp: FrameParams, motion: SceneMotion | None = None,
               base: int | None = None, low: moderngl.Texture | None = None) -> moderngl.Framebuffer:
        """Frame `fp.frame`: the scene, the newest dream (of frame `base`, carried along `motion`
        to this frame) with the scene's detail finer than `low` (the scene at the dream's size)
        over it, the chain, the output pass."""
        self.poll()
        carrying = None  # the mix that carries the dream as it mixes, its ring bound (_carried)
        if motion is not None:
            generated, carrying = self._carried(scene, generated, fp, motion, base, low)
        source = scene
        if generated is not None and generated is not scene:
            low = scene if low is None else low
            textures = {"scene": scene, "generated": generated, "low": low}
            same = generated.size == low.size == scene.size   # one grid: the plain-fetch variant
            mixer = (carrying if carrying is not None else self.mixer_grid if same
                     else self.mixer_scene if scene.size == self.mixed.size else self.mixer)
            self._pass(mixer, textures, fp, self.mixed_fbo)
            source = self.mixed
        assert self.chain is not None
        self.clean = source
        taped = self.chain.render({"source": source, "scene": scene, "original": source}, fp,
                                  source_fields=self.fields)
        box = picture_box(self.output_size, taped.size, fp["fit"])
        if box != self._box:  # the bars outside the picture are cleared once, then never shaded
            self.fbo.clear(0.0, 0.0, 0.0, 1.0)
            self._box = box
        self.fbo.scissor = box
        self.out.set("u_fields", int(self.chain.fields))
        self._pass(self.out, {"source": taped}, fp, self.fbo)
        self.fbo.scissor = None  # type: ignore[assignment]  # None turns it off; the stubs forget it
        return self.fbo

    def _carried(self, scene: moderngl.Texture, generated: moderngl.Texture | None, fp: FrameParams,
                 motion: SceneMotion, base: int | None,
                 low: moderngl.Texture | None) -> tuple[moderngl.Texture | None, Program | None]:
        """Record this frame's motion, then the dream carried from its base frame to this one: where
        scene, dream and ring share one grid (and no `low`), the dream as it is with the mix that will
        carry it as it mixes (its ring bound); else carried by a pass of its own (or as it is, or None
        across a cut) and no such mix. Switched off, nothing is recorded (turned back on, the gap
        reads as a cut)."""
        if not fp["reproject"]:
            self.carry = Carry(max(fp.frame - base, 0) if base is not None else 0)
            return generated, None
        grid = ring_grid(motion.motion.size, generated.size if generated is not None else
                         self.ring.grid if self.ring is not None else None)
        if self.ring is None or self.ring.grid != grid:  # a new size: nothing before it is carried
            if self.ring is not None:
                self.ring.release()
            self.ring = Ring(self.ctx, grid)
        self.ring.record(self.pack, fp.frame, motion)
        if generated is None or base is None:
            self.carry = Carry(max(fp.frame - base, 0) if base is not None else 0)
            return generated, None
        way, self.carry = self.ring.route(base, fp.frame)
        if way == "carry" and low is None and generated.size == scene.size == grid:
            carrying = self.mixer_carry_odd if self.carry.age % 2 else self.mixer_carry
            self.ring.bind(carrying, generated, base, fp.frame)
            return generated, carrying
        generated, self.carry = self.ring.carry((self.reproject, self.reproject_odd), generated, base,
                                                fp.frame, scene)
        return generated, None

    def _pass(self, prog: Program, textures: dict, fp: FrameParams, fbo: moderngl.Framebuffer) -> None:
        prog.bind_textures(textures)
        prog.set_params(fp)
        prog.set("u_resolution", fbo.size)
        prog.set("u_source_size", next(iter(textures.values())).size)
        draw(prog, fbo)

    def release(self) -> None:
        if self.chain:
            self.chain.release()
        if self.ring is not None:
            self.ring.release()
        for obj in (self.mixer, self.mixer_grid, self.mixer_scene, self.mixer_carry, self.mixer_carry_odd,
                    self.out, self.pack, self.reproject, self.reproject_odd,
                    self.mixed, self.mixed_fbo, self.texture, self.fbo, self.quad):
            obj.release()


def core_program(ctx: moderngl.Context, quad: moderngl.Buffer, name: str) -> Program:
    """One of the compositor's own programs (PROGRAMS, with its DEFINES), over `quad`: what the
    compositor, the reprojection bench and its tests build the same way."""
    frag, vert = PROGRAMS[name]
    return load_program(ctx, frag, quad, vert, DEFINES.get(name, ()))


def picture_box(output: tuple[int, int], frame: tuple[int, int], fit: str) -> tuple[int, int, int, int]:
    """The output pixels the tape frame covers (x, y, w, h): all of them unless `fit` pillarboxes or
    letterboxes. A pixel of margin keeps the CRT's soft edge inside."""
    w, h = output
    if fit != "fit":
        return 0, 0, w, h
    scale = min(w / frame[0], h / frame[1])
    pw, ph = min(w, round(frame[0] * scale) + 2), min(h, round(frame[1] * scale) + 2)
    return (w - pw) // 2, (h - ph) // 2, pw, ph


def _files(spec: ChainSpec) -> list[Path]:
    """The chain file and every shader its passes are built from, those they include too."""
    shaders = [*(p.shader for p in spec.passes), *(p.vertex for p in spec.passes if p.vertex)]
    return [spec.path, *dict.fromkeys(f for s in shaders for f in shader_files(s))]
