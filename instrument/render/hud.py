"""The heads-up display: what a performer in the dark needs at a glance, drawn over the window only
(never into recordings). Text is rasterised with Pillow a few times a second, not every frame."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import moderngl
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .gl import Program, load_program

if TYPE_CHECKING:
    from ..show import Show

REFRESH = 0.25  # seconds between redraws of the text
ERROR_SECONDS = 10.0


class Hud:
    def __init__(self, ctx: moderngl.Context, quad: moderngl.Buffer,
                 size: tuple[int, int] = (520, 360)) -> None:
        self.ctx = ctx
        self.size = size
        self.font = ImageFont.load_default()
        self.texture = ctx.texture(size, 4)
        self.program: Program = load_program(ctx, "core/hud.frag", quad)
        self.visible = True
        self._next = 0.0

    def lines(self, show: Show, osc_message: str) -> list[str]:
        fp, st = show.fp, show.stats
        stage = "  ".join(f"{k} {st.stages[k][-1]:.1f}" for k in ("scene", "composite", "output")
                          if st.stages.get(k))
        fps = st.fps()
        out = [f"noclip  {show.patch.name}  frame {fp.frame}  {fps:5.1f} fps  "
               f"{1000.0 / fps if fps else 0.0:5.1f} ms/frame", f"stages ms: {stage}",
               f"osc: {osc_message or '-'}", dream_line(show), ""]
        for name in sorted(fp):
            v = fp[name]
            out.append(f"{name:<12} {v:.3f}" if isinstance(v, float) else f"{name:<12} {v}")
        now = time.monotonic()
        errors = [msg for t, msg in list(show.reporter.recent) if now - t < ERROR_SECONDS]
        if errors:
            out += ["", *("! " + e[:80] for e in errors)]
        return out

    def draw(self, show: Show, screen: moderngl.Framebuffer, osc_message: str = "") -> None:
        if not self.visible:
            return
        now = time.monotonic()
        if now >= self._next:
            self._next = now + REFRESH
            img = Image.new("RGBA", self.size, (0, 0, 0, 0))
            d = ImageDraw.Draw(img)
            lines = self.lines(show, osc_message)
            d.rectangle((0, 0, self.size[0], 14 * len(lines) + 8), fill=(0, 0, 0, 150))
            for i, line in enumerate(lines):
                d.text((6, 4 + 14 * i), line, font=self.font, fill=(255, 240, 120, 255))
            self.texture.write(np.asarray(img)[::-1].tobytes())
        w, h = self.size
        screen.use()
        self.ctx.viewport = (8, screen.height - h - 8, w, h)
        self.ctx.enable(moderngl.BLEND)
        self.texture.use(0)
        self.program.set("hud", 0)
        self.program.vao.render(moderngl.TRIANGLE_STRIP)
        self.ctx.disable(moderngl.BLEND)
        self.ctx.viewport = (0, 0, *screen.size)

    def release(self) -> None:
        self.texture.release()
        self.program.release()


def dream_line(show: Show) -> str:
    """The latency budget at a glance: how old the dream on screen is (frames since the scene it
    was dreamed on), how far the compositor carried it, and the generator's own parts of that age."""
    rows = show.stats.dream
    if not rows:
        return "dream: -"
    age, carried, batch, hop, cut = rows[-1]
    return (f"dream: age {age} carried {carried}{' (cut: scene)' if cut else ''}  "
            f"lag: batch {batch} hop {hop}")

