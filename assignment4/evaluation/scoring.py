"""Sample-quality metrics from the project's own small classifiers.

The features are the 128-d penultimate layer of `assignment4.classifier`, trained on the
same data set, and the probabilities are its softmax. So `fd` is a Fréchet distance and
`kid` a kernel (MMD) distance in *classifier-feature* space, and `classifier_is` an
Inception Score computed with this classifier: they are NOT the Inception-v3 FID / KID /
IS numbers of the literature, and only comparable with each other. Every result carries
the real-vs-real floor (training images against the test set, same n) beside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from assignment4 import data, fileio
from assignment4.errors import RunError
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
FD_RESAMPLES = 10
REAL_FLOOR_FILE = "real_floor.json"
NOT_INCEPTION = (
    "fd / kid / classifier_is use the project's small classifier's features and softmax: "
    "they are not Inception-v3 FID / KID / IS numbers."
)


# --- distances between feature sets ------------------------------------------------------------


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix, by eigen-decomposition."""
    w, v = np.linalg.eigh((matrix + matrix.T) / 2)
    # Round-off makes tiny eigenvalues slightly negative; they are zero.
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance_from_moments(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet (2-Wasserstein) distance squared between N(mu1, sigma1) and N(mu2, sigma2).

    `|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2)`, in float64. The inner
    matrix is symmetric PSD, so both square roots come from `eigh`: no complex parts, no
    iterative sqrtm that fails on singular covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"moment shapes do not match: mu {mu1.shape} / {mu2.shape}, "
            f"sigma {s1.shape} / {s2.shape}"
        )
    root1 = _psd_sqrt(s1)
    inner = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eig, 0.0, None))))
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)
    return max(value, 0.0)  # negative only by round-off


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (rows are samples).

    A classifier-feature distance, not an Inception FID.
    """
    a, b = _as_features(feat_a), _as_features(feat_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    return frechet_distance_from_moments(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )


def frechet_distance_std(
    feat_a: np.ndarray, feat_b: np.ndarray, resamples: int = FD_RESAMPLES, seed: int = 0
) -> float:
    """The spread of `frechet_distance(feat_a, feat_b)` over the draw of the samples.

    The standard deviation of the distance over `resamples` bootstrap resamples of `feat_a`
    (rows drawn with replacement, as many as it has); `feat_b`, the fixed reference set
    that every model is compared with, is kept as it is.
    """
    a, b = _as_features(feat_a), _as_features(feat_b)
    rng = np.random.default_rng(seed)
    values = [frechet_distance(a[rng.integers(0, len(a), len(a))], b) for _ in range(resamples)]
    return float(np.std(values, ddof=1)) if resamples > 1 else 0.0


def _as_features(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"features must be shaped (n >= 2, d), got {x.shape}")
    return x


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two samples with the cubic polynomial kernel (x.y/d + 1)^3."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    # Dropping the diagonals (k(x_i, x_i)) is what makes the estimate unbiased.
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def kid(
    feat_a: np.ndarray,
    feat_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
    return_std: bool = False,
) -> float | tuple[float, float]:
    """Kernel distance: unbiased MMD^2 (cubic polynomial kernel), averaged over random subsets.

    A classifier-feature distance, not an Inception KID. Being unbiased, it is about 0 (and
    may be slightly negative) for two samples of one distribution.

    Args:
        feat_a, feat_b: features, one row per sample, same width.
        subsets: number of random subset pairs averaged.
        subset_size: rows drawn (without replacement) from each set per subset; at most the
            smaller set's size.
        seed: the subsets' random draw.
        return_std: also return the standard deviation over the subsets.

    Returns:
        The mean MMD^2, or `(mean, std)` with `return_std`.
    """
    a, b = _as_features(feat_a), _as_features(feat_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    size = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            mmd2_unbiased(
                a[rng.choice(len(a), size, replace=False)],
                b[rng.choice(len(b), size, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    mean, std = float(values.mean()), float(values.std())
    return (mean, std) if return_std else mean


def classifier_inception_score(
    probs: np.ndarray, splits: int = 10, return_std: bool = False
) -> float | tuple[float, float]:
    """Inception Score `exp(E_x KL(p(y|x) || p(y)))` from a classifier's softmax outputs.

    Between 1 (every image gets the same prediction) and the number of classes (confident
    and balanced). Computed with the project's classifier, not Inception-v3.

    Args:
        probs: (n, classes) class probabilities, rows summing to 1.
        splits: the score is averaged over this many equal parts of the samples.
        return_std: also return the standard deviation over the parts.
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) < splits:
        raise ValueError(f"probs must be shaped (n >= splits={splits}, classes), got {p.shape}")
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 * log 0 = 0: clipping inside the log only touches terms that are multiplied by 0.
        kl = np.sum(
            part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(marginal, 1e-12, None))),
            axis=1,
        )
        scores.append(math.exp(kl.mean()))
    mean, std = float(np.mean(scores)), float(np.std(scores))
    return (mean, std) if return_std else mean


