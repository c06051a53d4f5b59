"""A deterministic crash for the resume tests: a run killed between its history and its backup."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest

from assignment4 import experiments, training


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the package catches it or cleans up after it."""


def kill_before_second_backup(runs: Path, monkeypatch, exp_id: str = "vae_mnist_z2") -> Path:
    """Train `exp_id` (smoke, 3 epochs) into `runs` and "kill" it after history.json (and the
    other per-epoch files) got epoch 2 but before the backup of epoch 2. Returns the run folder.
    """
    save_weights = keras.Model.save_weights
    calls = []

    def die_before_second_backup(self, filepath, *args, **kwargs):
        if "backup" in Path(filepath).parent.name:  # BackupAndRestore's, not a checkpoint's
            calls.append(filepath)
        if len(calls) == 2:
            raise Killed
        return save_weights(self, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", die_before_second_backup)
    with pytest.raises(Killed):
        training.run_experiment(
            experiments.get(exp_id), profile="smoke", runs=runs, epochs=3, verbose=1
        )
    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    return runs / exp_id / "smoke"
