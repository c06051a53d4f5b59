"""Two real worker processes on 127.0.0.1 train a smoke run with --strategy multiworker.

Each family (VAE, GAN, WGAN) is one pair of `python -m assignment4 run` processes, each given a
TF_CONFIG naming both workers on free local ports. Without the workaround in
`GenerativeModel.update_trackers` both crash in the first epoch ("Invalid reduction dimension 0
for input with 0 dimensions", tensorflow/tensorflow#72388).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a .weights.h5 file (model and optimizer variables) by its path."""
    out = {}

    def keep(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(keep)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "gan_mnist", "wgan_mnist"])
def test_two_workers_train_a_smoke_run(tmp_path, child_env, exp_id):
    runs = tmp_path / "runs"
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    command = [sys.executable, "-m", "assignment4", "run", exp_id, "--profile", "smoke"]
    command += ["--strategy", "multiworker", "--runs", str(runs)]
    procs, logs = [], []
    for index in range(2):
        env = dict(child_env)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        )
        logs.append(tmp_path / f"worker{index}.log")
        with open(logs[-1], "w") as out:
            procs.append(
                subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    try:
        for proc in procs:
            proc.wait(timeout=400)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log.read_text()[-3000:]

    chief = runs / exp_id / "smoke"
    worker = runs / exp_id / "smoke.worker_1"
    info = json.loads((chief / "run.json").read_text())
    assert (info["status"], info["replicas"], info["strategy"]) == ("complete", 2, "multiworker")
    assert (chief / "model.keras").is_file() and (chief / "samples" / "epoch_002.png").is_file()
    history = json.loads((chief / "history.json").read_text())
    assert all(len(v) == 2 and all(np.isfinite(v)) for v in history.values())
    # the workers took the same steps: equal weights and optimizer slots at the end
    final = {w: weights(w / "checkpoints" / "epoch_002.weights.h5") for w in (chief, worker)}
    assert final[chief].keys() == final[worker].keys() and final[chief]
    for name, value in final[chief].items():
        np.testing.assert_array_equal(value, final[worker][name], err_msg=name)
