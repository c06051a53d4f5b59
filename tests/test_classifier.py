"""The committed evaluation classifiers: architecture, weights, and their test accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from assignment4 import data
from assignment4.errors import RunError
from assignment4.evaluation import classifier

MAX_WEIGHTS_BYTES = 3 * 1024 * 1024  # the committed classifiers stay "a few MB at most"


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28)), ("cifar10", (32, 32, 3))])
def test_build_takes_the_data_set_layout_and_has_a_128d_feature_layer(name, shape):
    model = classifier.build(name)
    assert model.input_shape == (None, *shape)
    assert model.output_shape == (None, 10)
    assert model.get_layer(classifier.FEATURE_LAYER).output.shape == (None, 128)
    assert model.count_params() * 4 < MAX_WEIGHTS_BYTES


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_committed_weights_are_small_and_recorded(name):
    path = classifier.weights_path(name)
    assert path.exists(), f"{path} missing: python -m assignment4 train-classifiers"
    assert path.stat().st_size <= MAX_WEIGHTS_BYTES
    record = classifier.load_record()[name]
    assert record["test_accuracy"] >= classifier.ACCURACY_TARGETS[name]
    assert record["weights_bytes"] == path.stat().st_size  # the record describes these weights
    for key in ("epochs", "seed", "train_wall_time_s", "parameters"):
        assert key in record


def test_load_classifier_is_cached_and_the_feature_model_agrees_with_it():
    model = classifier.load_classifier("mnist")
    assert classifier.load_classifier("mnist") is model
    _, (x_test, _) = data.load("mnist")
    x = x_test[:64].astype(np.float32)
    feats, probs = classifier.feature_and_probability_model("mnist").predict(x, verbose=0)
    assert feats.shape == (64, 128) and (feats >= 0).all()  # ReLU features
    np.testing.assert_allclose(probs, model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_missing_weights_say_how_to_train_them(tmp_path, monkeypatch):
    monkeypatch.setattr(classifier, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(classifier, "_CACHE", {})
    with pytest.raises(RunError, match="train-classifiers --datasets cifar10") as info:
        classifier.load_classifier("cifar10")
    assert str(tmp_path / "cifar10_classifier.weights.h5") in str(info.value)


def _test_accuracy(name: str, limit: int | None = None) -> float:
    _, (x_test, y_test) = data.load(name)
    return classifier.accuracy(classifier.load_classifier(name), x_test[:limit], y_test[:limit])


def test_mnist_classifier_reaches_99_percent_on_the_full_test_set():
    assert _test_accuracy("mnist") >= 0.99


def test_cifar10_classifier_reaches_80_percent_on_the_full_test_set():
    # Inference only: about 10 s for the 10k images on 2 busy CPU cores.
    assert _test_accuracy("cifar10") >= 0.80
