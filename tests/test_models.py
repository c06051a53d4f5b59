"""VAE, GAN and WGAN: losses on known inputs, clipping, n_critic, saving, sampling, training."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from assignment4 import data, experiments
from assignment4.models import gan, vae, wgan
from assignment4.models.base import GenerativeModel, to_uint8

LOG2 = math.log(2.0)
WGAN_IDS = [i for i, e in experiments.EXPERIMENTS.items() if e.family == "wgan"]
METRICS = {
    "vae": ["loss", "reconstruction", "kl"],
    "gan": ["d_loss", "g_loss", "js_estimate"],
    "wgan": ["critic_loss", "g_loss", "em_estimate"],
}


def build(exp_id: str) -> GenerativeModel:
    """The registry's compiled model; XLA off, so tests do not wait for its compiler."""
    return experiments.get(exp_id).build(jit_compile=False)


def real_batch(x_uint8: np.ndarray, n: int, scale: str) -> np.ndarray:
    """The first `n` real images scaled as the pipelines scale them, float32 NHWC."""
    return np.asarray(data.scale_images(x_uint8[:n], scale))


def batch_for(exp_id: str, mnist, cifar10, per_step: int = 16) -> np.ndarray:
    """Real images for one train step: `per_step` per (critic) update."""
    exp = experiments.get(exp_id)
    x = (mnist if exp.dataset == "mnist" else cifar10)[0][0]
    return real_batch(x, per_step * exp.model.get("n_critic", 1), exp.scale)


def value(t) -> float:
    return float(np.asarray(t))


def deterministic(exp_id: str) -> experiments.Experiment:
    """The registry's experiment with dropout off, so a network gives the same values in a
    train step as when a test evaluates it."""
    exp = experiments.get(exp_id)
    net = {"gan": "discriminator", "wgan": "critic"}.get(exp.family)
    if (
        net is None
        or "dropout" not in exp.model[net]
        and exp.model[net]["type"] != "mlp_discriminator"
    ):
        return exp
    return dataclasses.replace(exp, model={**exp.model, net: {**exp.model[net], "dropout": 0.0}})


def fixed_noise(model, seed: int = 0):
    """`model` drawing the same latent points at every call (the first rows of one fixed
    draw), so a test can recompute what a step saw."""
    z = np.random.default_rng(seed).standard_normal((1024, model.latent_dim)).astype("float32")
    model.latent_noise = lambda n: tf.constant(z)[:n]
    return model


# --- VAE losses ---------------------------------------------------------------------------


def test_kl_of_the_prior_itself_is_zero():
    kl = np.asarray(vae.kl_divergence(np.zeros((3, 4), "float32"), np.zeros((3, 4), "float32")))
    assert kl.shape == (3,)
    np.testing.assert_allclose(kl, 0.0, atol=1e-7)


def test_kl_of_unit_mean_is_half_per_dimension():
    kl = vae.kl_divergence(np.ones((2, 5), "float32"), np.zeros((2, 5), "float32"))
    np.testing.assert_allclose(np.asarray(kl), [2.5, 2.5], rtol=1e-6)


def test_kl_matches_the_closed_form_on_random_inputs():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(6, 8)).astype("float32")
    log_var = rng.normal(scale=0.7, size=(6, 8)).astype("float32")
    m, lv = mean.astype(np.float64), log_var.astype(np.float64)
    expected = 0.5 * np.sum(np.exp(lv) + m**2 - 1.0 - lv, axis=-1)
    np.testing.assert_allclose(np.asarray(vae.kl_divergence(mean, log_var)), expected, rtol=1e-5)
    assert np.all(expected > 0)


def test_bce_from_logits_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 28, 28, 1)).astype("float32")
    logits = rng.normal(scale=3.0, size=x.shape).astype("float32")
    s = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    expected = -np.sum((x * np.log(s) + (1 - x) * np.log(1 - s)).reshape(3, -1), axis=1)
    got = np.asarray(vae.bce_from_logits(x, logits))
    assert got.shape == (3,)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bce_from_logits_is_finite_for_extreme_logits():
    x = np.array([[1.0, 0.0, 1.0, 0.0]], "float32").reshape(1, 2, 2, 1)
    logits = np.array([[100.0, -100.0, -100.0, 100.0]], "float32").reshape(1, 2, 2, 1)
    got = np.asarray(vae.bce_from_logits(x, logits))
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, [200.0], rtol=1e-6)  # two right (~0), two wrong (100 each)


