"""Keras' BatchNormalization, trained through TensorFlow's fused kernel.

Keras 3 writes batch normalisation as separate ops (moments, then subtract, multiply, add,
each a pass over the activations, and as many again in the backward pass). TensorFlow has
the whole normalisation, and its gradient, as one kernel: `FusedBatchNormV3`. `tf.keras`
used it; Keras 3 does not. `BatchNormalization` below is Keras' layer with the same
arguments, weights, config and results; in training mode it normalises with the fused kernel
where that kernel applies (TensorFlow backend, last axis, float32, no mask, no renorm, no
synchronisation, rank 2 or 4), and otherwise, and always at inference, runs Keras' own code.

Tied to Keras 3.15: it reads the layer's public weights (`gamma`, `beta`, `moving_mean`,
`moving_variance`) and arguments only; `tests/test_layers.py` checks outputs, gradients and
moving statistics against Keras' layer.
"""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="assignment4")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization`; training mode runs TensorFlow's fused kernel."""

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and rank in (2, 4)
            and self.axis in (-1, rank - 1)
            and self.center
            and self.scale
            and not self.renorm
            and not getattr(self, "synchronized", False)
            and keras.backend.standardize_dtype(inputs.dtype) == "float32"
            and self.dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        x = inputs if len(inputs.shape) == 4 else tf.reshape(inputs, (-1, 1, 1, channels))
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=self.gamma.value,
            offset=self.beta.value,
            mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32),
            epsilon=self.epsilon,
            exponential_avg_factor=1.0,
            data_format="NHWC",
            is_training=True,
        )
        # The kernel reports the unbiased (n - 1) batch variance; Keras averages the biased one.
        n = tf.cast(tf.size(x) // channels, tf.float32)
        variance = variance * (n - 1.0) / n
        momentum = self.momentum
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(
            self.moving_variance * momentum + variance * (1.0 - momentum)
        )
        return y if len(inputs.shape) == 4 else tf.reshape(y, tf.shape(inputs))
