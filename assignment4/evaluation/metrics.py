"""Distances between sets of classifier features, and the classifier Inception Score, each
with its spread over the draw of the samples.

The features are the 128-d penultimate layer of the project's own classifier
(`evaluation.classifier`), and the probabilities its softmax. So the Fréchet distance and KID
here are distances in *classifier-feature* space and the score is an Inception Score computed
with this classifier: they are NOT the Inception-v3 FID / KID / IS of the literature, and only
comparable with each other.
"""

from __future__ import annotations

import math

import numpy as np

FD_RESAMPLES = 10


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