def test_squared_error_is_summed_per_image():
    x = np.zeros((2, 2, 2, 3), "float32")
    x_hat = np.full_like(x, 0.5)
    x_hat[1] = 1.0
    np.testing.assert_allclose(np.asarray(vae.squared_error(x, x_hat)), [12 * 0.25, 12.0])


# --- GAN losses ---------------------------------------------------------------------------


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def test_undecided_discriminator_gives_2_log_2_and_zero_js():
    zeros = np.zeros((8, 1), "float32")
    d_loss = gan.discriminator_loss(zeros, zeros)
    np.testing.assert_allclose(value(d_loss), 2 * LOG2, rtol=1e-6)
    np.testing.assert_allclose(value(gan.js_estimate(d_loss)), 0.0, atol=1e-6)
    np.testing.assert_allclose(value(gan.generator_loss(zeros)), LOG2, rtol=1e-6)


def test_discriminator_loss_on_hand_chosen_logits():
    real = np.array([[2.0], [0.0]], "float32")
    fake = np.array([[-1.0], [3.0]], "float32")
    expected = (softplus(-2.0) + softplus(0.0)) / 2 + (softplus(-1.0) + softplus(3.0)) / 2
    d_loss = gan.discriminator_loss(real, fake)
    np.testing.assert_allclose(value(d_loss), expected, rtol=1e-6)
    np.testing.assert_allclose(value(gan.js_estimate(d_loss)), LOG2 - expected / 2, rtol=1e-6)
    g = (softplus(1.0) + softplus(-3.0)) / 2  # -log D(G(z)), non-saturating
    np.testing.assert_allclose(value(gan.generator_loss(fake)), g, rtol=1e-6)


def test_perfect_discriminator_gives_js_log_2_without_overflow():
    real, fake = np.full((4, 1), 200.0, "float32"), np.full((4, 1), -200.0, "float32")
    d_loss = gan.discriminator_loss(real, fake)
    np.testing.assert_allclose(value(d_loss), 0.0, atol=1e-6)
    np.testing.assert_allclose(value(gan.js_estimate(d_loss)), LOG2, rtol=1e-6)
    np.testing.assert_allclose(value(gan.generator_loss(fake)), 200.0, rtol=1e-6)


def test_gan_train_step_logs_js_from_its_d_loss(mnist, cifar10):
    model = build("gan_mnist")
    logs = model.train_step(batch_for("gan_mnist", mnist, cifar10, 32))
    assert list(logs) == METRICS["gan"]
    d, js = value(logs["d_loss"]), value(logs["js_estimate"])
    assert math.isfinite(d) and math.isfinite(value(logs["g_loss"]))
    np.testing.assert_allclose(js, LOG2 - d / 2, rtol=1e-5, atol=1e-6)
    assert int(model.d_optimizer.iterations) == 1 and int(model.g_optimizer.iterations) == 1


# --- WGAN critic, EM estimate, clipping, n_critic --------------------------------------------


def linear_wgan(critic_sigmoid: bool = False) -> wgan.WGAN:
    """A WGAN whose critic is C(x) = mean pixel and whose generator draws -0.5 everywhere."""
    model = wgan.WGAN(
        generator={"type": "mlp_generator", "units": [8]},
        critic={"type": "mlp_discriminator", "units": [], "dropout": 0.0},
        data_shape=(28, 28),
        latent_dim=4,
        critic_sigmoid=critic_sigmoid,
    )
    model.compile(
        critic_optimizer=keras.optimizers.RMSprop(1e-3), g_optimizer=keras.optimizers.RMSprop(1e-3)
    )
    logit = model.critic.get_layer("logit")
    logit.kernel.assign(np.full((784, 1), 1 / 784, "float32"))
    logit.bias.assign(np.zeros(1, "float32"))
    image = model.generator.get_layer("image")
    image.kernel.assign(np.zeros(image.kernel.shape, "float32"))
    image.bias.assign(np.full(784, np.arctanh(-0.5), "float32"))
    return model


