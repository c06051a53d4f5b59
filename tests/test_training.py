"""The runner: artifacts of a run, already-complete and restart, kill-and-resume, NaN."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from crashes import Killed, kill_before_second_backup
from PIL import Image

from assignment4 import artifacts, experiments, training
from assignment4.errors import ConfigError, RunError
from assignment4.training import profiles

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY_NAMES = {
    "vae_mnist_z2": {"loss", "reconstruction", "kl", "val_loss", "val_reconstruction", "val_kl"},
    "wgan_mnist": {"critic_loss", "g_loss", "em_estimate"},
}


def read(path):
    return json.loads(path.read_text())


def copy_run(smoke_runs, exp_id, dest):
    """A private copy of one of the session's finished smoke runs."""
    shutil.copytree(smoke_runs / exp_id, dest / exp_id)
    return dest / exp_id / "smoke"


# --- the artifacts of a finished run ----------------------------------------------------------


@pytest.mark.parametrize("exp_id", list(HISTORY_NAMES))
def test_history_has_one_value_per_epoch_per_metric(smoke_runs, exp_id):
    history = read(smoke_runs / exp_id / "smoke" / "history.json")
    assert set(history) - {"epoch_seconds"} == HISTORY_NAMES[exp_id]
    for name, values in history.items():
        assert len(values) == 2, name
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), name
    if exp_id == "wgan_mnist":
        np.testing.assert_allclose(history["em_estimate"], -np.array(history["critic_loss"]))


@pytest.mark.parametrize("exp_id", list(HISTORY_NAMES))
def test_sample_grids_for_every_epoch(smoke_runs, exp_id):
    samples = smoke_runs / exp_id / "smoke" / "samples"
    assert sorted(p.name for p in samples.iterdir()) == ["epoch_001.png", "epoch_002.png"]
    for png in samples.iterdir():
        assert png.read_bytes()[:8] == PNG_MAGIC
        with Image.open(png) as im:
            assert im.size == (8 * 28 + 7 * 2, 8 * 28 + 7 * 2)  # an 8x8 grid of MNIST images


def test_run_json_records_the_provenance(smoke_runs):
    info = read(smoke_runs / "vae_mnist_z2" / "smoke" / "run.json")
    expected = {
        "id": "vae_mnist_z2",
        "profile": "smoke",
        "epochs": 2,
        "epochs_planned": 2,
        "train_size": 640,
        "test_size": 256,
        "batch_size": 128,
        "seed": 0,
        "strategy": "default",
        "replicas": 1,
        "status": "complete",
        "attempts": 1,
        "precision": experiments.get("vae_mnist_z2").resolve_precision(),
    }
    assert {k: info.get(k) for k in expected} == expected
    assert info["versions"]["tensorflow"] and info["versions"]["keras"] == keras.__version__
    assert {"python", "numpy", "assignment4"} <= set(info["versions"])
    assert isinstance(info["wall_time_s"], float) and info["wall_time_s"] > 0
    assert info["parameters"] > 0 and info["finished_at"] >= info["started_at"]
    assert not (smoke_runs / "vae_mnist_z2" / "smoke" / "backup").exists()


def test_model_keras_loads_in_safe_mode_and_samples(smoke_runs):
    model = keras.saving.load_model(smoke_runs / "vae_mnist_z2" / "smoke" / "model.keras")
    assert model.name == "vae_mnist_z2" and model.latent_dim == 2
    images = model.sample(4, seed=0)
    assert images.dtype == np.uint8 and images.shape == (4, 28, 28)
    assert int(model.optimizer.iterations) == 2 * 5  # 2 epochs of 640 images in batches of 128


def test_wgan_run_clipped_its_critic_and_stepped_it_n_critic_times(smoke_runs):
    model = artifacts.load_run_model("wgan_mnist", "smoke", smoke_runs)
    for v in model.critic.trainable_weights:
        assert np.abs(np.asarray(v)).max() <= np.float32(model.clip_value), v.path
    assert int(model.g_optimizer.iterations) == 2  # one 640-image step per epoch
    assert int(model.critic_optimizer.iterations) == 5 * 2


# --- running again ------------------------------------------------------------------------------


