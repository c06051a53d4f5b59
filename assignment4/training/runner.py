"""Run one experiment end to end, in phases: resolve where it starts, prepare the data and
the model, record its provenance, fit with the run's callbacks, finish.

A run lives in `runs/<id>/<profile>/`:

    history.json        one list per logged metric, one value per finished epoch
    samples/epoch_NNN.png   a grid from the same fixed latent points every few epochs
    checkpoints/epoch_NNN.weights.h5   the training state at every sample-grid epoch (kept)
    model.keras         the final model (keras.saving.load_model, safe mode)
    run.json            provenance: profile, epochs, data sizes, seed, versions, strategy, time
    backup/             the state after the last finished epoch, while the run is unfinished

Every file is written atomically. A killed run started again resumes after its last finished
epoch; `history.json` is indexed by epoch, so an epoch that is redone replaces its entry. A
finished run asked for more epochs continues from its last checkpoint; nothing is deleted
without `restart`. One process at a time trains a run folder (`runstate.RunLock`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from assignment4.errors import ConfigError, RunError
from assignment4.fileio import atomic_path, write_json
from assignment4.training import profiles, provenance, resume
from assignment4.training.callbacks import (
    NaNGuard,
    NonFiniteLoss,
    RunRecorder,
    SampleGrid,
    StopOnSignal,
    fixed_noise,
)
from assignment4.training.distribution import (
    STRATEGIES,
    check_workers_resume_together,
    make_strategy,
    worker_folder,
)
from assignment4.training.fingerprint import KEY as FINGERPRINT_KEY
from assignment4.training.fingerprint import weights_fingerprint
from assignment4.training.monitoring import Progress, TensorBoardLog
from assignment4.training.runstate import (
    BACKUP,
    Checkpoints,
    EpochBackup,
    RunLock,
    checkpoint_epochs,
    checkpoint_path,
    load_state,
    retire_final_metrics,
)


def run_dir(exp_id: str, profile: str, runs: str | os.PathLike = "runs") -> Path:
    """The folder of one run: `<runs>/<id>/<profile>`."""
    return Path(runs) / exp_id / profile


@dataclass(frozen=True)
class RunPlan:
    """One call of `run_experiment`, resolved: what to train, where, and how."""

    exp: object  # an experiments.Experiment
    profile: profiles.Profile
    folder: Path
    epochs: int
    strategy: str
    tf_strategy: object  # a tf.distribute strategy, or None for one device
    seed: int
    data_dir: str | os.PathLike | None
    verbose: int | str
    restart: bool

    @property
    def name(self) -> str:
        return f"{self.exp.id} ({self.profile.name})"

    @property
    def restart_hint(self) -> str:
        return f"pass --restart to train {self.name} from scratch"

    def log(self, message: str) -> None:
        if self.verbose != 0:
            print(message, flush=True)


def run_experiment(
    exp,
    profile: str,
    runs: str | os.PathLike = "runs",
    *,
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
    tf_strategy = make_strategy(strategy)  # first: logical devices precede the runtime
    folder = worker_folder(run_dir(exp.id, prof.name, runs), tf_strategy)
    plan = RunPlan(
        exp, prof, folder, n_epochs, strategy, tf_strategy, seed, data_dir, verbose, restart
    )
    with RunLock(folder, plan.log):
        return _train(plan)


def _train(plan: RunPlan) -> Path:
    """`run_experiment` once the run folder's lock is held: the phases in order."""
    previous, point = _resolve(plan)
    if point is None:
        return plan.folder
    model, data = _prepare(plan, previous, point)
    info = _record(plan, previous, point, model, data)
    recorder = RunRecorder(plan.folder, info)
    _fit(plan, model, data, _callbacks(plan, recorder), point.epoch)
    return _finish(plan, model, info, recorder)


# --- resolve: where the run starts ------------------------------------------------------------


