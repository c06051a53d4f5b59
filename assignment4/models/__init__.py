"""The algorithms: network builders, the three model families and what they share.

    networks    builders of encoders, decoders, generators, discriminators and critics
    base        what VAE, GAN and WGAN share (seeded noise, replica scaling, sampling)
    vae, gan, wgan   keras.Model subclasses with their losses and custom train_step
    optimizers  the fused Adam
    precision   dtype policies (mixed bfloat16 where the hardware has it)

Networks know nothing about losses; models know nothing about files.
"""

from __future__ import annotations

import contextlib
import copy

import keras

from assignment4.models import precision
from assignment4.models.gan import GAN
from assignment4.models.vae import VAE
from assignment4.models.wgan import WGAN

FAMILIES = {"vae": VAE, "gan": GAN, "wgan": WGAN}


def build(
    family: str,
    *,
    name: str,
    data_shape: tuple[int, ...],
    model: dict,
    optimizers: dict,
    seed: int = 0,
    jit_compile: bool | str = "auto",
    steps_per_execution: int = 1,
    precision_name: str = "float32",
    strategy=None,
):
    """A compiled model of `family` ('vae', 'gan', 'wgan'), in `strategy`'s scope if given.

    Args:
        name: the model's name (the experiment id).
        data_shape: one image in the data set's layout.
        model: the family's keyword arguments (network specs, latent size, ...).
        optimizers: optimizer name -> Keras optimizer config (copied, never edited).
        precision_name: the dtype policy its layers take ('float32', 'mixed_bfloat16' or
            'auto'); the process-wide policy is left as it was.
    """
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope, precision.policy(precision.resolve(precision_name)):
        built = FAMILIES[family](data_shape=data_shape, seed=seed, name=name, **model)
        built.compile(
            jit_compile=jit_compile,
            # Keras 3.15's multi-step loop fails inside MirroredStrategy ("You must feed a
            # value for placeholder"): one step per call there.
            steps_per_execution=1 if strategy is not None else steps_per_execution,
            # deserialize() edits its argument: give it a copy
            **{k: keras.optimizers.deserialize(copy.deepcopy(v)) for k, v in optimizers.items()},
        )
    return built
