"""The fused BatchNormalization against Keras' own layer: outputs, gradients, statistics."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from assignment4 import layers


def _pair(shape):
    """The fused and Keras' layer, built alike, with the same non-trivial weights."""
    rng = np.random.default_rng(0)
    fused, plain = layers.BatchNormalization(), keras.layers.BatchNormalization()
    for layer in (fused, plain):
        layer.build(shape)
    weights = [rng.normal(size=w.shape).astype("float32") for w in plain.get_weights()]
    weights[3] = np.abs(weights[3]) + 0.5  # a positive moving variance
    for layer in (fused, plain):
        layer.set_weights(weights)
    return fused, plain


@pytest.mark.parametrize("shape", [(16, 5, 6, 3), (32, 7)])
def test_fused_batch_norm_trains_like_keras(shape):
    x = tf.constant(np.random.default_rng(1).normal(2.0, 3.0, size=shape).astype("float32"))
    results = []
    for layer in _pair(shape):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))  # a non-trivial upstream gradient
        grads = tape.gradient(loss, [x, *layer.trainable_weights])
        results.append((y, grads, [np.asarray(w) for w in layer.non_trainable_weights]))
    (y_f, g_f, s_f), (y_k, g_k, s_k) = results
    np.testing.assert_allclose(y_f, y_k, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_f, g_k, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    for a, b in zip(s_f, s_k, strict=True):  # moving mean and variance
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    fused = _pair(shape)[0]
    graph = tf.function(lambda t: fused(t, training=True)).get_concrete_function(x).graph
    assert "FusedBatchNormV3" in {op.type for op in graph.get_operations()}


def test_inference_and_config_are_keras_own():
    fused, plain = _pair((4, 3, 3, 2))
    x = np.random.default_rng(2).normal(size=(4, 3, 3, 2)).astype("float32")
    np.testing.assert_allclose(fused(x, training=False), plain(x, training=False), rtol=1e-6)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fused))
    assert type(again) is layers.BatchNormalization
    assert again.get_config() == fused.get_config()
