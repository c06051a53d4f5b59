"""Mixed bfloat16 precision: policy resolution, models built under it, losses in float32."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from assignment4 import data, experiments, precision
from assignment4.errors import ConfigError

# Where bfloat16 is emulated the registry's 'auto' never trains in it (and it is slow there).
needs_native_bfloat16 = pytest.mark.skipif(
    precision.native_bfloat16() is None, reason="bfloat16 is not native on this machine"
)


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
    with pytest.raises(RuntimeError):
        with precision.policy("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == before


@needs_native_bfloat16
@pytest.mark.parametrize("exp_id", ["dcwgan_mnist", "gan_mnist", "vae_mnist_z2"])
def test_mixed_model_computes_in_bfloat16_and_trains_with_float32_losses(exp_id, mnist):
    """One real train step under mixed_bfloat16: float32 weights and losses, finite values;
    WGAN weights still clipped; samples uint8; the process-wide policy untouched."""
    exp = experiments.get(exp_id)
    before = keras.config.dtype_policy().name
    model = exp.build(jit_compile=False, precision="mixed_bfloat16")
    assert keras.config.dtype_policy().name == before
    dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    assert dense and all(layer.compute_dtype == "bfloat16" for layer in dense)
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


@needs_native_bfloat16
def test_mixed_model_saves_and_loads_with_its_policy(tmp_path):
    model = experiments.get("dcwgan_mnist").build(jit_compile=False, precision="mixed_bfloat16")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.generator.layers[-1].dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_array_equal(loaded.sample(8, seed=1), model.sample(8, seed=1))


def test_settings_text_names_the_precision():
    exp = experiments.get("dcwgan_mnist")
    assert "bfloat16 compute (mixed precision)" in exp.settings_text("mixed_bfloat16")
    assert "bfloat16" not in exp.settings_text("float32")


@needs_native_bfloat16
def test_bench_measures_the_precision_it_is_given():
    from assignment4 import bench

    r = bench.measure("vae_mnist_z2", epochs=0.01, precision="mixed_bfloat16")
    assert r["precision"] == "mixed_bfloat16" and r["images_per_second"] > 0
    assert bench.measure("vae_mnist_z2", epochs=0.01)["precision"] == "float32"  # its registry
