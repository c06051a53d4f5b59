"""Run one experiment end to end: callbacks, artifacts, resume after a crash.

A run lives in `runs/<id>/<profile>/`:

    history.json        one list per logged metric, one value per finished epoch
    samples/epoch_NNN.png   a grid from the same fixed latent points every few epochs
    model.keras         the final model (keras.saving.load_model, safe mode)
    run.json            provenance: profile, epochs, data sizes, seed, versions, strategy, time
    backup/             Keras' BackupAndRestore state while the run is unfinished

Every file is written atomically. A killed run started again resumes after its last finished
epoch; `history.json` is indexed by epoch, so an epoch that is redone replaces its entry.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import keras
import numpy as np
import psutil
import tensorflow as tf

import assignment4
from assignment4.errors import ConfigError, RunError
from assignment4.fileio import atomic_path, read_json, write_json
from assignment4.monitoring import Progress, TensorBoardLog, projected_time  # noqa: F401

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
            split_cpu(int(os.environ[CPU_DEVICES_ENV]))
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # several machines, described by the TF_CONFIG variable
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"Unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")


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

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if done == 1 or done % self.every == 0 or done == self.epochs:
            save_sample_grid(self.model, self.z, self.folder / f"epoch_{done:03d}.png")


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, with a checkpoint that survives a kill at any moment.

    Keras writes `latest.weights.h5` in place: a kill during that write leaves half a file
    that cannot be resumed from. Here each epoch's weights go to a new file, written
    atomically, and only then does the metadata naming that file replace the old one
    (atomically too). The pair on disk is always a consistent, finished epoch.
    """

    def _save_model(self):
        folder = Path(self.backup_dir)
        name = f"epoch_{self._current_epoch:04d}.weights.h5"
        with atomic_path(folder / name, suffix=".weights.h5") as tmp:
            self.model.save_weights(str(tmp), overwrite=True)
        write_json(
            {"epoch": self._current_epoch, "batch": self._last_batch_seen, "weights": name},
            self._training_metadata_path,
        )
        for old in folder.glob("epoch_*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def _load_model(self):
        meta_path = Path(self._training_metadata_path)
        if not meta_path.exists():
            return
        meta = read_json(meta_path)
        weights = Path(self.backup_dir) / str(meta.get("weights", ""))
        if not weights.is_file():
            raise RunError(
                f"{meta_path} names {weights.name}, which is missing. Delete {self.backup_dir} "
                "to start the run over, or pass --restart."
            )
        self.model.load_weights(str(weights))
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
        restart: discard an existing run of this profile and start over.

    Returns:
        The run folder.

    Raises:
        ConfigError: invalid epochs or strategy. RunError: a non-finite loss (the message
        names the epoch; earlier epochs' artifacts are kept).
    """
    from assignment4 import experiments

    prof = experiments.profile(profile)
    n_epochs = exp.epochs(prof.name) if epochs is None else epochs
    if not isinstance(n_epochs, int) or n_epochs <= 0:
        raise ConfigError(f"epochs must be a positive integer, got {n_epochs!r}")
    if strategy not in STRATEGIES:
        raise ConfigError(f"Unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}.")
    folder = run_dir(exp.id, prof.name, runs)
    backup = folder / "backup"
    info_path = folder / "run.json"
    log = _printer(verbose)

    if restart and folder.exists():
        shutil.rmtree(folder)
    previous = read_json(info_path) if info_path.exists() else None
    if previous and previous.get("status") == "complete":
        if previous.get("epochs_planned") == n_epochs and (folder / "model.keras").exists():
            log(
                f"{exp.id} ({prof.name}) is already complete: {folder}. "
                "Pass --restart (restart=True) to train it again."
            )
            return folder
        shutil.rmtree(folder)  # finished with other settings: start over
        previous = None

    tf_strategy = make_strategy(strategy)  # first: logical devices precede the runtime
    keras.utils.set_random_seed(seed)
    replicas = tf_strategy.num_replicas_in_sync if tf_strategy is not None else 1
    train, test = exp.datasets(prof.name, seed=seed, data_dir=data_dir)
    n_train, n_test = exp.data_sizes(prof.name, data_dir=data_dir)
    model = exp.build(strategy=tf_strategy, seed=seed)

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
        "settings": exp.settings_text(),
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
    resumed = _backup_epoch(backup)
    if resumed:
        info["epochs"] = resumed
        log(f"Resuming {exp.id} ({prof.name}) after epoch {resumed}/{n_epochs} from {backup}")
    else:
        log(
            f"Training {exp.id} ({exp.title}) on {exp.dataset}: profile {prof.name}, "
            f"{n_epochs} epochs, {n_train} training images, batch {exp.batch_size}, "
            f"{replicas} replica(s), strategy {strategy}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_json(info, info_path)

    recorder = RunRecorder(folder, info)
    callbacks = [
        NaNGuard(),  # first: a NaN epoch must not reach the history or the backup
        recorder,  # before the backup: an epoch recorded but not backed up is redone
        SampleGrid(
            folder / "samples", fixed_noise(exp.latent_dim, seed), prof.sample_every, n_epochs
        ),
        TensorBoardLog(folder),  # after the history and the grids: it logs what they wrote
        Progress(exp, prof.name, n_epochs, None, log=log),
        AtomicBackupAndRestore(str(backup), delete_checkpoint=False),
    ]
    try:
        model.fit(
            train,
            epochs=n_epochs,
            validation_data=test if exp.family == "vae" else None,
            callbacks=callbacks,
            verbose=_fit_verbosity(verbose),
            shuffle=False,  # the pipeline shuffles, seeded
        )
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
    write_json(info, info_path)
    shutil.rmtree(backup, ignore_errors=True)  # only once the final model is safely on disk
    log(f"Finished {exp.id} ({prof.name}) in {info['wall_time_s']:.0f} s. Artifacts: {folder}")
    return folder


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


def _backup_epoch(backup: Path) -> int:
    """Epochs finished according to a BackupAndRestore folder (0 if none)."""
    meta = backup / "training_metadata.json"
    if not meta.exists():
        return 0
    try:
        # Keras records the index of the next epoch, i.e. the number of finished epochs.
        return max(0, int(read_json(meta).get("epoch", 0)))
    except (RunError, ValueError, TypeError):
        return 0


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


# --- using a finished run ---------------------------------------------------------------


def load_run_model(exp_id: str, profile: str, runs: str | os.PathLike = "runs"):
    """The final model of a finished run (safe-mode `keras.saving.load_model`)."""
    from assignment4 import experiments  # registers the model classes

    experiments.get(exp_id)
    path = run_dir(exp_id, profile, runs) / "model.keras"
    if not path.exists():
        raise RunError(
            f"No finished run of {exp_id} under profile {profile!r}: {path} does not exist. "
            f"Train it first: python -m assignment4 run {exp_id} --profile {profile}"
            + (f" --runs {runs}" if str(runs) != "runs" else "")
        )
    return keras.saving.load_model(path)


def sample_run(
    exp_id: str,
    profile: str,
    n: int,
    out: str | os.PathLike,
    runs: str | os.PathLike = "runs",
    seed: int | None = None,
) -> Path:
    """Write `n` generated images of a finished run as a uint8 .npy in the data set's layout."""
    if n <= 0:
        raise ConfigError(f"-n must be positive, got {n}")
    out = Path(out)
    if out.suffix != ".npy":
        raise ConfigError(f"--out must name a .npy file, got {out}")
    images = load_run_model(exp_id, profile, runs).sample(n, seed=seed)
    with atomic_path(out, suffix=".npy") as tmp:
        np.save(tmp, images)
    return out


# --- what the runs hold ---------------------------------------------------------------------

HEADLINE = {"vae": "loss", "gan": "d_loss", "wgan": "em_estimate"}


def status(profile: str, runs: str | os.PathLike = "runs") -> list[dict]:
    """One row per experiment: state, epochs, parameters, wall time, peak memory, and the
    headline metric after the first and the last finished epoch.
    """
    from assignment4 import experiments

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
                state=info.get("status", "?"),
                epochs=f"{info.get('epochs', 0)}/{info.get('epochs_planned', '?')}",
                parameters=info.get("parameters"),
                wall_time_s=info.get("wall_time_s"),
                peak_rss_mb=info.get("peak_rss_mb"),
                metric=HEADLINE[exp.family],
                first=values[0] if values else None,
                last=values[-1] if values else None,
            )
        rows.append(row)
    return rows


def format_status(rows: list[dict]) -> str:
    """`status` rows as a plain-text table."""
    cols = ["id", "state", "epochs", "parameters", "wall_time_s", "peak_rss_mb", "metric",
            "first", "last"]  # fmt: skip

    def cell(v):
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    table = [cols] + [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(cols))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
