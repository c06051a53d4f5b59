"""Files saved by earlier code still load: small models saved before the package's modules
moved into subpackages (tests/fixtures/make_saved_models.py wrote them)."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from fixtures.make_saved_models import TINY, tiny

from assignment4 import artifacts

SAVED = Path(__file__).resolve().parent / "fixtures" / "saved_before_move"
EXPECTED = json.loads((SAVED / "expected.json").read_text())


def sample_sums(model) -> np.ndarray:
    return model.sample(4, seed=0).astype(int).sum(axis=(1, 2))


@pytest.mark.parametrize("exp_id", sorted(TINY))
def test_an_old_model_file_loads_in_safe_mode_and_samples_as_it_did(exp_id):
    model = keras.saving.load_model(
        SAVED / f"{exp_id}.keras", custom_objects=artifacts.CUSTOM_OBJECTS
    )
    assert type(model).__name__ == {"vae": "VAE", "gan": "GAN", "wgan": "WGAN"}[tiny(exp_id).family]
    assert model.compiled and all(getattr(model, n).built for n in model.optimizer_names)
    # the same images, up to a few grey levels that another CPU's kernels may round otherwise
    np.testing.assert_allclose(sample_sums(model), EXPECTED[exp_id], atol=16)


@pytest.mark.parametrize("exp_id", sorted(TINY))
def test_an_old_checkpoint_loads_into_a_model_built_now(exp_id):
    model = tiny(exp_id).build(seed=0, jit_compile=False, precision="float32")
    model.load_weights(SAVED / f"{exp_id}.weights.h5")
    np.testing.assert_allclose(sample_sums(model), EXPECTED[exp_id], atol=16)
