"""Command line: python -m assignment4 <command> ...  (see --help)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from assignment4.errors import Assignment4Error
from assignment4.training import profiles


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def cmd_data(args) -> None:
    from assignment4 import data

    for name in args.names:
        data.spec(name)  # an unknown name fails before any loading
    for name in args.names:
        s = data.summary(name, args.data_dir)
        print(f"{name}: {s['path']}")
        print(
            f"  train {s['x_train']} labels {s['y_train']}; test {s['x_test']} labels {s['y_test']}"
        )
        print(f"  train images per class: {s['train_class_counts']}")
        print(f"  test images per class:  {s['test_class_counts']}")
    if args.preview:
        from assignment4.reporting import plots

        path = plots.save_data_preview(args.names, args.preview, args.data_dir)
        print(f"Preview written to {path}")


def cmd_list(args) -> None:
    from assignment4 import experiments
    from assignment4.texttable import format_table

    header = ("id", "report", "data", "model", "full", "quick", "smoke")
    rows = [
        (e.id, f"Fig {e.figure}, Table {e.table}", e.dataset, e.title,
         *(str(e.epochs(p)) for p in ("full", "quick", "smoke")))
        for e in experiments.EXPERIMENTS.values()
    ]  # fmt: skip
    print(format_table(header, rows))
    print(
        "\nEpochs per profile. Profiles: "
        + "; ".join(f"{p.name}: {p.description}" for p in profiles.PROFILES.values())
    )


def cmd_status(args) -> None:
    from assignment4 import artifacts

    prof = profiles.profile(args.profile).name
    print(artifacts.format_status(artifacts.status(prof, args.runs)))


def cmd_run(args) -> None:
    from assignment4 import experiments, training

    ids = experiments.resolve_ids(args.ids)
    prof = profiles.profile(args.profile).name
    for exp_id in ids:
        training.run_experiment(
            experiments.get(exp_id),
            profile=prof,
            runs=args.runs,
            strategy=args.strategy,
            epochs=args.epochs,
            seed=args.seed,
            data_dir=args.data_dir,
            restart=args.restart,
        )


def cmd_sample(args) -> None:
    from assignment4 import artifacts, experiments

    exp = experiments.get(args.id)
    prof = profiles.profile(args.profile).name
    out = artifacts.sample_run(
        exp.id, prof, args.n, args.out, args.runs, seed=args.seed, epoch=args.epoch
    )
    at = f" of epoch {args.epoch}" if args.epoch is not None else ""
    print(f"Wrote {args.n} {exp.dataset} images{at} (uint8) to {out}")


def cmd_evaluate(args) -> None:
    from assignment4 import evaluation, experiments

    prof = profiles.profile(args.profile).name
    rows = []
    ids = experiments.resolve_ids(args.ids)
    for k, exp_id in enumerate(ids, 1):
        t = time.perf_counter()
        metrics = evaluation.evaluate_run(
            exp_id,
            prof,
            runs=args.runs,
            n=args.n,
            epoch=args.epoch,
            trained_generator=args.trained_generator,
            data_dir=args.data_dir,
        )
        rows.append({"id": exp_id, **metrics})
        print(f"[{k}/{len(ids)}] {exp_id}: scored in {time.perf_counter() - t:.0f} s", flush=True)
    print(evaluation.format_metrics_table(rows))


def cmd_report(args) -> None:
    from assignment4.reporting import report

    # no profile asked for (option or environment): the longest finished run of each
    chosen = args.profile or os.environ.get(profiles.PROFILE_ENV)
    prof = profiles.profile(chosen).name if chosen else None
    # one pass: build_report draws each figure and table once (none with --no-figures)
    path = report.build_report(
        args.runs,
        prof,
        args.figures,
        args.report,
        make_figures=not args.no_figures,
        data_dir=args.data_dir,
    )
    if not args.no_figures:
        print(f"Figures and tables redrawn in {args.figures}")
    print(f"Report written to {path}")


def cmd_bench(args) -> None:
    from assignment4 import bench, experiments

    ids = experiments.resolve_ids(args.ids or ["all"])
    bench.main(ids, json_path=args.json, epochs=args.epochs, jit=args.jit, precision=args.precision)


def cmd_train_classifiers(args) -> None:
    from assignment4.evaluation import classifier

    for name in args.datasets:
        classifier.train(name, epochs=args.epochs, seed=args.seed)


EPOCH_HELP = "use the checkpoint of this epoch (a sample-grid epoch) instead of the final model"


VERBOSE_HELP = (
    "show TensorFlow's own C++ log lines (INFO, WARNING, ERROR), hidden by default "
    "unless TF_CPP_MIN_LOG_LEVEL is set"
)
PROFILE_HELP = "full | quick | smoke (default: $ASSIGNMENT4_PROFILE or full)"
REPORT_PROFILE_HELP = (
    "full | quick | smoke (default: $ASSIGNMENT4_PROFILE, or else the longest finished run "
    "of each experiment)"
)


class _Commands:
    """Adds the subcommands to the parser, each with the options it shares with others."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def add(self, name, func, help_):
        sp = self.sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        sp.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                        help=VERBOSE_HELP)  # fmt: skip
        return sp

    @staticmethod
    def common(sp, runs=True, profile=PROFILE_HELP, data=True):
        """--profile, --runs and, for a command that reads the data sets, --data-dir."""
        if profile:
            sp.add_argument("--profile", default=None, help=profile)
        if runs:
            sp.add_argument("--runs", default="runs", help="root folder of runs (default: runs)")
        if data:
            sp.add_argument("--data-dir", default=None,
                            help="folder with mnist.npz / cifar10.npz (default: "
                                 "$ASSIGNMENT4_DATA or <repo>/data)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m assignment4",
        description="VAE, GAN and WGAN on MNIST and CIFAR-10: the course report, reproduced.",
    )
    p.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    commands = _Commands(p)
    _add_data_commands(commands)
    _add_training_commands(commands)
    _add_reading_commands(commands)
    _add_measuring_commands(commands)
    return p


