"""What `import assignment4` sets up before TensorFlow loads: oneDNN CPU kernels on x86."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REPORT = (
    "from tensorflow.python.util import _pywrap_util_port as p; print('onednn', p.IsMklEnabled())"
)
x86_only = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="oneDNN is set on x86 only"
)


def python(code: str, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-W", "always", "-c", code],
        check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )  # fmt: skip


@x86_only
def test_importing_the_package_first_turns_onednn_on():
    proc = python(f"import assignment4, tensorflow; {REPORT}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "onednn True" in proc.stdout


@x86_only
def test_an_explicit_setting_wins():
    proc = python(f"import assignment4, tensorflow; {REPORT}", TF_ENABLE_ONEDNN_OPTS="0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "onednn False" in proc.stdout


@x86_only
def test_importing_tensorflow_first_is_reported_when_it_left_onednn_off():
    proc = python(f"import tensorflow, assignment4; {REPORT}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    if "onednn True" in proc.stdout:  # a CPU where TensorFlow turns it on by itself
        assert "imported before assignment4" not in proc.stderr
    else:
        assert "imported before assignment4" in proc.stderr
        assert "TF_ENABLE_ONEDNN_OPTS=1" in proc.stderr
