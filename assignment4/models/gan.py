"""GAN (Goodfellow et al.) with the non-saturating generator loss, losses from logits."""

from __future__ import annotations

import math
from typing import ClassVar

import keras
import tensorflow as tf
from keras import ops

from assignment4.models.base import AdversarialModel

LOG2 = math.log(2.0)


def discriminator_loss(real_logits, fake_logits):
    """BCE(D(x), 1) + BCE(D(G(z)), 0), each averaged over the batch, from logits."""
    # BCE(sigmoid(l), 1) = softplus(-l); BCE(sigmoid(l), 0) = softplus(l). In float32 also
    # under mixed precision, where the logits arrive in bfloat16.
    real_logits, fake_logits = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))


def generator_loss(fake_logits):
    """Non-saturating generator loss BCE(D(G(z)), 1) = -log D(G(z))."""
    return ops.mean(ops.softplus(-ops.cast(fake_logits, "float32")))


def js_estimate(d_loss):
    """log 2 - d_loss / 2: the Jensen-Shannon divergence that the discriminator's loss bounds."""
    return LOG2 - 0.5 * d_loss


@keras.saving.register_keras_serializable(package="assignment4")
class GAN(AdversarialModel):
    """GAN: one discriminator update, then one generator update, per batch.

    The discriminator network outputs a logit; D(x) = sigmoid(logit) is the report's
    "sigmoid last", folded into the losses for numerical stability.

    Args:
        generator: network spec dict for `networks.build`.
        discriminator: network spec dict.
        generator_ema: decay of the generator average that samples (`AdversarialModel`).
    """

    optimizer_names: ClassVar[tuple[str, ...]] = ("d_optimizer", "g_optimizer")

    def __init__(self, generator: dict, discriminator: dict, **kwargs):
        super().__init__(generator=generator, **kwargs)
        self.discriminator_spec = dict(discriminator)
        self.discriminator = self.build_network(
            self.discriminator_spec, image_shape=self.image_shape
        )
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.js_tracker = keras.metrics.Mean(name="js_estimate")
        self.built = True

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.js_tracker]

    def optimized_variables(self, name: str) -> list:
        net = self.discriminator if name == "d_optimizer" else self.generator
        return net.trainable_variables

    def train_step(self, real):
        scale = self.replica_scale()
        z = self.latent_noise(ops.shape(real)[0])
        d_vars = self.discriminator.trainable_weights
        g_vars = self.generator.trainable_weights
        with tf.GradientTape() as g_tape:
            fake = self.generator(z, training=True)

            # Train the discriminator (its update is not part of the generator's gradient)
            with g_tape.stop_recording(), tf.GradientTape() as d_tape:
                real_logits = self.discriminator(real, training=True)
                fake_logits = self.discriminator(tf.stop_gradient(fake), training=True)
                d_loss = discriminator_loss(real_logits, fake_logits)
                d_scaled = d_loss * scale
            with g_tape.stop_recording():
                grads = d_tape.gradient(d_scaled, d_vars)
                self.d_optimizer.apply_gradients(zip(grads, d_vars))

            # Train the generator: this batch's fakes against the updated discriminator (as
            # the PyTorch DCGAN reference does), one generator forward pass per step, not two
            g_loss = generator_loss(self.discriminator(fake, training=True))
            g_scaled = g_loss * scale
        grads = g_tape.gradient(g_scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(grads, g_vars))
        self.update_generator_average()
        return self.update_trackers(
            {"d_loss": d_loss, "g_loss": g_loss, "js_estimate": js_estimate(d_loss)}
        )

    def get_config(self):
        return {
            **super().get_config(),
            "discriminator": self.discriminator_spec,
        }
