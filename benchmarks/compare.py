"""Keras (`python -m assignment4 bench`) against the eager PyTorch loop, alternating, in rounds.

On a shared machine one experiment's throughput moves by tens of percent from one minute to
the next, so a single pair of measurements says little. This runs, for each experiment and
each of R rounds, the Keras bench and the PyTorch reference one after the other (alternating
which goes first), over the same number of images, each in a fresh process; then prints the
median images/s of each side and their ratio, and writes every measurement to a JSON file.

    python benchmarks/compare.py [ids...] [--rounds 3] [--json FILE]
        [--torch-python .venv-torch/bin/python] [--cifar-epochs 0.2]

Run it from the repository root with the project's Python (`.venv/bin/python`); the
PyTorch side runs under `--torch-python` (see benchmarks/README.md for that venv).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIVE = ["vae_mnist_z128", "gan_mnist", "wgan_mnist", "convvae_cifar10", "dcgan_cifar10"]
TRAIN_SIZE = {"mnist": 60_000, "cifar10": 50_000}
BATCH = 128


def images_for(exp_id: str, epochs: float) -> tuple[float, int]:
    """(bench --epochs, torch --images) that time the same number of images."""
    dataset = "cifar10" if exp_id.endswith("cifar10") else "mnist"
    n = TRAIN_SIZE[dataset]
    if epochs >= 1:
        return 1.0, n
    steps = math.ceil(n / BATCH)
    return epochs, max(1, round(steps * epochs)) * BATCH


def run_json(cmd: list[str], json_path: Path) -> dict:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads(json_path.read_text())


def keras_ips(exp_id: str, epochs: float, tmp: Path) -> float:
    out = tmp / "keras.json"
    cmd = [sys.executable, "-m", "assignment4", "bench", exp_id, "--epochs", str(epochs),
           "--json", str(out)]  # fmt: skip
    return run_json(cmd, out)["experiments"][0]["images_per_second"]


def torch_ips(exp_id: str, images: int, torch_python: str, tmp: Path) -> float:
    out = tmp / "torch.json"
    cmd = [torch_python, str(REPO / "benchmarks" / "torch_reference.py"), exp_id,
           "--images", str(images), "--json", str(out)]  # fmt: skip
    return run_json(cmd, out)["results"][0]["images_per_second"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", default=FIVE)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="write every measurement here")
    parser.add_argument("--torch-python", default=str(REPO / ".venv-torch" / "bin" / "python"))
    parser.add_argument(
        "--cifar-epochs", type=float, default=0.2,
        help="fraction of a CIFAR-10 epoch to time (MNIST: one epoch)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not Path(args.torch_python).exists():
        sys.exit(f"no PyTorch interpreter at {args.torch_python}: see benchmarks/README.md")
    rows = []
    print(f"{'id':<16} {'round':>5} {'Keras':>9} {'PyTorch':>9} {'ratio':>6}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for exp_id in args.ids:
            epochs, images = images_for(exp_id, 1.0 if "mnist" in exp_id else args.cifar_epochs)
            keras_runs, torch_runs = [], []
            for r in range(args.rounds):
                order = ["keras", "torch"] if r % 2 == 0 else ["torch", "keras"]
                for side in order:
                    if side == "keras":
                        keras_runs.append(keras_ips(exp_id, epochs, Path(tmp)))
                    else:
                        torch_runs.append(torch_ips(exp_id, images, args.torch_python, Path(tmp)))
                print(f"{exp_id:<16} {r + 1:>5} {keras_runs[-1]:>9.0f} {torch_runs[-1]:>9.0f} "
                      f"{keras_runs[-1] / torch_runs[-1]:>6.2f}", flush=True)  # fmt: skip
            k, t = statistics.median(keras_runs), statistics.median(torch_runs)
            rows.append({"id": exp_id, "images_timed": images, "keras": keras_runs,
                         "torch": torch_runs, "keras_median": k, "torch_median": t,
                         "ratio_of_medians": k / t})  # fmt: skip
    print(f"\n{'id':<16} {'Keras median':>12} {'PyTorch median':>14} {'ratio':>6}")
    for row in rows:
        print(f"{row['id']:<16} {row['keras_median']:>12.0f} {row['torch_median']:>14.0f} "
              f"{row['ratio_of_medians']:>6.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "how": " ".join(["python benchmarks/compare.py", *sys.argv[1:]]),
            "rounds": args.rounds,
            "results": rows,
        }, indent=1) + "\n")  # fmt: skip
        print(f"Wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
