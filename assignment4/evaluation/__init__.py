"""Measuring samples: classifier-feature metrics with their spreads, collapse diagnostics, the
scoring of a finished run, and the feature classifiers with their committed weights.

    metrics     Fréchet distance, KID, classifier Inception Score (not Inception-v3 numbers)
    collapse    class histograms (mode collapse, classes under-represented), active units
    scoring     a run and its data set loaded once, then scored; metrics.json; the table
    classifier  the small CNNs whose features and softmax the metrics use
"""

import importlib

# name -> the module that defines it; loaded on first use (the classifier needs TensorFlow)
_EXPORTS = {
    **dict.fromkeys(
        (
            "frechet_distance",
            "frechet_distance_from_moments",
            "frechet_distance_std",
            "mmd2_unbiased",
            "kid",
            "classifier_inception_score",
            "FD_RESAMPLES",
        ),
        "metrics",
    ),
    **dict.fromkeys(
        (
            "class_histogram",
            "class_balance",
            "mode_collapse",
            "latent_unit_kl",
            "active_units",
            "diagnosis",
            "MIN_CLASS_FRACTION",
            "MIN_CLASSIFIER_IS",
            "ACTIVE_UNIT_KL",
        ),
        "collapse",
    ),
    **dict.fromkeys(
        (
            "Reference",
            "reference",
            "features",
            "reference_features",
            "real_floor",
            "sample_metrics",
            "evaluate_run",
            "ScoredRun",
            "format_metrics_table",
            "with_spread",
            "METRIC_KEYS",
            "SPREAD_KEYS",
            "REAL_FLOOR_FILE",
            "NOT_INCEPTION",
            "_REAL_FLOOR",
        ),
        "scoring",
    ),
}
__all__ = [name for name in _EXPORTS if not name.startswith("_")]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
