"""Keras' Adam, with each variable's update done by TensorFlow's fused kernel.

Keras 3 writes Adam's update as about a dozen element-wise ops per variable (subtract,
multiply, square, square root, divide, three assignments...), each a full pass over the
variable's memory. On a CPU that is a large share of a small model's step (docs/speed.md
has the profile). TensorFlow has the same update as one kernel, `ResourceApplyAdam` (one pass, vectorised, multi-threaded), which `tf.keras` used to call.

`Adam` below is `keras.optimizers.Adam` with the same arguments, slots, config and results
(the kernel computes exactly Keras' formulas: `m += (g - m)(1 - beta_1)`, `v += (g^2 - v)
(1 - beta_2)`, `var -= alpha m / (sqrt(v) + epsilon)` with Keras' `alpha`); it falls back to
Keras' own update for anything the kernel does not cover (another backend, AMSGrad, sparse
gradients, dtypes other than float32/float64). `tests/test_optimizers.py` checks it against
Keras' Adam step by step.

Tied to Keras 3.15: the fused update reads the slot lists that Keras' `build` creates
(`_momentums`, `_velocities`) and `_get_variable_index`, which are private.
`tests/test_optimizers.py::test_keras_version_is_the_one_the_fused_adam_follows` fails when
another Keras version is installed, so these are re-checked before they are trusted.
"""

from __future__ import annotations

import keras
import tensorflow as tf

_FUSED_DTYPES = ("float32", "float64")
#: the Keras minor version whose private optimizer attributes the fused updates rely on
KERAS_VERSION = "3.15"


def _fusable(gradient, variable) -> bool:
    return (
        keras.backend.backend() == "tensorflow"
        and isinstance(gradient, tf.Tensor)
        and keras.backend.standardize_dtype(variable.dtype) in _FUSED_DTYPES
    )


def _handle(variable):
    """The resource handle of a Keras or TF variable (Keras wraps a `tf.Variable`)."""
    return variable.value.handle if isinstance(variable, keras.Variable) else variable.handle


@keras.saving.register_keras_serializable(package="assignment4")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam`, one fused TensorFlow kernel per variable update."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not _fusable(gradient, variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
        )
