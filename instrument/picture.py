"""The picture a frame shows: the scene, the dream made on it, and the compositor that lays the one
over the other and plays the result through the tape.

The show (show.py) is the loop: it drains controls, advances the parameters and hands each frame's
FrameParams here. This module owns the parts that make the picture and swaps them when a patch asks
for others, so that the loop never has to know how a dream smaller than the scene is fed (shrink.py)
or carried to the frame it is shown on (reproject.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import moderngl

from .generate import Generator, make_generator
from .params import FrameParams
from .patch import Patch
from .render.compositor import Compositor
from .render.reproject import SceneMotion
from .render.shrink import Shrink
from .report import Reporter
from .scene import Scene, make_scene

# How the show runs a part: stage(name, fn, *args) -> fn(*args), timed, its last good result kept
Stage = Callable[..., Any]


class Picture:
    def __init__(self, ctx: moderngl.Context, patch: Patch, output_size: tuple[int, int],
                 reporter: Reporter, live: bool) -> None:
        self.ctx, self.reporter, self.live, self.patch = ctx, reporter, live, patch
        self.scene: Scene = make_scene(patch.scene, ctx, patch.size, patch.fields)
        self.generator: Generator = make_generator(patch.model, ctx, patch.dream, reporter, live=live,
                                                   loras=patch.loras)
        self.shrink = self._shrink(patch)
        self.compositor = Compositor(ctx, patch.chain, patch.size, output_size, reporter, fields=patch.fields)

    def make(self, fp: FrameParams, stage: Stage) -> tuple[moderngl.Framebuffer, int | None]:
        """Frame `fp.frame`'s picture, and the frame whose scene the dream in it was made of (None:
        no dream shown)."""
        scene = stage("scene", self.scene.render, fp)
        generated = stage("generate", self._generate, scene, fp)
        motion, base = self._motion(generated)
        carry = () if motion is None else (motion, base)  # nothing to carry: today's call
        render = self.compositor.render
        if self.shrink is not None:  # the scene at the dream's size: what of the scene the dream lacks
            render = partial(render, low=self.shrink.image)
        fbo = stage("composite", render, scene, generated, fp, *carry)
        return fbo, base

    def skip(self, fp: FrameParams) -> None:
        """Frame `fp.frame` passes undrawn (Show.skip): the scene moves on, the dream and the tape
        are left as they were (a chunk's pre-roll rebuilds what they carry)."""
        self.scene.skip(fp)

    def load(self, patch: Patch) -> bool:
        """Take the parts `patch` needs, keeping those it shares with the one playing. A chain that
        does not build keeps the old patch whole (False; the compositor has reported why)."""
        old = self.patch
        if patch.chain != old.chain and not self.compositor.load_chain(patch.chain):
            return False
        if (patch.scene, patch.size, patch.fields) != (old.scene, old.size, old.fields):
            scene, self.scene = self.scene, make_scene(patch.scene, self.ctx, patch.size, patch.fields)
            scene.release()
        self.compositor.fields = patch.fields
        if (patch.model, patch.dream, patch.loras) != (old.model, old.dream, old.loras):
            generator = self.generator
            self.generator = make_generator(patch.model, self.ctx, patch.dream, self.reporter, live=self.live,
                                            loras=patch.loras)
            generator.release()
        if (patch.model, patch.size, patch.dream) != (old.model, old.size, old.dream):
            if self.shrink is not None:
                self.shrink.release()
            self.shrink = self._shrink(patch)
        self.patch = patch
        return True

    def _shrink(self, patch: Patch) -> Shrink | None:
        """The pass that hands a generator working smaller than the scene its base (None: none needed)."""
        if patch.model == "none" or patch.dream == patch.size:
            return None
        return Shrink(self.ctx, patch.size, patch.dream)

    def _generate(self, scene: moderngl.Texture, fp: FrameParams) -> moderngl.Texture | None:
        # no generator, no motion asked for (a source's flow is estimated only when read)
        motion: moderngl.Texture | None = None if self.generator.name == "none" else self.scene.motion
        cut = self.scene.cut
        if self.shrink is not None:
            scene, motion = self.shrink(scene, motion)
        self.generator.submit(scene, fp, motion, cut)
        return self.generator.latest()

    def _motion(self, generated: moderngl.Texture | None) -> tuple[SceneMotion | None, int | None]:
        """What the compositor needs to carry the dream to this frame: the scene's motion and depth
        (none while no generator plays, or the scene does not track its motion: nothing to carry)
        and the dream's base frame."""
        if self.generator.name == "none" or not self.scene.tracked:
            return None, None
        base = self.generator.base_frame if generated is not None else None
        return SceneMotion(self.scene.motion, self.scene.depth, self.scene.cut), base

    def release(self) -> None:
        self.generator.release()
        if self.shrink is not None:
            self.shrink.release()
        self.scene.release()
        self.compositor.release()