def test_wgan_losses_on_hand_chosen_values():
    real, fake = np.array([1.0, 3.0]), np.array([-1.0, 0.0])
    np.testing.assert_allclose(value(wgan.critic_loss(real, fake)), -0.5 - 2.0)
    np.testing.assert_allclose(value(wgan.generator_loss(fake)), 0.5)
    np.testing.assert_allclose(value(wgan.em_estimate(wgan.critic_loss(real, fake))), 2.5)


def test_critic_loss_and_generator_loss_on_a_known_critic():
    real = np.ones((10, 28, 28, 1), "float32")  # C(x) = 1; C(G(z)) = -0.5
    g_loss = linear_wgan().generator_step(10)
    np.testing.assert_allclose(value(g_loss), 0.5, rtol=1e-5)  # -mean C(G(z))
    critic_loss = linear_wgan().critic_step(real)
    np.testing.assert_allclose(value(critic_loss), -0.5 - 1.0, rtol=1e-5)  # C(G(z)) - C(x)


def test_sigmoid_critic_applies_the_sigmoid_before_the_means():
    model = linear_wgan(critic_sigmoid=True)
    critic_loss = model.critic_step(np.ones((10, 28, 28, 1), "float32"))
    sig = lambda v: 1 / (1 + math.exp(-v))
    np.testing.assert_allclose(value(critic_loss), sig(-0.5) - sig(1.0), rtol=1e-5)


def test_em_estimate_is_the_critics_gap_before_its_update_and_zero_for_a_constant_critic(mnist):
    """The EM estimate of a critic step, against mean C(x) - mean C(G(z)) computed here from
    the critic before the update, with the same latent points."""
    model = fixed_noise(deterministic("wgan_mnist").build(jit_compile=False), seed=3)
    real = real_batch(mnist[0][0], 16, "symmetric")
    fake = model.generator(model.latent_noise(16))
    gap = np.mean(model.critic_value(real)) - np.mean(model.critic_value(fake))
    em = value(wgan.em_estimate(model.critic_step(real)))
    np.testing.assert_allclose(em, gap, rtol=1e-4)
    assert abs(gap) > 1e-4  # an untrained critic still tells these apart a little
    for v in model.critic.trainable_weights:
        v.assign(np.zeros(v.shape, "float32"))  # C = 0 for every image
    assert value(wgan.em_estimate(model.critic_step(real))) == 0.0


@pytest.fixture(scope="module", params=WGAN_IDS)
def stepped_wgan(request, mnist, cifar10):
    """A registry WGAN after one train step on n_critic * 16 real images: (id, model, logs)."""
    model = build(request.param)
    before = [np.abs(np.asarray(v)).max() for v in model.critic.trainable_weights]
    assert max(before) > model.clip_value  # untrained weights exceed the bound
    logs = model.train_step(batch_for(request.param, mnist, cifar10, 16))
    return request.param, model, logs


def test_clipping_holds_after_a_train_step(stepped_wgan):
    exp_id, model, logs = stepped_wgan
    bound = np.float32(experiments.get(exp_id).model["clip_value"])
    weights = [np.asarray(v) for v in model.critic.trainable_weights]
    assert weights, "the critic has no trainable weights"
    assert max(np.abs(w).max() for w in weights) <= bound
    at_bound = sum(int(np.sum(np.abs(w) == bound)) for w in weights)
    assert at_bound > 0  # some weights were clipped, not merely small
    assert all(math.isfinite(value(v)) for v in logs.values())


def test_critic_updates_n_critic_times_per_generator_update(stepped_wgan):
    _, model, _ = stepped_wgan
    assert model.n_critic == 5
    assert int(model.critic_optimizer.iterations) == 5
    assert int(model.g_optimizer.iterations) == 1


