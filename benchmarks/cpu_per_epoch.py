"""CPU time per training epoch: the measure behind the quick profile's idle-time estimates.

    python benchmarks/cpu_per_epoch.py gan_mnist dcgan_cifar10
    python benchmarks/cpu_per_epoch.py dcgan_cifar10 --set '{"model": {"generator": {...}}}'

Builds each registry experiment as `run` does (optionally with fields replaced, as
`quality_curve.py --set`), warms up, then times `fit` over `--steps` steps with
`time.process_time` (all the process's threads) and scales to one quick-profile epoch. CPU
time hardly changes when other processes share the machine, unlike wall time; on an idle
2-core machine a run's wall time is roughly CPU time / 1.9.
"""

from __future__ import annotations

import argparse
import json
import time

import assignment4  # noqa: F401  (first: oneDNN and log settings precede TensorFlow)

# isort: split
from quality_curve import configured


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="+")
    parser.add_argument("--set", default="{}", help="JSON object of Experiment fields")
    parser.add_argument("--steps", type=int, default=96, help="timed steps per experiment")
    args = parser.parse_args(argv)
    for exp_id in args.ids:
        exp = configured(exp_id, json.loads(args.set))
        model = exp.build()
        train, _ = exp.datasets("quick")
        model.fit(train.take(2 * exp.steps_per_execution), epochs=1, verbose=0)  # warm-up
        cpu0, wall0 = time.process_time(), time.perf_counter()
        model.fit(train.take(args.steps), epochs=1, verbose=0)
        cpu = (time.process_time() - cpu0) / args.steps
        wall = (time.perf_counter() - wall0) / args.steps
        steps = -(-exp.data_sizes("quick")[0] // exp.images_per_step)
        print(f"{exp_id}: {cpu * 1000:.0f} CPU ms/step ({wall * 1000:.0f} wall), {steps} steps "
              f"per epoch, {cpu * steps / 60:.2f} CPU min per epoch", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
