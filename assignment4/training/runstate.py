"""What a run keeps between processes: checkpoints, the seed stream, the writer's lock.

    checkpoints/epoch_NNN.weights.h5   the model (weights and optimizer slots) at every
                                       sample-grid epoch, kept after the run finishes
    checkpoints/epoch_NNN.json         that epoch's random-seed state (see `seed_states`) and
                                       its weights' fingerprint (`weights_fingerprint`)
    backup/                            the state after the last finished epoch (`EpochBackup`),
                                       while the run is unfinished
    <profile>.lock                     beside the run folder: the PID of the process training it

Keras' `save_weights` stores weights and optimizer slots but not the state of the models'
`SeedGenerator`s (sampling noise, dropout): without it a resumed or extended run would draw
the noise of its first epochs again. `seed_states` / `restore_seed_states` carry it.
"""

from __future__ import annotations

import json
import os
import socket
import zipfile
from pathlib import Path

import keras
import numpy as np

from assignment4.errors import RunError
from assignment4.fileio import atomic_path, read_json, write_json
from assignment4.training.fingerprint import KEY as FINGERPRINT_KEY
from assignment4.training.fingerprint import weights_fingerprint

CHECKPOINTS = "checkpoints"
# what h5py (OSError, KeyError), zipfile and Keras (ValueError) raise on a damaged file
DAMAGED_FILE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class RunConflict(RunError):
    """A run exists that this call may not change (fewer epochs, other settings, a live writer).

    The CLI prints it as one line and exits with status 2; `--restart` (restart=True) is the way
    past it where it says so.
    """


# --- the seed stream ------------------------------------------------------------------------


def _seed_variables(model) -> list:
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def seed_states(model) -> list[list[int]]:
    """The state of every `SeedGenerator` of `model`, in tracking order (stable per build)."""
    return [np.asarray(v).tolist() for v in _seed_variables(model)]


def restore_seed_states(model, states: list, source: Path) -> None:
    """Put back the states `seed_states` returned; `source` names the file in errors."""
    variables = _seed_variables(model)
    if len(states) != len(variables):
        raise RunError(
            f"{source} holds {len(states)} seed states, the model has {len(variables)}: it was "
            "written by another model. Pass --restart to train this run from scratch."
        )
    for v, s in zip(variables, states):
        v.assign(np.asarray(s, dtype=v.dtype))


# --- metrics belong to the weights they scored (`fingerprint`) ---------------------------------


def retire_final_metrics(folder: Path, epoch: int) -> list[Path]:
    """Before a finished run of `epoch` epochs is extended: keep its final model's metrics as
    that epoch's (`metrics.json` -> `metrics_epoch_NNN.json`, and the trained generator's
    beside it), so that they are never read as the extended model's. Returns the new paths.
    """
    moved = []
    for old, new in (
        ("metrics.json", f"metrics_epoch_{epoch:03d}.json"),
        ("metrics_trained_generator.json", f"metrics_epoch_{epoch:03d}_trained_generator.json"),
    ):
        source, target = Path(folder) / old, Path(folder) / new
        if not source.is_file():
            continue
        if target.exists():  # that checkpoint was scored too: keep both
            target = target.with_name(target.name.replace(".json", "_final.json"))
        os.replace(source, target)
        moved.append(target)
    return moved


# --- saving and loading a model's training state ----------------------------------------------


def save_state(model, weights: Path, epoch: int) -> None:
    """Weights and optimizer slots to `weights`, then the seed states beside it (both atomic)."""
    with atomic_path(weights, suffix=".weights.h5") as tmp:
        model.save_weights(str(tmp), overwrite=True)
    side = {"epoch": epoch, "seed_states": seed_states(model)}
    write_json(side | {FINGERPRINT_KEY: weights_fingerprint(model)}, _sidecar(weights))


def load_state(model, weights: Path, seeds: list | None, what_to_do: str) -> None:
    """Load `weights` (and seed states) into `model`; a damaged file raises a one-line RunError."""
    if not weights.is_file():
        raise RunError(f"{weights} is missing. {what_to_do}")
    try:
        model.load_weights(str(weights))
    except DAMAGED_FILE_ERRORS as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise RunError(f"{weights} is damaged ({reason[:120]}). {what_to_do}") from None
    if seeds is not None:
        restore_seed_states(model, seeds, weights)


def _sidecar(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".weights.h5", ".json"))


def checkpoint_path(folder: Path, epoch: int) -> Path:
    """`<run>/checkpoints/epoch_NNN.weights.h5`."""
    return Path(folder) / CHECKPOINTS / f"epoch_{epoch:03d}.weights.h5"


def checkpoint_epochs(folder: Path) -> list[int]:
    """Epochs with a checkpoint (weights and seed states both present), ascending."""
    found = []
    for p in (Path(folder) / CHECKPOINTS).glob("epoch_*.weights.h5"):
        epoch = p.name[len("epoch_") : -len(".weights.h5")]
        if epoch.isdigit() and _sidecar(p).is_file():
            found.append(int(epoch))
    return sorted(found)


def checkpoint_seeds(weights: Path) -> list:
    """The seed states saved beside a checkpoint."""
    return read_json(_sidecar(weights)).get("seed_states", [])


