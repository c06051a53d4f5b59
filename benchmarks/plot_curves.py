"""Draw the quality-against-CPU-minutes curves that `quality_curve.py` recorded.

    python benchmarks/plot_curves.py benchmarks/results/curves-cpu2.jsonl --out figures/readme/curves.png

One panel per experiment: classifier IS against CPU minutes of training, one line per
label (setting), with the classifier IS of real test images as a dotted line. Each label is
plotted from its own rows, in the order they were recorded.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import matplotlib

import assignment4  # noqa: F401

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REAL_IS = {"mnist": 9.64, "cifar10": 7.28}  # real training images vs test set (evaluate)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jsonl")
    parser.add_argument("--out", default="figures/readme/quality_curves.png")
    parser.add_argument(
        "--x", default="cpu_minutes", choices=["cpu_minutes", "minutes", "generator_updates"]
    )
    args = parser.parse_args(argv)

    curves: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    with open(args.jsonl) as rows:
        for line in rows:
            row = json.loads(line)
            curves[row["id"]][row["label"]].append(row)
    ids = list(curves)
    cols = min(3, len(ids))
    rows = -(-len(ids) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, exp_id in zip(axes.flat, ids):
        for label, points in curves[exp_id].items():
            ax.plot([p[args.x] for p in points], [p["classifier_is"] for p in points],
                    marker="o", ms=3, label=label)  # fmt: skip
        dataset = "mnist" if exp_id.endswith("mnist") else "cifar10"
        ax.axhline(REAL_IS[dataset], ls=":", c="grey", lw=1, label="real images")
        ax.set_title(exp_id)
        ax.set_xlabel(
            {"cpu_minutes": "CPU minutes of training", "minutes": "wall minutes"}.get(
                args.x, args.x
            )
        )
        ax.set_ylabel("classifier IS")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(ids) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(args.out)


if __name__ == "__main__":
    main()