def test_wgan_logs_are_named_as_its_trackers(stepped_wgan):
    _, model, logs = stepped_wgan
    assert list(logs) == [m.name for m in model.metrics] == METRICS["wgan"]


def test_wgan_logs_the_mean_over_its_critic_updates(mnist, monkeypatch):
    """The logged critic loss and EM estimate average all n_critic critic updates of a step
    (not the last one, not the generator's), each recorded here as the step computes it."""
    seen = []

    def recording(real_values, fake_values):
        seen.append(float(np.mean(real_values)) - float(np.mean(fake_values)))
        return wgan.ops.mean(fake_values) - wgan.ops.mean(real_values)

    monkeypatch.setattr(wgan, "critic_loss", recording)
    model = deterministic("wgan_mnist").build(jit_compile=False)
    logs = model.train_step(real_batch(mnist[0][0], 5 * 16, "symmetric"))
    assert len(seen) == model.n_critic == 5 and np.std(seen) > 0
    np.testing.assert_allclose(value(logs["em_estimate"]), np.mean(seen), rtol=1e-5)
    np.testing.assert_allclose(value(logs["critic_loss"]), -np.mean(seen), rtol=1e-5)


def test_split_batch_gives_every_critic_update_its_own_slice():
    x = np.arange(12)
    parts = [np.asarray(p).tolist() for p in wgan.split_batch(x, 5)]
    assert len(parts) == 5 and all(parts)
    assert [i for part in parts for i in part] == list(range(12))


# --- saving -------------------------------------------------------------------------------


@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "gan_mnist", "wgan_mnist"])
def test_save_and_load_round_trip(exp_id, tmp_path, mnist, cifar10):
    model = build(exp_id)
    x = batch_for(exp_id, mnist, cifar10, 16)
    model.train_step(x)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode

    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    z = np.random.default_rng(5).standard_normal((6, model.latent_dim)).astype("float32")
    np.testing.assert_array_equal(loaded.generate(z), model.generate(z))
    np.testing.assert_array_equal(loaded.sample(7, seed=3), model.sample(7, seed=3))
    if exp_id.startswith("vae"):
        np.testing.assert_allclose(
            np.asarray(loaded.reconstruct(x[:4])), np.asarray(model.reconstruct(x[:4])), atol=1e-6
        )
    for name in model.optimizer_names:
        mine, theirs = getattr(model, name), getattr(loaded, name)
        assert type(theirs) is type(mine), name
        assert math.isclose(float(theirs.learning_rate), float(mine.learning_rate), rel_tol=1e-6)
        assert int(theirs.iterations) == int(mine.iterations) >= 1
        for a, b in zip(mine.variables, theirs.variables, strict=True):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6)

    loaded.train_step(x)  # the loaded model trains on
    first = next(iter(model.optimizer_names))
    assert int(getattr(loaded, first).iterations) == 2 * int(getattr(model, first).iterations)


def test_registry_optimizers_reach_the_compiled_model():
    for exp_id in ("gan_mnist", "wgan_mnist", "vae_mnist_z2"):
        exp, model = experiments.get(exp_id), build(exp_id)
        for name, config in exp.optimizers.items():
            opt = getattr(model, name)
            assert keras.saving.get_registered_name(type(opt)).endswith(config["class_name"])
            for key, expected in config["config"].items():
                assert math.isclose(float(getattr(opt, key)), expected, rel_tol=1e-6), key
        mine = [getattr(model, name) for name in model.optimizer_names]
        assert len({id(o) for o in mine}) == len(mine)  # one optimizer per network


def test_compile_needs_every_optimizer_of_the_family():
    model = gan.GAN(
        generator={"type": "mlp_generator", "units": [8]},
        discriminator={"type": "mlp_discriminator", "units": [8]},
        data_shape=(28, 28),
        latent_dim=4,
    )
    with pytest.raises(TypeError, match="g_optimizer"):
        model.compile(d_optimizer=keras.optimizers.Adam())


# --- compile, metric names ------------------------------------------------------------------


