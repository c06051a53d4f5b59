"""Do a GAN's samples suffer from batch norm's moving statistics? Score both ways.

    python benchmarks/bn_statistics.py dcgan_cifar10 [--runs runs] [--epoch N] [-n 10000]

Loads a quick run's generator (its end, or the checkpoint of `--epoch`), scores `-n`
samples as `evaluate` does (classifier IS and FD, fixed latent draw), then replaces every
batch-norm layer's moving mean and variance with the statistics of the current weights
(one pass of 5,000 latent points in training mode: "standing statistics") and scores the
same latent draw again. Keras' moving averages (momentum 0.99) trail weights that change
quickly; if they trailed far enough to hurt, the second score would be clearly better.
Prints one JSON line per score; nothing is written.
"""

from __future__ import annotations

import argparse
import json

import assignment4  # noqa: F401  (first: oneDNN and log settings precede TensorFlow)

# isort: split
import keras
import numpy as np

from assignment4 import artifacts, evaluation, experiments


def standing_statistics(generator: keras.Model, latent_dim: int, n: int = 5000) -> None:
    """Set each batch norm's moving statistics to those of one batch of `n` latent points."""
    norms = [
        x for x in generator._flatten_layers() if isinstance(x, keras.layers.BatchNormalization)
    ]
    momenta = [x.momentum for x in norms]
    for layer in norms:
        layer.momentum = 0.0  # moving = this batch's statistics
    z = np.random.default_rng(123).standard_normal((n, latent_dim)).astype("float32")
    trainable = generator.trainable
    generator.trainable = True
    generator(z, training=True)
    generator.trainable = trainable
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("id")
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--epoch", type=int, default=None)
    parser.add_argument("-n", type=int, default=10000)
    args = parser.parse_args(argv)

    exp = experiments.get(args.id)
    model = artifacts.load_run_model(args.id, args.profile, args.runs, epoch=args.epoch)

    def score(statistics: str) -> None:
        m = evaluation.sample_metrics(
            evaluation.reference(exp.dataset), model.sample(args.n, seed=0), cache_dir=args.runs
        )
        row = {"id": args.id, "epoch": args.epoch, "statistics": statistics,
               "classifier_is": round(float(m["classifier_is"]), 3), "fd": round(float(m["fd"]), 3)}  # fmt: skip
        print(json.dumps(row), flush=True)

    score("moving averages (Keras)")
    standing_statistics(model.sampling_generator, model.latent_dim)
    score("standing statistics")


if __name__ == "__main__":
    main()
