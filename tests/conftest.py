"""Shared fixtures: the real data sets, and one runs folder with finished smoke runs.

The session's smoke runs are trained once, through the command line's own entry point, and
read by the training and CLI tests (which copy them before changing anything).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import assignment4  # noqa: F401 - first, so TensorFlow loads with the package's CPU settings

SMOKE_RUN_IDS = ("vae_mnist_z2", "wgan_mnist")


@pytest.fixture(autouse=True)
def _no_user_settings(monkeypatch):
    """Tests choose profiles and data folders themselves: a user's settings must not leak in."""
    monkeypatch.delenv("ASSIGNMENT4_PROFILE", raising=False)
    monkeypatch.delenv("ASSIGNMENT4_DATA", raising=False)


@pytest.fixture(scope="session")
def mnist():
    """`((x_train, y_train), (x_test, y_test))` of the real MNIST file, loaded once."""
    from assignment4 import data

    return data.load_cached("mnist", None)


@pytest.fixture(scope="session")
def cifar10():
    """`((x_train, y_train), (x_test, y_test))` of the real CIFAR-10 file, loaded once."""
    from assignment4 import data

    return data.load_cached("cifar10", None)


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory) -> Path:
    """A runs root holding finished smoke runs of vae_mnist_z2 and wgan_mnist.

    Made by `python -m assignment4 run ... --profile smoke --runs ROOT`, called in-process.
    Treat it as read-only: copy a run folder before changing it.
    """
    from assignment4.__main__ import main

    saved = {k: os.environ.pop(k, None) for k in ("ASSIGNMENT4_PROFILE", "ASSIGNMENT4_DATA")}
    try:
        root = tmp_path_factory.mktemp("runs")
        rc = main(["run", *SMOKE_RUN_IDS, "--profile", "smoke", "--runs", str(root)])
    finally:
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    assert rc == 0, "the session's smoke runs failed"
    return root


@pytest.fixture
def child_env() -> dict:
    """The environment for `python -m assignment4` child processes (no user settings)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("ASSIGNMENT4_PROFILE", "ASSIGNMENT4_DATA")
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env
