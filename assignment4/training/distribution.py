"""Several devices and several machines: tf.distribute strategies by name, TF_CONFIG checked,
the CPU split into logical devices for tests, and which folder each worker writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from assignment4.errors import ConfigError, RunError

STRATEGIES = ("default", "mirrored", "multiworker")


CPU_DEVICES_ENV = "ASSIGNMENT4_CPU_DEVICES"


def make_strategy(name: str):
    """A `tf.distribute` strategy by name; `None` for 'default' (one device).

    'mirrored' uses every local GPU; on a machine without GPUs, set ASSIGNMENT4_CPU_DEVICES=N
    to split the CPU into N logical devices (to try multi-replica training, as the tests do).
    """
    if name == "default":
        return None
    if name == "mirrored":
        if not tf.config.list_physical_devices("GPU") and os.environ.get(CPU_DEVICES_ENV):
            split_cpu(cpu_devices_setting())
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":  # several machines, described by the TF_CONFIG variable
        check_tf_config()
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except ValueError as e:  # what TensorFlow itself finds wrong with TF_CONFIG
            raise ConfigError(f"TF_CONFIG: {e}") from None
    raise ConfigError(f"Unknown strategy {name!r}: choose one of {', '.join(STRATEGIES)}.")


def cpu_devices_setting() -> int:
    """$ASSIGNMENT4_CPU_DEVICES as a positive integer, or a ConfigError saying what it holds."""
    text = os.environ.get(CPU_DEVICES_ENV, "")
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={text!r} is not a positive integer: set it to the number of "
            "logical CPU devices to train on (e.g. 2), or unset it."
        )
    return n


TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", '
    '"index": 0}}'
)


def check_tf_config() -> dict:
    """TF_CONFIG, parsed and checked: a cluster of host:port lists and this task in it."""
    text = os.environ.get("TF_CONFIG", "")
    see = f"Set it on every worker, e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}' (docs/gpus.md)."
    if not text.strip():
        raise ConfigError(
            "--strategy multiworker needs TF_CONFIG, which is not set. " + see
            + " One machine: use --strategy mirrored."
        )  # fmt: skip
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({e}). {see}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if (
        not isinstance(cluster, dict)
        or not all(
            isinstance(v, list) and v and all(isinstance(a, str) and ":" in a for a in v)
            for v in cluster.values()
        )
        or not cluster
    ):
        raise ConfigError(
            'TF_CONFIG needs "cluster": a job name -> list of "host:port" (e.g. "worker": '
            f'["host1:12345", "host2:12345"]), got {cluster!r}. {see}'
        )
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ConfigError(
            f'TF_CONFIG needs "task" with a "type" among {sorted(cluster)} and an "index", '
            f"got {task!r}. {see}"
        )
    index, members = task.get("index"), cluster[task["type"]]
    if not isinstance(index, int) or not 0 <= index < len(members):
        raise ConfigError(
            f'TF_CONFIG "task" index {index!r} is not one of the {len(members)} '
            f'"{task["type"]}" entries (0 to {len(members) - 1}). {see}'
        )
    return config


def split_cpu(n: int) -> None:
    """Present the CPU as `n` logical devices (before TensorFlow's runtime starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    config = [tf.config.LogicalDeviceConfiguration()] * n
    if tf.config.get_logical_device_configuration(cpu) == config:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, config)
    except RuntimeError:
        raise ConfigError(
            f"{CPU_DEVICES_ENV}={n} came too late: TensorFlow had already started. Set it "
            "before the process starts (e.g. in the shell that runs python -m assignment4)."
        ) from None


def worker_folder(folder: Path, tf_strategy) -> Path:
    """The folder this process writes: the run folder, or a worker's own beside it.

    Under `multiworker` every worker runs the same steps and callbacks (their collective
    operations must match), but only the chief (worker 0, or the task of type 'chief') writes
    the run folder; worker i writes `<profile>.worker_<i>/` beside it, which also holds its
    own backup to resume from.
    """
    resolver = getattr(tf_strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return folder
    jobs = resolver.cluster_spec().as_dict()
    chief = resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in jobs
    )
    if chief:
        return folder
    return folder.parent / f"{folder.name}.{resolver.task_type}_{resolver.task_id}"


def check_workers_resume_together(tf_strategy, resumed: int, name: str) -> None:
    """Every worker must continue from the same epoch, or they would train different weights.

    One all-reduce of (epoch, epoch²) over the replicas: the values are all equal exactly when
    (Σ epoch)² = n · Σ epoch². Every worker sees the same sums, so all stop together.
    """
    local = tf_strategy.run(lambda: tf.constant([float(resumed), float(resumed) ** 2]))
    total, squares = tf_strategy.reduce("SUM", local, axis=None).numpy().tolist()
    n = tf_strategy.num_replicas_in_sync
    if abs(total**2 - n * squares) > 0.5:
        raise RunError(
            f"{name}: the workers would resume from different epochs (this one after epoch "
            f"{resumed}, their mean {total / n:g}) and so train different weights. Give every "
            "worker the backup and checkpoints of the same epoch, or start all with --restart."
        )
