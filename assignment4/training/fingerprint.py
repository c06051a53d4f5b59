"""Which weights a metrics file scored: the fingerprint that binds numbers to a model.

A run records the fingerprint of its final model in `run.json` and of every checkpoint in
the checkpoint's side file (`checkpoints/epoch_NNN.json`); `evaluate` records the
fingerprint of the weights it scored, and their epoch, in every metrics file. The report
and `status` show a metric only when its fingerprint is that of the weights the figures
come from (`bound`), and say "not scored" otherwise.

NumPy only, no TensorFlow: the runner, the evaluation, `status` and the report import it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from assignment4.errors import RunError
from assignment4.fileio import read_json

KEY = "weights_fingerprint"  # in run.json, checkpoint side files and metrics files
NOT_SCORED = "not scored"


def weights_fingerprint(model) -> str:
    """A short sha256 of the values of `model.weights`, in tracking order (stable per build).

    A pure function of the weights: the same for the model that training saved and for the
    one `keras.saving.load_model` or a checkpoint gives back. Seed-generator states (which
    advance with every draw) are not weights and are left out, and so are optimizer slots.
    Each variable's dtype and shape are hashed with its bytes.
    """
    digest = hashlib.sha256()
    for v in model.weights:
        if v.path.endswith("seed_generator_state"):
            continue
        value = np.ascontiguousarray(np.asarray(v))
        digest.update(f"{value.dtype.str}{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:16]


def _read(path: Path) -> dict:
    try:
        return read_json(path) if path.is_file() else {}
    except RunError:
        return {}  # a damaged file binds nothing


def final_fingerprint(run_dir: str | os.PathLike) -> tuple[str | None, int | None]:
    """(fingerprint, epochs) of a finished run's final model from its run.json.

    (None, None) while the run is unfinished (its model.keras is not yet its final model);
    (None, epochs) for a run finished before fingerprints were recorded.
    """
    info = _read(Path(run_dir) / "run.json")
    if info.get("status") != "complete":
        return None, None
    return info.get(KEY), int(info.get("epochs", 0))


def checkpoint_fingerprint(run_dir: str | os.PathLike, epoch: int) -> tuple[str | None, int | None]:
    """(fingerprint, epoch) recorded beside the checkpoint of `epoch` (`runstate.save_state`).

    (None, None) when the run keeps no checkpoint of that epoch (any more).
    """
    side = Path(run_dir) / "checkpoints" / f"epoch_{epoch:03d}.json"
    weights = side.with_name(f"epoch_{epoch:03d}.weights.h5")
    if not (side.is_file() and weights.is_file()):
        return None, None
    return _read(side).get(KEY), epoch


def bound(metrics: dict | None, fingerprint: str | None, epoch: int | None) -> bool:
    """Whether `metrics` scored the weights recorded as `fingerprint` (of epoch `epoch`).

    Metrics without a fingerprint (written before they were recorded) are never bound.
    Where the weights' own record has no fingerprint (a run or checkpoint saved before they
    were recorded), metrics that name the same epoch are.
    """
    if not metrics or metrics.get(KEY) is None or epoch is None:
        return False
    if fingerprint is not None:
        return metrics[KEY] == fingerprint
    return metrics.get("epoch") == epoch


def final_metrics(run_dir: str | os.PathLike, metrics: dict | None) -> dict | None:
    """`metrics` (a run's metrics.json) if they scored its final model, else None."""
    fingerprint, epochs = final_fingerprint(run_dir)
    return metrics if bound(metrics, fingerprint, epochs) else None


def checkpoint_metrics(run_dir: str | os.PathLike, scored: dict[int, dict]) -> dict[int, dict]:
    """Of {epoch: metrics_epoch_NNN.json}, those that scored the checkpoint kept for that epoch."""
    return {
        epoch: m for epoch, m in scored.items() if bound(m, *checkpoint_fingerprint(run_dir, epoch))
    }
