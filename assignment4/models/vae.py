"""Variational autoencoder (Kingma & Welling) with a custom train_step and test_step."""

from __future__ import annotations

from typing import ClassVar

import keras
import tensorflow as tf
from keras import ops

from assignment4.models.base import GenerativeModel

RECONSTRUCTIONS = ("bce", "mse")


def kl_divergence(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)), summed over latent dimensions, one per image."""
    return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)


def bce_from_logits(x, logits):
    """Binary cross-entropy of targets x in [0, 1] given logits, summed over pixels."""
    # max(l, 0) - l*x + log(1 + exp(-|l|)): never overflows, unlike log(sigmoid(l)).
    per_pixel = ops.relu(logits) - logits * x + ops.log1p(ops.exp(-ops.abs(logits)))
    return ops.sum(ops.reshape(per_pixel, (ops.shape(x)[0], -1)), axis=-1)


def squared_error(x, x_hat):
    """Squared error summed over pixels, one value per image."""
    return ops.sum(ops.reshape(ops.square(x - x_hat), (ops.shape(x)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="assignment4")
class VAE(GenerativeModel):
    """VAE with an MLP or convolutional encoder/decoder.

    The decoder network ends in logits; `decode` applies the report's sigmoid. Losses are per
    image (summed over pixels and latent dimensions) and averaged over the batch.

    Args:
        encoder: network spec dict for `networks.build` (e.g. `{"type": "mlp_encoder", ...}`).
        decoder: network spec dict.
        reconstruction: 'bce' (binary cross-entropy from logits) or 'mse' (squared error).
    """

    def __init__(self, encoder: dict, decoder: dict, reconstruction: str = "bce", **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction must be one of {RECONSTRUCTIONS}")
        self.encoder_spec, self.decoder_spec = dict(encoder), dict(decoder)
        self.reconstruction = reconstruction
        shapes = {"image_shape": self.image_shape, "latent_dim": self.latent_dim}
        self.encoder = self.build_network(self.encoder_spec, **shapes)
        self.decoder = self.build_network(self.decoder_spec, **shapes)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def encode(self, x, training: bool = False):
        """Images in [0, 1] -> (mean, log-variance) of q(z|x)."""
        return self.encoder(x, training=training)

    def reparameterize(self, mean, log_var):
        """z = mean + sigma * eps, differentiable in mean and log-variance."""
        return mean + ops.exp(0.5 * log_var) * self.normal(ops.shape(mean))

    def decode(self, z, training: bool = False):
        """z -> images in [0, 1]."""
        return ops.sigmoid(self.decoder(z, training=training))

    def reconstruct(self, x, training: bool = False):
        """Decode the posterior mean of each image."""
        mean, _ = self.encode(x, training=training)
        return self.decode(mean, training=training)

    def images_from_latent(self, z, training: bool = False):
        return self.decode(z, training=training)

    def call(self, x, training: bool = False):
        return self.reconstruct(x, training=training)

    def compute_losses(self, x, training: bool = False) -> dict:
        """Per-batch means of the negative ELBO and its two terms (float32 under any policy)."""
        mean, log_var = (ops.cast(t, "float32") for t in self.encode(x, training=training))
        z = self.reparameterize(mean, log_var)
        logits = ops.cast(self.decoder(z, training=training), "float32")
        x = ops.cast(x, "float32")
        if self.reconstruction == "bce":
            rec = bce_from_logits(x, logits)
        else:
            rec = squared_error(x, ops.sigmoid(logits))
        kl = kl_divergence(mean, log_var)
        rec, kl = ops.mean(rec), ops.mean(kl)
        return {"loss": rec + kl, "reconstruction": rec, "kl": kl}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            values = self.compute_losses(data, training=True)
            scaled = values["loss"] * self.replica_scale()
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self.update_trackers(values)

    def test_step(self, data):
        return self.update_trackers(self.compute_losses(data, training=False))

    optimizer_names: ClassVar[tuple[str, ...]] = ("optimizer",)

    def optimized_variables(self, name: str) -> list:
        return self.trainable_variables

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": self.encoder_spec,
            "decoder": self.decoder_spec,
            "reconstruction": self.reconstruction,
        }
