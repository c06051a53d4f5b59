"""Collapse diagnostics: the samples' class histogram read as mode collapse (a GAN or WGAN
drops modes) or as classes under-represented (a VAE's blurry samples, classified unevenly),
and a VAE's active latent units (posterior collapse)."""

from __future__ import annotations

import numpy as np

from assignment4.evaluation.metrics import classifier_inception_score

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
