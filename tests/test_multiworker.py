"""Two real worker processes on 127.0.0.1 train a smoke run with --strategy multiworker.

Each family (VAE, GAN, WGAN) is one pair of `python -m assignment4 run` processes, each given a
TF_CONFIG naming both workers on free local ports. Without the workaround in
`GenerativeModel.update_trackers` both crash in the first epoch ("Invalid reduction dimension 0
for input with 0 dimensions", tensorflow/tensorflow#72388).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
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


def start_workers(tmp_path, child_env, cluster, exp_id, runs, *extra, tag=""):
    """Both workers' `run` processes and their log files."""
    command = [sys.executable, "-m", "assignment4", "run", exp_id, "--profile", "smoke"]
    command += ["--strategy", "multiworker", "--runs", str(runs), *extra]
    procs, logs = [], []
    for index in range(len(cluster)):
        env = dict(child_env)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": cluster}, "task": {"type": "worker", "index": index}}
        )
        logs.append(tmp_path / f"worker{index}{tag}.log")
        with open(logs[-1], "w") as out:
            procs.append(
                subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
            )
    return procs, logs


def wait_all(procs, timeout=400):
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


# dcgan_cifar10: batch norm across workers
@pytest.mark.parametrize("exp_id", ["vae_mnist_z2", "gan_mnist", "wgan_mnist", "dcgan_cifar10"])
def test_two_workers_train_a_smoke_run(tmp_path, child_env, exp_id):
    runs = tmp_path / "runs"
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs, logs = start_workers(tmp_path, child_env, cluster, exp_id, runs)
    wait_all(procs)
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
        if re.search(r"batch_normalization(_\d+)?/vars/[23]$", name):
            # Batch norm's moving mean and variance follow each worker's own batches (Keras
            # does not synchronise them unless asked), and so do their generator averages.
            assert np.isfinite(value).all() and np.isfinite(final[worker][name]).all(), name
            continue
        np.testing.assert_array_equal(value, final[worker][name], err_msg=name)


def test_a_killed_worker_stops_the_other_with_one_line_and_both_resume(tmp_path, child_env):
    runs = tmp_path / "runs"
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    exp_id, epochs = "vae_mnist_z2", ["--epochs", "12"]
    procs, logs = start_workers(tmp_path, child_env, cluster, exp_id, runs, *epochs)
    meta = runs / exp_id / "smoke.worker_1" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 300
    try:
        while not (meta.exists() and json.loads(meta.read_text())["epoch"] >= 2):
            assert all(p.poll() is None for p in procs), logs[0].read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)
    finally:
        wait_all(procs, timeout=300)
    chief_log = logs[0].read_text()
    assert procs[0].returncode == 2, chief_log[-3000:]
    assert "Traceback" not in chief_log
    assert "the cluster lost a worker" in chief_log
    assert "start every worker again with the same command to resume" in chief_log

    procs, logs = start_workers(tmp_path, child_env, cluster, exp_id, runs, *epochs, tag="b")
    wait_all(procs)
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log.read_text()[-3000:]
        assert "Resuming vae_mnist_z2 (smoke) after epoch" in log.read_text()
    history = json.loads((runs / exp_id / "smoke" / "history.json").read_text())
    assert {k: len(v) for k, v in history.items()} == dict.fromkeys(history, 12)


def test_workers_that_would_resume_from_different_epochs_all_stop(tmp_path, child_env):
    """Worker 1 lost its folder: it would start from scratch while the chief goes on."""
    runs = tmp_path / "runs"
    cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
    exp_id = "vae_mnist_z2"
    procs, logs = start_workers(tmp_path, child_env, cluster, exp_id, runs)
    wait_all(procs)
    assert [p.returncode for p in procs] == [0, 0], logs[0].read_text()[-3000:]
    shutil.rmtree(runs / exp_id / "smoke.worker_1")
    procs, logs = start_workers(tmp_path, child_env, cluster, exp_id, runs, "--epochs", "3",
                                tag="b")  # fmt: skip
    wait_all(procs)
    for proc, log in zip(procs, logs):
        text = log.read_text()
        assert proc.returncode == 2 and "Traceback" not in text, text[-3000:]
        assert "the workers would resume from different epochs" in text
        assert "their mean 1" in text  # after epoch 2 and after epoch 0
    assert json.loads((runs / exp_id / "smoke" / "history.json").read_text())["loss"][1]
    assert len(json.loads((runs / exp_id / "smoke" / "history.json").read_text())["loss"]) == 2