def _resolve(plan: RunPlan) -> tuple[dict | None, resume.ResumePoint | None]:
    """The earlier run.json and the point to resume from; (previous, None) when the run is
    already complete at the epochs asked for."""
    folder = plan.folder
    if plan.restart and folder.exists():
        shutil.rmtree(folder)
    previous = resume.read_previous(
        folder, plan.exp, plan.profile.name, plan.seed, plan.epochs, plan.restart_hint
    )
    complete = previous is not None and previous.get("status") == "complete"
    if complete and previous.get("epochs") == plan.epochs and (folder / "model.keras").exists():
        plan.log(
            f"{plan.name} is already complete: {folder}. "
            "Pass --restart (restart=True) to train it again."
        )
        return previous, None
    point = resume.resume_point(folder, previous, plan.restart_hint)
    if point.extending:
        for kept in retire_final_metrics(folder, point.epoch):
            plan.log(f"The final model's metrics now belong to its epoch: {kept.name}")
    for stale in checkpoint_epochs(folder):  # a later epoch's state, from before a resume
        if stale > point.epoch:
            checkpoint_path(folder, stale).unlink(missing_ok=True)
    return previous, point


# --- prepare: data and model ------------------------------------------------------------------


@dataclass(frozen=True)
class RunData:
    train: object  # tf.data pipelines
    test: object
    n_train: int
    n_test: int
    precision: str


def _prepare(plan: RunPlan, previous: dict | None, point: resume.ResumePoint):
    """The data pipelines and the model, built under the run's precision, in the state the
    run continues from (a damaged file stops the run before anything is written)."""
    exp = plan.exp
    keras.utils.set_random_seed(plan.seed)
    train, test = exp.datasets(plan.profile.name, seed=plan.seed, data_dir=plan.data_dir)
    n_train, n_test = exp.data_sizes(plan.profile.name, data_dir=plan.data_dir)
    precision = resume.run_precision(exp, previous, plan.log)
    model = exp.build(strategy=plan.tf_strategy, seed=plan.seed, precision=precision)
    if point.weights is not None:
        load_state(model, point.weights, point.seeds, point.what_to_do)
    if plan.strategy == "multiworker":
        check_workers_resume_together(plan.tf_strategy, point.epoch, plan.name)
    return model, RunData(train, test, n_train, n_test, precision)


# --- record: provenance in run.json -----------------------------------------------------------


def _record(plan: RunPlan, previous: dict | None, point, model, data: RunData) -> dict:
    """run.json as the run starts (or continues), and one line saying which."""
    exp, previous = plan.exp, previous or {}
    replicas = plan.tf_strategy.num_replicas_in_sync if plan.tf_strategy is not None else 1
    info = {
        **{k: getattr(exp, k) for k in ("id", "title", "figure", "table", "dataset", "family")},
        "profile": plan.profile.name,
        "epochs": point.epoch,
        "epochs_planned": plan.epochs,
        "batch_size": exp.batch_size,
        # the hyper-parameters as trained; reporting.captions says them in words
        "model": exp.model,
        "optimizers": exp.optimizers,
        "precision": data.precision,
        "train_size": data.n_train,
        "test_size": data.n_test,
        "seed": plan.seed,
        "strategy": plan.strategy,
        "replicas": replicas,
        "jit_compile": bool(model.jit_compile),
        "steps_per_execution": model.steps_per_execution,
        "parameters": int(model.count_params()),
        "devices": provenance.devices(),
        "versions": provenance.versions(),
        "started_at": previous.get("started_at", provenance.now()),
        "attempts": previous.get("attempts", 0) + 1,
        "wall_time_s": previous.get("wall_time_s", 0.0),
        "status": "running",
    }
    plan.log(_start_line(plan, point, data, replicas))
    plan.folder.mkdir(parents=True, exist_ok=True)
    write_json(info, plan.folder / "run.json")
    return info


