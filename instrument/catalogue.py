"""The catalogue: every parameter and command the code owns, put into the registries before anything runs.

A module that owns parameters or commands exports them beside the code that reads or handles them
(`PARAMS`, a tuple of ParamSpec; `COMMANDS`, name → description). This is the one place that
gathers them, so nothing is ever registered by importing a module for its side effects, and the
registry does not depend on which modules happen to have been imported. Every entry point calls
`assemble()` first: `noclip` (cli.main), the tools' mains, the tests (conftest), a spawned process
that reads the registry. A chain's parameters are not here: they live in its file and are declared
when the chain is loaded (render/chain.py), since a patch may name any chain file.

To add a module's parameters or commands: export them there, and name them below.
"""

from __future__ import annotations

from . import clock, commands, generate, show_commands
from .control import osc
from .params import REGISTRY, ParamSpec, Registry
from .render import compositor
from .scene import backrooms, flow

PARAMS: tuple[ParamSpec, ...] = (*clock.PARAMS, *generate.PARAMS, *backrooms.PARAMS, *flow.PARAMS,
                                  *compositor.PARAMS)
COMMAND_TABLES: tuple[dict[str, str], ...] = (show_commands.COMMANDS, osc.COMMANDS, backrooms.COMMANDS)


def assemble(registry: Registry = REGISTRY, table: dict[str, str] = commands.COMMANDS) -> Registry:
    """Declare every parameter in `registry` and every command in `table`; again is a no-op. A name
    declared twice differently is a ValueError, here, before anything plays."""
    for spec in PARAMS:
        registry.declare(spec)
    for owned in COMMAND_TABLES:
        commands.add(owned, table)
    registry.assembled = True
    return registry
