"""Training throughput of each experiment, and how much of the machine's peak it uses.

    python -m assignment4 bench [ids...] [--json FILE] [--epochs E]

For each experiment this builds the model exactly as `run` does (same jit_compile and
steps_per_execution, same tf.data pipeline over the full training set), warms up, including
the epoch's last partial batch so no compilation falls in the timed part, then times `fit`
over `E` epochs' worth of steps. WGAN figures count the images the critic sees.

FLOPs per image are counted by TensorFlow's profiler on the graph of one training step at the
experiment's own batch (forward, backward and optimizer updates, as run), divided by the real
images that step consumes; the machine's peak is the measured float32 matrix-multiply rate.
"""

from __future__ import annotations

import math
import os
import time

import tensorflow as tf

from assignment4 import experiments
from assignment4.fileio import write_json
from assignment4.models import precision as precision_lib
from assignment4.texttable import format_table
from assignment4.training.provenance import devices, versions


def gemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best measured float32 matrix-multiply rate of this machine's default device, GFLOP/s."""
    a = tf.random.stateless_normal((n, n), seed=(1, 2))
    b = tf.random.stateless_normal((n, n), seed=(3, 4))

    @tf.function
    def mm(a, b):
        return tf.matmul(a, b)

    mm(a, b).numpy()  # warm-up
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        mm(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def train_step_flops(exp, model) -> float:
    """Floating-point operations of one training step, counted by TF's graph profiler."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    tf.get_logger().setLevel("ERROR")  # the v1 profiler announces its own deprecation
    spec = tf.TensorSpec((exp.images_per_step, *model.image_shape), tf.float32)
    graph = tf.function(model.train_step).get_concrete_function(spec).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(model_analyzer.profile(graph, options=opts).total_float_ops)


def measure(
    exp_id: str,
    epochs: float = 1.0,
    jit_compile: bool | None = None,
    precision: str | None = None,
) -> dict:
    """Warm throughput of one experiment's real training path.

    `jit_compile` and `precision` ('float32', 'mixed_bfloat16', 'auto') override the
    registry's settings (to measure the levers); None keeps them.
    """
    exp = experiments.get(exp_id)
    policy = precision_lib.resolve(precision or exp.precision)
    model = exp.build(jit_compile=jit_compile, precision=policy)
    train, _ = exp.datasets("full")
    n_train, _ = exp.data_sizes("full")
    steps = math.ceil(n_train / exp.images_per_step)
    timed_steps = max(1, min(steps, round(steps * epochs)))
    warm = train.take(2 * exp.steps_per_execution).concatenate(train.skip(steps - 1))
    model.fit(warm, epochs=1, verbose=0, shuffle=False)
    images = n_train if timed_steps == steps else timed_steps * exp.images_per_step
    t = time.perf_counter()
    model.fit(train.take(timed_steps), epochs=1, verbose=0, shuffle=False)
    seconds = time.perf_counter() - t
    flops = train_step_flops(exp, model) / exp.images_per_step
    return {
        "id": exp_id,
        "images_per_second": images / seconds,
        "images_timed": images,
        "seconds": seconds,
        "flops_per_image": flops,
        "jit_compile": bool(model.jit_compile),
        "precision": policy,
        "steps_per_execution": exp.steps_per_execution,
        "batch_size": exp.batch_size,
        "epoch_seconds": n_train / (images / seconds),
    }


def main(
    ids: list[str],
    json_path: str | None = None,
    epochs: float = 1.0,
    jit: str = "registry",
    precision: str = "registry",
) -> dict:
    """Measure `ids`, print a table, optionally write JSON; returns the results."""
    peak = gemm_gflops()
    print(f"Device: {', '.join(devices())}; float32 GEMM: {peak:.1f} GFLOP/s (measured)")
    results, rows = [], []
    for k, exp_id in enumerate(ids, 1):
        r = measure(
            exp_id, epochs, {"on": True, "off": False}.get(jit),
            None if precision == "registry" else precision,
        )  # fmt: skip
        r["fraction_of_peak"] = r["images_per_second"] * r["flops_per_image"] / (peak * 1e9)
        r["projected_full_hours"] = 200 * r["epoch_seconds"] / 3600
        results.append(r)
        print(f"[{k}/{len(ids)}] {exp_id}: {r['images_per_second']:.0f} images/s", flush=True)
        rows.append(
            [exp_id, f"{r['images_per_second']:.0f}", f"{r['flops_per_image'] / 1e6:.2f}",
             f"{r['images_per_second'] * r['flops_per_image'] / 1e9:.1f}",
             f"{r['fraction_of_peak']:.1%}", f"{r['epoch_seconds']:.1f}",
             f"{r['projected_full_hours']:.2f} h", "on" if r["jit_compile"] else "off",
             r["precision"]]
        )  # fmt: skip
    header = ["id", "images/s", "MFLOP/image", "GFLOP/s", "of peak", "epoch s", "200 epochs",
              "xla", "precision"]  # fmt: skip
    print(format_table(header, rows, align="<>>>>>><<"))
    out = {
        "gemm_gflops": peak,
        "devices": devices(),
        "cpu_count": os.cpu_count(),
        "versions": versions(),
        "experiments": results,  # each with its own batch_size
    }
    if json_path:
        write_json(out, json_path)
        print(f"Wrote {json_path}")
    return out
