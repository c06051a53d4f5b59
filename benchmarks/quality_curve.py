"""Sample quality against training minutes: the measurement behind the registry's choices.

    python benchmarks/quality_curve.py dcgan_cifar10 --minutes 20 --every 2 \
        --label "registry" --out benchmarks/results/curves.jsonl
    python benchmarks/quality_curve.py dcwgan_mnist --minutes 20 --every 2 --label "lr 2e-4" \
        --set '{"optimizers": {"critic_optimizer": {"class_name": "RMSprop",
                "config": {"learning_rate": 2e-4}}, ...}}'

Trains one experiment of the registry, optionally with some of its fields replaced (`--set`:
a JSON object of `Experiment` fields; `model` and `optimizers` are merged key by key), on the
full training set. Every `--every` CPU minutes of training it pauses the clock, draws `-n`
samples from fixed latent points and scores them with the project's classifier (the
`evaluate` command's FD and classifier IS, on fewer samples), and appends one JSON line:
label, minutes of training, generator updates, images seen, IS, FD, the smallest and largest
class share of the samples. `benchmarks/plot_curves.py` draws the lines.

`--precision mixed_bfloat16` builds the model under Keras' mixed policy (bfloat16 compute,
float32 weights and optimizer state), a speed lever on CPUs with AVX-512 BF16 and on GPUs.

`--ema DECAY` gives the GAN a generator average (the model's `generator_ema`: an exponential
moving average of the generator's weights, decay per update). Whenever the model has one,
from the registry or from `--ema`, both are scored at the same points: the trained generator
as "LABEL" and the average as "LABEL, generator EMA DECAY". The average's update is part of
the train step, so its cost counts as training time on both lines. (The curves measured
before the package had `generator_ema` kept the average in a callback, every
`steps_per_execution` updates with the decay raised to that power: `dcgan_cifar10` made 210
generator updates per CPU minute with it and 208 without.)

Minutes are training time (evaluation excluded), both wall-clock and the process's CPU time
(all its threads). On a shared machine the CPU minutes are the fairer measure: on an idle
2-core machine a TensorFlow run uses both cores, so CPU minutes are about twice the wall
minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import assignment4  # noqa: F401  (first: oneDNN and log settings precede TensorFlow)

# isort: split
import keras
import numpy as np

from assignment4 import evaluation, experiments


def configured(exp_id: str, changes: dict) -> experiments.Experiment:
    """The registry's experiment with `changes` applied (model/optimizers merged by key)."""
    exp = experiments.get(exp_id)
    changes = dict(changes)
    for key in ("model", "optimizers"):
        if key in changes:
            changes[key] = {**getattr(exp, key), **changes[key]}
    return dataclasses.replace(exp, **changes)


class Scorer(keras.callbacks.Callback):
    """Every `every` CPU seconds of training, score samples (off the clock); stop at `total`."""

    def __init__(self, every: float, total: float, record):
        super().__init__()
        self.every, self.total, self.record = every, total, record

    def on_train_begin(self, logs=None):
        self.trained, self.cpu, self.next_score = 0.0, 0.0, self.every
        self.t0, self.c0 = time.perf_counter(), time.process_time()

    def on_train_batch_end(self, batch, logs=None):
        self.trained += time.perf_counter() - self.t0
        self.cpu += time.process_time() - self.c0
        if self.cpu >= min(self.next_score, self.total):
            self.record(self.trained / 60, self.cpu / 60, generator_updates(self.model))
            self.next_score += self.every
            if self.cpu >= self.total:
                self.model.stop_training = True
        self.t0, self.c0 = time.perf_counter(), time.process_time()


def generator_updates(model) -> int:
    opt = getattr(model, "g_optimizer", None) or model.optimizer
    return int(opt.iterations.numpy())


def score(exp, model, n: int) -> dict:
    images = model.sample(n, seed=0)
    feats, probs = evaluation.features(exp.dataset, images)
    test_feats, _, _ = evaluation.reference_features(evaluation.reference(exp.dataset))
    shares = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)
    return {
        "classifier_is": round(evaluation.classifier_inception_score(probs), 3),
        "fd": round(evaluation.frechet_distance(feats, test_feats), 3),
        "min_class_share": round(float(shares.min()), 4),
        "max_class_share": round(float(shares.max()), 4),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("id")
    parser.add_argument("--minutes", type=float, default=20.0, help="CPU minutes of training")
    parser.add_argument("--every", type=float, default=2.0, help="CPU minutes between scores")
    parser.add_argument("-n", type=int, default=2000, help="samples per score")
    parser.add_argument("--set", default="{}", help="JSON object of Experiment fields")
    parser.add_argument("--label", default="registry")
    parser.add_argument("--out", default="benchmarks/results/curves.jsonl")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ema", type=float, default=None, help="give G an average (decay)")
    parser.add_argument(
        "--precision", default="float32", choices=["float32", "mixed_bfloat16"],
        help="Keras dtype policy of the model (mixed: bfloat16 compute, float32 weights)",
    )  # fmt: skip
    args = parser.parse_args(argv)

    changes = json.loads(args.set)
    if args.ema is not None:
        changes.setdefault("model", {})["generator_ema"] = args.ema
    exp = configured(args.id, changes)
    keras.utils.set_random_seed(args.seed)
    train, _ = exp.datasets("full", seed=args.seed)
    # the policy goes to build(): it sets its own around the model, whatever the global one
    model = exp.build(seed=args.seed, precision=args.precision)
    base = {"id": exp.id, "label": args.label, "batch_size": exp.batch_size,
            "model": exp.model, "optimizers": exp.optimizers}  # fmt: skip
    if args.precision != "float32":
        base["precision"] = args.precision
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def write(label: str, minutes: float, cpu_minutes: float, updates: int) -> None:
        row = {**base, "label": label, "minutes": round(minutes, 2),
               "cpu_minutes": round(cpu_minutes, 2), "generator_updates": updates,
               "images": updates * exp.images_per_step, **score(exp, model, args.n)}  # fmt: skip
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{label}: {minutes:5.1f} min ({cpu_minutes:5.1f} CPU), {updates:6d} updates, IS "
              f"{row['classifier_is']:.2f}, FD {row['fd']:.1f}, class shares "
              f"{row['min_class_share']:.3f}-{row['max_class_share']:.3f}", flush=True)  # fmt: skip

    def record(minutes: float, cpu_minutes: float, updates: int) -> None:
        if getattr(model, "generator_average", None) is None:
            write(args.label, minutes, cpu_minutes, updates)
            return
        with model.trained_generator_samples():
            write(args.label, minutes, cpu_minutes, updates)
        label = f"{args.label}, generator EMA {model.generator_ema:g}"
        write(label, minutes, cpu_minutes, updates)

    callbacks = [Scorer(args.every * 60, args.minutes * 60, record)]
    # One fit over the repeated pipeline: one iterator, so reshuffling carries on across passes.
    model.fit(train.repeat(), epochs=1, steps_per_epoch=10**9, callbacks=callbacks, verbose=0,
              shuffle=False)  # fmt: skip


if __name__ == "__main__":
    main()
