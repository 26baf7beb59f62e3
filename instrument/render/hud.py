"""The heads-up display: what a performer in the dark needs at a glance, drawn over the window only
(never into recordings).

The HUD never reads the show: the show hands it a `HudState` a few times a second and the text is
rasterised with Pillow then, not every frame. The first page is the glance (rate, dreams, REC,
clock and beat, the last control messages, the parameters that just moved); `P` pages through every
parameter. Text is sized from the screen's height, the panel from its text, and a page holds what
fits, so nothing is ever cut off; where the 4:3 picture leaves a bar wide enough, the panel sits in
it, out of the picture's way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import moderngl
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .gl import Program, load_program, quad_buffer

REFRESH = 0.25  # seconds between redraws of the text
ERROR_SECONDS = 10.0
MARGIN = 8  # px between the panel and the screen's edge
TEXT = (255, 240, 120, 255)
DIM = (200, 190, 120, 255)
ALARM = (255, 80, 60, 255)


@dataclass(frozen=True)
class HudState:
    """One look at the show, as the HUD shows it (built by the show, `Show.hud_state`)."""

    patch: str
    frame: int
    fps: float                       # measured over the last frames
    rate: float                      # the rate the show plays at
    rate_note: str = ""              # why that rate ("CPU generator", "--fps")
    dreams: float | None = None      # finished dreams a second; None without a generator
    dream: str = ""                  # the shown dream's age and carry (`dream_line`)
    recording: tuple[float, int] | None = None  # (seconds, frames dropped) of the running take
    clock: str = "internal"
    tempo: float = 120.0
    beat: float = 0.0
    numerator: int = 4
    recent: tuple[str, ...] = ()     # the last control messages, newest last
    moved: tuple[tuple[str, Any], ...] = ()   # parameters that moved in the last seconds
    params: tuple[tuple[str, Any], ...] = ()  # every parameter, for the pages
    errors: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)  # a line each: "learn", ...


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    text = str(value)
    return text if len(text) <= 24 else text[:23] + "…"


def glance(s: HudState) -> list[tuple[str, tuple]]:
    """The first page: one fact a line, short enough to sit in a pillarbox bar."""
    lines: list[tuple[str, tuple]] = [(f"noclip · {s.patch}", TEXT)]
    late = s.fps < 0.95 * s.rate and s.frame > 2 * s.rate
    lines.append((f"{s.fps:4.1f} / {s.rate:g} fps" + (f"  ({s.rate_note})" if s.rate_note else ""),
                  ALARM if late else TEXT))
    if s.dreams is not None:
        lines.append((f"{s.dreams:4.1f} dreams/s", TEXT))
        if s.dream:
            lines.append((s.dream, TEXT))
    if s.recording is not None:
        seconds, dropped = s.recording
        m, sec = divmod(int(seconds), 60)
        lines.append((f"● REC {m:02d}:{sec:02d} · {dropped} dropped", ALARM))
    bar = int(s.beat // max(1, s.numerator)) + 1
    in_bar = s.beat - (bar - 1) * max(1, s.numerator) + 1
    lines.append((f"{s.clock} {s.tempo:.1f} BPM", TEXT))
    lines.append((f"bar {bar} · beat {int(in_bar)}/{s.numerator}", TEXT))
    lines += [(f"{k}: {v}", TEXT) for k, v in s.extra.items() if v]
    if s.recent:
        lines += [("", DIM), ("last controls", DIM), *((m, TEXT) for m in s.recent)]
    if s.moved:
        lines += [("", DIM), ("moved", DIM), *((f"{n}\t{fmt(v)}", TEXT) for n, v in s.moved)]
    if s.errors:
        lines += [("", DIM), *(("! " + e, ALARM) for e in s.errors)]
    lines.append(("", DIM))
    lines.append(("P: all parameters · H: hide", DIM))
    return lines


def pages(s: HudState, per_page: int) -> list[list[tuple[str, tuple]]]:
    """Every parameter, `per_page` lines to a page (a title line each)."""
    rows = [(f"{n}\t{fmt(v)}", TEXT) for n, v in s.params]
    step = max(1, per_page - 1)
    count = max(1, math.ceil(len(rows) / step))
    return [[(f"parameters {i + 1}/{count} · P: next", DIM), *rows[i * step:(i + 1) * step]]
            for i in range(count)]


class Hud:
    def __init__(self, ctx: moderngl.Context) -> None:
        self.ctx = ctx
        self.quad = quad_buffer(ctx)  # its own: the HUD draws over any output, with or without a show
        self.program: Program = load_program(ctx, "core/hud.frag", self.quad)
        self.visible = True
        self.page = 0  # 0 the glance, 1.. the parameter pages
        self.texture: moderngl.Texture | None = None
        self._font_px = 0
        self._column = 0.0  # x of the value column on the page drawn
        self.font: Any = None
        self._next = 0.0
        self.drawn: list[str] = []  # the text on screen now (tests and the learn prompt read it)
        self.rect = (0, 0, 0, 0)    # where the panel is on screen: x, y (from the top), w, h

    def next_page(self) -> None:
        self.page += 1  # wrapped when drawn, once the page count is known

    def _fonts(self, screen_h: int) -> None:
        px = max(11, min(28, round(screen_h / 48)))  # 15 px at 720 lines, 22 at 1080
        if px != self._font_px:
            self._font_px = px
            try:
                self.font = ImageFont.load_default(size=px)
            except (TypeError, OSError):  # a Pillow without FreeType: the fixed bitmap font
                self.font = ImageFont.load_default()

    def layout(self, state: HudState, screen: tuple[int, int], box: tuple[int, int, int, int] | None
               ) -> tuple[list[tuple[str, tuple]], tuple[int, int, int, int]]:
        """The lines of the page shown and the panel's rectangle (x, y from the top, w, h), inside
        the screen; in the bar left of the picture where it fits there."""
        sw, sh = screen
        self._fonts(sh)
        line_h = round(self._font_px * 1.3)
        fit = max(4, (sh - 2 * MARGIN - 8) // line_h)
        book = pages(state, fit) if self.page else []
        if self.page > len(book):  # past the last page: back to the glance
            self.page = 0
        lines = book[self.page - 1] if self.page else glance(state)[:fit]
        max_w = sw - 2 * MARGIN - 12
        # "name\tvalue" lines: values in a column after the longest name (the font is proportional)
        self._column = 12 + max((self.font.getlength(t.split("\t")[0]) for t, _ in lines if "\t" in t),
                                default=0)
        lines = [(self._clip(text, max_w), colour) for text, colour in lines]
        w = min(sw - 2 * MARGIN, 12 + max((self._width(t) for t, _ in lines), default=0))
        h = min(sh - 2 * MARGIN, 8 + line_h * len(lines))
        x = MARGIN
        if box is not None and box[0] >= w + 2 * MARGIN:  # the left bar holds it: keep off the picture
            x = (box[0] - math.ceil(w)) // 2
        return lines, (x, MARGIN, math.ceil(w), int(h))

    def _width(self, text: str) -> float:
        if "\t" in text:
            return self._column + self.font.getlength(text.split("\t", 1)[1])
        return self.font.getlength(text)

    def _clip(self, text: str, width: float) -> str:
        if self._width(text) <= width:
            return text
        while text and self._width(text + "…") > width:
            text = text[:-1]
        return text + "…"

    def draw(self, state: Callable[[], HudState | None], screen: moderngl.Framebuffer,
             box: tuple[int, int, int, int] | None = None) -> None:
        """Blend the panel over `screen`; its text is redrawn from `state()` every REFRESH seconds.
        `box`: where the picture is on screen (x, y, w, h), to keep the panel off it."""
        if not self.visible:
            return
        now = time.monotonic()
        if now >= self._next or self.texture is None:
            snapshot = state()
            if snapshot is None:
                return
            self._next = now + REFRESH
            lines, rect = self.layout(snapshot, screen.size, box)
            if self.texture is None or self.texture.size != rect[2:]:
                if self.texture is not None:
                    self.texture.release()
                self.texture = self.ctx.texture(rect[2:], 4)
            img = Image.new("RGBA", rect[2:], (0, 0, 0, 160))
            d = ImageDraw.Draw(img)
            line_h = round(self._font_px * 1.3)
            for i, (line, colour) in enumerate(lines):
                name, _, value = line.partition("\t")
                d.text((6, 4 + line_h * i), name, font=self.font, fill=colour)
                if value:
                    d.text((6 + self._column - 12 + 10, 4 + line_h * i), value, font=self.font, fill=colour)
            self.texture.write(np.asarray(img)[::-1].tobytes())
            self.drawn, self.rect = [t.replace("\t", " ") for t, _ in lines], rect
        x, y, w, h = self.rect
        screen.use()
        self.ctx.viewport = (x, screen.height - y - h, w, h)
        self.ctx.enable(moderngl.BLEND)
        self.texture.use(0)
        self.program.set("hud", 0)
        self.program.vao.render(moderngl.TRIANGLE_STRIP)
        self.ctx.disable(moderngl.BLEND)
        self.ctx.viewport = (0, 0, *screen.size)

    def release(self) -> None:
        if self.texture is not None:
            self.texture.release()
        self.program.release()
        self.quad.release()


def dream_line(rows: Sequence[tuple[int, int, int, int, bool]]) -> str:
    """The latency budget at a glance: how old the dream on screen is (frames since the scene it
    was dreamed on), how far the compositor carried it, and the generator's own parts of that age
    (`rows`: the show's recent (age, carried, batch lag, hop, cut), newest last)."""
    if not rows:
        return "dream: -"
    age, carried, batch, hop, cut = rows[-1]
    return (f"dream: age {age} carried {carried}{' (cut: scene)' if cut else ''}  "
            f"lag: batch {batch} hop {hop}")

