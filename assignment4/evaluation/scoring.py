"""Scoring a finished run: its model and the data set loaded once, then the sample-quality
metrics of `metrics` and the diagnostics of `collapse`, written to metrics.json.

Every result carries the real-vs-real floor (training images against the test set, same n)
beside it: the best a model can do with these features.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assignment4 import data, fileio, texttable
from assignment4.errors import RunError
from assignment4.evaluation.collapse import (
    active_units,
    diagnosis,
    latent_unit_kl,
    mode_collapse,
)
from assignment4.evaluation.metrics import (
    classifier_inception_score,
    frechet_distance,
    frechet_distance_std,
    kid,
)
from assignment4.texttable import format_table
from assignment4.training import fingerprint

METRIC_KEYS = (
    "fd",
    "kid",
    "classifier_is",
    "fd_real",
    "kid_real",
    "classifier_is_real",
    "classifier_test_accuracy",
    "n_samples",
)
#: The spreads beside them: KID's standard deviation over its subsets, FD's over bootstrap
#: resamples of the samples, the classifier IS's over its splits.
SPREAD_KEYS = ("fd_std", "kid_std", "classifier_is_std", "fd_real_std", "kid_real_std")
REAL_FLOOR_FILE = "real_floor.json"
NOT_INCEPTION = (
    "fd / kid / classifier_is use the project's small classifier's features and softmax: "
    "they are not Inception-v3 FID / KID / IS numbers."
)


# --- the real images, loaded once -----------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """The real images of one data set that samples are scored against.

    Attributes:
        dataset: 'mnist' or 'cifar10'.
        x_train: the training images (the real-vs-real floor draws from them).
        x_test, y_test: the test set (the reference features and the VAE's test ELBO).
        source: which data file they came from ('' for the default), for the caches.
    """

    dataset: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""


def reference(dataset: str, data_dir: str | os.PathLike | None = None) -> Reference:
    """The data set's arrays (`data.load_cached`: read once per process) as a `Reference`."""
    (x_train, _), (x_test, y_test) = data.load_cached(dataset, data_dir)
    return Reference(dataset, x_train, x_test, y_test, _data_id(dataset, data_dir))


def _data_id(dataset_name: str, data_dir: str | os.PathLike | None) -> str:
    """Which data file `data.load(dataset_name, data_dir)` reads: cached numbers belong to it.

    '' for the default file (the key the caches had before data folders were told apart).
    """
    path = data.locate(dataset_name, data_dir).resolve()
    if path == data.locate(dataset_name, data.DEFAULT_DATA_DIR).resolve():
        return ""
    stat = path.stat() if path.exists() else None
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{path}:missing"


# --- features of images ---------------------------------------------------------------------


def features(
    dataset_name: str, images_uint8: np.ndarray, batch_size: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """Penultimate features and softmax probabilities of the committed classifier.

    Args:
        dataset_name: 'mnist' or 'cifar10'.
        images_uint8: uint8 images in the data set's layout ((n, 28, 28) or (n, 32, 32, 3));
            MNIST with a trailing channel axis is accepted too.
        batch_size: images per forward pass.

    Returns:
        `(features, probs)`, float64 arrays shaped (n, 128) and (n, 10).
    """
    from assignment4.evaluation import classifier  # TensorFlow: on first use

    images = np.asarray(images_uint8)
    shape = data.spec(dataset_name).image_shape
    if images.ndim == len(shape) + 2 and images.shape[-1] == 1:
        images = images[..., 0]  # (n, 28, 28, 1) -> (n, 28, 28)
    if images.shape[1:] != shape:
        raise ValueError(
            f"{dataset_name} images must be shaped (n, {', '.join(map(str, shape))}), "
            f"got {images.shape}"
        )
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 in [0, 255], got dtype {images.dtype}")
    model = classifier.feature_and_probability_model(dataset_name)
    feats, probs = model.predict(images.astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(feats, np.float64), np.asarray(probs, np.float64)


_TEST_FEATURES: dict[tuple, tuple[np.ndarray, np.ndarray, float]] = {}
_REAL_FLOOR: dict[tuple, dict] = {}


def _weights_id(dataset_name: str) -> str:
    """A short hash of the classifier's weights: cached numbers belong to one set of weights."""
    from assignment4.evaluation import classifier

    path = classifier.weights_path(dataset_name)
    if not path.exists():
        classifier.load_classifier(dataset_name)  # raises the RunError that says what to do
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def reference_features(ref: Reference) -> tuple[np.ndarray, np.ndarray, float]:
    """Features and probabilities of the whole test set, and the classifier's test accuracy.

    Computed once per process (per data file and set of classifier weights).
    """
    key = (ref.dataset, _weights_id(ref.dataset), ref.source)
    if key not in _TEST_FEATURES:
        feats, probs = features(ref.dataset, ref.x_test)
        accuracy = float(np.mean(probs.argmax(axis=1) == ref.y_test.reshape(-1)))
        _TEST_FEATURES[key] = (feats, probs, accuracy)
    return _TEST_FEATURES[key]


def real_floor(
    ref: Reference, n: int, cache_dir: str | os.PathLike | None = None, seed: int = 0
) -> dict:
    """The metrics of `n` real training images against the test set: the best a model can do.

    Args:
        ref: the data set (`reference`).
        n: number of training images (drawn at random with `seed`), as many as the samples
            they are compared with.
        cache_dir: if given, results are also cached in `<cache_dir>/real_floor.json`,
            keyed by data set, n, seed, the classifier weights' hash and the data file.
        seed: which training images.

    Returns:
        `{"fd_real": ..., "kid_real": ..., "classifier_is_real": ...}` and the spreads
        `fd_real_std`, `kid_real_std`.
    """
    weights = _weights_id(ref.dataset)
    key = (ref.dataset, n, seed, weights, ref.source)
    disk_key = f"{ref.dataset}/n={n}/seed={seed}/weights={weights}"
    disk_key += f"/data={ref.source}" if ref.source else ""
    cache_file = Path(cache_dir) / REAL_FLOOR_FILE if cache_dir is not None else None
    if key not in _REAL_FLOOR and cache_file is not None and cache_file.exists():
        stored = _read_cache(cache_file).get(disk_key, {})
        if "fd_real_std" in stored:  # entries from before the spreads are computed again
            _REAL_FLOOR[key] = stored
    if key not in _REAL_FLOOR:
        _REAL_FLOOR[key] = _real_floor(ref, n, seed)
        if cache_file is not None:
            stored = _read_cache(cache_file) if cache_file.exists() else {}
            stored[disk_key] = _REAL_FLOOR[key]
            fileio.write_json(stored, cache_file)
    return dict(_REAL_FLOOR[key])


def _real_floor(ref: Reference, n: int, seed: int) -> dict:
    if not 2 <= n <= len(ref.x_train):
        raise ValueError(f"n must be between 2 and {len(ref.x_train)} for {ref.dataset}, got {n}")
    index = np.sort(np.random.default_rng(seed).choice(len(ref.x_train), n, replace=False))
    feats, probs = features(ref.dataset, ref.x_train[index])
    test_feats, _, _ = reference_features(ref)
    kid_real, kid_real_std = kid(feats, test_feats, return_std=True)
    return {
        "fd_real": frechet_distance(feats, test_feats),
        "fd_real_std": frechet_distance_std(feats, test_feats),
        "kid_real": kid_real,
        "kid_real_std": kid_real_std,
        "classifier_is_real": classifier_inception_score(probs, splits=min(10, n)),
    }


def _read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # a damaged cache is recomputed, not fatal


def sample_metrics(
    ref: Reference,
    samples_uint8: np.ndarray,
    cache_dir: str | os.PathLike | None = None,
    family: str = "gan",
) -> dict:
    """Classifier-feature metrics of generated samples against the test set, with the floor.

    Args:
        ref: the data set the samples imitate (`reference`).
        samples_uint8: generated images, uint8, in the data set's layout.
        cache_dir: where `real_floor` may cache its numbers (None: memory only).
        family: 'vae', 'gan' or 'wgan': how the class histogram is read (`class_balance`).

    Returns:
        A dict with the keys of `METRIC_KEYS` (not Inception-based numbers), their spreads
        (`SPREAD_KEYS`) and those of `mode_collapse` (the samples' class histogram, judged).
    """
    n = len(samples_uint8)
    feats, probs = features(ref.dataset, samples_uint8)
    test_feats, _, test_accuracy = reference_features(ref)
    kid_mean, kid_std = kid(feats, test_feats, return_std=True)
    score, score_std = classifier_inception_score(probs, splits=min(10, n), return_std=True)
    return {
        "fd": frechet_distance(feats, test_feats),
        "fd_std": frechet_distance_std(feats, test_feats),
        "kid": kid_mean,
        "kid_std": kid_std,
        "classifier_is": score,
        "classifier_is_std": score_std,
        **real_floor(ref, n, cache_dir),
        "classifier_test_accuracy": test_accuracy,
        "n_samples": n,
        **mode_collapse(probs, list(data.CLASS_NAMES[ref.dataset]), family),
    }


# --- finished runs ------------------------------------------------------------------------------


def evaluate_run(
    exp_id: str,
    profile: str,
    runs: str | os.PathLike = "runs",
    *,
    n: int = 10000,
    seed: int = 0,
    epoch: int | None = None,
    trained_generator: bool = False,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """Measure a finished run and write `runs/<id>/<profile>/metrics.json`.

    Args:
        exp_id: experiment id, e.g. 'vae_mnist_z128'.
        profile: 'full', 'quick' or 'smoke'.
        runs: root folder of the runs.
        n: number of generated images (and of real training images for the floor).
        seed: the latent draw of the samples.
        epoch: measure that epoch's checkpoint instead of the final model; the metrics go to
            `metrics_epoch_NNN.json` (quality against epoch).
        trained_generator: for a GAN that samples from a generator average
            (`generator_ema`), score its trained generator instead, to compare the two; the
            metrics go to `metrics[_epoch_NNN]_trained_generator.json`, and the report keeps
            reading the average's.
        data_dir: the folder of the data file (`data.load`): test set, real floor, ELBO.

    Returns:
        The metrics (section 8 names) with their spreads, the samples' class histogram and
        its verdict; VAEs also get `test_elbo` (minus the mean test loss) and their active
        latent units. Every file records the `epoch` and the `weights_fingerprint` of the
        weights it scored (`fingerprint`): the report shows it only for those weights.

    Raises:
        RunError: the run, its `model.keras` or the checkpoint is missing or damaged; the
        message says what to do.
    """
    run = ScoredRun.load(exp_id, profile, runs, epoch, trained_generator)
    metrics = run.score(reference(run.exp.dataset, data_dir), n=n, seed=seed, cache_dir=runs)
    fileio.write_json(metrics, run.metrics_path)
    return metrics


@dataclass(frozen=True)
class ScoredRun:
    """A finished run's model (or a checkpoint's), loaded once to be scored."""

    exp: object  # experiments.Experiment
    folder: Path
    model: object
    epoch: int | None
    trained_generator: bool

    @classmethod
    def load(cls, exp_id, profile, runs, epoch=None, trained_generator=False) -> ScoredRun:
        """The run's model, with the one-line errors of a missing run or option."""
        from assignment4 import artifacts, experiments  # the registry and TensorFlow

        exp, folder = experiments.get(exp_id), Path(runs) / exp_id / profile
        if epoch is None and not (folder / "model.keras").exists():
            missing = folder / "model.keras" if folder.exists() else folder
            again = f" --runs {runs}" if str(runs) != "runs" else ""
            raise RunError(
                f"Cannot evaluate {exp_id} ({profile}): {missing} does not exist. Train it "
                f"first: python -m assignment4 run {exp_id} --profile {profile}{again}"
            )
        model = artifacts.load_run_model(exp_id, profile, runs, epoch=epoch)
        if trained_generator and getattr(model, "generator_average", None) is None:
            raise RunError(
                f"{exp_id} ({profile}) has no generator average (generator_ema): its samples "
                "already come from the trained generator; evaluate it without that option."
            )
        return cls(exp, folder, model, epoch, trained_generator)

    @property
    def metrics_path(self) -> Path:
        name = "metrics" if self.epoch is None else f"metrics_epoch_{self.epoch:03d}"
        return self.folder / (
            name + ("_trained_generator.json" if self.trained_generator else ".json")
        )

    def score(self, ref: Reference, n: int, seed: int, cache_dir) -> dict:
        """The samples' metrics, a VAE's test ELBO and active units, and what was scored."""
        model = self.model
        weights = fingerprint.weights_fingerprint(model)  # before sampling: what is scored
        drawing = model.trained_generator_samples() if self.trained_generator else None
        with drawing or contextlib.nullcontext():
            samples = model.sample(n, seed=seed)
        metrics = sample_metrics(ref, samples, cache_dir, self.exp.family)
        if self.exp.family == "vae":
            metrics.update(_vae_test_metrics(model, ref))
        metrics["note"] = NOT_INCEPTION
        metrics["epoch"] = (
            self.epoch if self.epoch is not None else _final_epoch(self.folder, weights)
        )
        metrics[fingerprint.KEY] = weights
        if getattr(model, "generator_average", None) is not None:
            ema = f"EMA {model.generator_ema:g}"
            metrics["generator"] = "trained" if self.trained_generator else ema
        return metrics


def _vae_test_metrics(model, ref: Reference) -> dict:
    """A VAE's test ELBO (minus its mean test loss) and its active latent units."""
    test = data.pipeline(ref.x_test, batch_size=500, scale="unit", shuffle=False)
    result = model.evaluate(test, return_dict=True, verbose=0)
    x_unit = (ref.x_test.astype(np.float32) / 255.0).reshape((-1, *model.image_shape))
    return {"test_elbo": -float(result["loss"]), **active_units(latent_unit_kl(model, x_unit))}


def _final_epoch(run_dir: Path, weights: str) -> int | None:
    """The epoch of a run's model.keras: its finished run's (None while it is unfinished)."""
    recorded, epochs = fingerprint.final_fingerprint(run_dir)
    return epochs if recorded in (None, weights) else None


# --- printing ----------------------------------------------------------------------------------

_COLUMNS = (
    ("id", "run"),
    ("n_samples", "n"),
    ("fd_spread", "FD"),
    ("fd_real", "FD real"),
    ("kid_spread", "KID"),
    ("kid_real", "KID real"),
    ("classifier_is", "IS"),
    ("classifier_is_real", "IS real"),
    ("test_elbo", "test ELBO"),
    ("classifier_test_accuracy", "clf acc"),
    ("min_class_fraction", "min class"),
    ("active", "active z"),
    ("verdict", "collapse"),
)


def with_spread(value, spread) -> str:
    """'8.06 ± 0.12' (the value alone when no spread was recorded; '-' when no value)."""
    if value is None:
        return "-"
    return texttable.with_spread(value, spread, plain=_cell)


_FLAGS = (
    ("mode_collapse", "mode"),
    ("classes_under_represented", "classes"),
    ("posterior_collapse", "posterior"),
)


def _derived(row: dict) -> dict:
    row = dict(row)
    if "active_units" in row:
        row["active"] = f"{row['active_units']}/{row.get('latent_dim', '?')}"
    for key in ("fd", "kid"):
        row[f"{key}_spread"] = with_spread(row.get(key), row.get(f"{key}_std"))
    if any(key in row for key, _ in _FLAGS):
        flags = [name for key, name in _FLAGS if row.get(key)]
        row["verdict"] = " + ".join(flags) if flags else "none"
    return row


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def format_metrics_table(rows: list[dict]) -> str:
    """A plain-text table of metrics, one row per run (dicts as `evaluate_run` returns).

    Rows may carry an `id`. Missing values print as '-'.
    """
    rows = [_derived(row) for row in rows]
    body = [[_cell(row.get(key)) for key, _ in _COLUMNS] for row in rows]
    title = (
        "Classifier-feature metrics (the project's small CNN, NOT Inception FID/KID/IS); "
        "'real' = n real training images vs the test set."
    )
    lines = [title, format_table([title for _, title in _COLUMNS], body)]
    said = [(row.get("id", f"row {k}"), diagnosis(row)) for k, row in enumerate(rows, 1)]
    said = [(name, text) for name, text in said if text]
    if said:
        lines += ["", "Collapse diagnostics:"] + [f"  {name}: {text}" for name, text in said]
    return "\n".join(lines)
