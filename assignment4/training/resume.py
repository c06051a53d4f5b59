"""Where a run continues from: nowhere (a new run), the backup of its last finished epoch (a
killed run), its latest checkpoint (a killed run without a backup), or its final checkpoint
(a finished run asked for more epochs). The runner loads that state and passes its epoch to
`fit(initial_epoch=...)`; what a run may not change on the way (seed, batch, data, precision)
is checked here against its run.json."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from assignment4.errors import RunError
from assignment4.training.runstate import (
    BACKUP,
    RunConflict,
    backup_metadata,
    checkpoint_epochs,
    checkpoint_path,
    checkpoint_seeds,
    read_run_file,
)

# settings that a run cannot change half-way; each names the run.json key it is stored under
FIXED_SETTINGS = ("seed", "batch_size", "train_size")
PRECISIONS = ("float32", "mixed_bfloat16")


@dataclass(frozen=True)
class ResumePoint:
    """The state a run continues from.

    Attributes:
        epoch: finished epochs (0: train from scratch).
        weights: the weights file to load (None: none).
        seeds: the seed states saved with it.
        what_to_do: the end of the message if that file turns out damaged.
        extending: a finished run continued to more epochs.
    """

    epoch: int = 0
    weights: Path | None = None
    seeds: list | None = None
    what_to_do: str = ""
    extending: bool = False


def read_previous(folder: Path, exp, profile: str, seed: int, n_epochs: int, restart_hint: str):
    """The run.json of an earlier run of this folder, checked against this call's settings
    (None: there is none).

    Raises RunConflict when the run cannot continue as asked (fewer epochs than it has, or
    other settings), and a one-line RunError when run.json or history.json is damaged.
    """
    info_path = folder / "run.json"
    if not info_path.exists():
        return None
    previous = read_run_file(info_path, f"Restore it from a copy, or {restart_hint}.")
    history_path = folder / "history.json"
    if history_path.exists():
        read_run_file(history_path, f"Restore it from a copy, or {restart_hint}.")
    now = {"seed": seed, "batch_size": exp.batch_size, "train_size": exp.data_sizes(profile)[0]}
    for key in FIXED_SETTINGS:
        if key in previous and previous[key] != now[key]:
            raise RunConflict(
                f"{folder} was trained with {key} {previous[key]}, this call asks for "
                f"{now[key]}: the run cannot continue with another {key}. Keep {previous[key]}, "
                f"or {restart_hint} (this deletes it)."
            )
    done = int(previous.get("epochs", 0))
    if n_epochs < done:
        raise RunConflict(
            f"{folder} already has {done} epochs, more than the {n_epochs} asked for. Use "
            f"`sample`/`evaluate --epoch N` for an earlier epoch, ask for {done} or more, or "
            f"{restart_hint} (this deletes it)."
        )
    return previous


def resume_point(folder: Path, previous: dict | None, restart_hint: str) -> ResumePoint:
    """Where the run in `folder` continues from (see the module's docstring)."""
    if previous and previous.get("status") == "complete":
        return _extension(folder, int(previous["epochs"]), restart_hint)
    have = checkpoint_epochs(folder)
    backup = folder / BACKUP
    if have:
        damaged = (
            f"Delete {backup} to resume from the checkpoint of epoch {have[-1]}, or {restart_hint}."
        )
    else:
        damaged = f"Delete {backup} and {restart_hint}."
    meta = backup_metadata(folder, damaged)
    if meta is not None:
        # a backup from before this module may name a checkpoint by a path relative to it
        return ResumePoint(
            meta["epoch"], backup / meta["weights"], meta.get("seed_states"), damaged
        )
    if have:
        weights = checkpoint_path(folder, have[-1])
        damaged = f"Delete it to resume from an earlier checkpoint, or {restart_hint}."
        return ResumePoint(have[-1], weights, checkpoint_seeds(weights), damaged)
    return ResumePoint()


def _extension(folder: Path, done: int, restart_hint: str) -> ResumePoint:
    """A finished run continues from the checkpoint of its last epoch."""
    weights = checkpoint_path(folder, done)
    if not weights.is_file():
        raise RunConflict(
            f"{folder} finished {done} epochs but has no checkpoint of epoch {done} to continue "
            f"from (a run from before checkpoints were kept). Keep --epochs {done}, or "
            f"{restart_hint} (this deletes it)."
        )
    shutil.rmtree(folder / BACKUP, ignore_errors=True)
    what_to_do = f"Restore it from a copy, or {restart_hint}."
    return ResumePoint(done, weights, checkpoint_seeds(weights), what_to_do, extending=True)


def run_precision(exp, previous: dict | None, log) -> str:
    """The run's dtype policy: chosen at its first start (the registry's, resolved for that
    machine) and kept on every resume and extension, so that one run never changes its
    arithmetic half-way, whichever machine continues it."""
    recorded = (previous or {}).get("precision")
    if recorded is None:
        return exp.resolve_precision()
    if recorded not in PRECISIONS:
        raise RunError(
            f"run.json of {exp.id} records precision {recorded!r}, which is not a dtype policy "
            "(float32 or mixed_bfloat16): correct it, or pass --restart to train from scratch."
        )
    here = exp.resolve_precision()
    if recorded != here:
        why = "emulates bfloat16 (slower)" if here == "float32" else "has native bfloat16"
        log(
            f"{exp.id} keeps the precision of its first start, {recorded}; this machine {why} "
            f"and would start a new run in {here}."
        )
    return recorded
