"""The command line: python -m assignment4 ... (in-process through `main`, and as a process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from assignment4 import experiments
from assignment4.__main__ import main

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_main(capsys, *argv):
    """(exit code, stdout, stderr) of `python -m assignment4 ARGV`, in-process."""
    try:
        rc = main(list(argv))
    except SystemExit as e:  # argparse
        rc = e.code
    out, err = capsys.readouterr()
    return rc, out, err


def run_process(env, *argv, timeout=120):
    """`python -m assignment4 ARGV` as a child process, from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "assignment4", *argv],
        check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_help_lists_the_commands(child_env):
    result = run_process(child_env, "--help", timeout=60)
    assert result.returncode == 0
    for command in ("data", "list", "run", "sample", "evaluate", "report", "bench"):
        assert command in result.stdout


def test_unknown_experiment_exits_2_listing_valid_ids_without_traceback(child_env):
    result = run_process(
        child_env, "run", "vae_mnist_z3", "--profile", "smoke", "--runs", "/nonexistent"
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "vae_mnist_z3" in result.stderr
    for exp_id in experiments.EXPERIMENT_IDS:
        assert exp_id in result.stderr


def test_list_shows_the_nine_experiments(capsys):
    rc, out, _ = run_main(capsys, "list")
    assert rc == 0
    for exp in experiments.EXPERIMENTS.values():
        line = next(row for row in out.splitlines() if row.startswith(exp.id + " "))
        assert f"Fig {exp.figure}, Table {exp.table}" in line
        assert line.split()[-3:] == ["200", str(exp.quick_epochs), "2"]


def test_unknown_profile_exits_2(capsys, tmp_path):
    rc, _, err = run_main(capsys, "run", "gan_mnist", "--profile", "fast", "--runs", str(tmp_path))
    assert rc == 2
    assert "fast" in err and "full, quick, smoke" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_epochs_exit_with_a_clear_message(capsys, tmp_path, value):
    rc, _, err = run_main(capsys, "run", "gan_mnist", "--epochs", value, "--runs", str(tmp_path))
    assert rc != 0
    assert "--epochs" in err and "positive integer" in err
    assert not any(tmp_path.iterdir())


def test_sample_of_a_missing_run_names_the_run_command(capsys, tmp_path):
    out_file = tmp_path / "x.npy"
    rc, _, err = run_main(
        capsys, "sample", "vae_mnist_z2", "--profile", "smoke", "--runs", str(tmp_path),
        "-n", "5", "--out", str(out_file),
    )  # fmt: skip
    assert rc == 2
    assert f"python -m assignment4 run vae_mnist_z2 --profile smoke --runs {tmp_path}" in err
    assert not out_file.exists()


@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "wgan_mnist"])
def test_run_then_sample_writes_uint8_images(capsys, smoke_runs, tmp_path, exp_id):
    # the runs were made by `run ... --profile smoke` (conftest); running again is a no-op
    rc, out, _ = run_main(capsys, "run", exp_id, "--profile", "smoke", "--runs", str(smoke_runs))
    assert rc == 0 and "already complete" in out
    out_file = tmp_path / "x.npy"
    rc, out, _ = run_main(
        capsys, "sample", exp_id, "--profile", "smoke", "--runs", str(smoke_runs),
        "-n", "5", "--out", str(out_file), "--seed", "1",
    )  # fmt: skip
    assert rc == 0 and str(out_file) in out
    images = np.load(out_file, allow_pickle=False)
    assert images.dtype == np.uint8 and images.shape == (5, 28, 28)
    model = keras.saving.load_model(smoke_runs / exp_id / "smoke" / "model.keras")
    np.testing.assert_array_equal(images, model.sample(5, seed=1))


def test_sample_rejects_bad_arguments(capsys, smoke_runs, tmp_path):
    common = ("sample", "vae_mnist_z2", "--profile", "smoke", "--runs", str(smoke_runs))
    rc, _, err = run_main(capsys, *common, "-n", "0", "--out", str(tmp_path / "x.npy"))
    assert rc == 2 and "positive integer" in err
    rc, _, err = run_main(capsys, *common, "-n", "3", "--out", str(tmp_path / "x.png"))
    assert rc == 2 and ".npy" in err
    assert not any(tmp_path.iterdir())


def test_data_prints_shapes_and_class_counts(capsys):
    rc, out, _ = run_main(capsys, "data", "mnist")
    assert rc == 0
    assert "mnist.npz" in out
    assert "(60000, 28, 28)" in out and "(10000, 28, 28)" in out
    assert "[5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]" in out  # MNIST train
    assert "[980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]" in out  # MNIST test


def test_data_preview_writes_a_png(capsys, tmp_path):
    preview = tmp_path / "preview.png"
    rc, out, _ = run_main(capsys, "data", "mnist", "--preview", str(preview))
    assert rc == 0 and str(preview) in out
    assert preview.read_bytes()[:8] == PNG_MAGIC


