"""The registry of the report's nine experiments, the profiles, and `run`, the entry point.

This module is the one place that holds hyper-parameters; the CLI, the notebooks and the
report read them from here.

    from assignment4 import experiments
    exp = experiments.get("vae_mnist_z128")
    model = exp.build()
    train, test = exp.datasets(profile="smoke")
    experiments.run("vae_mnist_z128", profile="quick")
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import keras

from assignment4 import data as data_lib
from assignment4 import models
from assignment4.errors import ConfigError
from assignment4.models import optimizers as optimizers_lib
from assignment4.models import precision as precision_lib
from assignment4.training import profiles, run_experiment


def _adam(lr: float, beta_1: float = 0.9) -> dict:
    """Keras' Adam with a fused update kernel (assignment4/models/optimizers.py), same results."""
    name = keras.saving.get_registered_name(optimizers_lib.Adam)
    return {"class_name": name, "config": {"learning_rate": lr, "beta_1": beta_1}}


def _rmsprop(lr: float) -> dict:
    return {"class_name": "RMSprop", "config": {"learning_rate": lr}}


@dataclass(frozen=True)
class Experiment:
    """Every hyper-parameter of one experiment of the report.

    Attributes:
        id: the experiment's name, e.g. 'vae_mnist_z128'.
        figure / table: the report's figure and table numbers.
        dataset: 'mnist' or 'cifar10'.
        family: 'vae', 'gan' or 'wgan'.
        title: a short description in the report's words.
        model: keyword arguments of the model class (network specs, latent size, ...).
        optimizers: optimizer name -> Keras optimizer config.
        quick_epochs: epochs under the 'quick' profile, from `bench`'s epoch times: ~10 minutes
            for an MLP experiment, ~30 for a convolutional one (docs/tuning.md).
        jit_compile: XLA for the train step. 'auto' is Keras' choice: on with a GPU, off on a
            CPU-only machine; `bench --jit on|off` measures the lever (docs/speed.md).
        steps_per_execution: train steps per call from Python into the compiled function.
        precision: Keras dtype policy of the model: 'float32', 'mixed_bfloat16' (bfloat16
            compute, float32 weights and losses), or 'auto': mixed where the hardware computes
            bfloat16 natively (`precision.native_bfloat16`), float32 elsewhere.
    """

    id: str
    figure: int
    table: int
    dataset: str
    family: str
    title: str
    model: dict
    optimizers: dict
    quick_epochs: int
    batch_size: int = 128
    jit_compile: bool | str = "auto"
    steps_per_execution: int = 8
    precision: str = "float32"

    @property
    def latent_dim(self) -> int:
        return self.model["latent_dim"]

    @property
    def data_spec(self) -> data_lib.DatasetSpec:
        return data_lib.spec(self.dataset)

    @property
    def scale(self) -> str:
        """Pixel range of the model: [0, 1] for VAEs, [-1, 1] for tanh generators."""
        return "unit" if self.family == "vae" else "symmetric"

    @property
    def images_per_step(self) -> int:
        """Real images one `fit` step consumes (a WGAN step holds n_critic critic batches)."""
        return self.batch_size * self.model.get("n_critic", 1)

    def resolve_precision(self) -> str:
        """The dtype policy this experiment trains under on this machine."""
        return precision_lib.resolve(self.precision)

    def epochs(self, profile_name: str | None = None) -> int:
        """Epochs under a profile."""
        p = profiles.profile(profile_name)
        return self.quick_epochs if p.name == "quick" else p.epochs

    def build(
        self,
        strategy=None,
        seed: int = 0,
        jit_compile: bool | None = None,
        precision: str | None = None,
    ):
        """A compiled model (`models.build`), created in `strategy`'s scope when one is given;
        its layers take the dtype policy `precision` (the registry's when None)."""
        return models.build(
            self.family,
            name=self.id,
            data_shape=self.data_spec.image_shape,
            model=self.model,
            optimizers=self.optimizers,
            seed=seed,
            jit_compile=self.jit_compile if jit_compile is None else jit_compile,
            steps_per_execution=self.steps_per_execution,
            precision_name=precision or self.precision,
            strategy=strategy,
        )

    def data_plan(self, profile_name: str | None = None) -> data_lib.DataPlan:
        """What this experiment trains and tests on under a profile."""
        p = profiles.profile(profile_name)
        return data_lib.DataPlan(
            dataset=self.dataset,
            scale=self.scale,
            batch_size=self.batch_size,
            n_critic=self.model.get("n_critic", 1),
            train_size=p.train_size,
            test_size=p.test_size,
            name=self.id,
        )

    def datasets(self, profile: str | None = None, seed: int = 0, data_dir=None):
        """(train, test) `tf.data` pipelines of scaled images for a profile (`data.datasets`).

        A WGAN's training batches hold `n_critic * batch_size` images, one slice per critic
        update (see `WGAN`); test batches are always `batch_size`.
        """
        return data_lib.datasets(self.data_plan(profile), seed=seed, data_dir=data_dir)

    def data_sizes(self, profile: str | None = None, data_dir=None) -> tuple[int, int]:
        """(train images, test images) that `datasets(profile)` uses."""
        return data_lib.sizes(self.data_plan(profile))