# --- collapse diagnostics -------------------------------------------------------------------

#: Mode collapse: a class predicted for fewer than this fraction of the samples...
MIN_CLASS_FRACTION = 0.02
#: ...or a classifier IS below this (1 = every sample gets the same prediction).
MIN_CLASSIFIER_IS = 2.0
#: A VAE latent unit is active when its KL, averaged over the test set, exceeds this (nats).
ACTIVE_UNIT_KL = 0.01


def class_histogram(probs: np.ndarray) -> np.ndarray:
    """Fraction of the samples the classifier assigns to each class (argmax of the softmax)."""
    p = np.asarray(probs)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probs must be shaped (n >= 1, classes), got {p.shape}")
    counts = np.bincount(p.argmax(axis=1), minlength=p.shape[1])
    return counts / counts.sum()


def class_balance(
    hist: np.ndarray, score: float, class_names: list[str] | None = None, family: str = "gan"
) -> tuple[bool, str]:
    """Whether a class histogram of samples is flagged, and a sentence saying what it measured.

    Flagged when a class gets under `MIN_CLASS_FRACTION` of the samples or the classifier IS
    is under `MIN_CLASSIFIER_IS`. For a GAN or WGAN that is mode collapse (the generator
    drops modes); a VAE covers every mode, so for it the same histogram says that its
    (blurry) samples are classified unevenly: classes under-represented in the samples.
    """
    hist = np.asarray(hist, np.float64)
    names = class_names or [str(k) for k in range(len(hist))]
    rare = [names[k] for k in np.flatnonzero(hist < MIN_CLASS_FRACTION)]
    top = int(hist.argmax())
    vae = family == "vae"
    reasons = []
    if rare:
        reasons.append(
            f"{len(rare)} of {len(hist)} classes get under {MIN_CLASS_FRACTION:.0%} of the "
            f"samples ({', '.join(rare)})"
        )
    if score < MIN_CLASSIFIER_IS:
        what = "samples hard to classify: " if vae else ""
        reasons.append(f"{what}classifier IS {score:.2f} < {MIN_CLASSIFIER_IS:g}")
    most = f"the most frequent class, {names[top]}, takes {hist[top]:.1%}"
    if reasons and vae:
        return True, (
            f"classes under-represented in the samples: {'; '.join(reasons)}; {most} (a class "
            "imbalance of blurry samples as the classifier reads them, not a loss of modes)."
        )
    if reasons:
        return True, f"mode collapse: {'; '.join(reasons)}; {most}."
    balanced = "no class under-represented" if vae else "no mode collapse"
    return False, (
        f"{balanced}: every class gets at least {hist.min():.1%} of the samples "
        f"(most: {names[top]}, {hist[top]:.1%}); classifier IS {score:.2f}."
    )


