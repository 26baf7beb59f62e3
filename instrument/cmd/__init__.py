"""The bodies of the `noclip` commands, one module per idea (play, render, info); `cli` only parses.

`resolve_patch` lives here because play and render both start from the patch the command line names.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
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
    if getattr(args, "lora", None):
        from ..patch import with_loras

        try:
            patch = with_loras(replace(patch, loras=()), args.lora)
        except ValueError as exc:
            raise SystemExit(f"noclip: --lora: {exc}") from None
    spec = getattr(args, "source", None)
    if spec is not None:
        from ..scene import SOURCES_HELP, SourceError, source

        spec = str(spec)
        try:
            found = source(spec)
            if found is None:
                raise SystemExit(f"noclip: --source {spec}: not {SOURCES_HELP}")
            found.probe()  # a corrupt file or a missing device is named here, not mid-show
        except SourceError as exc:
            raise ConfigError(Path(spec), None, "", str(exc).removeprefix(f"{spec}: ")) from None
        patch = replace(patch, scene=spec)
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
