"""GPU texture sharing on one machine: Syphon on macOS (`--syphon NAME`), Spout on Windows
(`--spout NAME`), the way VJ programs there pass pictures to each other (Resolume, MadMapper,
TouchDesigner, OBS with its plugins).

Each is imported only on its own system (syphon-python, SpoutGL; the extras `noclip[syphon]`,
`noclip[spout]`); elsewhere the flag is refused before the show starts (`refuse`). Neither is
tested here (the project's machines run Linux): README says so.

- Spout shares the output texture itself, from the show's GL context on the frame thread (SpoutGL's
  `sendTexture`: a copy on the GPU, no read-back), as Spout is meant to be used.
- Syphon's OpenGL server is deprecated by Apple's GL; its Metal server takes the picture as pixels,
  read back like NDI's and copied into a Metal texture on a feed thread (feed.py).
"""

from __future__ import annotations

import sys
from typing import Any

import moderngl
import numpy as np

from ..extras import need
from ..params import FrameParams
from ..report import Reporter
from .feed import Feed

GL_TEXTURE_2D = 0x0DE1  # the target SpoutGL is told (PyOpenGL is not needed for one constant)
PLATFORMS = {"syphon": "darwin", "spout": "win32"}


class WrongPlatform(RuntimeError):
    """Syphon asked for off macOS, Spout off Windows."""


def refuse(flag: str) -> str | None:
    """Why `--FLAG` cannot play on this system (None: it can be tried here)."""
    platform = PLATFORMS[flag]
    if sys.platform.startswith(platform):
        return None
    system = {"darwin": "macOS", "win32": "Windows"}[platform]
    other = {"darwin": "--spout on Windows, --ndi anywhere",
             "win32": "--syphon on macOS, --ndi anywhere"}[platform]
    return f"--{flag} exists only on {system} (this is {sys.platform}); {other}"


def _here(flag: str) -> None:
    why = refuse(flag)
    if why:
        raise WrongPlatform(why)


class SyphonOutput(Feed):
    kind = "Syphon"
    components = 4

    def __init__(self, name: str, reporter: Reporter) -> None:
        _here("syphon")
        self.syphon = need("syphon", "syphon", "--syphon")
        need("syphon.utils.numpy", "syphon", "--syphon")
        self.name = name
        self._server: Any = None
        self._texture: Any = None
        super().__init__(reporter)

    def open(self, size: tuple[int, int], components: int) -> None:
        from syphon.utils.raw import create_mtl_texture

        if self._server is None:
            self._server = self.syphon.SyphonMetalServer(self.name)
        self._texture = create_mtl_texture(self._server.device, size[0], size[1])

    def send(self, frame: np.ndarray) -> None:
        from syphon.utils.numpy import copy_image_to_mtl_texture

        copy_image_to_mtl_texture(frame, self._texture)
        self._server.publish_frame_texture(self._texture)

    def shut(self) -> None:
        self._texture = None

    def close(self) -> None:
        super().close()
        server, self._server = self._server, None
        if server is not None:
            server.stop()


class SpoutOutput:
    """An Output on the frame thread: Spout copies the texture on the GPU, nothing to wait for."""

    kind = "Spout"

    def __init__(self, name: str, reporter: Reporter) -> None:
        _here("spout")
        spout = need("SpoutGL", "spout", "--spout")
        self.reporter = reporter
        self.sender: Any = spout.SpoutSender()
        self.sender.setSenderName(name)

    def write(self, fbo: moderngl.Framebuffer, fp: FrameParams) -> None:
        texture = fbo.color_attachments[0]
        w, h = fbo.size
        # invert: GL keeps rows bottom-up, Spout's receivers (DirectX) top-down
        if not self.sender.sendTexture(texture.glo, GL_TEXTURE_2D, w, h, True, 0):
            raise RuntimeError("Spout refused the frame")

    def close(self) -> None:
        self.sender.releaseSender()