def _start_line(plan: RunPlan, point, data: RunData, replicas: int) -> str:
    exp, n = plan.exp, plan.epochs
    if point.extending:
        return (
            f"Extending {plan.name} from epoch {point.epoch} to {n}: continuing from "
            f"{checkpoint_path(plan.folder, point.epoch).name}"
        )
    if point.epoch:
        return f"Resuming {plan.name} after epoch {point.epoch}/{n} from {point.weights.parent}"
    return (
        f"Training {exp.id} ({exp.title}) on {exp.dataset}: profile {plan.profile.name}, "
        f"{n} epochs, {data.n_train} training images, batch {exp.batch_size}, "
        f"{replicas} replica(s), strategy {plan.strategy}, precision {data.precision}"
    )


# --- fit --------------------------------------------------------------------------------------


def _callbacks(plan: RunPlan, recorder: RunRecorder) -> list:
    """The run's callbacks, in the order that keeps its files consistent at every moment."""
    folder, prof = plan.folder, plan.profile
    z = fixed_noise(plan.exp.latent_dim, plan.seed)
    grid = SampleGrid(folder / "samples", z, prof.sample_every, plan.epochs)
    return [
        NaNGuard(),  # first: a NaN epoch must not reach the history or the backup
        recorder,  # before the backup: an epoch recorded but not backed up is redone
        grid,
        TensorBoardLog(folder),  # after the history and the grids: it logs what they wrote
        Progress(plan.exp, prof.name, plan.epochs, None, log=plan.log),
        Checkpoints(folder, grid.due),
        EpochBackup(folder / BACKUP),
        StopOnSignal(),  # last: a signal stops training once the epoch's files are all written
    ]


def _fit(plan: RunPlan, model, data: RunData, callbacks: list, initial_epoch: int) -> None:
    """`model.fit` from `initial_epoch`, with failures turned into one-line RunErrors."""
    stop = callbacks[-1]
    try:
        with stop.installed():
            model.fit(
                data.train,
                epochs=plan.epochs,
                initial_epoch=initial_epoch,
                validation_data=data.test if plan.exp.family == "vae" else None,
                callbacks=callbacks,
                verbose=_fit_verbosity(plan.verbose),
                shuffle=False,  # the pipeline shuffles, seeded
            )
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as e:
        if plan.strategy != "multiworker":
            raise
        text = re.sub(r"\{\{.*?\}\}\s*", "", str(e)).strip()  # TensorFlow's node names
        reason = (text.splitlines() or [type(e).__name__])[0][:160].strip()
        raise RunError(
            f"{plan.name}: the cluster lost a worker ({reason}). Finished epochs are saved in "
            f"{plan.folder}; start every worker again with the same command to resume."
        ) from None
    except NonFiniteLoss as e:
        raise RunError(
            f"{plan.name}: {e}. Training stopped; the artifacts of the {e.epoch - 1} finished "
            f"epoch(s) are kept in {plan.folder}. Try a lower learning rate or another seed."
        ) from None


# --- finish -----------------------------------------------------------------------------------


def _finish(plan: RunPlan, model, info: dict, recorder: RunRecorder) -> Path:
    """The final model, run.json marked complete, and the backup removed (the last epoch's
    state stays in checkpoints/)."""
    folder = plan.folder
    with atomic_path(folder / "model.keras", suffix=".keras") as tmp:
        model.save(tmp)
    info.update(
        status="complete",
        finished_at=provenance.now(),
        wall_time_s=recorder.wall_time(),
        peak_rss_mb=provenance.peak_rss_mb(),
    )
    info[FINGERPRINT_KEY] = weights_fingerprint(model)  # what a metrics file must match
    write_json(info, folder / "run.json")
    shutil.rmtree(folder / BACKUP, ignore_errors=True)
    plan.log(f"Finished {plan.name} in {info['wall_time_s']:.0f} s. Artifacts: {folder}")
    return folder


def _fit_verbosity(verbose):
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return verbose