def test_second_identical_call_is_already_complete(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, "vae_mnist_z2", tmp_path)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()}
    exp = experiments.get("vae_mnist_z2")
    assert training.run_experiment(exp, profile="smoke", runs=tmp_path) == folder
    assert "already complete" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.is_file()} == stamps


def test_restart_trains_again(smoke_runs, tmp_path, capsys):
    folder = copy_run(smoke_runs, "vae_mnist_z2", tmp_path)
    before = (folder / "model.keras").stat().st_mtime_ns
    exp = experiments.get("vae_mnist_z2")
    training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=1, restart=True, verbose=0)
    assert (folder / "model.keras").stat().st_mtime_ns != before
    assert all(len(v) == 1 for v in read(folder / "history.json").values())
    info = read(folder / "run.json")
    assert info["status"] == "complete" and info["epochs"] == 1 and info["attempts"] == 1
    assert sorted(p.name for p in (folder / "samples").iterdir()) == ["epoch_001.png"]


@pytest.mark.parametrize("epochs", [0, -3, 2.5, "3"])
def test_bad_epochs_raise_config_error(tmp_path, epochs):
    with pytest.raises(ConfigError, match="epochs"):
        training.run_experiment(
            experiments.get("vae_mnist_z2"), profile="smoke", runs=tmp_path, epochs=epochs
        )
    assert not any(tmp_path.iterdir())


def test_bad_strategy_and_profile_raise_config_error(tmp_path):
    exp = experiments.get("vae_mnist_z2")
    with pytest.raises(ConfigError, match="mirrored"):
        training.run_experiment(exp, profile="smoke", runs=tmp_path, strategy="tpu")
    with pytest.raises(ConfigError, match="smoke"):
        training.run_experiment(exp, profile="tiny", runs=tmp_path)
    assert not any(tmp_path.iterdir())


def test_load_run_model_of_a_missing_run_names_the_command(tmp_path):
    with pytest.raises(RunError) as e:
        artifacts.load_run_model("gan_mnist", "quick", tmp_path)
    assert str(tmp_path / "gan_mnist" / "quick" / "model.keras") in str(e.value)
    assert "python -m assignment4 run gan_mnist --profile quick" in str(e.value)


# --- kill and resume ---------------------------------------------------------------------------


