"""Run one experiment end to end: callbacks, artifacts, resume after a crash.

A run lives in `runs/<id>/<profile>/`:

    history.json        one list per logged metric, one value per finished epoch
    samples/epoch_NNN.png   a grid from the same fixed latent points every few epochs
    checkpoints/epoch_NNN.weights.h5   the training state at every sample-grid epoch (kept)
    model.keras         the final model (keras.saving.load_model, safe mode)
    run.json            provenance: profile, epochs, data sizes, seed, versions, strategy, time
    backup/             Keras' BackupAndRestore state while the run is unfinished

Every file is written atomically. A killed run started again resumes after its last finished
epoch; `history.json` is indexed by epoch, so an epoch that is redone replaces its entry. A
finished run asked for more epochs continues from its last checkpoint; nothing is deleted
without `restart`. One process at a time trains a run folder (`runstate.RunLock`).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np
import psutil
import tensorflow as tf

import assignment4
from assignment4 import profiles
from assignment4.errors import ConfigError, RunError
from assignment4.fileio import atomic_path, read_json, write_json
from assignment4.monitoring import Progress, TensorBoardLog, projected_time  # noqa: F401
from assignment4.runstate import (
    FINGERPRINT_KEY,
    Checkpoints,
    RunConflict,
    RunLock,
    checkpoint_epochs,
    checkpoint_path,
    checkpoint_seeds,
    load_state,
    read_run_file,
    retire_final_metrics,
    seed_states,
    weights_fingerprint,
)

STRATEGIES = ("default", "mirrored", "multiworker")
SAMPLE_GRID = (8, 8)


def run_dir(exp_id: str, profile: str, runs: str | os.PathLike = "runs") -> Path:
    """The folder of one run: `<runs>/<id>/<profile>`."""
    return Path(runs) / exp_id / profile


CPU_DEVICES_ENV = "ASSIGNMENT4_CPU_DEVICES"


def make_strategy(name: str):
    """A `tf.distribute` strategy by name; `None` for 'default' (one device).

    'mirrored' uses every local GPU; on a machine without GPUs, set ASSIGNMENT4_CPU_DEVICES=N
    to split the CPU into N logical devices (to try multi-replica training, as the tests do).
    """
    if name == "default":
        return None
    if name == "mirrored":
        if not tf.config.list_physical_devices("GPU") and os.environ.get(CPU_DEVICES_ENV):
            split_cpu(cpu_devices_setting())
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # several machines, described by the TF_CONFIG variable
        check_tf_config()
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except ValueError as e:  # what TensorFlow itself finds wrong with TF_CONFIG
            raise ConfigError(f"TF_CONFIG: {e}") from None
    raise ConfigError(f"Unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")


def cpu_devices_setting() -> int:
    """$ASSIGNMENT4_CPU_DEVICES as a positive integer, or a ConfigError saying what it holds."""
    text = os.environ.get(CPU_DEVICES_ENV, "")
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={text!r} is not a positive integer: set it to the number of "
            "logical CPU devices to train on (e.g. 2), or unset it."
        )
    return n


TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
    '"index": 0}}'
)


def check_tf_config() -> dict:
    """TF_CONFIG, parsed and checked: a cluster of host:port lists and this task in it."""
    text = os.environ.get("TF_CONFIG", "")
    see = f"Set it on every worker, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (docs/gpus.md)."
    if not text.strip():
        raise ConfigError(
            "--strategy multiworker needs TF_CONFIG, which is not set. " + see
            + " One machine: use --strategy mirrored."
        )  # fmt: skip
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}). {see}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if (
        not isinstance(cluster, dict)
        or not all(
            isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v)
            for v in cluster.values()
        )
        or not cluster
    ):
        raise ConfigError(
            'TF_CONFIG needs "cluster": a job name -> list of "host:port" (e.g. "worker": '
            f'["host1:12345", "host2:12345"]), got {cluster!r}. {see}'
        )
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(
            f'TF_CONFIG needs "task" with a "type" among {sorted(cluster)} and an "index", '
            f"got {task!r}. {see}"
        )
    index, members = task.get("index"), cluster[task["type"]]
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(
            f'TF_CONFIG "task" index {index!r} is not one of the {len(members)} '
            f'"{task["type"]}" entries (0 to {len(members) - 1}). {see}'
        )
    return config


def split_cpu(n: int) -> None:
    """Present the CPU as `n` logical devices (before TensorFlow's runtime starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    config = [tf.config.LogicalDeviceConfiguration()] * n
    if tf.config.get_logical_device_configuration(cpu) == config:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, config)
    except RuntimeError:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={n} came too late: TensorFlow had already started. Set it "
            "before the process starts (e.g. in the shell that runs python -m assignment4)."
        ) from None


