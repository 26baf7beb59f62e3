"""A contact sheet of the levels: frames along each level's walk, one row per level.

    python -m instrument.tools.contact docs/scene-contact-sheet.png

Looking is the test no number replaces: would someone who knows the Backrooms know the place?
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..params import REGISTRY, FrameParams
from ..render.gl import headless_context
from ..scene.backrooms import Backrooms
from ..scene.layout import LEVELS


def contact_sheet(path: Path, size: tuple[int, int] = (512, 384), per_level: int = 4,
                  every: float = 23.0, tile: tuple[int, int] = (320, 240), seed: int = 0) -> Path:
    ctx = headless_context()
    rows = []
    for spec in LEVELS:
        scene = Backrooms(ctx, size)
        values = {**REGISTRY.defaults(), "level": str(spec.index), "level_seed": seed}
        tiles: list[np.ndarray] = []
        n = 0
        while len(tiles) < per_level:
            fp = FrameParams(n, n / 60.0, 1 / 60.0, values)
            if n and n % int(every * 60) == 0:
                scene.render(fp)
                w, h = size
                rgb = np.frombuffer(scene.texture.read(), np.uint8).reshape(h, w, 4)[::-1, :, :3]
                tiles.append(np.asarray(Image.fromarray(rgb).resize(tile, Image.Resampling.LANCZOS)))
            else:
                scene.advance(fp)
            n += 1
        scene.release()
        rows.append(np.concatenate(tiles, axis=1))
    ctx.release()
    Image.fromarray(np.concatenate(rows, axis=0)).save(path, optimize=True)
    return path


if __name__ == "__main__":
    from ..catalogue import assemble

    assemble()  # the scene's defaults
    print(contact_sheet(Path(sys.argv[1] if len(sys.argv) > 1 else "scene-contact-sheet.png")))