def test_compiling_twice_works_and_keeps_three_trackers(mnist, cifar10):
    model = build("vae_mnist_z2")
    model.compile(jit_compile=False)
    model.compile(optimizer=keras.optimizers.Adam(5e-4), jit_compile=False)
    assert [m.name for m in model.metrics] == METRICS["vae"]
    assert math.isclose(float(model.optimizer.learning_rate), 5e-4, rel_tol=1e-6)
    x = batch_for("vae_mnist_z2", mnist, cifar10, 64)
    history = model.fit(x, batch_size=32, epochs=1, verbose=0).history
    assert sorted(history) == sorted(METRICS["vae"])

    g = build("gan_mnist")
    g.compile(jit_compile=False)
    logs = g.train_step(batch_for("gan_mnist", mnist, cifar10, 16))
    assert list(logs) == METRICS["gan"]


def test_compile_rejects_optimizers_of_another_family():
    with pytest.raises(TypeError, match="d_optimizer"):
        build("gan_mnist").compile(optimizer="adam")


# --- sampling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exp_id, layout",
    [("vae_mnist_z2", (28, 28)), ("gan_mnist", (28, 28)), ("dcgan_cifar10", (32, 32, 3)),
     ("vae_cifar10", (32, 32, 3))],
)  # fmt: skip
def test_sample_is_uint8_in_the_data_set_layout_and_seeded(exp_id, layout):
    model = build(exp_id)
    a = model.sample(5, seed=11)
    assert a.dtype == np.uint8 and a.shape == (5, *layout)
    np.testing.assert_array_equal(model.sample(5, seed=11), a)
    assert not np.array_equal(model.sample(5, seed=12), a)
    assert model.sample(0).shape == (0, *layout)
    batched = model.sample(21, seed=11, batch_size=8)  # 8 + 8 + 5
    assert batched.shape == (21, *layout)
    assert np.abs(batched[:5].astype(int) - a).max() <= 1  # same z, other batch sizes
    with pytest.raises(ValueError):
        model.sample(-1)


# --- the generator average ---------------------------------------------------------------


def with_average(exp_id: str, decay: float) -> GenerativeModel:
    """The registry's model of `exp_id` with a generator average of decay `decay`."""
    exp = experiments.get(exp_id)
    exp = dataclasses.replace(exp, model={**exp.model, "generator_ema": decay})
    return exp.build(jit_compile=False)


@pytest.mark.parametrize("exp_id", ["gan_mnist", "wgan_mnist", "dcgan_cifar10"])
def test_generator_average_moves_toward_the_generator_after_each_update(exp_id, mnist, cifar10):
    model = with_average(exp_id, 0.75)
    start = model.generator.get_weights()
    for a, w in zip(model.generator_average.get_weights(), start, strict=True):
        np.testing.assert_array_equal(a, w)  # it starts as the generator
    assert model.generator_average.trainable_weights == []

    step = tf.constant(batch_for(exp_id, mnist, cifar10, 16))
    tf.function(model.train_step)(step)  # compiled, as fit runs it
    trained = model.generator.get_weights()
    assert max(np.abs(t - s).max() for t, s in zip(trained, start)) > 1e-5
    # batch-norm statistics (dcgan_cifar10) are averaged like the weights
    for a, s, t in zip(model.generator_average.get_weights(), start, trained, strict=True):
        np.testing.assert_allclose(a, 0.75 * s + 0.25 * t, rtol=1e-5, atol=1e-7)
    assert int(model.g_optimizer.iterations) == 1