# --- the nine experiments of the report ------------------------------------------------------

_MLP_VAE_MNIST = {
    "encoder": {"type": "mlp_encoder", "units": [512, 256]},
    "decoder": {"type": "mlp_decoder", "units": [256, 512]},
    "reconstruction": "bce",
}
_MLP_GENERATOR = {"type": "mlp_generator", "units": [256, 512, 1024]}
_MLP_DISCRIMINATOR = {"type": "mlp_discriminator", "units": [1024, 512, 256], "dropout": 0.3}
# The usual DCGAN generator widths (4x4x256-128-64). Halving them gave more updates per CPU
# minute but plateaued lower (docs/tuning.md, "The GANs on a CPU budget").
_DC_CIFAR_GENERATOR = {
    "type": "conv_generator",
    "base": [4, 4, 256],
    "filters": [128, 64],
    "strides": [2, 2],
    "out_stride": 2,
    "kernel_size": 4,
}
_DC_CIFAR_DISCRIMINATOR = {
    "type": "conv_discriminator",
    "filters": [64, 128, 256],
    "kernel_size": 4,
}
_GAN_OPT = {"d_optimizer": _adam(2e-4, 0.5), "g_optimizer": _adam(2e-4, 0.5)}
# RMSprop as the WGAN paper, at 2e-4 instead of its 5e-5 (docs/tuning.md)
_WGAN_OPT = {"critic_optimizer": _rmsprop(2e-4), "g_optimizer": _rmsprop(2e-4)}
_WGAN_CLIP = {"n_critic": 5, "clip_value": 0.01}

