"""The table of commands (momentary actions, not values).

A module that handles commands exports its own beside the code that handles them, as `COMMANDS`
(name → description); the catalogue (catalogue.py) adds every one to this module's `COMMANDS`,
the table of them all, before anything runs. OSC exposes them as `/noclip/cmd/<name>`; MIDI
bindings, modulators and keys target them by name.
"""

from __future__ import annotations

from collections.abc import Mapping

COMMANDS: dict[str, str] = {}  # every command: name -> description
CMD_ADDRESS = "/noclip/cmd/"  # a command's OSC address is this and its name


def add(commands: Mapping[str, str], table: dict[str, str] = COMMANDS) -> None:
    """Put `commands` into the table; the same command added again is a no-op, a name taken with a
    different description is a ValueError (two modules would be answering one address)."""
    for name, description in commands.items():
        if table.get(name, description) != description:
            raise ValueError(f"command '{name}' declared twice, differently")
        table[name] = description
