"""Mixed bfloat16 precision: policy resolution, models built under it, losses and outputs in
float32, one precision per run. These run wherever bfloat16 is emulated too (more slowly)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from assignment4 import artifacts, data, experiments, fileio, training
from assignment4.errors import ConfigError, RunError
from assignment4.models import precision
from assignment4.reporting import captions

# the names of the networks' output layers (networks.OUT), which compute in float32
OUTPUT_LAYERS = {"z_mean", "z_log_var", "logits", "image", "logit"}


def test_names_resolve_and_auto_follows_the_hardware():
    assert precision.resolve("float32") == "float32"
    assert precision.resolve("mixed_bfloat16") == "mixed_bfloat16"
    native = precision.native_bfloat16()
    assert precision.resolve("auto") == ("mixed_bfloat16" if native else "float32")
    with pytest.raises(ConfigError, match="'bf16'.*float32, mixed_bfloat16, auto"):
        precision.resolve("bf16")


def test_every_registry_precision_is_valid():
    for exp in experiments.EXPERIMENTS.values():
        assert precision.check(exp.precision) == exp.precision
        assert exp.resolve_precision() in ("float32", "mixed_bfloat16")


def test_policy_is_restored_after_the_block_even_on_error():
    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError), precision.policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == before


@pytest.mark.parametrize("exp_id", ["dcwgan_mnist", "gan_mnist", "vae_mnist_z2"])
def test_mixed_model_computes_in_bfloat16_and_trains_with_float32_losses(exp_id, mnist):
    """One real train step under mixed_bfloat16: float32 weights and losses, finite values;
    WGAN weights still clipped; samples uint8; the process-wide policy untouched."""
    exp = experiments.get(exp_id)
    before = keras.config.dtype_policy().name
    model = exp.build(jit_compile=False, precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before
    dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    hidden = [layer for layer in dense if layer.name not in OUTPUT_LAYERS]
    assert hidden and all(layer.compute_dtype == "bfloat16" for layer in hidden)
    assert {v.dtype for v in model.trainable_variables} == {"float32"}
    x = np.asarray(data.scale_images(mnist[0][0][: 16 * exp.model.get("n_critic", 1)], exp.scale))
    logs = model.fit(x, batch_size=len(x), epochs=1, verbose=0).history  # the compiled step
    assert logs and all(np.isfinite(v[-1]) for v in logs.values())
    losses = model.compute_losses(x[:16]) if exp.family == "vae" else None
    if losses is not None:
        assert {keras.backend.standardize_dtype(t.dtype) for t in losses.values()} == {"float32"}
    if exp.family == "wgan":
        clip = exp.model["clip_value"]
        assert max(float(np.abs(w).max()) for w in model.critic.trainable_weights) <= clip
    images = model.sample(8, seed=0)
    assert images.dtype == np.uint8 and images.shape[:1] == (8,) and images.std() > 0


def test_mixed_model_saves_and_loads_with_its_policy(tmp_path):
    model = experiments.get("dcwgan_mnist").build(jit_compile=False, precision="mixed_bfloat16")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.generator.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert loaded.generator.layers[-1].dtype_policy.name == "float32"  # the output layer
    np.testing.assert_array_equal(loaded.sample(8, seed=1), model.sample(8, seed=1))


def test_settings_text_names_the_precision():
    exp = experiments.get("dcwgan_mnist")
    said = captions.experiment_settings
    assert "bfloat16 compute (mixed precision)" in said(exp, "mixed_bfloat16")
    assert "bfloat16" not in said(exp, "float32")


def test_bench_measures_the_precision_it_is_given():
    from assignment4 import bench

    r = bench.measure("vae_mnist_z2", epochs=0.01, precision="mixed_bfloat16")
    assert r["precision"] == "mixed_bfloat16" and r["images_per_second"] > 0
    assert bench.measure("vae_mnist_z2", epochs=0.01)["precision"] == "float32"  # its registry


@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "convvae_cifar10", "gan_mnist", "dcwgan_mnist"])
def test_outputs_and_images_are_float32_under_mixed_precision(exp_id):
    """The output layer computes in float32 (Keras' mixed-precision guide), so logits and
    images reach the losses and the uint8 conversion unrounded by bfloat16."""
    exp = experiments.get(exp_id)
    model = exp.build(jit_compile=False, precision="mixed_bfloat16")
    nets = [model.encoder, model.decoder] if exp.family == "vae" else [model.generator]
    nets.append(getattr(model, "discriminator", None) or getattr(model, "critic", None))
    for net in filter(None, nets):
        out = [
            layer
            for layer in net.layers[1:]  # not the input layer ("image")
            if layer.name in OUTPUT_LAYERS
        ]
        assert out and all(layer.compute_dtype == "float32" for layer in out), net.name
        assert {keras.backend.standardize_dtype(t.dtype) for t in net.outputs} == {"float32"}
    z = np.random.default_rng(0).standard_normal((4, exp.latent_dim)).astype("float32")
    assert keras.backend.standardize_dtype(model.images_from_latent(z).dtype) == "float32"


def _run(exp, runs, epochs=None):
    return training.run_experiment(exp, "smoke", runs=runs, epochs=epochs, verbose=0)


@pytest.mark.parametrize(
    ("first", "later"), [("CPU with avx512_bf16", None), (None, "CPU with avx512_bf16")]
)
def test_a_run_keeps_the_precision_of_its_first_start(first, later, tmp_path, monkeypatch, capsys):
    """A run started where 'auto' means one policy and extended where it means the other
    computes as it started; its checkpoints are rebuilt under that policy too."""
    exp = dataclasses.replace(experiments.get("vae_mnist_z2"), precision="auto")
    started = "mixed_bfloat16" if first else "float32"
    monkeypatch.setattr(precision, "native_bfloat16", lambda: first)
    folder = _run(exp, tmp_path)
    monkeypatch.setattr(precision, "native_bfloat16", lambda: later)  # another machine
    monkeypatch.setattr(experiments, "EXPERIMENTS", {**experiments.EXPERIMENTS, exp.id: exp})
    training.run_experiment(exp, "smoke", runs=tmp_path, epochs=3, verbose=1)
    assert f"keeps the precision of its first start, {started}" in capsys.readouterr().out
    info = fileio.read_json(folder / "run.json")
    assert info["epochs"] == 3 and info["precision"] == started
    final = keras.saving.load_model(folder / "model.keras")
    assert final.decoder.layers[1].dtype_policy.name == started
    checkpoint = artifacts.load_run_model(exp.id, "smoke", tmp_path, epoch=1)
    assert checkpoint.decoder.layers[1].dtype_policy.name == started


def test_a_damaged_recorded_precision_gets_one_clear_error(tmp_path):
    exp = experiments.get("vae_mnist_z2")
    folder = _run(exp, tmp_path)
    info = fileio.read_json(folder / "run.json")
    fileio.write_json({**info, "precision": "bf16"}, folder / "run.json")
    with pytest.raises(RunError, match="records precision 'bf16'.*--restart"):
        _run(exp, tmp_path, epochs=3)
