"""Explicit registration: importing a module registers nothing; the catalogue assembles everything."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest
from conftest import ROOT

from instrument import catalogue, commands
from instrument.params import ParamSpec, Registry
from instrument.patch import load_patch

PACKAGE = ROOT / "instrument"


def probe(code: str) -> subprocess.CompletedProcess:
    """Python in a fresh interpreter (nothing assembled yet), from the tree under test."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_importing_every_module_registers_nothing():
    """The modules that own parameters and commands, and those that used to be imported to declare
    them, imported in a fresh interpreter: the registries stay empty until `assemble()`."""
    r = probe("import instrument.show, instrument.patch, instrument.learn, instrument.cli, "
              "instrument.control.osc, instrument.control.modulators, instrument.scene.backrooms, "
              "instrument.render.compositor, instrument.generate, instrument.clock\n"
              "from instrument.params import REGISTRY\nfrom instrument.commands import COMMANDS\n"
              "print(len(REGISTRY), len(COMMANDS))\n"
              "from instrument.catalogue import assemble\nassemble()\nprint(len(REGISTRY), len(COMMANDS))")
    assert r.returncode == 0, r.stderr
    before, after = r.stdout.split("\n")[:2]
    assert before == "0 0"
    assert after == f"{len(catalogue.PARAMS)} {sum(len(t) for t in catalogue.COMMAND_TABLES)}"


def test_no_module_runs_a_call_at_import():
    """No bare call at a module's top level (the shape of a registration for its side effects), and
    no import kept only for its side effects (`noqa: F401`)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "noqa: F401" not in text, path
        calls = [n.lineno for n in ast.parse(text).body
                 if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)]
        assert not calls, f"{path}: calls at import, lines {calls}"


def test_assemble_fills_a_registry_and_a_table_of_its_own():
    reg, table = Registry(), {}
    assert catalogue.assemble(reg, table) is reg and reg.assembled
    names = {s.name for s in reg}
    assert {"tempo", "seed", "strength", "level", "fog", "mix", "crt"} <= names
    assert len(names) == len(catalogue.PARAMS)
    assert {"seed/next", "quit", "tap", "clock/sync", "subscribe", "confirm", "noclip"} <= set(table)
    version = reg.version
    catalogue.assemble(reg, table)  # again: nothing changes
    assert reg.version == version and len(table) == sum(len(t) for t in catalogue.COMMAND_TABLES)


def test_every_owned_parameter_is_declared_by_its_module():
    """Each spec names the module it lives in (`origin`), so a clash says where both came from."""
    for spec in catalogue.PARAMS:
        assert spec.origin.startswith("instrument."), spec


def test_a_clash_is_refused_before_anything_plays():
    reg = Registry()
    reg.declare(ParamSpec("fog", "float", 0.9, min=0.0, max=2.0, origin="elsewhere"))
    with pytest.raises(ValueError, match="declared twice"):
        catalogue.assemble(reg, {})
    with pytest.raises(ValueError, match="declared twice"):
        catalogue.assemble(Registry(), {"quit": "something else"})
    commands.add({"quit": catalogue.COMMAND_TABLES[0]["quit"]}, {"quit": catalogue.COMMAND_TABLES[0]["quit"]})


def test_a_patch_loaded_before_the_catalogue_says_so():
    r = probe("from instrument.patch import load_patch\nload_patch('default')")
    assert r.returncode != 0
    assert "call instrument.catalogue.assemble() first" in r.stderr
    assert load_patch("default").name  # here the suite's conftest assembled it: it loads