def versions() -> dict:
    """Package versions recorded in every artifact."""
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "assignment4": assignment4.__version__,
    }


def onednn_enabled() -> bool:
    """Whether TensorFlow runs its oneDNN CPU kernels (see assignment4/__init__.py)."""
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def devices() -> list[str]:
    gpus = tf.config.list_logical_devices("GPU")
    kernels = ", oneDNN kernels" if onednn_enabled() else ", Eigen kernels"
    return [d.name for d in gpus] or [f"CPU ({os.cpu_count()} cores{kernels})"]


def device_line() -> str:
    """One line: TensorFlow and Keras versions, the devices and kernels that will be used.

    Physical devices only: the runtime is not started, so logical devices can still be set.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
                 for g in gpus]  # fmt: skip
        where = f"{len(gpus)} GPU(s): {', '.join(names)} (cuDNN kernels)"
    else:
        kernels = "oneDNN" if onednn_enabled() else "Eigen"
        where = f"CPU ({os.cpu_count()} cores, {kernels} kernels), no GPU visible"
    return f"TensorFlow {tf.__version__}, Keras {keras.__version__} on {where}"


def fixed_noise(latent_dim: int, seed: int, n: int = SAMPLE_GRID[0] * SAMPLE_GRID[1]):
    """The latent points of every sample grid of a run: the same on every resume."""
    return np.random.default_rng([seed, 2024]).standard_normal((n, latent_dim)).astype("float32")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --- callbacks ----------------------------------------------------------------------------


class NaNGuard(keras.callbacks.Callback):
    """Stop at the end of an epoch whose losses are not finite, before anything is saved."""

    def on_epoch_end(self, epoch, logs=None):
        bad = {k: v for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            names = ", ".join(f"{k}={v}" for k, v in bad.items())
            raise NonFiniteLoss(epoch + 1, names)


class NonFiniteLoss(RunError):
    def __init__(self, epoch: int, names: str):
        self.epoch = epoch
        super().__init__(f"non-finite loss at epoch {epoch} ({names})")


class RunRecorder(keras.callbacks.Callback):
    """After each epoch: the epoch's logs into history.json, the progress into run.json.

    History is indexed by epoch: after a resume, an epoch that is trained again replaces
    its old entry instead of being appended twice.
    """

    def __init__(self, folder: Path, info: dict):
        super().__init__()
        self.folder = folder
        self.info = info
        self.history_path = folder / "history.json"
        self._prior_wall = float(info.get("wall_time_s", 0.0))
        self._t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        history = read_json(self.history_path) if self.history_path.exists() else {}
        entries = {k: float(v) for k, v in (logs or {}).items()}
        entries["epoch_seconds"] = time.perf_counter() - self._epoch_t0
        for key, value in entries.items():
            history[key] = list(history.get(key, []))[:epoch] + [value]
        write_json(history, self.history_path)
        self.info.update(epochs=epoch + 1, wall_time_s=self.wall_time())
        write_json(self.info, self.folder / "run.json")

    def wall_time(self) -> float:
        return round(self._prior_wall + time.perf_counter() - self._t0, 2)


class SampleGrid(keras.callbacks.Callback):
    """Every `every` epochs (and after the first and last), a grid from fixed latent points."""

    def __init__(self, folder: Path, z: np.ndarray, every: int, epochs: int):
        super().__init__()
        self.folder, self.z, self.every, self.epochs = folder, z, max(1, every), epochs

    def due(self, done: int) -> bool:
        """Whether the epoch numbered `done` (from 1) gets a grid (and a checkpoint)."""
        return done == 1 or done % self.every == 0 or done == self.epochs

    def on_epoch_end(self, epoch, logs=None):
        if self.due(epoch + 1):
            save_sample_grid(self.model, self.z, self.folder / f"epoch_{epoch + 1:03d}.png")


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, with a checkpoint that survives a kill at any moment.

    Keras writes `latest.weights.h5` in place: a kill during that write leaves half a file
    that cannot be resumed from. Here each epoch's weights go to a new file, written
    atomically, and only then does the metadata naming that file replace the old one
    (atomically too). The pair on disk is always a consistent, finished epoch. The metadata
    also holds the models' seed states (`runstate.seed_states`), which `save_weights` omits.

    `what_to_do` ends the message of a damaged backup (e.g. where the last checkpoint is).

    Tied to Keras 3.15 (`optimizers.KERAS_VERSION`, checked by a test): it overrides the
    private `_save_model` / `_load_model` hooks of `BackupAndRestore` and reads its private
    `_current_epoch`, `_last_batch_seen` and `_training_metadata_path`.
    """

    def __init__(self, backup_dir: str, what_to_do: str = "Pass --restart.", **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.what_to_do = what_to_do
        self.restored = False

    def restore(self, model) -> None:
        """Load the backup into `model` now (before `fit`), so a damaged file fails early."""
        self.set_model(model)
        self._load_model()
        self.restored = True

    def on_train_begin(self, logs=None):
        if not self.restored:
            self._load_model()

    def _save_model(self):
        folder = Path(self.backup_dir)
        name = f"epoch_{self._current_epoch:04d}.weights.h5"
        with atomic_path(folder / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        write_json(
            {
                "epoch": self._current_epoch,
                "batch": self._last_batch_seen,
                "weights": name,
                "seed_states": seed_states(self.model),
            },
            self._training_metadata_path,
        )
        for old in folder.glob("epoch_*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _load_model(self):
        meta_path = Path(self._training_metadata_path)
        if not meta_path.exists():
            return
        meta = read_run_file(meta_path, self.what_to_do)
        weights = Path(self.backup_dir) / str(meta.get("weights", ""))
        load_state(self.model, weights, meta.get("seed_states"), self.what_to_do)
        self.model._initial_epoch = int(meta["epoch"])


def save_sample_grid(model, z: np.ndarray, path: Path) -> Path:
    from assignment4.plots import image_grid, save_png

    return save_png(image_grid(model.generate(z), *SAMPLE_GRID), path)


# --- the run ------------------------------------------------------------------------------


def run_experiment(
    exp,
    profile: str,
    runs: str | os.PathLike = "runs",
    strategy: str = "default",
    epochs: int | None = None,
    seed: int = 0,
    data_dir=None,
    verbose: int | str = "auto",
    restart: bool = False,
) -> Path:
    """Train `exp` under `profile`, writing artifacts to `runs/<id>/<profile>/`.

    Args:
        exp: an `experiments.Experiment`.
        profile: 'full', 'quick' or 'smoke'.
        runs: root folder of all runs.
        strategy: 'default', 'mirrored' or 'multiworker'.
        epochs: override the profile's epoch count.
        seed: seeds initial weights, training noise, shuffling and the sample grids.
        verbose: Keras' fit verbosity; 'auto' shows a progress bar on a terminal and one
            line per epoch elsewhere (logs, notebooks).
        restart: discard an existing run of this profile and start over. Without it a
            finished run is continued to `epochs` when that is more, and never deleted.

    Returns:
        The run folder.

    Raises:
        ConfigError: invalid epochs, strategy, ASSIGNMENT4_CPU_DEVICES or TF_CONFIG.
        RunConflict: the run cannot continue as asked (fewer epochs, another seed) or another
        live process trains it. RunError: a damaged run file, a failed write, or a non-finite
        loss (the message names the epoch; earlier epochs' artifacts are kept).
        Interrupted (a KeyboardInterrupt): SIGTERM or Ctrl-C, after the last step's writes.
    """
    prof = profiles.profile(profile)
    n_epochs = exp.epochs(prof.name) if epochs is None else epochs
    if not isinstance(n_epochs, int) or n_epochs <= 0:
        raise ConfigError(f"epochs must be a positive integer, got {n_epochs!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}.")
    folder = run_dir(exp.id, prof.name, runs)
    log = _printer(verbose)
    tf_strategy = make_strategy(strategy)  # first: logical devices precede the runtime
    folder = worker_folder(folder, tf_strategy)
    with RunLock(folder, log):
        return _train(
            exp, prof, folder, n_epochs, strategy, tf_strategy, seed, data_dir, verbose, restart
        )


def _check_workers_resume_together(tf_strategy, resumed: int, name: str) -> None:
    """Every worker must continue from the same epoch, or they would train different weights.

    One all-reduce of (epoch, epoch²) over the replicas: the values are all equal exactly when
    (Σ epoch)² = n · Σ epoch². Every worker sees the same sums, so all stop together.
    """
    local = tf_strategy.run(lambda: tf.constant([float(resumed), float(resumed) ** 2]))
    total, squares = tf_strategy.reduce("SUM", local, axis=None).numpy().tolist()
    n = tf_strategy.num_replicas_in_sync
    if abs(total**2 - n * squares) > 0.5:
        raise RunError(
            f"{name}: the workers would resume from different epochs (this one after epoch "
            f"{resumed}, their mean {total / n:g}) and so train different weights. Give every "
            "worker the backup and checkpoints of the same epoch, or start all with --restart."
        )


def worker_folder(folder: Path, tf_strategy) -> Path:
    """The folder this process writes: the run folder, or a worker's own beside it.

    Under `multiworker` every worker runs the same steps and callbacks (their collective
    operations must match), but only the chief (worker 0, or the task of type 'chief') writes
    the run folder; worker i writes `<profile>.worker_<i>/` beside it, which also holds its
    own backup to resume from.
    """
    resolver = getattr(tf_strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return folder
    jobs = resolver.cluster_spec().as_dict()
    chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs
    )
    if chief:
        return folder
    return folder.parent / f"{folder.name}.{resolver.task_type}_{resolver.task_id}"


def _train(
    exp, prof, folder, n_epochs, strategy, tf_strategy, seed, data_dir, verbose, restart
) -> Path:
    """`run_experiment` once the run folder's lock is held."""
    backup = folder / "backup"
    info_path = folder / "run.json"
    log = _printer(verbose)
    restart_hint = f"pass --restart to train {exp.id} ({prof.name}) from scratch"

    if restart and folder.exists():
        shutil.rmtree(folder)
    previous = _read_previous(folder, exp, prof.name, seed, n_epochs, restart_hint)
    if previous and previous.get("status") == "complete":
        if previous.get("epochs") == n_epochs and (folder / "model.keras").exists():
            log(
                f"{exp.id} ({prof.name}) is already complete: {folder}. "
                "Pass --restart (restart=True) to train it again."
            )
            return folder
        _extend_from_checkpoint(folder, backup, int(previous["epochs"]), restart_hint)
        for kept in retire_final_metrics(folder, int(previous["epochs"])):
            log(f"The final model's metrics now belong to its epoch: {kept.name}")
    damaged_backup = _backup_hint(folder, restart_hint)
    resumed = _backup_epoch(backup, damaged_backup)
    if not resumed:
        resumed = _resume_from_checkpoint(folder, backup)
    for stale in checkpoint_epochs(folder):  # a later epoch's state, from before a resume
        if stale > resumed:
            checkpoint_path(folder, stale).unlink(missing_ok=True)

    keras.utils.set_random_seed(seed)
    replicas = tf_strategy.num_replicas_in_sync if tf_strategy is not None else 1
    train, test = exp.datasets(prof.name, seed=seed, data_dir=data_dir)
    n_train, n_test = exp.data_sizes(prof.name, data_dir=data_dir)
    run_precision = _run_precision(exp, previous, log)
    model = exp.build(strategy=tf_strategy, seed=seed, precision=run_precision)
    if strategy == "multiworker":
        _check_workers_resume_together(tf_strategy, resumed, f"{exp.id} ({prof.name})")

    info = {
        "id": exp.id,
        "title": exp.title,
        "figure": exp.figure,
        "table": exp.table,
        "dataset": exp.dataset,
        "family": exp.family,
        "profile": prof.name,
        "epochs": 0,
        "epochs_planned": n_epochs,
        "batch_size": exp.batch_size,
        "settings": exp.settings_text(run_precision),
        "precision": run_precision,
        "train_size": n_train,
        "test_size": n_test,
        "seed": seed,
        "strategy": strategy,
        "replicas": replicas,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": model.steps_per_execution,
        "parameters": int(model.count_params()),
        "devices": devices(),
        "versions": versions(),
        "started_at": (previous or {}).get("started_at", _now()),
        "attempts": (previous or {}).get("attempts", 0) + 1,
        "wall_time_s": (previous or {}).get("wall_time_s", 0.0),
        "status": "running",
    }
    if previous and previous.get("status") == "complete":
        info["epochs"] = resumed
        log(
            f"Extending {exp.id} ({prof.name}) from epoch {resumed} to {n_epochs}: "
            f"continuing from {checkpoint_path(folder, resumed).name}"
        )
    elif resumed:
        info["epochs"] = resumed
        log(f"Resuming {exp.id} ({prof.name}) after epoch {resumed}/{n_epochs} from {backup}")
    else:
        log(
            f"Training {exp.id} ({exp.title}) on {exp.dataset}: profile {prof.name}, "
            f"{n_epochs} epochs, {n_train} training images, batch {exp.batch_size}, "
            f"{replicas} replica(s), strategy {strategy}, precision {info['precision']}"
        )
    backup_callback = AtomicBackupAndRestore(
        str(backup), what_to_do=damaged_backup, delete_checkpoint=False
    )
    backup_callback.restore(model)  # a damaged backup stops the run before anything is written
    folder.mkdir(parents=True, exist_ok=True)
    write_json(info, info_path)

    recorder = RunRecorder(folder, info)
    grid = SampleGrid(
        folder / "samples", fixed_noise(exp.latent_dim, seed), prof.sample_every, n_epochs
    )
    stop = StopOnSignal()
    callbacks = [
        NaNGuard(),  # first: a NaN epoch must not reach the history or the backup
        recorder,  # before the backup: an epoch recorded but not backed up is redone
        grid,
        TensorBoardLog(folder),  # after the history and the grids: it logs what they wrote
        Progress(exp, prof.name, n_epochs, None, log=log),
        Checkpoints(folder, grid.due),
        backup_callback,
        stop,  # last: a signal stops training once the epoch's files are all written
    ]
    try:
        with stop.installed():
            model.fit(
                train,
                epochs=n_epochs,
                validation_data=test if exp.family == "vae" else None,
                callbacks=callbacks,
                verbose=_fit_verbosity(verbose),
                shuffle=False,  # the pipeline shuffles, seeded
            )
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as e:
        if strategy != "multiworker":
            raise
        text = re.sub(r"\{\{.*?\}\}\s*", "", str(e)).strip()  # TensorFlow's node names
        reason = (text.splitlines() or [type(e).__name__])[0][:160].strip()
        raise RunError(
            f"{exp.id} ({prof.name}): the cluster lost a worker ({reason}). Finished epochs are "
            f"saved in {folder}; start every worker again with the same command to resume."
        ) from None
    except NonFiniteLoss as e:
        kept = e.epoch - 1
        raise RunError(
            f"{exp.id} ({prof.name}): {e}. Training stopped; the artifacts of the {kept} "
            f"finished epoch(s) are kept in {folder}. Try a lower learning rate or another seed."
        ) from None

    with atomic_path(folder / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    info.update(
        status="complete",
        finished_at=_now(),
        wall_time_s=recorder.wall_time(),
        peak_rss_mb=peak_rss_mb(),
    )
    info[FINGERPRINT_KEY] = weights_fingerprint(model)  # what a metrics file must match
    write_json(info, info_path)
    # the final state stays in checkpoints/ (the last epoch always has one)
    shutil.rmtree(backup, ignore_errors=True)
    log(f"Finished {exp.id} ({prof.name}) in {info['wall_time_s']:.0f} s. Artifacts: {folder}")
    return folder


def _run_precision(exp, previous: dict | None, log) -> str:
    """The run's dtype policy: chosen at its first start (the registry's, resolved for that
    machine) and kept on every resume and extension, so that one run never changes its
    arithmetic half-way, whichever machine continues it."""
    recorded = (previous or {}).get("precision")
    if recorded is None:
        return exp.resolve_precision()
    if recorded not in ("float32", "mixed_bfloat16"):
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


# settings that a run cannot change half-way; each names the run.json key it is stored under
_FIXED_SETTINGS = ("seed", "batch_size", "train_size")


def _read_previous(folder, exp, profile, seed, n_epochs, restart_hint) -> dict | None:
    """The run.json of an earlier run of this folder, checked against this call's settings.

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
    for key in _FIXED_SETTINGS:
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


def _extend_from_checkpoint(folder: Path, backup: Path, done: int, restart_hint: str) -> None:
    """Point the backup of a finished run at its final state, so that `fit` continues it."""
    weights = checkpoint_path(folder, done)
    if not weights.is_file():
        raise RunConflict(
            f"{folder} finished {done} epochs but has no checkpoint of epoch {done} to continue "
            f"from (a run from before checkpoints were kept). Keep --epochs {done}, or "
            f"{restart_hint} (this deletes it)."
        )
    shutil.rmtree(backup, ignore_errors=True)
    _point_backup_at(backup, weights, done)


def _resume_from_checkpoint(folder: Path, backup: Path) -> int:
    """Without a backup, an unfinished run resumes from its latest checkpoint (0: none)."""
    have = checkpoint_epochs(folder)
    if not have or (folder / "model.keras").exists():
        return 0
    _point_backup_at(backup, checkpoint_path(folder, have[-1]), have[-1])
    return have[-1]


def _point_backup_at(backup: Path, weights: Path, epoch: int) -> None:
    write_json(
        {
            "epoch": epoch,
            "batch": 0,
            "weights": os.path.relpath(weights, backup),
            "seed_states": checkpoint_seeds(weights),
        },
        backup / "training_metadata.json",
    )


def _backup_hint(folder: Path, restart_hint: str) -> str:
    """What to do when the backup is damaged: fall back on the latest checkpoint, or restart."""
    have = checkpoint_epochs(folder)
    if have:
        return (
            f"Delete {folder / 'backup'} to resume from the checkpoint of epoch {have[-1]}, "
            f"or {restart_hint}."
        )
    return f"Delete {folder / 'backup'} and {restart_hint}."


class StopOnSignal(keras.callbacks.Callback):
    """SIGTERM (and Ctrl-C) stop training at the next batch end, after that step's writes.

    The first signal sets a flag that `on_train_batch_end` / `on_epoch_end` (this callback
    runs last) turn into `Interrupted`; a second Ctrl-C interrupts at once.
    """

    def __init__(self):
        super().__init__()
        self.signal_name = None

    def installed(self):
        import contextlib
        import signal
        import threading

        @contextlib.contextmanager
        def handlers():
            if threading.current_thread() is not threading.main_thread():
                yield  # signal handlers can only be set from the main thread
                return

            def handle(signum, frame):
                if self.signal_name is not None and signum == signal.SIGINT:
                    raise Interrupted(self.signal_name)
                self.signal_name = signal.Signals(signum).name

            old = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, h in old.items():
                    signal.signal(s, h)

        return handlers()

    def _check(self):
        if self.signal_name is not None:
            raise Interrupted(self.signal_name)

    def on_train_batch_end(self, batch, logs=None):
        self._check()

    def on_epoch_end(self, epoch, logs=None):
        self._check()


class Interrupted(KeyboardInterrupt):
    """Training stopped by a signal at a clean point; `signal_name` says which."""

    def __init__(self, signal_name: str):
        super().__init__(signal_name)
        self.signal_name = signal_name


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (psutil: Linux, macOS, Windows).

    Where the system keeps no peak (macOS), the current resident memory is the lower bound.
    """
    info = psutil.Process().memory_info()
    peak = getattr(info, "peak_wset", None)  # Windows
    if peak is None:
        try:
            with open("/proc/self/status") as status:  # Linux: VmHWM, the high-water mark
                line = next(s for s in status if s.startswith("VmHWM:"))
            peak = int(line.split()[1]) * 1024
        except (OSError, StopIteration, ValueError):
            peak = info.rss
    return round(peak / 2**20, 1)


def _backup_epoch(backup: Path, what_to_do: str = "Pass --restart.") -> int:
    """Epochs finished according to a BackupAndRestore folder (0 if none).

    A damaged metadata file raises a one-line RunError ending with `what_to_do`.
    """
    meta = backup / "training_metadata.json"
    if not meta.exists():
        return 0
    epoch = read_run_file(meta, what_to_do).get("epoch", 0)
    if not isinstance(epoch, int) or epoch < 0:
        raise RunError(f"{meta} is damaged (epoch {epoch!r} is not a count). {what_to_do}")
    # Keras records the index of the next epoch, i.e. the number of finished epochs.
    return epoch


def _fit_verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose


def _printer(verbose):
    quiet = verbose == 0

    def log(message: str) -> None:
        if not quiet:
            print(message, flush=True)

    return log
