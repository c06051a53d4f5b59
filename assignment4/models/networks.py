"""Builders for the report's encoders, decoders, generators, discriminators and critics.

Each builder takes a few numbers and returns a functional `keras.Model`; it knows nothing
about losses. Networks that feed a sigmoid-based loss end in *logits*; the models apply the
sigmoid where the report draws it, so that losses can be computed from logits (stable).

A network is described by a plain dict, e.g. `{"type": "mlp_encoder", "latent_dim": 2}`, so
models can rebuild their sub-networks from their config when a `.keras` file is loaded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

LEAK = 0.2  # LeakyReLU(0.2) throughout the report

# Every network's output layer (and a Reshape after it) computes in float32 under any global
# dtype policy, as Keras' mixed-precision guide advises: logits, posterior parameters and
# images then reach the losses and the uint8 conversion unrounded. Under float32 it changes
# nothing.
OUT = {"dtype": "float32"}


def _check(tensor, expected: Sequence[int | None], where: str) -> None:
    """Assert an intermediate shape (batch axis excluded), so each block matches the report."""
    got = tuple(tensor.shape[1:])
    if got != tuple(expected):
        raise ValueError(f"{where}: output shape {got}, expected {tuple(expected)}")


def _flat_size(shape: Sequence[int]) -> int:
    return int(math.prod(shape))


# --- VAE ---------------------------------------------------------------------------------


def posterior_head(h, latent_dim: int) -> list:
    """Two Dense layers giving q(z|x)'s mean and log-variance, both initialised to zero.

    Zero weights make q(z|x) = N(0, I), the prior, for every image at the start, so the KL
    term starts at 0 and its gradient does not act before the reconstruction's. With Keras'
    default (Glorot) initialisation the head of a wide MLP encoder on [0, 1] pixels starts
    far from the prior; the KL's gradient then drives the encoder's ReLUs to zero within the
    first epoch and the posterior collapses for good (measured: docs/tuning.md, "Posterior
    collapse").
    """
    return [
        layers.Dense(latent_dim, kernel_initializer="zeros", name=name, **OUT)(h)
        for name in ("z_mean", "z_log_var")
    ]


def mlp_encoder(
    image_shape: Sequence[int], latent_dim: int, units: Sequence[int] = (512, 256)
) -> keras.Model:
    """Flatten -> Dense(units..., ReLU) -> (mean, log-variance), each `latent_dim` wide."""
    x_in = keras.Input(tuple(image_shape), name="image")
    h = layers.Flatten()(x_in)
    for i, u in enumerate(units):
        h = layers.Dense(u, activation="relu", name=f"dense_{i}")(h)
    return keras.Model(x_in, posterior_head(h, latent_dim), name="encoder")


def mlp_decoder(
    image_shape: Sequence[int], latent_dim: int, units: Sequence[int] = (256, 512)
) -> keras.Model:
    """z -> Dense(units..., ReLU) -> Dense(H*W*C) logits, reshaped to the image."""
    z_in = keras.Input((latent_dim,), name="z")
    h = z_in
    for i, u in enumerate(units):
        h = layers.Dense(u, activation="relu", name=f"dense_{i}")(h)
    h = layers.Dense(_flat_size(image_shape), name="logits", **OUT)(h)
    out = layers.Reshape(tuple(image_shape), **OUT)(h)
    return keras.Model(z_in, out, name="decoder")


def conv_encoder(
    image_shape: Sequence[int],
    latent_dim: int,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 4,
) -> keras.Model:
    """Conv(f, k, stride 2)-BN-LReLU per filter count, then (mean, log-variance)."""
    x_in = keras.Input(tuple(image_shape), name="image")
    h = x_in
    size = image_shape[0]
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, kernel_size, 2, padding="same", use_bias=False, name=f"conv_{i}")(h)
        h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.LeakyReLU(LEAK)(h)
        size = -(-size // 2)
        _check(h, (size, size, f), f"conv_encoder block {i}")
    h = layers.Flatten()(h)
    return keras.Model(x_in, posterior_head(h, latent_dim), name="encoder")


def conv_decoder(
    image_shape: Sequence[int],
    latent_dim: int,
    base: Sequence[int] = (4, 4, 128),
    filters: Sequence[int] = (128, 64, 32),
    kernel_size: int = 4,
    out_kernel_size: int = 3,
) -> keras.Model:
    """Dense(base) -> ConvT(f, k, stride 2)-BN-ReLU per filter count -> Conv(C, 3x3) logits."""
    z_in = keras.Input((latent_dim,), name="z")
    h = layers.Dense(_flat_size(base), name="project")(z_in)
    h = layers.Reshape(tuple(base))(h)
    size = base[0]
    for i, f in enumerate(filters):
        h = layers.Conv2DTranspose(
            f, kernel_size, 2, padding="same", use_bias=False, name=f"convt_{i}"
        )(h)
        h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.ReLU()(h)
        size *= 2
        _check(h, (size, size, f), f"conv_decoder block {i}")
    out = layers.Conv2D(image_shape[-1], out_kernel_size, padding="same", name="logits", **OUT)(h)
    _check(out, image_shape, "conv_decoder output")
    return keras.Model(z_in, out, name="decoder")


# --- GAN / WGAN ----------------------------------------------------------------------------


def mlp_generator(
    image_shape: Sequence[int], latent_dim: int, units: Sequence[int] = (256, 512, 1024)
) -> keras.Model:
    """z -> Dense(units..., LReLU) -> Dense(H*W*C, tanh), reshaped to the image."""
    z_in = keras.Input((latent_dim,), name="z")
    h = z_in
    for i, u in enumerate(units):
        h = layers.Dense(u, name=f"dense_{i}")(h)
        h = layers.LeakyReLU(LEAK)(h)
    h = layers.Dense(_flat_size(image_shape), activation="tanh", name="image", **OUT)(h)
    out = layers.Reshape(tuple(image_shape), **OUT)(h)
    return keras.Model(z_in, out, name="generator")


def mlp_discriminator(
    image_shape: Sequence[int],
    units: Sequence[int] = (1024, 512, 256),
    dropout: float = 0.3,
    name: str = "discriminator",
) -> keras.Model:
    """Flatten -> Dense(units..., LReLU, Dropout) -> Dense(1): one logit (or critic value)."""
    x_in = keras.Input(tuple(image_shape), name="image")
    h = layers.Flatten()(x_in)
    for i, u in enumerate(units):
        h = layers.Dense(u, name=f"dense_{i}")(h)
        h = layers.LeakyReLU(LEAK)(h)
        if dropout:
            h = layers.Dropout(dropout)(h)
    out = layers.Dense(1, name="logit", **OUT)(h)
    return keras.Model(x_in, out, name=name)


def conv_generator(
    image_shape: Sequence[int],
    latent_dim: int,
    *,
    base: Sequence[int] = (4, 4, 256),
    filters: Sequence[int] = (128, 64),
    strides: Sequence[int] = (2, 2),
    out_stride: int = 2,
    kernel_size: int = 4,
) -> keras.Model:
    """Dense(base)-BN-ReLU -> ConvT(f, k, s)-BN-ReLU per block -> ConvT(C, k, out_stride, tanh)."""
    if len(filters) != len(strides):
        raise ValueError(f"filters {filters} and strides {strides} must have the same length")
    z_in = keras.Input((latent_dim,), name="z")
    h = layers.Dense(_flat_size(base), use_bias=False, name="project")(z_in)
    h = layers.BatchNormalization(name="bn_project")(h)
    h = layers.ReLU()(h)
    h = layers.Reshape(tuple(base))(h)
    size = base[0]
    for i, (f, s) in enumerate(zip(filters, strides)):
        h = layers.Conv2DTranspose(
            f, kernel_size, s, padding="same", use_bias=False, name=f"convt_{i}"
        )(h)
        h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.ReLU()(h)
        size *= s
        _check(h, (size, size, f), f"conv_generator block {i}")
    out = layers.Conv2DTranspose(
        image_shape[-1],
        kernel_size,
        out_stride,
        padding="same",
        activation="tanh",
        name="image",
        **OUT,
    )(h)
    _check(out, image_shape, "conv_generator output")
    return keras.Model(z_in, out, name="generator")


def conv_discriminator(
    image_shape: Sequence[int],
    filters: Sequence[int] = (64, 128, 256),
    kernel_size: int = 4,
    name: str = "discriminator",
) -> keras.Model:
    """Conv(f, k, stride 2)-LReLU, then Conv-BN-LReLU per further filter count -> Dense(1)."""
    x_in = keras.Input(tuple(image_shape), name="image")
    h = x_in
    size = image_shape[0]
    for i, f in enumerate(filters):
        h = layers.Conv2D(f, kernel_size, 2, padding="same", use_bias=i == 0, name=f"conv_{i}")(h)
        if i > 0:  # the report's first block has no batch norm
            h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.LeakyReLU(LEAK)(h)
        size = -(-size // 2)
        _check(h, (size, size, f), f"{name} block {i}")
    h = layers.Flatten()(h)
    out = layers.Dense(1, name="logit", **OUT)(h)
    return keras.Model(x_in, out, name=name)


BUILDERS = {
    "mlp_encoder": mlp_encoder,
    "mlp_decoder": mlp_decoder,
    "conv_encoder": conv_encoder,
    "conv_decoder": conv_decoder,
    "mlp_generator": mlp_generator,
    "mlp_discriminator": mlp_discriminator,
    "conv_generator": conv_generator,
    "conv_discriminator": conv_discriminator,
}


def build(spec: dict, **overrides) -> keras.Model:
    """Build a network from its spec dict: `{"type": <builder name>, **arguments}`."""
    kwargs = {**spec, **overrides}
    kind = kwargs.pop("type", None)
    if kind not in BUILDERS:
        raise ValueError(f"unknown network type {kind!r}; choose one of {', '.join(BUILDERS)}")
    return BUILDERS[kind](**kwargs)


def reset_layer_names() -> None:
    """Restart Keras' automatic layer names (`leaky_re_lu_3` ...), so that networks built
    next get the same names, and `layer_table` the same text, on every run of a notebook."""
    keras.utils.clear_session()


def layer_table(network: keras.Model) -> str:
    """A stable plain-text table of a network: one row per layer (name, type, output shape,
    parameters) and a total line; for notebooks' checked architecture cells and the docs.
    """
    trainable = sum(math.prod(w.shape) for w in network.trainable_weights)
    lines = [f"{network.name}: {network.count_params():,} parameters ({trainable:,} trainable)"]
    for layer in network.layers:
        shape = str(layer.output.shape)
        lines.append(
            f"  {layer.name:<14} {type(layer).__name__:<19} {shape:<20} {layer.count_params():>10,}"
        )
    return "\n".join(lines)