def mode_collapse(
    probs: np.ndarray, class_names: list[str] | None = None, family: str = "gan"
) -> dict:
    """The samples' class histogram and what it shows, said in words (see `class_balance`).

    Returns:
        `{"class_histogram": [...], "min_class_fraction": f}` and, for a GAN or WGAN,
        `"mode_collapse": bool, "mode_collapse_text": "..."`; for a VAE
        `"classes_under_represented": bool, "class_balance_text": "..."`.
    """
    hist = class_histogram(probs)
    score = classifier_inception_score(probs, splits=min(10, len(probs)))
    flagged, text = class_balance(hist, score, class_names, family)
    flag, said = ("classes_under_represented", "class_balance_text") if family == "vae" else (
        "mode_collapse", "mode_collapse_text")  # fmt: skip
    return {
        "class_histogram": [round(float(v), 4) for v in hist],
        "min_class_fraction": float(hist.min()),
        flag: flagged,
        said: text,
    }


def latent_unit_kl(model, images_unit: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """A VAE's KL(q(z|x) || N(0, 1)) per latent dimension, averaged over `images_unit`."""
    total, n = None, 0
    for i in range(0, len(images_unit), batch_size):
        mean, log_var = model.encode(images_unit[i : i + batch_size], training=False)
        mean, log_var = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
        kl = 0.5 * (np.square(mean) + np.exp(log_var) - 1.0 - log_var)
        total = kl.sum(axis=0) if total is None else total + kl.sum(axis=0)
        n += len(kl)
    if total is None:
        raise ValueError("no images to encode")
    return total / n


def active_units(unit_kl: np.ndarray) -> dict:
    """How many latent units carry information (KL above `ACTIVE_UNIT_KL`), said in words.

    No active unit is posterior collapse: the decoder ignores z and every sample looks alike.
    """
    unit_kl = np.asarray(unit_kl, np.float64)
    active = int(np.sum(unit_kl > ACTIVE_UNIT_KL))
    dim = len(unit_kl)
    if active == 0:
        text = (
            f"posterior collapse: none of the {dim} latent units is active (KL per unit "
            f"<= {ACTIVE_UNIT_KL} nats over the test set); the decoder ignores z."
        )
    else:
        text = (
            f"{active} of {dim} latent units active (KL per unit > {ACTIVE_UNIT_KL} nats over "
            f"the test set; total KL {unit_kl.sum():.1f} nats)."
        )
    return {
        "active_units": active,
        "latent_dim": dim,
        "posterior_collapse": active == 0,
        "active_units_text": text,
    }


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
    from assignment4.evaluation import classifier

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


_TEST_FEATURES: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, float]] = {}
_REAL_FLOOR: dict[tuple, dict] = {}


def _weights_id(dataset_name: str) -> str:
    """A short hash of the classifier's weights: cached numbers belong to one set of weights."""
    from assignment4.evaluation import classifier

    path = classifier.weights_path(dataset_name)
    if not path.exists():
        classifier.load_classifier(dataset_name)  # raises the RunError that says what to do
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _data_id(dataset_name: str, data_dir: str | os.PathLike | None) -> str:
    """Which data file `data.load(dataset_name, data_dir)` reads: cached numbers belong to it.

    '' for the default file (the key the caches had before data folders were told apart).
    """
    path = data.locate(dataset_name, data_dir).resolve()
    if path == data.locate(dataset_name, data.DEFAULT_DATA_DIR).resolve():
        return ""
    stat = path.stat() if path.exists() else None
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}" if stat else f"{path}:missing"


