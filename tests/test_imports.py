"""The package's imports run one way: no module imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assignment4"


def imports_of(path: Path) -> set[str]:
    """The package modules that one file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "assignment4":
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("assignment4."):
            names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.count(".") == 1
                      and a.name.startswith("assignment4.")}  # fmt: skip
    return names


def import_graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    return {p.stem: imports_of(p) & modules for p in PACKAGE.glob("*.py") if p.stem in modules}


def reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(graph[name])
    return seen


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert graph["experiments"] >= {"training", "profiles"}  # the scan sees real imports
    cycles = sorted(m for m in graph if m in reaches(graph, m))
    assert not cycles, f"modules on an import cycle: {cycles}; " + "; ".join(
        f"{m} -> {sorted(graph[m] & set(cycles))}" for m in cycles
    )


def test_the_runner_never_imports_the_registry():
    graph = import_graph()
    for low in ("training", "monitoring", "runstate", "profiles", "plots", "vae", "gan", "wgan"):
        assert "experiments" not in reaches(graph, low) | {low}, low
