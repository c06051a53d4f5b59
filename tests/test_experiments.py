"""The registry: the report's nine experiments, their settings, the profiles and the data."""

from __future__ import annotations

import copy
import math

import keras
import numpy as np
import pytest

from assignment4 import experiments
from assignment4.errors import ConfigError
from assignment4.training import profiles

REPORT = {  # id: (figure, table, dataset, family, latent size)
    "vae_mnist_z128": (1, 1, "mnist", "vae", 128),
    "vae_mnist_z2": (2, 1, "mnist", "vae", 2),
    "gan_mnist": (3, 2, "mnist", "gan", 128),
    "wgan_mnist": (4, 2, "mnist", "wgan", 128),
    "dcwgan_mnist": (5, 2, "mnist", "wgan", 128),
    "convvae_cifar10": (6, 3, "cifar10", "vae", 512),
    "vae_cifar10": (7, 3, "cifar10", "vae", 512),
    "dcgan_cifar10": (8, 4, "cifar10", "gan", 128),
    "dcwgan_cifar10": (9, 4, "cifar10", "wgan", 128),
}


# The report leaves batch size, widths and learning rates open; these were chosen by measured
# sample quality against CPU minutes (docs/tuning.md).
SMALL_BATCH = ("dcwgan_mnist", "dcgan_cifar10", "dcwgan_cifar10")
WGAN_LR = 2e-4


def test_the_nine_experiments_of_the_report():
    assert experiments.EXPERIMENT_IDS == list(REPORT)
    for exp_id, (figure, table, dataset, family, z) in REPORT.items():
        exp = experiments.get(exp_id)
        assert (exp.id, exp.figure, exp.table, exp.dataset, exp.family, exp.latent_dim) == (
            exp_id, figure, table, dataset, family, z
        )  # fmt: skip
        assert exp.batch_size == (64 if exp_id in SMALL_BATCH else 128)
    assert sorted(e.figure for e in experiments.EXPERIMENTS.values()) == list(range(1, 10))
    assert {e.table for e in experiments.EXPERIMENTS.values()} == {1, 2, 3, 4}


def optimizer(spec: dict) -> tuple[str, dict]:
    """(Keras optimizer name, config): the project's fused Adam counts as Keras' Adam."""
    opt = keras.optimizers.deserialize(copy.deepcopy(spec))
    base = next(c for c in type(opt).__mro__ if c.__module__.startswith("keras."))
    return base.__name__.lower(), spec["config"]


def test_hyper_parameters_follow_the_report():
    for exp in experiments.EXPERIMENTS.values():
        opts = exp.optimizers
        if exp.family == "vae":
            assert list(opts) == ["optimizer"]
            assert optimizer(opts["optimizer"]) == ("adam", {"learning_rate": 1e-3, "beta_1": 0.9})
            expected = "bce" if exp.dataset == "mnist" else "mse"
            assert exp.model["reconstruction"] == expected
        elif exp.family == "gan":
            assert sorted(opts) == ["d_optimizer", "g_optimizer"]
            for spec in opts.values():
                assert optimizer(spec) == ("adam", {"learning_rate": 2e-4, "beta_1": 0.5})
        else:
            assert sorted(opts) == ["critic_optimizer", "g_optimizer"]
            for spec in opts.values():
                assert optimizer(spec) == ("rmsprop", {"learning_rate": WGAN_LR})
            assert exp.model["n_critic"] == 5 and exp.model["clip_value"] == 0.01
            assert exp.model.get("critic_sigmoid", False) is (exp.id == "dcwgan_mnist")


def test_build_leaves_the_registry_unchanged():
    exp = experiments.get("gan_mnist")
    exp.build(jit_compile=False)
    assert exp.optimizers["d_optimizer"] == {
        "class_name": "assignment4>Adam", "config": {"learning_rate": 2e-4, "beta_1": 0.5}
    }  # fmt: skip
    dcgan = experiments.get("dcgan_cifar10")
    assert dcgan.optimizers["g_optimizer"]["class_name"] == "assignment4>Adam"


def test_unknown_id_lists_the_valid_ones():
    with pytest.raises(ConfigError) as e:
        experiments.get("vae_mnist_z64")
    assert "vae_mnist_z64" in str(e.value)
    for exp_id in REPORT:
        assert exp_id in str(e.value)
    with pytest.raises(ConfigError, match="gan_mnist"):
        experiments.resolve_ids(["gan_mnist", "gan_cifar10"])


