"""A run's artifacts, read back: its model, generated samples, and what every run holds.

Above the registry (`experiments`) and the runner (`training`): the CLI's `sample` and
`status`, the notebooks, `evaluation` and `report` load a run's model through
`load_run_model`, the one loader.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from assignment4 import experiments, models
from assignment4.errors import ConfigError, RunError
from assignment4.fileio import atomic_path, read_json
from assignment4.models import optimizers
from assignment4.texttable import format_table
from assignment4.training import fingerprint
from assignment4.training.runner import run_dir
from assignment4.training.runstate import (
    DAMAGED_FILE_ERRORS,
    checkpoint_epochs,
    load_checkpoint,
    run_status,
)

# The package's own classes in a saved model: its three model families and its fused Adam.
CUSTOM_OBJECTS = {
    keras.saving.get_registered_name(cls): cls
    for cls in (*models.FAMILIES.values(), optimizers.Adam)
}


def load_run_model(
    exp_id: str, profile: str, runs: str | os.PathLike = "runs", epoch: int | None = None
):
    """The final model of a finished run (safe-mode `keras.saving.load_model`), or with
    `epoch`, the model of that epoch's checkpoint (`checkpoints/epoch_NNN.weights.h5`).
    """
    exp = experiments.get(exp_id)
    folder = run_dir(exp_id, profile, runs)
    again = f"python -m assignment4 run {exp_id} --profile {profile}" + (
        f" --runs {runs}" if str(runs) != "runs" else ""
    )
    if epoch is not None:
        if not folder.is_dir():
            raise RunError(f"No run of {exp_id} under profile {profile!r}: {folder} does not "
                           f"exist. Train it first: {again}")  # fmt: skip
        # the run's own dtype policy (run.json), not what 'auto' picks on this machine
        model = exp.build(precision=_recorded_precision(folder))
        load_checkpoint(model, folder, epoch)
        return model
    path = folder / "model.keras"
    if not path.exists():
        raise RunError(
            f"No finished run of {exp_id} under profile {profile!r}: {path} does not exist. "
            f"Train it first: {again}"
        )
    try:
        return keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS)
    except DAMAGED_FILE_ERRORS as e:
        have = checkpoint_epochs(folder)
        reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
        if not zipfile.is_zipfile(path):  # Keras then reports "File not found"
            reason = "not a complete .keras (zip) archive"
        use = f"use a checkpoint with --epoch {have[-1]}, or " if have else ""
        raise RunError(
            f"{path} is damaged ({reason}): {use}train it again with {again} --restart"
        ) from None


def _recorded_precision(folder: Path) -> str | None:
    """The dtype policy that run.json records (None: none recorded, use the registry's)."""
    info = folder / "run.json"
    return read_json(info).get("precision") if info.is_file() else None


def sample_run(
    exp_id: str,
    profile: str,
    n: int,
    out: str | os.PathLike,
    runs: str | os.PathLike = "runs",
    *,
    seed: int | None = 0,
    epoch: int | None = None,
) -> Path:
    """Write `n` generated images of a finished run as a uint8 .npy in the data set's layout.

    `seed` fixes the latent draw (the same images on every call; None draws new ones);
    `epoch` samples that epoch's checkpoint instead of the final model.
    """
    if n <= 0:
        raise ConfigError(f"-n must be positive, got {n}")
    out = Path(out)
    if out.suffix != ".npy":
        raise ConfigError(f"--out must name a .npy file, got {out}")
    images = load_run_model(exp_id, profile, runs, epoch=epoch).sample(n, seed=seed)
    with atomic_path(out, suffix=".npy") as tmp:
        np.save(tmp, images)
    return out


# --- what the runs hold ---------------------------------------------------------------------

HEADLINE = {"vae": "loss", "gan": "d_loss", "wgan": "em_estimate"}


def status(profile: str, runs: str | os.PathLike = "runs") -> list[dict]:
    """One row per experiment: state, epochs, parameters, wall time, peak memory, and the
    headline metric after the first and the last finished epoch, and the sample quality of
    the final model where metrics.json scored it (`scored_text`).
    """
    rows = []
    for exp in experiments.EXPERIMENTS.values():
        folder = run_dir(exp.id, profile, runs)
        row = {"id": exp.id, "state": "not run"}
        if (folder / "run.json").exists():
            info = read_json(folder / "run.json")
            history = (
                read_json(folder / "history.json") if (folder / "history.json").exists() else {}
            )
            values = history.get(HEADLINE[exp.family], [])
            row.update(
                state=run_status(folder, info),
                epochs=f"{info.get('epochs', 0)}/{info.get('epochs_planned', '?')}",
                parameters=info.get("parameters"),
                wall_time_s=info.get("wall_time_s"),
                peak_rss_mb=info.get("peak_rss_mb"),
                metric=HEADLINE[exp.family],
                first=values[0] if values else None,
                last=values[-1] if values else None,
                scored=scored_text(folder),
            )
        rows.append(row)
    return rows


def scored_text(folder: Path) -> str:
    """'FD 8.06, IS 5.22' from metrics.json when it scored the run's final model, else
    'not scored' (no metrics, metrics of other weights, or a run still going on).
    """
    path = Path(folder) / "metrics.json"
    try:
        metrics = read_json(path) if path.is_file() else None
    except RunError:
        metrics = None
    metrics = fingerprint.final_metrics(folder, metrics)
    if metrics is None or metrics.get("fd") is None:
        return fingerprint.NOT_SCORED
    text = f"FD {float(metrics['fd']):.4g}"
    if metrics.get("classifier_is") is not None:
        text += f", IS {float(metrics['classifier_is']):.4g}"
    return text


def format_status(rows: list[dict]) -> str:
    """`status` rows as a plain-text table."""
    cols = ["id", "state", "epochs", "parameters", "wall_time_s", "peak_rss_mb", "metric",
            "first", "last", "scored"]  # fmt: skip

    def cell(v):
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return format_table(cols, [[cell(r.get(c)) for c in cols] for r in rows])
