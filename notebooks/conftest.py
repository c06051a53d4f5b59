"""Run the notebooks under `pytest --nbval-lax notebooks` in a sandbox, with the smoke profile.

The kernels that nbval starts inherit this process's environment. Before each notebook cell
runs (the first one starts the kernel), this sets the notebooks' parameters:

- `ASSIGNMENT4_PROFILE=smoke`: seconds of training per experiment;
- `ASSIGNMENT4_RUNS`, `ASSIGNMENT4_FIGURES`, `ASSIGNMENT4_REPORT`: folders in a temporary
  directory, so that CI never touches the committed `runs/`, `figures/` and `report/`.

A variable that is already set wins (e.g. `ASSIGNMENT4_PROFILE=quick pytest --nbval-lax
notebooks` to check the notebooks against quick runs). The environment is restored after
each cell, so tests collected beside the notebooks see it unchanged; the temporary directory
is removed at the end of the session. These hooks live in notebooks/, so pytest calls them
only for the notebooks' cells.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_sandbox: str | None = None
_saved: dict[str, str | None] = {}


def _notebook_env() -> dict[str, str]:
    global _sandbox
    if _sandbox is None:
        _sandbox = tempfile.mkdtemp(prefix="assignment4-notebooks-")
    return {
        "ASSIGNMENT4_PROFILE": "smoke",
        "ASSIGNMENT4_RUNS": os.path.join(_sandbox, "runs"),
        "ASSIGNMENT4_FIGURES": os.path.join(_sandbox, "figures"),
        "ASSIGNMENT4_REPORT": os.path.join(_sandbox, "report"),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    env = _notebook_env()
    _saved.clear()
    _saved.update({key: os.environ.get(key) for key in env})
    for key, value in env.items():
        os.environ.setdefault(key, value)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    for key, value in _saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    _saved.clear()


def pytest_sessionfinish(session, exitstatus):
    if _sandbox is not None:
        shutil.rmtree(_sandbox, ignore_errors=True)
