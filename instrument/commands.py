"""The registry of commands (momentary actions, not values), declared where they are handled.

OSC exposes them as `/noclip/cmd/<name>`, MIDI bindings and key bindings target them by name.
"""

from __future__ import annotations

COMMANDS: dict[str, str] = {}


def declare_command(name: str, description: str) -> str:
    COMMANDS[name] = description
    return name
