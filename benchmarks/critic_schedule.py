"""The WGAN authors' critic schedule against a constant one: sample quality against CPU minutes.

    python benchmarks/critic_schedule.py wgan_mnist --schedule paper --minutes 15 --every 5
    python benchmarks/critic_schedule.py wgan_mnist --schedule constant --minutes 15 --every 5

The WGAN reference code gives the critic 100 updates before each of the first 25 generator
updates and before every 500th one, and `n_critic` (5) otherwise. The package's WGAN step has
a fixed `n_critic` (one compiled step holds all its critic updates), so this script drives
the model's own `critic_step` and `generator_step` from a Python loop, one compiled function
each, on batches of `batch_size` real images. `--schedule constant` runs the same loop with
`n_critic` throughout, so the two lines differ in the schedule alone. Scoring and the JSON
rows are `quality_curve.py`'s (CPU minutes of training, scoring excluded).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import assignment4  # noqa: F401  (first: oneDNN and log settings precede TensorFlow)

# isort: split
import keras
import tensorflow as tf
from quality_curve import configured, score

from assignment4 import data as data_lib


def critic_updates(schedule: str, g_updates: int, n_critic: int) -> int:
    """Critic updates before generator update number `g_updates` (counted from 0)."""
    if schedule == "paper" and (g_updates < 25 or g_updates % 500 == 0):
        return 100
    return n_critic


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("id")
    parser.add_argument("--schedule", choices=("paper", "constant"), required=True)
    parser.add_argument("--minutes", type=float, default=15.0, help="CPU minutes of training")
    parser.add_argument("--every", type=float, default=5.0, help="CPU minutes between scores")
    parser.add_argument("-n", type=int, default=2000, help="samples per score")
    parser.add_argument("--set", default="{}", help="JSON object of Experiment fields")
    parser.add_argument("--out", default="benchmarks/results/critic_schedule.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    exp = configured(args.id, json.loads(args.set))
    if exp.family != "wgan":
        parser.error(f"{exp.id} is not a WGAN")
    keras.utils.set_random_seed(args.seed)
    model = exp.build(seed=args.seed)
    (x_train, _), _ = data_lib.load(exp.dataset)
    batches = iter(
        data_lib.pipeline(x_train, exp.batch_size, exp.scale, shuffle=True, seed=args.seed)
        .repeat()
        .prefetch(2)
    )
    critic_step = tf.function(model.critic_step)
    generator_step = tf.function(model.generator_step)
    label = {
        "paper": "100 critic updates before the first 25 and every 500th G update, else 5",
        "constant": f"{model.n_critic} critic updates per G update",
    }[args.schedule]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    cpu = wall = 0.0
    g_updates = critic_total = 0
    next_score = args.every * 60
    while cpu < args.minutes * 60:
        c0, t0 = time.process_time(), time.perf_counter()
        k = critic_updates(args.schedule, g_updates, model.n_critic)
        for _ in range(k):
            critic_step(next(batches))
        generator_step(exp.batch_size)
        g_updates, critic_total = g_updates + 1, critic_total + k
        cpu += time.process_time() - c0
        wall += time.perf_counter() - t0
        if cpu >= min(next_score, args.minutes * 60):
            row = {"id": exp.id, "label": label, "schedule": args.schedule,
                   "minutes": round(wall / 60, 2), "cpu_minutes": round(cpu / 60, 2),
                   "generator_updates": g_updates, "critic_updates": critic_total,
                   **score(exp, model, args.n)}  # fmt: skip
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{args.schedule}: {cpu / 60:5.1f} CPU min, {g_updates} G / {critic_total} "
                  f"critic updates, IS {row['classifier_is']:.2f}, FD {row['fd']:.1f}, class "
                  f"shares {row['min_class_share']:.3f}-{row['max_class_share']:.3f}",
                  flush=True)  # fmt: skip
            next_score += args.every * 60


if __name__ == "__main__":
    main()