def test_samples_come_from_the_average_and_survive_saving(tmp_path, mnist, cifar10):
    model = with_average("gan_mnist", 0.5)
    model.train_step(batch_for("gan_mnist", mnist, cifar10, 16))
    z = np.random.default_rng(2).standard_normal((6, model.latent_dim)).astype("float32")
    from_average = to_uint8((np.asarray(model.generator_average(z)) + 1.0) * 0.5)
    from_generator = to_uint8((np.asarray(model.generator(z)) + 1.0) * 0.5)
    assert not np.array_equal(from_average, from_generator)
    np.testing.assert_array_equal(model.generate(z), from_average.reshape(6, 28, 28))
    np.testing.assert_array_equal(np.asarray(model(z)), np.asarray(model.generator_average(z)))
    with model.trained_generator_samples():
        np.testing.assert_array_equal(model.generate(z), from_generator.reshape(6, 28, 28))
    np.testing.assert_array_equal(model.generate(z), from_average.reshape(6, 28, 28))

    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.get_config()["generator_ema"] == 0.5
    for a, b in zip(loaded.generator_average.get_weights(), model.generator_average.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.generate(z), model.generate(z))


def test_without_an_average_the_generator_samples():
    model = wgan.WGAN(
        generator={"type": "mlp_generator", "units": [8]},
        critic={"type": "mlp_discriminator", "units": [8]},
        data_shape=(28, 28),
        latent_dim=4,
    )
    assert model.generator_ema is None and model.generator_average is None
    assert model.sampling_generator is model.generator


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_generator_average_rejects_a_decay_outside_0_1(decay):
    with pytest.raises(ValueError, match="generator_ema"):
        with_average("gan_mnist", decay)


# --- every experiment trains ----------------------------------------------------------------


@pytest.mark.parametrize("exp_id", experiments.EXPERIMENT_IDS)
def test_every_experiment_builds_and_trains_on_real_data(exp_id):
    exp = experiments.get(exp_id)
    model = build(exp_id)
    train, test = exp.datasets("smoke")
    validation = test.take(1) if exp.family == "vae" else None
    history = model.fit(
        train.take(1), validation_data=validation, epochs=1, verbose=0, shuffle=False
    ).history
    expected = METRICS[exp.family] + (
        ["val_" + k for k in METRICS["vae"]] if exp.family == "vae" else []
    )
    assert sorted(history) == sorted(expected)
    assert all(math.isfinite(v[-1]) for v in history.values()), history
    images = model.sample(3, seed=0)
    assert images.dtype == np.uint8 and images.shape == (3, *exp.data_spec.image_shape)


@pytest.mark.parametrize(
    ("exp_id", "precision"),
    [
        ("vae_mnist_z2", "float32"),
        ("convvae_cifar10", "float32"),
        ("gan_mnist", "float32"),
        ("dcwgan_cifar10", "float32"),
        ("dcwgan_mnist", "mixed_bfloat16"),  # what 'auto' gives it on a recent GPU
    ],
)
def test_train_steps_compile_with_xla(exp_id, precision):
    # 'auto' turns XLA on with a GPU: every family's steps must compile (no Python-side
    # shapes, no unsupported ops) even where this CPU-only suite leaves it off.
    exp = experiments.get(exp_id)
    model = exp.build(jit_compile=True, precision=precision)
    assert model.jit_compile is True
    train, test = exp.datasets("smoke")
    validation = test.take(1) if exp.family == "vae" else None  # the VAE's test_step too
    history = model.fit(
        train.take(2), validation_data=validation, epochs=1, verbose=0, shuffle=False
    ).history
    assert all(math.isfinite(v[-1]) for v in history.values()), history


@pytest.mark.slow
def test_one_epoch_of_vae_mnist_z128_cuts_the_test_loss():
    exp = experiments.get("vae_mnist_z128")
    model = exp.build()
    train, test = exp.datasets("full")
    before = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    model.fit(train, epochs=1, verbose=0, shuffle=False)
    after = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    assert after < 0.6 * before, (before, after)


# --- posterior collapse -----------------------------------------------------------------------


def test_vae_posterior_starts_at_the_prior():
    """Zero-initialised heads: q(z|x) = N(0, I) for every image before training, so KL = 0."""
    model = build("vae_cifar10")
    x = real_batch(np.zeros((8, 32, 32, 3), np.uint8) + 128, 8, "unit")
    mean, log_var = model.encode(x)
    assert np.abs(np.asarray(mean)).max() == 0.0
    assert np.abs(np.asarray(log_var)).max() == 0.0


