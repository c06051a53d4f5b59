"""Functions short enough to read at once, with few positional parameters (the rest are
keyword-only): the package's own rules, checked on every function of it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "assignment4"
MAX_LINES = 60  # docstring included
MAX_POSITIONAL = 6  # self and cls not counted


def functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}", node


def test_no_function_is_longer_than_60_lines():
    long = [
        f"{name} ({node.end_lineno - node.lineno + 1} lines)"
        for name, node in functions()
        if node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, long


def test_no_function_takes_more_than_6_positional_parameters():
    many = []
    for name, node in functions():
        args = node.args.posonlyargs + node.args.args
        positional = [a.arg for a in args if a.arg not in ("self", "cls")]
        if len(positional) > MAX_POSITIONAL:
            many.append(f"{name} ({', '.join(positional)})")
    assert not many, many
