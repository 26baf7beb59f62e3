"""Optional dependencies, imported when a feature is asked for, never before: a show without NDI
does not load the NDI runtime, and one without the package hears which extra brings it.

`need` is the one place that turns a missing package into the performer's sentence ("--ndi needs
cyndilib: pip install 'noclip[ndi]'"); the features call it at the moment they start.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """An optional package is not installed (or does not load); str() names the extra."""


def need(module: str, extra: str, what: str) -> ModuleType:
    """`module` imported, or MissingExtra saying that `what` needs it and which extra brings it."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a native library that fails to load (OSError)
        raise MissingExtra(f"{what} needs {module.partition('.')[0]}: pip install 'noclip[{extra}]' "
                           f"({type(exc).__name__}: {exc})") from None