def backed_up_epochs(folder) -> int:
    """Epochs in Keras' BackupAndRestore checkpoint (its metadata is written after the weights)."""
    try:
        return int(json.loads((folder / "backup" / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for_backup(folder, n, proc, log_path, timeout=240) -> int:
    """Poll until `n` epochs are in history.json and in the backup; return the backed-up count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history_path = folder / "history.json"
        if history_path.exists():
            recorded = len(json.loads(history_path.read_text()).get("loss", []))  # atomic
            backed_up = backed_up_epochs(folder)
            if recorded >= n and backed_up >= recorded:
                return backed_up
        assert proc.poll() is None, f"run exited early:\n{log_path.read_text()}"
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"no {n} epochs after {timeout} s:\n{log_path.read_text()}")


def test_a_killed_run_resumes_without_duplicated_or_missing_epochs(tmp_path, child_env):
    """SIGKILL mid-epoch (after the backup of epoch >= 2 is on disk), then run the same command.

    (A kill *while* the backup is being written is test_a_run_killed_while_writing_its_backup_*.)
    """
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "assignment4", "run", "vae_mnist_z2", "--profile", "quick"]
    command += ["--epochs", "6", "--runs", str(runs)]
    folder = runs / "vae_mnist_z2" / "quick"
    log1, log2 = tmp_path / "first.log", tmp_path / "second.log"

    with open(log1, "w") as out:
        first = subprocess.Popen(
            command, cwd=REPO, env=child_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        backed_up = wait_for_backup(folder, 2, first, log1)
        os.kill(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    assert backed_up < 6 and not (folder / "model.keras").exists()
    assert read(folder / "run.json")["status"] == "running"

    with open(log2, "w") as out:
        second = subprocess.run(
            command, check=False, cwd=REPO, env=child_env, stdout=out, stderr=subprocess.STDOUT,
            timeout=400,
        )  # fmt: skip
    output = log2.read_text()
    assert second.returncode == 0, output
    match = re.search(r"Resuming vae_mnist_z2 \(quick\) after epoch (\d+)/6", output)
    assert match, output
    resumed = int(match.group(1))
    assert backed_up <= resumed <= backed_up + 1  # +1: an epoch that ended just before the kill
    assert "Training vae_mnist_z2" not in output  # not started over

    history = read(folder / "history.json")
    assert set(history) - {"epoch_seconds"} == HISTORY_NAMES["vae_mnist_z2"]
    assert {name: len(values) for name, values in history.items()} == dict.fromkeys(history, 6)
    assert all(math.isfinite(v) for values in history.values() for v in values)
    # continued from the saved weights: the first resumed epoch is far below epoch 1's loss
    assert history["loss"][resumed] < 0.97 * history["loss"][0], history["loss"]
    info = read(folder / "run.json")
    assert info["status"] == "complete" and info["attempts"] == 2 and info["epochs"] == 6
    assert (folder / "model.keras").exists() and not (folder / "backup").exists()
    every = profiles.profile("quick").sample_every
    grids = {1, *range(every, 7, every), 6}  # the first, every `every`-th and the last epoch
    assert {f"epoch_{e:03d}.png" for e in grids} == {p.name for p in (folder / "samples").iterdir()}


def test_an_epoch_recorded_but_not_backed_up_is_trained_again_not_duplicated(
    tmp_path, monkeypatch, capsys
):
    """The process dies after history.json got epoch 2 but before the backup of epoch 2."""
    folder = kill_before_second_backup(tmp_path, monkeypatch)
    exp = experiments.get("vae_mnist_z2")
    assert len(read(folder / "history.json")["loss"]) == 2
    first = read(folder / "history.json")["loss"][0]
    capsys.readouterr()

    training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=1)
    assert "Resuming vae_mnist_z2 (smoke) after epoch 1/3" in capsys.readouterr().out
    history = read(folder / "history.json")
    assert {name: len(values) for name, values in history.items()} == dict.fromkeys(history, 3)
    assert history["loss"][0] == first  # the backed-up epoch is kept as it was
    info = read(folder / "run.json")
    assert info["status"] == "complete" and info["attempts"] == 2 and info["epochs"] == 3


def test_a_run_killed_while_writing_its_backup_can_be_started_again(tmp_path, monkeypatch):
    """The process dies half-way through the backup written after epoch 2, then starts again.

    Seen with a real SIGKILL in the subprocess test when the kill lands during that write; here
    the moment is made deterministic: BackupAndRestore's `save_weights` calls write in backup/.
    """
    save_weights = keras.Model.save_weights
    calls = []

    def save_weights_then_die(self, filepath, *args, **kwargs):
        save_weights(self, filepath, *args, **kwargs)
        if "backup" not in Path(filepath).parent.name:
            return  # a checkpoint's
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, "rb") as f:
                data = f.read()
            with open(filepath, "wb") as f:
                f.write(data[: len(data) // 2])
            raise Killed

    exp = experiments.get("vae_mnist_z2")
    monkeypatch.setattr(keras.Model, "save_weights", save_weights_then_die)
    with pytest.raises(Killed):
        training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=0)
    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    folder = tmp_path / "vae_mnist_z2" / "smoke"
    assert not (folder / "model.keras").exists()

    training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=0)
    history = read(folder / "history.json")
    assert {name: len(values) for name, values in history.items()} == dict.fromkeys(history, 3)
    info = read(folder / "run.json")
    assert info["status"] == "complete" and info["attempts"] == 2


# --- NaN -----------------------------------------------------------------------------------------


def test_a_nan_loss_stops_the_run_naming_the_epoch(tmp_path):
    exploding = {"optimizer": {"class_name": "Adam", "config": {"learning_rate": 1e30}}}
    exp = dataclasses.replace(experiments.get("vae_mnist_z2"), optimizers=exploding)
    with pytest.raises(RunError) as e:
        training.run_experiment(exp, profile="smoke", runs=tmp_path, epochs=3, verbose=0)
    folder = tmp_path / "vae_mnist_z2" / "smoke"
    history_path = folder / "history.json"
    history = read(history_path) if history_path.exists() else {}
    kept = len(history.get("loss", []))
    assert f"non-finite loss at epoch {kept + 1}" in str(e.value), str(e.value)
    assert kept < 3
    assert all(math.isfinite(v) for values in history.values() for v in values)
    assert not (folder / "model.keras").exists()
    assert read(folder / "run.json")["status"] != "complete"