def load_checkpoint(model, folder: Path, epoch: int) -> None:
    """Load the checkpoint of `epoch` into a built model; errors list the epochs there are."""
    weights = checkpoint_path(folder, epoch)
    have = checkpoint_epochs(folder)
    if epoch not in have:
        listed = ", ".join(map(str, have)) or "none"
        raise RunError(
            f"{folder} has no checkpoint of epoch {epoch} (checkpoints: {listed}). "
            "Choose one of those with --epoch N."
        )
    others = [e for e in have if e != epoch]
    hint = f"Use another epoch ({', '.join(map(str, others))})" if others else "Train the run again"
    load_state(model, weights, checkpoint_seeds(weights), f"{hint}, or train it with --restart.")


class Checkpoints(keras.callbacks.Callback):
    """At every sample-grid epoch, the full training state to `checkpoints/` (kept)."""

    def __init__(self, folder: Path, is_due):
        super().__init__()
        self.folder, self.is_due = Path(folder), is_due

    def on_epoch_end(self, epoch, logs=None):
        if self.is_due(epoch + 1):
            save_state(self.model, checkpoint_path(self.folder, epoch + 1), epoch + 1)


# --- the backup of the last finished epoch ------------------------------------------------------

BACKUP = "backup"
BACKUP_METADATA = "training_metadata.json"


class EpochBackup(keras.callbacks.Callback):
    """After every epoch, the training state to `backup/`, the run's point of resume.

    A kill at any moment leaves a consistent, finished epoch on disk: each epoch's weights
    (with optimizer slots) go to a new file, written atomically, and only then does the
    metadata naming that file (with the seed states, which `save_weights` omits) replace the
    old one. The runner resumes from it with `fit(initial_epoch=...)`, Keras' public way.
    """

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        name = f"epoch_{done:04d}.weights.h5"
        with atomic_path(self.folder / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        meta = {"epoch": done, "weights": name, "seed_states": seed_states(self.model)}
        write_json(meta, self.folder / BACKUP_METADATA)
        for old in self.folder.glob("epoch_*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


def backup_metadata(folder: Path, what_to_do: str) -> dict | None:
    """The metadata of a run's backup: `{"epoch": finished epochs, "weights": file name,
    "seed_states": ...}`, or None without a backup. A damaged file raises a one-line RunError
    ending with `what_to_do`."""
    meta_path = Path(folder) / BACKUP / BACKUP_METADATA
    if not meta_path.exists():
        return None
    meta = read_run_file(meta_path, what_to_do)
    epoch = meta.get("epoch", 0)
    if not isinstance(epoch, int) or epoch < 0 or not isinstance(meta.get("weights"), str):
        raise RunError(f"{meta_path} is damaged (epoch {epoch!r}). {what_to_do}")
    return meta


# --- one writer per run folder ----------------------------------------------------------------


class RunLock:
    """`<runs>/<id>/<profile>.lock`: created atomically, holds the PID of the training process.

    A lock whose process is alive (another `run` of the same folder) raises `RunConflict`
    naming it; a lock left by a process that died is taken over, with a note.
    """

    def __init__(self, folder: Path, log=print):
        self.folder = Path(folder)
        self.path = self.folder.parent / f"{self.folder.name}.lock"
        self.log = log
        self.held = False

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise RunConflict(f"{self.path}: could not take the lock; remove it if no run is going on.")

    def _owner(self) -> tuple[int | None, str, bool]:
        """(pid, host, alive) of the lock's holder; FileNotFoundError when there is no lock.
        A holder on another host counts as alive: its processes cannot be seen from here."""
        import psutil

        try:
            owner = json.loads(self.path.read_text())
            pid, host = int(owner["pid"]), str(owner.get("host", ""))
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError):
            return None, "", False
        here = host in ("", socket.gethostname())
        alive = pid is not None and (not here or (pid != os.getpid() and psutil.pid_exists(pid)))
        return pid, host, alive

    def in_use(self) -> bool:
        """Whether a live process (this one included) holds the lock: the run is training."""
        try:
            pid, _, alive = self._owner()
        except FileNotFoundError:
            return False
        return alive or pid == os.getpid()

    def _take_over_if_stale(self) -> None:
        import psutil

        try:
            pid, host, alive = self._owner()
        except FileNotFoundError:
            return  # released meanwhile: try again
        here = host in ("", socket.gethostname())
        if alive:
            where = f"process {pid}" + ("" if here else f" on {host}")
            try:
                cmd = " ".join(psutil.Process(pid).cmdline()) if here else ""
            except (psutil.Error, OSError):
                cmd = ""
            raise RunConflict(
                f"{self.folder} is being trained by {where}"
                + (f" ({cmd[:100]})" if cmd else "")
                + f". Wait for it to finish or stop it; {self.path} names it."
            )
        self.log(
            f"Note: taking over {self.path}, left by "
            + (f"process {pid}, which is no longer running." if pid else "an unreadable lock.")
        )
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
        return False


def run_status(folder: Path, info: dict) -> str:
    """run.json's status as it stands now: 'running' only while a live process holds the
    run's lock; a run that a stopped or killed process left 'running' is 'stopped' (the same
    `run` command resumes it)."""
    status = str(info.get("status", "?"))
    if status == "running" and not RunLock(folder).in_use():
        return "stopped"
    return status


def read_run_file(path: Path, what_to_do: str) -> dict:
    """A run's JSON file, or a one-line RunError naming it, what is wrong and `what_to_do`."""
    try:
        return read_json(path)
    except RunError as e:
        raise RunError(f"{e}. {what_to_do}") from None
