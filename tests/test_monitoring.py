"""TensorBoard logs of real runs, the projected wall time and the ETA, the device line."""

from __future__ import annotations

import json
import shutil

import pytest
import tensorflow as tf
from crashes import kill_before_second_backup

from assignment4 import experiments, training
from assignment4.__main__ import main
from assignment4.training import monitoring


def read(path):
    return json.loads(path.read_text())


def scalars_match_history(folder) -> None:
    """Every history metric is a TensorBoard scalar with one point per epoch, step = epoch."""
    history = read(folder / "history.json")
    scalars = monitoring.read_scalars(folder / monitoring.TENSORBOARD_DIR)
    assert set(scalars) == set(history)
    for name, values in history.items():
        steps = [step for step, _ in scalars[name]]
        assert steps == list(range(1, len(values) + 1)), (name, steps)
        logged = [value for _, value in scalars[name]]
        assert logged == pytest.approx(values, rel=1e-6), name


@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "wgan_mnist"])
def test_a_run_writes_every_history_metric_and_every_sample_grid_to_tensorboard(smoke_runs, exp_id):
    folder = smoke_runs / exp_id / "smoke"
    scalars_match_history(folder)
    grids = sorted(int(p.stem.split("_")[1]) for p in (folder / "samples").glob("epoch_*.png"))
    assert grids and monitoring.read_image_steps(folder / "tensorboard") == grids


def test_a_resumed_run_continues_the_curves_without_duplicate_epochs(tmp_path, monkeypatch, capsys):
    """Killed after epoch 2 reached history.json and TensorBoard but not the backup: epoch 2 is
    trained again, and TensorBoard still holds one point per epoch, equal to history.json."""
    exp = experiments.get("vae_mnist_z2")
    folder = kill_before_second_backup(tmp_path, monkeypatch)
    before = monitoring.read_scalars(folder / "tensorboard")
    assert [s for s, _ in before["loss"]] == [1, 2]  # epoch 2 was logged before the kill

    training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=1)
    assert "Resuming vae_mnist_z2 (smoke) after epoch 1/3" in capsys.readouterr().out
    scalars_match_history(folder)
    assert monitoring.read_image_steps(folder / "tensorboard") == [1, 2, 3]


def test_a_run_prints_its_projected_time_and_the_eta_after_each_epoch(tmp_path, capsys):
    exp = experiments.get("vae_mnist_z2")
    training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=2)
    out = capsys.readouterr().out
    assert "Projected: 3 epoch(s) x 5 steps at " in out
    assert "ETA: epoch 1/3 done" in out and "ETA: epoch 2/3 done, " in out
    assert "ETA: epoch 3/3" not in out  # nothing left to project after the last epoch
    # Printed after Keras' own line of the epoch, before the next epoch starts.
    assert out.index("ETA: epoch 1/3") < out.index("Epoch 2/3")


def test_full_on_a_cpu_says_how_long_and_how_to_choose_quick(monkeypatch):
    monkeypatch.setattr(monitoring, "has_gpu", lambda: False)  # a CPU-only machine, anywhere
    exp = experiments.get("dcgan_cifar10")
    full = monitoring.project(exp, "full", 0.5, exp.epochs("full"), 391)
    assert full.cpu_only and full.advise_quick
    text = full.text()
    assert f"Projected: {exp.epochs('full')} epoch(s) x 391 steps at 500 ms/step" in text
    assert monitoring.format_duration(full.seconds) in text
    assert "--profile quick" in text and "ASSIGNMENT4_PROFILE=quick" in text
    assert monitoring.format_duration(full.quick_seconds) in text
    quick = monitoring.project(exp, "quick", 0.5, exp.epochs("quick"), 391)
    assert not quick.advise_quick and "--profile quick" not in quick.text()
    short = monitoring.project(exp, "full", 0.001, 2, 10)  # seconds, not hours: no advice
    assert not short.advise_quick


def test_projected_time_measures_real_steps():
    projection = monitoring.projected_time(experiments.get("vae_mnist_z2"), "smoke")
    assert projection.epochs == 2 and projection.steps_per_epoch == 5
    assert 0 < projection.seconds_per_step < 10
    assert projection.seconds == pytest.approx(10 * projection.seconds_per_step)
    assert training.projected_time is monitoring.projected_time  # for the notebooks


@pytest.mark.parametrize(
    "seconds, text",
    [(5, "5 s"), (600, "10 min"), (3 * 3600 + 300, "3 h 05 min"), (3 * 86400, "3 d 0 h")],
)
def test_format_duration(seconds, text):
    assert monitoring.format_duration(seconds) == text


def test_commands_that_use_the_devices_name_them_in_one_line(capsys, tmp_path):
    rc = main(["sample", "vae_mnist_z2", "--profile", "smoke", "--runs", str(tmp_path)]
              + ["--out", str(tmp_path / "x.npy")])  # fmt: skip
    assert rc == 2
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"TensorFlow {tf.__version__}") and "Keras 3" in first
    if monitoring.has_gpu():  # e.g. Colab's GPU runtime
        assert "GPU(s): " in first and "cuDNN kernels" in first
    else:
        assert "CPU (" in first and "kernels" in first and "no GPU visible" in first


def test_the_tensorboard_folder_is_rebuilt_from_the_run_files(smoke_runs, tmp_path):
    """A run's TensorBoard folder is a function of history.json and samples/: deleting it and
    resuming from the last epoch's start gives the same curves."""
    folder = tmp_path / "run"
    shutil.copytree(smoke_runs / "wgan_mnist" / "smoke", folder)
    shutil.rmtree(folder / "tensorboard")
    log = monitoring.TensorBoardLog(folder)
    epochs = len(read(folder / "history.json")["em_estimate"])
    log.on_train_begin()
    log.on_epoch_begin(epochs)  # as a fit that starts after the last finished epoch
    log.on_train_end()
    scalars_match_history(folder)
