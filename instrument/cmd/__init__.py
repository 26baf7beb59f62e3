"""The bodies of the `noclip` commands, one module per idea (play, render, info); `cli` only parses.

`resolve_patch` lives here because play and render both start from the patch the command line names.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from ..params import REGISTRY
from ..patch import ConfigError, Patch, load_patch


def resolve_patch(args: argparse.Namespace) -> tuple[Patch, dict[str, Any]]:
    """The patch named on the command line, with --model and --set applied (validated like a patch)."""
    patch = load_patch(args.patch)
    if getattr(args, "model", None):
        from ..generate import check_model

        try:
            check_model(args.model)
        except ValueError as exc:
            raise SystemExit(f"noclip: --model: {exc}") from None
        patch = replace(patch, model=args.model)
    source = getattr(args, "source", None)
    if source is not None and str(source).startswith("ndi:"):  # a live source: found once playing
        from ..scene.ndi_source import ndi_name

        try:
            patch = replace(patch, scene=f"ndi:{ndi_name(str(source))}")
        except ValueError as exc:
            raise SystemExit(f"noclip: --source {exc}") from None
    elif source is not None:
        from ..scene.source import SOURCE_SUFFIXES, SourceError, probe

        if not source.is_file() or source.suffix.lower() not in SOURCE_SUFFIXES:
            raise SystemExit(f"noclip: --source {source}: not a video or image file "
                             f"({', '.join(sorted(SOURCE_SUFFIXES))})")
        try:
            probe(source)  # a corrupt file is named here, not as a traceback from the first frame
        except SourceError as exc:
            raise ConfigError(source, None, "", str(exc).removeprefix(f"{source}: ")) from None
        patch = replace(patch, scene=str(source))
    overrides = {}
    for name, value in getattr(args, "set", None) or []:
        spec = REGISTRY.get(name)
        if spec is None:
            raise SystemExit(f"noclip: --set {name}: unknown parameter (see `noclip params`)")
        try:
            overrides[name] = spec.coerce(value)
        except ValueError as exc:
            raise SystemExit(f"noclip: --set {name}: {exc}") from None
    return patch, overrides