EXPERIMENTS = {
    e.id: e
    for e in [
        Experiment(
            id="vae_mnist_z128", figure=1, table=1, dataset="mnist", family="vae",
            title="MLP VAE, z=128",
            model={"latent_dim": 128, **_MLP_VAE_MNIST},
            optimizers={"optimizer": _adam(1e-3)},
            quick_epochs=80,
        ),
        Experiment(
            id="vae_mnist_z2", figure=2, table=1, dataset="mnist", family="vae",
            title="MLP VAE, z=2",
            model={"latent_dim": 2, **_MLP_VAE_MNIST},
            optimizers={"optimizer": _adam(1e-3)},
            quick_epochs=80,
        ),
        Experiment(
            id="gan_mnist", figure=3, table=2, dataset="mnist", family="gan",
            title="MLP GAN",
            model={
                "latent_dim": 128, "generator": _MLP_GENERATOR,
                "discriminator": _MLP_DISCRIMINATOR,
            },
            optimizers=_GAN_OPT,
            # bfloat16 compute where native: more updates per CPU minute and a higher IS at
            # equal minutes in paired curves (measured: docs/speed.md, "Other levers")
            precision="auto",
            # enough epochs to reach its IS target (docs/tuning.md)
            quick_epochs=50,
        ),
        Experiment(
            id="wgan_mnist", figure=4, table=2, dataset="mnist", family="wgan",
            title="MLP WGAN",
            model={
                "latent_dim": 128, "generator": _MLP_GENERATOR, "critic": _MLP_DISCRIMINATOR,
                **_WGAN_CLIP,
            },
            optimizers=_WGAN_OPT,
            # bfloat16 compute where native: a higher IS and lower FD at equal CPU minutes in
            # paired curves (measured: docs/speed.md, "Other levers")
            precision="auto",
            quick_epochs=40,
        ),
        Experiment(
            id="dcwgan_mnist", figure=5, table=2, dataset="mnist", family="wgan",
            title="DC-WGAN (sigmoid critic, as in the report)",
            model={
                "latent_dim": 128,
                "generator": {
                    "type": "conv_generator", "base": [7, 7, 128], "filters": [64, 32],
                    "strides": [1, 2], "out_stride": 2, "kernel_size": 5,
                },
                "critic": {"type": "conv_discriminator", "filters": [64, 128], "kernel_size": 5},
                "critic_sigmoid": True, **_WGAN_CLIP,
            },
            optimizers=_WGAN_OPT,
            batch_size=64,
            # bfloat16 compute where native: more generator updates per CPU minute and a higher
            # IS at equal minutes, so more quick epochs in the same time (measured: docs/tuning.md,
            # "The GANs on a CPU budget")
            precision="auto",
            quick_epochs=35,
        ),
        Experiment(
            id="convvae_cifar10", figure=6, table=3, dataset="cifar10", family="vae",
            title="convolutional VAE, z=512",
            model={
                "latent_dim": 512,
                "encoder": {"type": "conv_encoder", "filters": [32, 64, 128], "kernel_size": 4},
                "decoder": {
                    "type": "conv_decoder", "base": [4, 4, 128], "filters": [128, 64, 32],
                    "kernel_size": 4, "out_kernel_size": 3,
                },
                "reconstruction": "mse",
            },
            optimizers={"optimizer": _adam(1e-3)},
            quick_epochs=12,
        ),
        Experiment(
            id="vae_cifar10", figure=7, table=3, dataset="cifar10", family="vae",
            title="MLP VAE, z=512",
            model={
                "latent_dim": 512,
                "encoder": {"type": "mlp_encoder", "units": [1024, 512]},
                "decoder": {"type": "mlp_decoder", "units": [512, 1024]},
                "reconstruction": "mse",
            },
            optimizers={"optimizer": _adam(1e-3)},
            quick_epochs=25,
        ),
        Experiment(
            id="dcgan_cifar10", figure=8, table=4, dataset="cifar10", family="gan",
            title="DCGAN",
            model={
                "latent_dim": 128, "generator": _DC_CIFAR_GENERATOR,
                "discriminator": _DC_CIFAR_DISCRIMINATOR,
                # No generator average (generator_ema): in a quick run it scored below the
                # trained generator at epochs 5, 10 and 15 (docs/tuning.md, "GANs on a CPU budget")
            },
            optimizers=_GAN_OPT,
            batch_size=64,
            quick_epochs=15,
        ),
        Experiment(
            id="dcwgan_cifar10", figure=9, table=4, dataset="cifar10", family="wgan",
            title="DC-WGAN (linear critic)",
            model={
                "latent_dim": 128, "generator": _DC_CIFAR_GENERATOR,
                "critic": _DC_CIFAR_DISCRIMINATOR, **_WGAN_CLIP,
            },
            optimizers=_WGAN_OPT,
            batch_size=64,
            quick_epochs=20,
        ),
    ]
}  # fmt: skip

EXPERIMENT_IDS = list(EXPERIMENTS)


def get(exp_id: str) -> Experiment:
    """The experiment `exp_id`; a ConfigError lists the valid ids otherwise."""
    if exp_id not in EXPERIMENTS:
        raise ConfigError(
            f"Unknown experiment {exp_id!r}. Valid ids: {', '.join(EXPERIMENT_IDS)} (or 'all')."
        )
    return EXPERIMENTS[exp_id]


def resolve_ids(ids) -> list[str]:
    """Expand 'all' and check every id."""
    if isinstance(ids, str):
        ids = [ids]
    out = []
    for i in ids:
        out.extend(EXPERIMENT_IDS if i == "all" else [get(i).id])
    return out


def run(exp_id: str, profile: str | None = None, runs: str | os.PathLike = "runs", **options):
    """Train one experiment and write its artifacts to `runs/<id>/<profile>/` (the CLI's run).

    `options` are those of `training.run_experiment` (strategy, epochs, seed, data_dir,
    verbose, restart). Resumes a killed run from its last finished epoch, and continues a
    finished run asked for more epochs. A run that cannot continue as asked (fewer epochs,
    another seed) raises `RunConflict` and is left as it is; `restart=True` deletes it and
    starts over. Returns the run folder.
    """
    return run_experiment(get(exp_id), profiles.profile(profile).name, runs, **options)
