"""Multi-replica training (MirroredStrategy over two logical CPU devices).

Both checks run in subprocesses: logical devices must be configured before TensorFlow's
runtime starts, which has long happened in the pytest process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent
FAMILIES = ["vae_mnist_z128", "gan_mnist", "wgan_mnist"]


@pytest.fixture(scope="module")
def check(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "check.json"
    proc = subprocess.run(
        [sys.executable, str(HERE / "distributed_check.py"), str(out)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_two_replicas(check):
    assert check["replicas"] == 2


@pytest.mark.parametrize("exp_id", FAMILIES)
def test_mirrored_step_matches_single_device_weights(check, exp_id):
    # SGD in the check: a missing 1/replicas factor would double every update (about 1e-2 here).
    row = check[exp_id]
    assert row["max_weight_diff"] < 1e-5 * max(1.0, row["max_weight"])


@pytest.mark.parametrize("exp_id", FAMILIES)
def test_mirrored_step_logs_unscaled_losses(check, exp_id):
    row = check[exp_id]
    assert row["single_logs"].keys() == row["mirrored_logs"].keys()
    for name, value in row["single_logs"].items():
        assert row["mirrored_logs"][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_wgan_clipping_holds_on_every_replica(check):
    row = check["wgan_mnist"]
    assert len(row["critic_max_abs_per_replica"]) == 2
    for m in row["critic_max_abs_per_replica"]:
        assert m <= row["clip_value"] + 1e-7
        assert m == pytest.approx(row["clip_value"], rel=1e-5)  # clipping actually bit


@pytest.mark.parametrize("exp_id", ["gan_mnist", "wgan_mnist"])
def test_generator_average_updates_every_replica_alike(check, exp_id):
    # the average's weights are part of max_weight_diff above: they also match one device
    row = check[exp_id]
    assert row["generator_moved"] > 0.0
    assert row["average_moved"] == pytest.approx(0.5 * row["generator_moved"], rel=0.02)  # decay
    assert row["average_replica_gap"] == 0.0


def test_fused_adam_updates_every_replica_alike(check):
    row = check["adam"]
    assert row["optimizer"] == "assignment4.models.optimizers.Adam"
    assert row["moved"] > 1e-4  # the step changed the weights...
    assert row["replica_gap"] == 0.0  # ...identically on both replicas...
    assert row["max_weight_diff"] < 1e-5  # ...and as one device does


@pytest.mark.parametrize("exp_id", FAMILIES)
def test_every_replica_draws_its_own_noise_at_every_step(check, exp_id):
    # Three train steps on two replicas: no draw (latent points, reparameterisation noise,
    # every critic step's) may repeat another, across replicas or steps.
    row = check["noise"][exp_id]
    per_step = {"vae_mnist_z128": 1, "gan_mnist": 1, "wgan_mnist": 6}[exp_id]
    assert row["replicas"] == [0, 1] and row["steps"] == [0, 1, 2]
    assert row["draws"] == 2 * 3 * per_step
    assert row["closest_pair"] > 1e-3


def _cli_run(runs, strategy):
    env = {**os.environ, "ASSIGNMENT4_CPU_DEVICES": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "assignment4", "run", "vae_mnist_z2", "--profile", "smoke",
         "--runs", str(runs), "--strategy", strategy],
        check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = Path(runs) / "vae_mnist_z2" / "smoke"
    return (
        json.loads((folder / "history.json").read_text()),
        json.loads((folder / "run.json").read_text()),
    )


def test_mirrored_smoke_run_logs_on_single_device_scale(tmp_path):
    single, single_info = _cli_run(tmp_path / "one", "default")
    mirrored, info = _cli_run(tmp_path / "two", "mirrored")
    assert (single_info["replicas"], info["replicas"]) == (1, 2)
    assert info["strategy"] == "mirrored"
    for name in ("loss", "reconstruction", "val_loss"):
        for a, b in zip(single[name], mirrored[name]):
            # Same data and seed; only the noise differs between replicas. A loss summed
            # instead of averaged over replicas would be twice as large.
            assert 0.85 < b / a < 1.15, (name, a, b)