def reference_features(
    dataset_name: str, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Features and probabilities of the whole test set, and the classifier's test accuracy.

    Computed once per process (per data file and set of classifier weights).
    """
    key = (dataset_name, _weights_id(dataset_name), _data_id(dataset_name, data_dir))
    if key not in _TEST_FEATURES:
        _, (x_test, y_test) = data.load(dataset_name, data_dir)
        feats, probs = features(dataset_name, x_test)
        accuracy = float(np.mean(probs.argmax(axis=1) == y_test.reshape(-1)))
        _TEST_FEATURES[key] = (feats, probs, accuracy)
    return _TEST_FEATURES[key]


def real_floor(
    dataset_name: str,
    n: int,
    cache_dir: str | os.PathLike | None = None,
    seed: int = 0,
    data_dir: str | os.PathLike | None = None,
) -> dict:
    """The metrics of `n` real training images against the test set: the best a model can do.

    Args:
        dataset_name: 'mnist' or 'cifar10'.
        n: number of training images (drawn at random with `seed`), as many as the samples
            they are compared with.
        cache_dir: if given, results are also cached in `<cache_dir>/real_floor.json`,
            keyed by data set, n, seed and the classifier weights' hash.
        seed: which training images.
        data_dir: the folder of the data file (`data.load`).

    Returns:
        `{"fd_real": ..., "kid_real": ..., "classifier_is_real": ...}` and the spreads
        `fd_real_std`, `kid_real_std`.
    """
    weights, source = _weights_id(dataset_name), _data_id(dataset_name, data_dir)
    key = (dataset_name, n, seed, weights, source)
    disk_key = f"{dataset_name}/n={n}/seed={seed}/weights={weights}"
    disk_key += f"/data={source}" if source else ""
    cache_file = Path(cache_dir) / REAL_FLOOR_FILE if cache_dir is not None else None
    if key not in _REAL_FLOOR and cache_file is not None and cache_file.exists():
        stored = _read_cache(cache_file).get(disk_key, {})
        if "fd_real_std" in stored:  # entries from before the spreads are computed again
            _REAL_FLOOR[key] = stored
    if key not in _REAL_FLOOR:
        _REAL_FLOOR[key] = _real_floor(dataset_name, n, seed, data_dir)
        if cache_file is not None:
            stored = _read_cache(cache_file) if cache_file.exists() else {}
            stored[disk_key] = _REAL_FLOOR[key]
            fileio.write_json(stored, cache_file)
    return dict(_REAL_FLOOR[key])


def _real_floor(dataset_name: str, n: int, seed: int, data_dir) -> dict:
    (x_train, _), _ = data.load(dataset_name, data_dir)
    if not 2 <= n <= len(x_train):
        raise ValueError(f"n must be between 2 and {len(x_train)} for {dataset_name}, got {n}")
    index = np.sort(np.random.default_rng(seed).choice(len(x_train), n, replace=False))
    feats, probs = features(dataset_name, x_train[index])
    test_feats, _, _ = reference_features(dataset_name, data_dir)
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
    dataset_name: str,
    samples_uint8: np.ndarray,
    cache_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    family: str = "gan",
) -> dict:
    """Classifier-feature metrics of generated samples against the test set, with the floor.

    Args:
        dataset_name: 'mnist' or 'cifar10'.
        samples_uint8: generated images, uint8, in the data set's layout.
        cache_dir: where `real_floor` may cache its numbers (None: memory only).
        data_dir: the folder of the data file (`data.load`).
        family: 'vae', 'gan' or 'wgan': how the class histogram is read (`class_balance`).

    Returns:
        A dict with the keys of `METRIC_KEYS` (not Inception-based numbers), their spreads
        (`SPREAD_KEYS`) and those of `mode_collapse` (the samples' class histogram, judged).
    """
    n = len(samples_uint8)
    feats, probs = features(dataset_name, samples_uint8)
    test_feats, _, test_accuracy = reference_features(dataset_name, data_dir)
    kid_mean, kid_std = kid(feats, test_feats, return_std=True)
    score, score_std = classifier_inception_score(probs, splits=min(10, n), return_std=True)
    return {
        "fd": frechet_distance(feats, test_feats),
        "fd_std": frechet_distance_std(feats, test_feats),
        "kid": kid_mean,
        "kid_std": kid_std,
        "classifier_is": score,
        "classifier_is_std": score_std,
        **real_floor(dataset_name, n, cache_dir, data_dir=data_dir),
        "classifier_test_accuracy": test_accuracy,
        "n_samples": n,
        **mode_collapse(probs, list(data.CLASS_NAMES[dataset_name]), family),
    }


# --- finished runs ------------------------------------------------------------------------------


def evaluate_run(
    exp_id: str,
    profile: str,
    runs: str | os.PathLike = "runs",
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
    from assignment4 import artifacts, experiments  # the registry and TensorFlow: on first use

    exp = experiments.get(exp_id)
    run_dir = Path(runs) / exp_id / profile
    path = run_dir / "model.keras"
    if epoch is None and not path.exists():
        missing = path if run_dir.exists() else run_dir
        raise RunError(
            f"Cannot evaluate {exp_id} ({profile}): {missing} does not exist. Train it first: "
            f"python -m assignment4 run {exp_id} --profile {profile}"
            + (f" --runs {runs}" if str(runs) != "runs" else "")
        )
    model = artifacts.load_run_model(exp_id, profile, runs, epoch=epoch)
    average = getattr(model, "generator_average", None)
    if trained_generator and average is None:
        raise RunError(
            f"{exp_id} ({profile}) has no generator average (generator_ema): its samples "
            "already come from the trained generator; evaluate it without that option."
        )
    weights = fingerprint.weights_fingerprint(model)  # before sampling: what is scored
    drawing = model.trained_generator_samples() if trained_generator else contextlib.nullcontext()
    with drawing:
        samples = model.sample(n, seed=seed)
    metrics = sample_metrics(exp.dataset, samples, runs, data_dir, exp.family)
    if exp.family == "vae":
        _, (x_test, _) = data.load(exp.dataset, data_dir)
        test = data.pipeline(x_test, batch_size=500, scale="unit", shuffle=False)
        result = model.evaluate(test, return_dict=True, verbose=0)
        metrics["test_elbo"] = -float(result["loss"])
        x_unit = (x_test.astype(np.float32) / 255.0).reshape((-1, *model.image_shape))
        metrics.update(active_units(latent_unit_kl(model, x_unit)))
    metrics["note"] = NOT_INCEPTION
    metrics["epoch"] = epoch if epoch is not None else _final_epoch(run_dir, weights)
    metrics[fingerprint.KEY] = weights
    if average is not None:
        metrics["generator"] = "trained" if trained_generator else f"EMA {model.generator_ema:g}"
    name = "metrics" if epoch is None else f"metrics_epoch_{epoch:03d}"
    name += "_trained_generator.json" if trained_generator else ".json"
    fileio.write_json(metrics, run_dir / name)
    return metrics


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


def diagnosis(
    metrics: dict, family: str | None = None, class_names: list[str] | None = None
) -> str:
    """The collapse diagnostics of one run's metrics in words ('' when there are none).

    With the model's `family`, the class-histogram sentence is said anew from the numbers
    (`class_balance`), so a VAE's reads as a class imbalance even in files that an earlier
    version called mode collapse; without it, the sentence stored in the file is used.
    """
    stored = metrics.get("mode_collapse_text") or metrics.get("class_balance_text", "")
    if family and metrics.get("class_histogram") and metrics.get("classifier_is") is not None:
        stored = class_balance(
            metrics["class_histogram"], float(metrics["classifier_is"]), class_names, family
        )[1]
    parts = [stored, metrics.get("active_units_text", "")]
    return " ".join(p for p in parts if p)


def with_spread(value, spread) -> str:
    """'8.06 ± 0.12' (the value alone when no spread was recorded; '-' when no value)."""
    if value is None:
        return "-"
    return _cell(value) + ("" if spread is None else f" ± {_cell(float(spread))}")


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
