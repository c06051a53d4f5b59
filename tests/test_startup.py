"""A quiet start: TensorFlow's C++ log lines hidden by default, a user's level and --verbose win;
the run path imports nothing POSIX-only; the supported Python versions are stated."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from assignment4 import startup

REPO = Path(__file__).resolve().parent.parent
ABSL_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)

# Measured on this project's CPU-only machine with the `tensorflow` wheel (docs/monitoring.md).
MEASURED = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795980511.749300    5230 port.cc:153] oneDNN custom operations are on. "
    "You may see slightly different numerical results.\n"
    "I0000 00:00:1795980511.756687    5230 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.\n"
    "I0000 00:00:1795980604.125202    7461 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
    "/x/y.py:3: UserWarning: a Python warning\n"
    "E0000 00:00:1795980519.960998    5230 cuda_platform.cc:52] failed call to cuInit: "
    "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n"
)


def cli(*args, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != startup.LEVEL_ENV}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-m", "assignment4", *args],
        check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=180,
    )  # fmt: skip


def test_filter_log_drops_the_absl_lines_below_the_level_and_keeps_the_rest():
    assert startup.filter_log(MEASURED, 3) == "/x/y.py:3: UserWarning: a Python warning\n"
    kept = startup.filter_log(MEASURED, 2)
    assert kept.splitlines() == MEASURED.splitlines()[-2:]  # the warning and the E line
    assert startup.filter_log(MEASURED, 0) == MEASURED


def test_filtered_stderr_filters_what_is_written_to_file_descriptor_2(capfd):
    with startup.filtered_stderr(3):
        os.write(2, MEASURED.encode())
    assert capfd.readouterr().err == "/x/y.py:3: UserWarning: a Python warning\n"


def test_the_cli_starts_without_tensorflow_log_lines():
    proc = cli("list")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "vae_mnist_z128" in proc.stdout


def test_a_command_that_starts_the_devices_prints_one_line_and_no_cuda_errors(tmp_path):
    proc = cli("sample", "vae_mnist_z2", "--profile", "smoke", "--runs", str(tmp_path),
               "--out", str(tmp_path / "x.npy"))  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: No finished run of vae_mnist_z2")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr  # no cuInit / CUDA lines
    assert proc.stdout.startswith(f"TensorFlow {tensorflow_version()}")


def test_a_users_own_level_and_verbose_show_tensorflows_lines():
    # On this machine TensorFlow logs the oneDNN banner (and, with the GPU wheel, "Could not
    # find cuda drivers") at INFO while it loads: level 0 lets them through.
    user = cli("list", TF_CPP_MIN_LOG_LEVEL="0")
    verbose = cli("--verbose", "list")
    also = cli("list", "--verbose")
    for proc in (user, verbose, also):
        assert proc.returncode == 0, proc.stderr
        assert ABSL_LINE.search(proc.stderr), proc.stderr


def tensorflow_version() -> str:
    from importlib.metadata import version

    return version("tensorflow")


POSIX_ONLY = {"resource", "fcntl", "termios", "pwd", "grp", "posix", "tty", "pty"}


def test_the_package_imports_nothing_posix_only():
    """Windows has none of these modules; the package must run there (psutil covers memory)."""
    found = {}
    for path in sorted((REPO / "assignment4").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                if name.split(".")[0] in POSIX_ONLY:
                    found.setdefault(path.name, []).append(name)
    assert found == {}


def test_peak_memory_comes_from_psutil_or_proc():
    from assignment4 import training

    assert 50 < training.peak_rss_mb() < 100_000  # MB: TensorFlow alone is more than 50


def test_pyproject_states_the_tested_python_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    versions = [c for c in project["classifiers"] if c.startswith("Programming Language :: Py")]
    assert [v for v in versions if "." in v] == ["Programming Language :: Python :: 3.11"]


def setup_plan(tmp_path, installed: str | None, **env) -> str:
    """What scripts/setup.sh would install, run dry in a copy of the repository whose .venv
    is this interpreter, with empty stand-ins for the packages its import probe looks for
    (the probe's answer is not what is tested here, the choice of wheels is)."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "requirements.txt", "pyproject.toml"):
        (repo / name).write_text((REPO / name).read_text())
    bin_dir = repo / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
    if installed is not None:
        (repo / ".venv" / ".installed").write_text(installed + "\n")
        os.utime(repo / "requirements.txt", (1, 1))  # older than the stamp
    probe = tmp_path / "probe"
    for name in ("assignment4", "tensorflow", "keras", "nbval", "tensorboard"):
        (probe / name).mkdir(parents=True)
        (probe / name / "__init__.py").write_text("")
    full_env = {k: v for k, v in os.environ.items() if k != "ASSIGNMENT4_CUDA"}
    full_env.update(ASSIGNMENT4_SETUP_DRY_RUN="1", PYTHONPATH=str(probe), **env)
    proc = subprocess.run(
        ["bash", str(repo / "scripts" / "setup.sh")],
        check=False, capture_output=True, text=True, env=full_env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_setup_installs_the_cuda_wheels_only_with_assignment4_cuda(tmp_path):
    cpu = setup_plan(tmp_path / "a", installed=None)
    assert "pip install --quiet -r requirements.txt" in cpu and "and-cuda" not in cpu
    assert "would record: cpu" in cpu
    assert setup_plan(tmp_path / "b", installed="cpu") == "up to date: cpu\n"
    # Asking for CUDA on a CPU install installs again: the CUDA wheels, then the GPU check.
    cuda = setup_plan(tmp_path / "c", installed="cpu", ASSIGNMENT4_CUDA="1")
    assert "pip install --quiet tensorflow[and-cuda]==2.21.0" in cuda
    assert "list_physical_devices('GPU')" in cuda and "would record: cuda" in cuda
    assert cuda.index("-r requirements.txt") < cuda.index("and-cuda") < cuda.index("-e .")
    assert setup_plan(tmp_path / "d", installed="cuda", ASSIGNMENT4_CUDA="1") == (
        "up to date: cuda\n"
    )
