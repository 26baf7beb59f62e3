"""The stage window (glfw): fullscreen on a chosen monitor, vsync, hidden cursor, a HUD, and keys a
performer can hit in the dark without ending the show by accident."""

from __future__ import annotations

import time
from collections.abc import Callable

import glfw
import moderngl

from ..events import CMD_TARGET, ControlEvent, ControlQueue, Host
from ..params import FrameParams
from .hud import Hud, HudState

ESC_WINDOW = 1.0  # Esc must be pressed twice within this many seconds to quit


class WindowError(RuntimeError):
    """No window could be opened (no display, no GL 3.3)."""


def monitors() -> list[str]:
    """Names and modes of connected monitors; WindowError when there is no display."""
    _init()
    out = []
    for i, m in enumerate(glfw.get_monitors() or []):
        mode = glfw.get_video_mode(m)
        out.append(f"{i}: {_text(glfw.get_monitor_name(m))} "
                   f"{mode.size.width}x{mode.size.height} @ {mode.refresh_rate} Hz")
    return out


def _text(s: str | bytes | None) -> str:
    """glfw hands back C strings as bytes (its stubs say str): either, as text."""
    return s.decode(errors="replace") if isinstance(s, bytes) else s or ""


def _init() -> None:
    glfw.ERROR_REPORTING = "ignore"
    if not glfw.init():
        desc = glfw.get_error()[1] if hasattr(glfw, "get_error") else None
        raise WindowError(f"no display for a window ({_text(desc) or 'glfw init failed'})")


class Window:
    """Also an Output: `write` presents the composited frame with the HUD on top."""

    def __init__(self, queue: ControlQueue, size: tuple[int, int] = (1280, 720), *,
                 fullscreen: bool = True, monitor: int = 0, vsync: bool = True,
                 title: str = "noclip") -> None:
        _init()
        self.queue = queue
        mons = glfw.get_monitors() or []
        if fullscreen and not mons:
            raise WindowError("no monitor to go fullscreen on")
        self.monitor = mons[min(monitor, len(mons) - 1)] if mons else None
        for hint, value in ((glfw.CONTEXT_VERSION_MAJOR, 3), (glfw.CONTEXT_VERSION_MINOR, 3),
                            (glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE),
                            (glfw.OPENGL_FORWARD_COMPAT, True), (glfw.DOUBLEBUFFER, True)):
            glfw.window_hint(hint, value)
        self.windowed_size = size
        if fullscreen:
            assert self.monitor is not None  # no monitor raised above
            mode = glfw.get_video_mode(self.monitor)
            size = (mode.size.width, mode.size.height)
            glfw.window_hint(glfw.REFRESH_RATE, mode.refresh_rate)
        self.handle = glfw.create_window(size[0], size[1], title, self.monitor if fullscreen else None, None)
        if not self.handle:
            glfw.terminate()
            raise WindowError("the window could not be created (GL 3.3 core missing?)")
        self.fullscreen = fullscreen
        glfw.make_context_current(self.handle)
        glfw.swap_interval(1 if vsync else 0)
        self._cursor()
        self.ctx = moderngl.create_context(require=330)
        self.hud: Hud | None = None
        self.hud_state: Callable[[], HudState | None] = lambda: None
        self.show: Host | None = None  # its narrow entry points: resize, where the picture sits
        self.learn = None  # a learn.Learn when MIDI is on and the patch is a file
        self._esc = -10.0
        glfw.set_key_callback(self.handle, self._key)

    @property
    def framebuffer_size(self) -> tuple[int, int]:
        return tuple(glfw.get_framebuffer_size(self.handle))  # type: ignore[return-value]

    def attach(self, show: Host, hud_state: Callable[[], HudState | None] = lambda: None,
               learn=None) -> None:
        """Give the window its show (created after the window, since the show needs the context) and
        the HUD what it shows: `hud_state()`, asked only when the HUD redraws."""
        self.show = show
        self.learn = learn
        self.hud_state = hud_state
        self.hud = Hud(self.ctx)

    def _cursor(self) -> None:
        mode = glfw.CURSOR_HIDDEN if self.fullscreen else glfw.CURSOR_NORMAL
        glfw.set_input_mode(self.handle, glfw.CURSOR, mode)

    def _key(self, handle, key: int, scancode: int, action: int, mods: int) -> None:
        if action != glfw.PRESS:
            return
        if key == glfw.KEY_ESCAPE:
            now = time.monotonic()
            if now - self._esc < ESC_WINDOW:
                self.queue.put(ControlEvent("key", CMD_TARGET + "quit"))
            self._esc = now
        elif key == glfw.KEY_SPACE:
            self.queue.put(ControlEvent("key", CMD_TARGET + "seed/next"))
        elif key == glfw.KEY_R:
            self.queue.put(ControlEvent("key", CMD_TARGET + "record/toggle"))
        elif key == glfw.KEY_T:
            self.queue.put(ControlEvent("key", CMD_TARGET + "tap"))
        elif key == glfw.KEY_H and self.hud:
            self.hud.visible = not self.hud.visible
        elif key == glfw.KEY_P and self.hud:  # the HUD's pages: the glance, then every parameter
            self.hud.next_page()
        elif key == glfw.KEY_F:
            self.toggle_fullscreen()
        elif key == glfw.KEY_L and self.learn:  # MIDI learn: L arms, Up/Down choose, a control binds
            self.learn.toggle()
        elif key in (glfw.KEY_UP, glfw.KEY_DOWN) and self.learn and self.learn.active:
            self.learn.choose(-1 if key == glfw.KEY_UP else 1)

    def toggle_fullscreen(self) -> None:
        if self.monitor is None:
            return
        if self.fullscreen:
            w, h = self.windowed_size
            # None is GLFW's "windowed"; the stubs only take a monitor
            glfw.set_window_monitor(self.handle, None, 80, 80, w, h, glfw.DONT_CARE)  # type: ignore[arg-type]
        else:
            mode = glfw.get_video_mode(self.monitor)
            glfw.set_window_monitor(self.handle, self.monitor, 0, 0, mode.size.width,
                                    mode.size.height, mode.refresh_rate)
        self.fullscreen = not self.fullscreen
        self._cursor()

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        screen = self.ctx.screen
        size = self.framebuffer_size
        if size != fbo.size and self.show is not None:
            self.show.resize(size)  # takes effect next frame
        self.ctx.copy_framebuffer(screen, fbo)
        if self.learn is not None and self.learn.active:
            self.learn.poll()
        if self.hud and self.show:
            self.hud.draw(self.hud_state, screen, self.show.box)
        glfw.swap_buffers(self.handle)
        glfw.poll_events()
        if glfw.window_should_close(self.handle):
            self.queue.put(ControlEvent("window", CMD_TARGET + "quit"))

    def close(self) -> None:
        if self.hud:
            self.hud.release()
        glfw.destroy_window(self.handle)
        glfw.terminate()