def test_data_with_a_bad_file_exits_2_naming_it(capsys, tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 not really")
    rc, _, err = run_main(capsys, "data", "mnist", "--data-dir", str(tmp_path))
    assert rc == 2
    assert str(tmp_path / "mnist.npz") in err and "Traceback" not in err


def test_data_of_an_unknown_set_exits_2(capsys):
    rc, _, err = run_main(capsys, "data", "svhn")
    assert rc == 2 and "mnist, cifar10" in err


def test_one_table_printer_aligns_columns_under_a_dashed_header():
    from assignment4.texttable import format_table

    text = format_table(["id", "n"], [["gan_mnist", "5"], ["wgan", "120"]], align="<>")
    assert text.splitlines() == [
        "id           n",
        "---------  ---",
        "gan_mnist    5",
        "wgan       120",
    ]
    with pytest.raises(ValueError, match="2 cells"):
        format_table(["id", "n"], [["only one"]])


def test_a_value_shows_the_digits_that_its_spread_supports():
    from assignment4.texttable import with_spread

    assert with_spread(7.67246, 0.0885769) == "7.672 ± 0.089"
    assert with_spread(12.2568, 0.1976) == "12.26 ± 0.20"
    assert with_spread(0.0599158, 0.0078977) == "0.0599 ± 0.0079"
    assert with_spread(1234.5, 12.3) == "1234 ± 12"
    assert with_spread(5.5, None) == "5.5"  # no spread recorded: the value as given
    assert with_spread(3.0, 0.0, plain=lambda v: f"{v:g}") == "3 ± 0"


def test_status_prints_one_row_per_experiment(capsys, tmp_path):
    rc, out, _ = run_main(capsys, "status", "--profile", "smoke", "--runs", str(tmp_path))
    lines = out.splitlines()
    assert rc == 0 and lines[0].split()[:3] == ["id", "state", "epochs"]
    assert set(lines[1]) == {"-", " "} and len(lines) == 2 + len(experiments.EXPERIMENT_IDS)
    assert all(line.split()[1:3] == ["not", "run"] for line in lines[2:])


# --- --data-dir reaches every command that reads data, and only those offer it ----------------


def test_evaluate_reads_the_data_dir(capsys, smoke_runs, tmp_path, mnist):
    """A valid MNIST file whose test labels are all shifted by one: the classifier's test
    accuracy (measured on the test set of the file read) shows which file was used."""
    import json
    import shutil

    (x_train, y_train), (x_test, y_test) = mnist
    other = tmp_path / "other_data"
    other.mkdir()
    np.savez(other / "mnist.npz", x_train=x_train, y_train=y_train, x_test=x_test,
             y_test=((y_test + 1) % 10).astype(y_test.dtype))  # fmt: skip
    shutil.copytree(smoke_runs / "wgan_mnist", tmp_path / "runs" / "wgan_mnist")
    rc, _, err = run_main(
        capsys, "evaluate", "wgan_mnist", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
        "-n", "100", "--data-dir", str(other),
    )  # fmt: skip
    assert rc == 0, err
    metrics = json.loads((tmp_path / "runs/wgan_mnist/smoke/metrics.json").read_text())
    assert metrics["classifier_test_accuracy"] < 0.1  # the real file gives 0.99


def test_report_reads_the_data_dir(capsys, smoke_runs, tmp_path):
    """Table 1's real row and the latent maps show test images: from --data-dir's file."""
    import shutil

    broken = tmp_path / "other_data"
    broken.mkdir()
    (broken / "mnist.npz").write_bytes(b"not an npz archive")
    shutil.copytree(smoke_runs / "vae_mnist_z2", tmp_path / "runs" / "vae_mnist_z2")
    rc, _, err = run_main(
        capsys, "report", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
        "--figures", str(tmp_path / "figures"), "--report", str(tmp_path / "report"),
        "--data-dir", str(broken),
    )  # fmt: skip
    assert rc == 2 and str(broken / "mnist.npz") in err


@pytest.mark.parametrize("command", ["sample", "status"])
def test_commands_that_read_no_data_do_not_offer_data_dir(capsys, smoke_runs, tmp_path, command):
    out = tmp_path / "x.npy"
    args = ["vae_mnist_z2", "--out", str(out), "-n", "4"] if command == "sample" else []
    rc, _, err = run_main(
        capsys, command, *args, "--profile", "smoke", "--runs", str(smoke_runs),
        "--data-dir", str(tmp_path / "nowhere"),
    )  # fmt: skip
    assert rc == 2 and "unrecognized arguments: --data-dir" in err
    assert not out.exists()
    rc, _, _ = run_main(capsys, command, *args, "--profile", "smoke", "--runs", str(smoke_runs))
    assert rc == 0
