"""What VAE, GAN and WGAN share: image layout, seeded noise, replica scaling, sampling; and
what GAN and WGAN share: the generator, and an average of its weights to sample from."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import ClassVar

import keras
import numpy as np
import tensorflow as tf

from assignment4.models import networks, precision


class GenerativeModel(keras.Model):
    """Base class of the three model families.

    Args:
        data_shape: one image in the data set's own layout, `(28, 28)` or `(32, 32, 3)`.
        latent_dim: size of z.
        seed: seeds the training noise (a `keras.random.SeedGenerator`).
    """

    def __init__(self, data_shape: Sequence[int], latent_dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.data_shape = tuple(int(d) for d in data_shape)
        self.image_shape = self.data_shape if len(self.data_shape) == 3 else (*self.data_shape, 1)
        self.latent_dim = int(latent_dim)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def build_network(self, spec: dict, **shapes) -> keras.Model:
        """`networks.build(spec, **shapes)` under the model's own dtype policy: a model loaded
        from its file computes as it was built (mixed bfloat16 or float32)."""
        with precision.policy(self.dtype_policy.name):
            return networks.build(spec, **shapes)

    # --- training helpers ------------------------------------------------------------------

    def latent_noise(self, n):
        """z ~ N(0, I) for `n` images; every replica draws its own noise."""
        return self.normal((n, self.latent_dim))

    def normal(self, shape):
        """Standard normal noise from the model's seed generator, distinct on every replica.

        Under a distribution strategy every replica runs the same step with the same seed
        state, so each folds its replica id into the seed (a hash, not an offset: adding the
        id to the generator's counter would hand replica 1 the draw that replica 0 makes one
        call later). On one device the seed is used as it is.
        """
        seed = tf.cast(self.seed_generator.next(), tf.int64)
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            seed = tf.random.experimental.stateless_fold_in(
                seed, tf.cast(replica.replica_id_in_sync_group, tf.int64)
            )
        return tf.random.stateless_normal(shape, seed=seed)

    @staticmethod
    def replica_scale() -> float:
        """1 / replicas: per-replica gradients are summed across replicas by the optimizer."""
        return 1.0 / tf.distribute.get_strategy().num_replicas_in_sync

    def update_trackers(self, values: dict) -> dict:
        """Feed each tracker its (unscaled) value; return the logs under the trackers' names."""
        for tracker in self.metrics:
            if tracker.name in values:
                tracker.update_state(values[tracker.name])
        logs = {m.name: m.result() for m in self.metrics}
        if _multi_worker():
            # Keras 3.15 averages a step's outputs across workers with
            # strategy.reduce("MEAN", v, axis=0) (reduce_per_replica), which fails on scalars:
            # "Invalid reduction dimension 0 for input with 0 dimensions" (tensorflow/tensorflow
            # issue 72388). One-element vectors reduce to the same mean; the epoch's logs are
            # read from the trackers themselves and stay scalars.
            logs = {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    # --- sampling --------------------------------------------------------------------------

    def images_from_latent(self, z, training: bool = False):
        """Float images in [0, 1], shaped (n, H, W, C). Implemented by each family."""
        raise NotImplementedError

    def generate(self, z, batch_size: int = 1000) -> np.ndarray:
        """uint8 images in the data set's layout from the latent points `z` (n, latent_dim)."""
        z = np.asarray(z, np.float32)
        out = []
        for i in range(0, len(z), batch_size):
            x = self.images_from_latent(tf.constant(z[i : i + batch_size]))
            out.append(to_uint8(np.asarray(x)))
        images = np.concatenate(out) if out else np.zeros((0, *self.image_shape), np.uint8)
        return images.reshape((len(z), *self.data_shape))

    def sample(self, n: int, seed: int | None = None, batch_size: int = 1000) -> np.ndarray:
        """`n` generated images as uint8 in the data set's layout, z drawn from N(0, I)."""
        if n < 0:
            raise ValueError(f"n must be non-negative, got {n}")
        rng = np.random.default_rng(seed)
        return self.generate(rng.standard_normal((n, self.latent_dim)), batch_size)

    # --- optimizers: one per network, named, saved with the model ------------------------------

    #: the names of the family's optimizers, one per network (the registry gives their settings)
    optimizer_names: ClassVar[tuple[str, ...]] = ()

    def optimized_variables(self, name: str) -> list:
        """The variables that the optimizer `name` updates."""
        raise NotImplementedError

    def compile(self, jit_compile="auto", steps_per_execution: int = 1, **optimizers):
        """Compile with one optimizer per network: `optimizer` for a VAE; `d_optimizer` or
        `critic_optimizer`, and `g_optimizer`, for GANs. Compiling again may leave out an
        optimizer the model already has; `experiments.get(id).build()` passes the registry's.
        """
        unknown = set(optimizers) - set(self.optimizer_names)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}.compile() takes the optimizers "
                f"{', '.join(self.optimizer_names)}; got {', '.join(sorted(unknown))}"
            )
        chosen = {}
        for name in self.optimizer_names:
            optimizer = optimizers.get(name) or getattr(self, name, None)
            if optimizer is None:
                raise TypeError(
                    f"{type(self).__name__}.compile() needs the optimizer {name!r}; "
                    "experiments.get(ID).build() compiles with the registry's optimizers"
                )
            chosen[name] = keras.optimizers.get(optimizer)
        # Keras' own `optimizer` slot stays None for GANs, so fit() builds no unused optimizer.
        super().compile(
            optimizer=chosen.pop("optimizer", None),
            jit_compile=jit_compile,
            steps_per_execution=steps_per_execution,
        )
        for name, optimizer in chosen.items():
            setattr(self, name, optimizer)
        for name in self.optimizer_names:
            build_optimizer(getattr(self, name), self.optimized_variables(name))

    def get_compile_config(self):
        if not self.compiled:
            return None
        return {
            "optimizers": {
                name: keras.optimizers.serialize(getattr(self, name))
                for name in self.optimizer_names
            },
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        optimizers = {
            name: keras.optimizers.deserialize(cfg) for name, cfg in config["optimizers"].items()
        }
        self.compile(
            jit_compile=config.get("jit_compile", "auto"),
            steps_per_execution=config.get("steps_per_execution", 1),
            **optimizers,
        )

    def get_config(self):
        return {
            "data_shape": list(self.data_shape),
            "latent_dim": self.latent_dim,
            "seed": self.seed,
            "name": self.name,
            "dtype": self.dtype_policy.name,  # mixed_bfloat16 or float32: see build_network
        }


class AdversarialModel(GenerativeModel):
    """GAN and WGAN: a generator built from its spec, and optionally a moving average of it.

    With `generator_ema` set, the model keeps a second copy of the generator whose weights
    (batch-norm statistics included) follow an exponential moving average of the trained
    generator's: after every generator update, `average = d * average + (1 - d) * weights`.
    The average is never trained; it is what `sample`, `generate` and `model(z)` use, and it
    is saved and restored with the model. The trained generator stays as it is, so resuming
    and continuing a run pick up exactly where it stopped (Keras' optimizer option
    `use_ema` would instead overwrite the trained weights with the average at the end of
    every `fit`). docs/tuning.md ("The GANs on a CPU budget") has the measurements behind it.

    Args:
        generator: network spec dict for `networks.build`.
        generator_ema: the average's decay per generator update, in [0, 1); None keeps no
            average and samples from the trained generator.
    """

    def __init__(self, generator: dict, generator_ema: float | None = None, **kwargs):
        super().__init__(**kwargs)
        if generator_ema is not None and not 0.0 <= float(generator_ema) < 1.0:
            raise ValueError(f"generator_ema must be in [0, 1) or None, got {generator_ema}")
        self.generator_spec = dict(generator)
        self.generator_ema = None if generator_ema is None else float(generator_ema)
        self.generator = self.build_network(
            self.generator_spec, image_shape=self.image_shape, latent_dim=self.latent_dim
        )
        self.generator_average = None
        if self.generator_ema is not None:
            # A clone keeps the layer names (and takes none of Keras' automatic ones, so the
            # networks built after it are named as without it); it starts from G's weights.
            self.generator_average = keras.models.clone_model(self.generator)
            self.generator_average.set_weights(self.generator.get_weights())
            self.generator_average.trainable = False
        self._sample_from_average = True

    @property
    def sampling_generator(self) -> keras.Model:
        """The network that samples: the average when there is one, else the generator."""
        if self.generator_average is None or not self._sample_from_average:
            return self.generator
        return self.generator_average

    @contextlib.contextmanager
    def trained_generator_samples(self) -> Iterator[None]:
        """Inside the block, samples come from the trained generator instead of the average
        (to compare the two: `benchmarks/quality_curve.py` scores both)."""
        self._sample_from_average = False
        try:
            yield
        finally:
            self._sample_from_average = True

    def call(self, z, training: bool = False):
        return self.sampling_generator(z, training=training)

    def images_from_latent(self, z, training: bool = False):
        return (self.sampling_generator(z, training=training) + 1.0) * 0.5

    def update_generator_average(self) -> None:
        """One step of the average toward the generator's current weights (after its update)."""
        if self.generator_average is None:
            return
        d = self.generator_ema
        assign_each(
            self.generator_average.weights,
            lambda average, w: average * d + w * (1.0 - d),
            self.generator.weights,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "generator": self.generator_spec,
            "generator_ema": self.generator_ema,
        }


def assign_each(variables, fn, sources=None) -> None:
    """`v.assign(fn(v))` for every variable, or `v.assign(fn(v, s))` with `sources` in order.

    Inside a step under a distribution strategy, mirrored variables are updated from the
    cross-replica context, once for all replicas, the way optimizers update them.
    """
    variables = list(variables)
    sources = [None] * len(variables) if sources is None else list(sources)
    if len(sources) != len(variables):
        raise ValueError(f"{len(variables)} variables but {len(sources)} sources")
    replica = tf.distribute.get_replica_context()
    strategy = tf.distribute.get_strategy()
    if replica is None or not tf.distribute.has_strategy() or strategy.num_replicas_in_sync == 1:
        for v, s in zip(variables, sources):
            v.assign(fn(v) if s is None else fn(v, s))
        return

    def all_replicas(strategy):
        for v, s in zip(variables, sources):
            args = () if s is None else (getattr(s, "value", s),)
            strategy.extended.update(
                getattr(v, "value", v), lambda w, *a: w.assign(fn(w, *a)), args=args, group=False
            )

    replica.merge_call(all_replicas)


def to_uint8(images_unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 with rounding."""
    return np.clip(np.rint(images_unit * 255.0), 0, 255).astype(np.uint8)


def build_optimizer(optimizer, variables) -> None:
    """Create an optimizer's slots now, outside any compiled function."""
    if optimizer is not None and not optimizer.built:
        optimizer.build(variables)


def _multi_worker() -> bool:
    """Whether the current strategy spans several workers (MultiWorkerMirroredStrategy)."""
    strategy = tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and bool(
        strategy.extended._in_multi_worker_mode()
    )
