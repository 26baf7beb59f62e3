"""The layers of docs/ARCHITECTURE.md, enforced by walking every import in instrument/ (ast, no import).

A module may import from its own layer and the layers below, never above; the four parts (control,
scene, generate, render) never import one another, with one named exception; a name private to a
module (`_name`) is never imported from, or reached into, another module. Every import counts,
those inside functions too: a lazy import against the flow is still against it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "instrument"

# top-level module or subpackage of instrument -> its layer; higher layers may import lower ones
LAYERS = {
    # ground: data and plumbing every layer shares
    "": 0, "params": 0, "clock": 0, "commands": 0, "events": 0, "report": 0, "tomlfile": 0,
    "resources": 0, "files": 0, "extras": 0, "net": 0,
    # the parts: none imports another (but PART_EXCEPTIONS)
    "control": 1, "scene": 1, "generate": 1, "render": 1,
    # the loop, and what assembles it or edits what it loads
    "show": 2, "show_commands": 2, "picture": 2, "glance": 2, "ports": 2, "patch": 2, "learn": 2,
    "catalogue": 2,
    # outputs, and the session builder for offline renders
    "record": 3,
    # faces and tools
    "cmd": 4, "cli": 4, "bench": 4, "tools": 4,
}
PARTS = ("control", "scene", "generate", "render")
# part -> modules of other parts it may import, and why
PART_EXCEPTIONS = {
    ("scene", "instrument.render.gl"): "the GL toolbox (programs, quads, targets) a scene draws with",
}
NAMES = {0: "ground", 1: "the parts", 2: "the loop", 3: "record/", 4: "the faces and tools"}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the module imported from, dotted (a submodule when the name is one)
    name: str    # the name imported ("" for `import x`)
    bound: str   # the local name it is bound to, when that name is a module ("" otherwise)


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module under the package at `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(root: Path) -> list[Import]:
    """Every import of the package's own modules, anywhere in each file."""
    known = modules(root)
    found = []
    for module, path in known.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                if target.split(".")[0] != root.name:
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    is_module = sub in known
                    found.append(Import(module, node.lineno, sub if is_module else target, alias.name,
                                        (alias.asname or alias.name) if is_module else ""))
            elif isinstance(node, ast.Import):
                found += [Import(module, node.lineno, a.name, "", a.asname or "") for a in node.names
                          if a.name.split(".")[0] == root.name]
    return found


def where(module: str) -> str:
    """The key of LAYERS a dotted module falls under."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def against_the_flow(found: list[Import]) -> list[str]:
    bad = []
    for imp in found:
        src, dst = where(imp.module), where(imp.target)
        if src not in LAYERS or dst not in LAYERS:
            continue  # test_every_module_has_a_layer names it
        what = f"{imp.module}:{imp.line} imports {imp.target}" + (f" ({imp.name})" if imp.name else "")
        if LAYERS[dst] > LAYERS[src]:
            bad.append(f"{what}: {NAMES[LAYERS[src]]} may not import {NAMES[LAYERS[dst]]}")
        elif src in PARTS and dst in PARTS and src != dst and not any(
                src == part and (imp.target == allowed or imp.target.startswith(allowed + "."))
                for part, allowed in PART_EXCEPTIONS):
            bad.append(f"{what}: {src}/ may not import {dst}/ (parts get what they need as data)")
    return bad


def private_crossings(root: Path, found: list[Import]) -> list[str]:
    """`from m import _name` from another module, and `m._name` on an imported module `m`."""
    bad = [f"{i.module}:{i.line} imports {i.name} from {i.target}" for i in found
           if i.name.startswith("_") and not i.name.startswith("__") and i.target != i.module]
    for module, path in modules(root).items():
        bound = {i.bound for i in found if i.module == module and i.bound}
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in bound and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                bad.append(f"{module}:{node.lineno} reaches into {node.value.id}.{node.attr}")
    return bad


def test_every_module_has_a_layer():
    unplaced = sorted({where(m) for m in modules(PACKAGE)} - set(LAYERS))
    assert not unplaced, f"place these in LAYERS (and in docs/ARCHITECTURE.md): {unplaced}"


def test_imports_follow_the_layers():
    bad = against_the_flow(imports(PACKAGE))
    assert not bad, "imports against the flow:\n" + "\n".join(bad)


def test_private_names_stay_in_their_module():
    bad = private_crossings(PACKAGE, imports(PACKAGE))
    assert not bad, "private names taken across modules:\n" + "\n".join(bad)


def test_the_part_exception_is_still_used():
    """An exception nobody needs any more is a hole: remove it from PART_EXCEPTIONS."""
    found = imports(PACKAGE)
    for part, allowed in PART_EXCEPTIONS:
        assert any(where(i.module) == part and i.target == allowed for i in found), (part, allowed)


@pytest.fixture
def tree(tmp_path: Path):
    """A small package shaped like instrument, to show the walker catches what it should."""
    root = tmp_path / "instrument"

    def write(rel: str, text: str = "") -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)

    write("params.py", "_secret = 1\nREGISTRY = 2\n")
    write("show.py", "from .params import REGISTRY\n")
    write("patch.py", "")
    write("scene/__init__.py", "from ..render.gl import draw\n")      # the named exception: fine
    write("render/gl.py", "def draw(): pass\n")
    write("render/window.py", "def f():\n    from ..control import events\n")  # lazy, across parts
    write("control/__init__.py", "")
    write("control/events.py", "")
    write("control/learn.py", "from .. import show\nfrom ..patch import x\n")  # up into the loop
    write("generate/__init__.py", "from ..params import _secret\n")           # a private name
    write("cmd/__init__.py", "from .. import params\nprint(params._secret)\n")  # reached into
    return root


def test_the_walker_catches_each_kind_of_crossing(tree):
    found = imports(tree)
    flow = against_the_flow(found)
    assert any("instrument.control.learn:1 imports instrument.show" in b for b in flow)
    assert any("instrument.control.learn:2 imports instrument.patch (x)" in b for b in flow)
    assert any("instrument.render.window:2 imports instrument.control.events" in b and "control/" in b
               for b in flow)
    assert not any(b.startswith(("instrument.scene", "instrument.show", "instrument.cmd")) for b in flow)
    assert len(flow) == 3, flow
    private = private_crossings(tree, found)
    assert private == ["instrument.generate:1 imports _secret from instrument.params",
                       "instrument.cmd:2 reaches into params._secret"], private