def test_mlp_vae_on_cifar10_does_not_collapse(cifar10):
    """The report's MLP VAE on real CIFAR-10: after 100 steps the test KL is well above 0 and
    samples differ from each other. With Keras' default heads it collapsed within these steps
    (test KL ~0.001 nats, every sample the same grey mean image)."""
    (x_train, _), (x_test, _) = cifar10
    exp = experiments.get("vae_cifar10")
    keras.utils.set_random_seed(0)
    model = exp.build(seed=0)
    train = data.pipeline(x_train[: 100 * exp.batch_size], exp.batch_size, "unit", seed=0)
    test = data.pipeline(x_test[:1000], exp.batch_size, "unit", shuffle=False)
    model.fit(train, epochs=1, verbose=0, shuffle=False)
    kl = model.evaluate(test, verbose=0, return_dict=True)["kl"]
    assert kl > 3.0, f"test KL {kl:.4f} nats: the posterior collapsed"
    samples = model.sample(32, seed=0).astype(np.float32)
    spread = samples.std(axis=0).mean()  # per-pixel spread across samples, in grey levels
    assert spread > 8.0, f"samples differ by only {spread:.2f} grey levels on average"


# --- the adversarial models learn: one step at a time, on a fixed real batch ----------------


def test_a_gan_step_lowers_the_discriminators_loss_then_the_generators(mnist):
    """The discriminator's update lowers its loss on the step's real and fake images; the
    generator's update then raises that discriminator's error on its fakes."""
    model = fixed_noise(deterministic("gan_mnist").build(jit_compile=False))
    real = real_batch(mnist[0][0], 64, "symmetric")
    fake_before = np.asarray(model.generator(model.latent_noise(64)))
    d_before = value(
        gan.discriminator_loss(model.discriminator(real), model.discriminator(fake_before))
    )
    model.train_step(real)
    d = model.discriminator
    d_after = value(gan.discriminator_loss(d(real), d(fake_before)))
    assert d_after < d_before - 1e-3, (d_before, d_after)
    fake_after = model.generator(model.latent_noise(64))
    g_old, g_new = (value(gan.generator_loss(d(f))) for f in (fake_before, fake_after))
    assert g_new < g_old - 1e-3, (g_old, g_new)


@pytest.fixture
def trained_wgan(mnist):
    """wgan_mnist (dropout off, fixed noise) after one train step, so its critic is already
    inside the clipping box; and a real batch."""
    model = fixed_noise(deterministic("wgan_mnist").build(jit_compile=False))
    model.train_step(real_batch(mnist[0][0], 5 * 64, "symmetric"))
    return model, real_batch(mnist[0][0][1000:], 64, "symmetric")


def test_a_critic_step_raises_the_em_estimate_and_leaves_the_generator_alone(trained_wgan):
    model, real = trained_wgan
    generator = [np.asarray(v) for v in model.generator.weights]
    fake = np.asarray(model.generator(model.latent_noise(64)))
    gap = lambda: np.mean(model.critic_value(real)) - np.mean(model.critic_value(fake))
    before = gap()
    model.critic_step(real)
    assert gap() > before + 1e-5, (before, gap())
    for old, v in zip(generator, model.generator.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(v), old)  # neither trained nor clipped


def test_a_generator_step_lowers_its_loss_and_is_never_clipped(trained_wgan):
    model, _ = trained_wgan
    c = model.clip_value
    z = model.latent_noise(64)
    loss = lambda: value(wgan.generator_loss(model.critic_value(model.generator(z))))
    # well outside: one RMSprop step moves a weight by a few learning rates, far less than c
    wide = [np.abs(np.asarray(v)) > 2 * c for v in model.generator.trainable_weights]
    before = loss()
    model.generator_step(64)
    assert loss() < before - 1e-6, (before, loss())
    # weights that were well outside [-c, c] stay outside: clipping binds the critic only
    after = [np.abs(np.asarray(v)) > c for v in model.generator.trainable_weights]
    assert sum(int(w.sum()) for w in wide) > 1000
    assert all((a | ~w).all() for a, w in zip(after, wide, strict=True))
