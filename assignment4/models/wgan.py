"""Wasserstein GAN (Arjovsky et al.) with weight clipping and n_critic critic steps."""

from __future__ import annotations

from typing import ClassVar

import keras
import tensorflow as tf
from keras import ops

from assignment4.models.base import AdversarialModel, assign_each


def critic_loss(real_values, fake_values):
    """mean C(G(z)) - mean C(x): the critic minimises it, pushing real and fake values apart."""
    return ops.mean(fake_values) - ops.mean(real_values)


def generator_loss(fake_values):
    """-mean C(G(z)): the generator raises the critic's value of its images."""
    return -ops.mean(fake_values)


def em_estimate(critic_loss_value):
    """mean C(x) - mean C(G(z)) = -critic_loss: the Earth-Mover distance that the clipped
    (so Lipschitz-bounded) critic estimates, up to its Lipschitz constant."""
    return -critic_loss_value


def split_batch(x, parts: int) -> list:
    """Split a batch into `parts` consecutive, nearly equal slices (none empty if len >= parts)."""
    n = ops.shape(x)[0]
    bounds = [(i * n) // parts for i in range(parts + 1)]
    return [x[bounds[i] : bounds[i + 1]] for i in range(parts)]


def clip_weights(variables, clip_value: float) -> None:
    """Clip every variable to [-clip_value, clip_value] (the WGAN's Lipschitz constraint)."""
    assign_each(variables, lambda w: ops.clip(w, -clip_value, clip_value))


@keras.saving.register_keras_serializable(package="assignment4")
class WGAN(AdversarialModel):
    """WGAN: per training step, `n_critic` critic updates then one generator update.

    Each training step receives `n_critic` real batches stacked into one (the data pipeline
    batches `n_critic * batch_size` images); every critic update sees its own slice, and its
    weights are clipped to +-`clip_value` right after. So one epoch of `fit` is one pass of the
    critic over the data, as in the WGAN algorithm, and the whole loop is one compiled step.

    Args:
        generator: network spec dict for `networks.build`.
        critic: network spec dict.
        n_critic: critic updates per generator update.
        clip_value: bound of the critic's weights.
        critic_sigmoid: apply a sigmoid to the critic's output (the report's DC-WGAN on MNIST).
        generator_ema: decay of the generator average that samples (`AdversarialModel`).
    """

    optimizer_names: ClassVar[tuple[str, ...]] = ("critic_optimizer", "g_optimizer")

    def __init__(
        self,
        generator: dict,
        critic: dict,
        n_critic: int = 5,
        clip_value: float = 0.01,
        critic_sigmoid: bool = False,
        **kwargs,
    ):
        super().__init__(generator=generator, **kwargs)
        if n_critic < 1:
            raise ValueError(f"n_critic must be at least 1, got {n_critic}")
        self.critic_spec = dict(critic)
        self.n_critic = int(n_critic)
        self.clip_value = float(clip_value)
        self.critic_sigmoid = bool(critic_sigmoid)
        self.critic = self.build_network(
            {"name": "critic", **self.critic_spec}, image_shape=self.image_shape
        )
        self.critic_loss_tracker = keras.metrics.Mean(name="critic_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.em_tracker = keras.metrics.Mean(name="em_estimate")
        self.built = True

    @property
    def metrics(self):
        return [self.critic_loss_tracker, self.g_loss_tracker, self.em_tracker]

    def optimized_variables(self, name: str) -> list:
        net = self.critic if name == "critic_optimizer" else self.generator
        return net.trainable_variables

    def critic_value(self, x, training: bool = False):
        """C(x): the critic's output (float32, also under mixed precision), through a sigmoid
        when `critic_sigmoid` is set."""
        c = ops.cast(self.critic(x, training=training), "float32")
        return ops.sigmoid(c) if self.critic_sigmoid else c

    def critic_step(self, real):
        """One critic update on one real batch, then clipping; returns the critic loss."""
        fake = self.generator(self.latent_noise(ops.shape(real)[0]), training=True)
        c_vars = self.critic.trainable_weights
        with tf.GradientTape() as tape:
            loss = critic_loss(
                self.critic_value(real, training=True), self.critic_value(fake, training=True)
            )
            scaled = loss * self.replica_scale()
        grads = tape.gradient(scaled, c_vars)
        self.critic_optimizer.apply_gradients(zip(grads, c_vars))
        # The Lipschitz constraint binds the critic only: the generator is never clipped.
        clip_weights(c_vars, self.clip_value)
        return loss

    def generator_step(self, n):
        """One generator update on `n` fresh latent points; returns the generator loss."""
        g_vars = self.generator.trainable_weights
        z = self.latent_noise(n)
        with tf.GradientTape() as tape:
            loss = generator_loss(self.critic_value(self.generator(z, training=True), True))
            scaled = loss * self.replica_scale()
        grads = tape.gradient(scaled, g_vars)
        self.g_optimizer.apply_gradients(zip(grads, g_vars))
        self.update_generator_average()
        return loss

    def train_step(self, data):
        batches = split_batch(data, self.n_critic)

        # Train the critic: n_critic updates, each on its own slice of the real images
        c_loss = ops.mean(ops.stack([self.critic_step(real) for real in batches]))

        # Train the generator: one update against the updated critic
        g_loss = self.generator_step(ops.shape(batches[0])[0])

        return self.update_trackers(
            {"critic_loss": c_loss, "g_loss": g_loss, "em_estimate": em_estimate(c_loss)}
        )

    def get_config(self):
        return {
            **super().get_config(),
            "critic": self.critic_spec,
            "n_critic": self.n_critic,
            "clip_value": self.clip_value,
            "critic_sigmoid": self.critic_sigmoid,
        }