def _add_data_commands(c: _Commands) -> None:
    sp = c.add("data", cmd_data, "find, check and describe the data sets")
    sp.add_argument("names", nargs="*", default=["mnist", "cifar10"], help="mnist, cifar10")
    sp.add_argument("--preview", metavar="FILE", help="write a PNG grid of sample images")
    c.common(sp, runs=False, profile=None)
    c.add("list", cmd_list, "the nine experiments of the report and their epochs per profile")


def _add_training_commands(c: _Commands) -> None:
    sp = c.add("run", cmd_run, "train experiments; a killed run resumes when started again")
    sp.add_argument("ids", nargs="+", help="experiment ids, or 'all'")
    c.common(sp)
    sp.add_argument("--epochs", type=_positive_int, default=None, help="override the profile")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--strategy", default="default", choices=["default", "mirrored", "multiworker"])
    sp.add_argument("--restart", action="store_true", help="discard an existing run and start over")
    sp = c.add(
        "train-classifiers",
        cmd_train_classifiers,
        "retrain the evaluation classifiers (weights go into the package)",
    )
    sp.add_argument(
        "--datasets", nargs="+", default=["mnist", "cifar10"], choices=["mnist", "cifar10"]
    )
    sp.add_argument("--epochs", type=_positive_int, default=None)
    sp.add_argument("--seed", type=int, default=0)


def _add_reading_commands(c: _Commands) -> None:
    sp = c.add(
        "status", cmd_status, "what the runs of a profile hold: epochs, time, memory, losses"
    )
    c.common(sp, data=False)  # reads run folders only
    sp = c.add("sample", cmd_sample, "write generated images of a finished run as a uint8 .npy")
    sp.add_argument("id")
    c.common(sp, data=False)  # samples a saved model: reads no data set
    sp.add_argument("-n", type=_positive_int, default=10000)
    sp.add_argument("--out", required=True, help="output .npy file")
    sp.add_argument("--seed", type=int, default=0, help="latent draw (default 0: repeatable)")
    sp.add_argument("--epoch", type=_positive_int, default=None, help=EPOCH_HELP)
    sp = c.add("report", cmd_report, "regenerate figures/ and report/report.md from finished runs")
    c.common(sp, profile=REPORT_PROFILE_HELP)
    sp.add_argument("--figures", default="figures")
    sp.add_argument("--report", default="report")
    sp.add_argument("--no-figures", action="store_true", help="only rewrite report.md")


def _add_measuring_commands(c: _Commands) -> None:
    sp = c.add("evaluate", cmd_evaluate, "sample-quality metrics of finished runs -> metrics.json")
    sp.add_argument("ids", nargs="+", help="experiment ids, or 'all'")
    c.common(sp)
    sp.add_argument("-n", type=_positive_int, default=10000, help="generated images to score")
    sp.add_argument("--epoch", type=_positive_int, default=None, help=EPOCH_HELP)
    sp.add_argument(
        "--trained-generator",
        action="store_true",
        help="a GAN with a generator average: score the trained generator instead "
        "(-> metrics[_epoch_NNN]_trained_generator.json, beside the average's)",
    )
    sp = c.add(
        "bench", cmd_bench, "training throughput (images/s) and fraction of the machine's peak"
    )
    sp.add_argument("ids", nargs="*", help="experiment ids (default: all)")
    sp.add_argument("--json", default=None, help="also write the results to this JSON file")
    sp.add_argument("--epochs", type=float, default=1.0, help="timed epochs per experiment")
    sp.add_argument("--jit", choices=["registry", "on", "off"], default="registry",
                    help="XLA setting to measure (default: each experiment's own)")  # fmt: skip
    sp.add_argument(
        "--precision",
        choices=["registry", "float32", "mixed_bfloat16", "auto"],
        default="registry",
        help="dtype policy to measure (default: each experiment's own; 'of peak' is against "
        "the float32 GEMM rate)",
    )


# Commands that train or run models: they start with one line naming the devices.
USES_DEVICES = ("run", "sample", "evaluate", "bench", "train-classifiers")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        from assignment4 import startup

        os.environ[startup.LEVEL_ENV] = "0"  # before TensorFlow loads, if it has not yet
        startup.uninstall()
    try:
        if args.command in USES_DEVICES:
            from assignment4 import training

            print(training.device_line(), flush=True)
        args.func(args)
    except Assignment4Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        name = getattr(e, "signal_name", "SIGINT")
        print(
            f"\nStopped by {name}. Finished epochs are saved; run the same command to resume.",
            file=sys.stderr,
        )
        return 128 + int(getattr(signal, name, signal.SIGINT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
