"""The fused Adam against Keras' own Adam: same updates, same config, same saved state."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from assignment4.models import optimizers


def _train(optimizer, steps: int = 5, seed: int = 0):
    """`steps` updates of two variables from fixed random gradients; returns values and slots."""
    rng = np.random.default_rng(seed)
    variables = [
        keras.Variable(rng.normal(size=(7, 5)).astype("float32"), name="kernel"),
        keras.Variable(rng.normal(size=(5,)).astype("float32"), name="bias"),
    ]
    for _ in range(steps):
        grads = [rng.normal(size=v.shape).astype("float32") for v in variables]
        optimizer.apply_gradients(zip(grads, variables))
    return [np.asarray(v) for v in variables], [np.asarray(v) for v in optimizer.variables]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"learning_rate": 2e-4, "beta_1": 0.5}, {"learning_rate": 0.1, "epsilon": 1e-3}],
)
def test_fused_adam_matches_keras_adam(kwargs):
    fused_vars, fused_slots = _train(optimizers.Adam(**kwargs))
    keras_vars, keras_slots = _train(keras.optimizers.Adam(**kwargs))
    # The kernel forms 1 - beta_2 in float32 (0.00099998713 for 0.999), Keras in float64:
    # second moments differ by about 1.3e-5 relative, the steps taken by about 1e-5 of a step.
    lr = kwargs.get("learning_rate", 1e-3)
    for a, b in zip(fused_vars, keras_vars, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4 * lr)
    for a, b in zip(fused_slots, keras_slots, strict=True):
        np.testing.assert_allclose(a, b, rtol=3e-5, atol=1e-7)
    moved = np.abs(fused_vars[0] - _train(optimizers.Adam(**kwargs), steps=0)[0][0]).max()
    assert moved > 1e-4  # the fused kernel really updated the variable


def test_amsgrad_falls_back_to_keras_update():
    fused_vars, _ = _train(optimizers.Adam(amsgrad=True))
    keras_vars, _ = _train(keras.optimizers.Adam(amsgrad=True))
    for a, b in zip(fused_vars, keras_vars, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=1e-7)


def test_fused_adam_round_trips_through_its_config():
    opt = optimizers.Adam(learning_rate=2e-4, beta_1=0.5)
    config = keras.optimizers.serialize(opt)
    assert config["registered_name"] == "assignment4>Adam"
    again = keras.optimizers.deserialize(config)
    assert type(again) is optimizers.Adam
    assert again.get_config() == opt.get_config()


def test_keras_version_is_the_one_the_fused_adam_follows():
    """The fused update uses Keras' private slot lists; a new Keras must be re-checked."""
    assert keras.__version__.startswith(optimizers.KERAS_VERSION + "."), (
        f"Keras {keras.__version__} is installed, but assignment4/models/optimizers.py relies "
        f"on private attributes of Keras {optimizers.KERAS_VERSION}: re-check them, then "
        "update KERAS_VERSION"
    )


def test_the_one_private_tensorflow_api_the_models_use_is_there():
    """`models.base._multi_worker` asks the strategy's `extended._in_multi_worker_mode()`
    (TensorFlow has no public way to tell a multi-worker strategy from a local one)."""
    from tensorflow.python.distribute.collective_all_reduce_strategy import (
        CollectiveAllReduceExtended,
    )

    assert callable(getattr(CollectiveAllReduceExtended, "_in_multi_worker_mode", None))
