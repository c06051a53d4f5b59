"""What the report reads of a run, and which run of each experiment it shows.

A run is read from its files only (history.json, run.json, the metrics files); metrics count
only for the weights they scored (`training.fingerprint`). The report shows either the runs of
one profile, or, for each experiment, its longest finished run: `full` where it exists,
otherwise `quick`, otherwise `smoke`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assignment4 import fileio
from assignment4.errors import RunError
from assignment4.training import fingerprint
from assignment4.training.runstate import run_status

#: longest first: at equal epochs the earlier profile wins
PROFILE_ORDER = ("full", "quick", "smoke")
#: the profile a missing run is suggested with when the report shows the longest runs
SUGGESTED_PROFILE = "quick"


@dataclass
class RunInfo:
    """What one experiment's run folder holds for a profile (None where a file is missing)."""

    exp: Any
    run_dir: Path
    history: dict | None = None
    provenance: dict | None = None
    metrics: dict | None = None  # metrics.json, when it scored the final model (`fingerprint`)
    problem: str | None = None  # why a present run could not be read
    checkpoint_metrics: dict[int, dict] = field(default_factory=dict)  # metrics_epoch_NNN.json
    unscored: dict | None = None  # a metrics.json that scored other weights than model.keras

    @property
    def exists(self) -> bool:
        return self.history is not None

    @property
    def profile(self) -> str:
        return str((self.provenance or {}).get("profile") or self.run_dir.name)

    @property
    def finished(self) -> bool:
        return self.exists and (self.provenance or {}).get("status") == "complete"

    @property
    def epochs(self) -> int:
        if self.provenance and "epochs" in self.provenance:
            return int(self.provenance["epochs"])
        return max(
            (len(v) for v in (self.history or {}).values() if isinstance(v, list)), default=0
        )


def load_run(exp: Any, runs: str | os.PathLike, profile: str) -> RunInfo:
    """Read history.json, run.json and metrics.json of `runs/<id>/<profile>/` where present.

    Metrics files count only for the weights they scored (`fingerprint.bound`): metrics.json
    for the final model.keras of a finished run, metrics_epoch_NNN.json for the checkpoint
    kept for that epoch. A metrics.json of other weights is kept aside as `unscored`.
    """
    info = RunInfo(exp, Path(runs) / exp.id / profile)
    try:
        for attr, name in (("history", "history"), ("provenance", "run"), ("metrics", "metrics")):
            if (info.run_dir / f"{name}.json").exists():
                setattr(info, attr, fileio.read_json(info.run_dir / f"{name}.json"))
        for path in sorted(info.run_dir.glob("metrics_epoch_[0-9][0-9][0-9].json")):
            info.checkpoint_metrics[int(path.stem[-3:])] = fileio.read_json(path)
    except RunError as e:
        info.history, info.problem = None, str(e)
    if info.provenance is not None:
        info.provenance["status"] = run_status(info.run_dir, info.provenance)
    if info.metrics is not None and fingerprint.final_metrics(info.run_dir, info.metrics) is None:
        info.metrics, info.unscored = None, info.metrics
    info.checkpoint_metrics = fingerprint.checkpoint_metrics(info.run_dir, info.checkpoint_metrics)
    return info


def longest_run(exp: Any, runs: str | os.PathLike) -> RunInfo:
    """The experiment's finished run with the most epochs; without one, its unfinished run
    with the most; without any, the (missing) run of `SUGGESTED_PROFILE`."""
    found = [load_run(exp, runs, p) for p in PROFILE_ORDER]
    for candidates in ([i for i in found if i.finished], [i for i in found if i.exists]):
        if candidates:
            return max(candidates, key=lambda i: (i.epochs, -PROFILE_ORDER.index(i.profile)))
    return found[PROFILE_ORDER.index(SUGGESTED_PROFILE)]


def load_runs(runs, profile: str | None, registry: Any | None = None) -> list[RunInfo]:
    """The run of every experiment of the registry: of `profile`, or with None, the longest."""
    if registry is None:
        from assignment4 import experiments as registry  # imports TensorFlow: only when needed
    exps = [registry.get(exp_id) for exp_id in registry.EXPERIMENT_IDS]
    if profile is None:
        return [longest_run(exp, runs) for exp in exps]
    return [load_run(exp, runs, profile) for exp in exps]


def profiles_label(infos: Sequence[RunInfo], profile: str | None) -> str:
    """'quick' for one profile; 'full, quick' for the longest runs of several profiles."""
    if profile is not None:
        return profile
    shown = {i.profile for i in infos if i.exists}
    return ", ".join(p for p in PROFILE_ORDER if p in shown) or SUGGESTED_PROFILE


def quality_points(info: RunInfo) -> list[tuple[int, float, float]]:
    """(epoch, classifier IS, FD) of a run's scored checkpoints and of its end, by epoch."""
    scored = dict(info.checkpoint_metrics)
    if info.metrics:
        scored[int(info.metrics.get("epoch") or info.epochs)] = info.metrics
    return [
        (epoch, float(m["classifier_is"]), float(m["fd"]))
        for epoch, m in sorted(scored.items())
        if m.get("classifier_is") is not None and m.get("fd") is not None
    ]


def run_command(exp_id: str, profile: str, runs: str | os.PathLike, verb: str = "run") -> str:
    """The command that makes (or with `verb`, evaluates) a run."""
    runs_flag = "" if Path(runs) == Path("runs") else f" --runs {Path(runs).as_posix()}"
    return f"python -m assignment4 {verb} {exp_id} --profile {profile}{runs_flag}"


@dataclass(frozen=True)
class SettingPoint:
    """An experiment's scored model at one setting: where it comes from, and its metrics."""

    source: str  # 'quick run', 'full run at epoch 80', 'full run'
    epochs: int
    metrics: dict | None  # None: not scored yet
    made: bool = True  # False: a quick run that does not exist yet


def quick_against_full(info: RunInfo, runs: str | os.PathLike) -> list[SettingPoint]:
    """The quick setting and the full setting of an experiment whose run shown is `full`.

    The quick point is the quick run's end when it is finished and scored; otherwise the full
    run's checkpoint at the quick profile's epochs (the same settings, seed and data order up
    to there), scored or not; without such a checkpoint, the quick run (made or not, scored or
    not). Empty when the run shown is not a finished full run.
    """
    if not (info.finished and info.profile == "full"):
        return []
    quick_epochs = int(getattr(info.exp, "quick_epochs", 0) or 0)
    quick = load_run(info.exp, runs, "quick")
    if quick.finished and quick.metrics:
        first = SettingPoint("quick run", quick.epochs, quick.metrics)
    elif 0 < quick_epochs < info.epochs and fingerprint.checkpoint_fingerprint(
        info.run_dir, quick_epochs
    ) != (None, None):
        at = info.checkpoint_metrics.get(quick_epochs)
        first = SettingPoint(f"full run at epoch {quick_epochs}", quick_epochs, at)
    elif 0 < quick_epochs < info.epochs:  # no checkpoint of that epoch: a quick run is needed
        first = SettingPoint("quick run", quick.epochs or quick_epochs, None, quick.exists)
    else:
        return [SettingPoint("full run", info.epochs, info.metrics)]
    return [first, SettingPoint("full run", info.epochs, info.metrics)]