def test_all_expands_to_every_id_in_order():
    assert experiments.resolve_ids("all") == list(REPORT)
    assert experiments.resolve_ids(["wgan_mnist", "gan_mnist"]) == ["wgan_mnist", "gan_mnist"]


# --- profiles -------------------------------------------------------------------------------


def test_profile_defaults_to_full_and_reads_the_environment(monkeypatch):
    assert profiles.profile().name == "full"
    monkeypatch.setenv(profiles.PROFILE_ENV, "smoke")
    assert profiles.profile().name == "smoke"
    assert profiles.profile("quick").name == "quick"  # an explicit name wins


def test_unknown_profile_is_rejected(monkeypatch):
    with pytest.raises(ConfigError, match="full, quick, smoke"):
        profiles.profile("fast")
    monkeypatch.setenv(profiles.PROFILE_ENV, "tiny")
    with pytest.raises(ConfigError, match="'tiny'"):
        profiles.profile()
    with pytest.raises(ConfigError):
        experiments.get("gan_mnist").epochs()


def test_epochs_per_profile():
    for exp in experiments.EXPERIMENTS.values():
        assert exp.epochs("full") == 200
        assert exp.epochs("quick") == exp.quick_epochs and 1 <= exp.quick_epochs < 200
        assert exp.epochs("smoke") == 2


def test_profile_data_sizes():
    for exp in experiments.EXPERIMENTS.values():
        n_train = 60000 if exp.dataset == "mnist" else 50000
        assert exp.data_sizes("full") == (n_train, 10000)
        assert exp.data_sizes("quick") == (n_train, 10000)
        assert exp.data_sizes("smoke") == (640, 256)


# --- pipelines of an experiment ---------------------------------------------------------------


def sizes(ds) -> list[int]:
    return [int(b.shape[0]) for b in ds]


@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "gan_mnist", "wgan_mnist", "convvae_cifar10"])
def test_smoke_datasets_match_data_sizes(exp_id):
    exp = experiments.get(exp_id)
    train, test = exp.datasets(profile="smoke")
    n_train, n_test = exp.data_sizes("smoke")
    assert sum(sizes(train)) == n_train and sum(sizes(test)) == n_test
    assert sizes(test) == [128, 128]
    batch = np.asarray(next(iter(train)))
    assert batch.shape[1:] == ((28, 28, 1) if exp.dataset == "mnist" else (32, 32, 3))
    if exp.family == "vae":
        assert batch.min() == 0.0 and batch.max() == 1.0
    else:
        assert batch.min() == -1.0 and batch.max() == 1.0


def test_wgan_train_batches_hold_n_critic_batches():
    exp = experiments.get("wgan_mnist")
    assert exp.images_per_step == 5 * 128
    train, test = exp.datasets(profile="smoke")
    assert sizes(train) == [640]
    assert max(sizes(test)) == 128
    gan_train, _ = experiments.get("gan_mnist").datasets(profile="smoke")
    assert sizes(gan_train) == [128] * 5


def test_wgan_never_gives_a_critic_update_an_empty_batch():
    exp = experiments.get("wgan_mnist")
    n_train, _ = exp.data_sizes("full")
    rest = n_train % exp.images_per_step
    assert rest == 0 or rest >= exp.model["n_critic"]
    assert math.ceil(n_train / exp.images_per_step) == 94  # 60000 = 93 * 640 + 480


def test_datasets_are_shuffled_reproducibly():
    exp = experiments.get("vae_mnist_z2")
    a = np.asarray(next(iter(exp.datasets("smoke", seed=1)[0])))
    b = np.asarray(next(iter(exp.datasets("smoke", seed=1)[0])))
    c = np.asarray(next(iter(exp.datasets("smoke", seed=2)[0])))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_build_creates_each_family_with_its_sub_networks():
    for exp_id, names in [
        ("vae_mnist_z2", ("encoder", "decoder")),
        ("gan_mnist", ("generator", "discriminator")),
        ("wgan_mnist", ("generator", "critic")),
    ]:
        model = experiments.get(exp_id).build(jit_compile=False)
        assert model.name == exp_id and model.compiled
        for name in names:
            assert getattr(model, name).count_params() > 0
