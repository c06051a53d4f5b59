"""The package's imports run one way: the subpackages are layers, each importing only its own
layer and the ones below it (models at the bottom, then training, the registry, evaluation,
reporting, and the command line on top), and no module imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assignment4"

# Bottom to top. A subpackage is named by its folder; a top-level module by its name.
LAYERS = (
    {"errors", "fileio", "startup", "texttable", "images", "data"},  # small shared pieces
    {"models"},
    {"training"},
    {"experiments", "artifacts", "bench"},  # the registry and what reads runs back
    {"evaluation"},
    {"reporting"},
    {"__main__"},
)


def modules() -> dict[str, Path]:
    """Dotted names below assignment4 ('models.vae', 'experiments', 'training') -> file;
    a subpackage's __init__ is the subpackage itself."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The package modules one file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("assignment4"):
            base = node.module.removeprefix("assignment4").lstrip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}".lstrip(".")
                names.add(full if full in known else base)
        elif isinstance(node, ast.Import):
            names |= {a.name.removeprefix("assignment4.") for a in node.names
                      if a.name.startswith("assignment4.")}  # fmt: skip
    return names & known


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(path, set(found)) - {name} for name, path in found.items()}


def layer(name: str) -> int:
    top = name.split(".")[0]
    return next(i for i, members in enumerate(LAYERS) if top in members)


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_the_scan_sees_the_real_imports():
    graph = import_graph()
    assert {"models.vae", "models.gan", "training.runner", "evaluation.scoring"} <= set(graph)
    assert "models.base" in graph["models.vae"]
    assert {"training", "training.profiles"} & graph["experiments"]


def test_every_module_sits_in_a_layer():
    for name in import_graph():
        assert any(name.split(".")[0] in members for members in LAYERS), name


def test_each_layer_imports_only_itself_and_the_layers_below():
    upward = [
        f"{name} -> {other}"
        for name, imported in import_graph().items()
        for other in sorted(imported)
        if layer(other) > layer(name)
    ]
    assert not upward, "imports that go up a layer: " + "; ".join(upward)


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    # a subpackage's __init__ re-exports its modules: that is not a cycle
    graph = {m: {i for i in deps if not m.startswith(f"{i}.")} for m, deps in graph.items()}
    cycles = sorted(m for m in graph if m in reaches(graph, m))
    assert not cycles, f"modules on an import cycle: {cycles}; " + "; ".join(
        f"{m} -> {sorted(graph[m] & set(cycles))}" for m in cycles
    )
