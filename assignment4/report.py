"""Build report/report.md from the runs of one profile: figures, sample tables, captions.

Everything a caption or an "Our run shows" sentence says is read from the run's files
(history.json, run.json, metrics.json); nothing here trains. Missing runs become a sentence
that names the command to make them, never an error.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assignment4 import fileio, plots
from assignment4.errors import RunError

# The course report's outline: (number, heading, [(number, heading, figures, tables)]).
OUTLINE: tuple[
    tuple[str, str, tuple[tuple[str, str, tuple[int, ...], tuple[int, ...]], ...]], ...
] = (
    (
        "1",
        "Variational autoencoders",
        (
            ("1.1", "MNIST", (1, 2), (1,)),
            ("1.2", "CIFAR-10", (6, 7), (3,)),
        ),
    ),
    (
        "2",
        "Generative adversarial networks",
        (
            ("2.1", "GAN vs WGAN on MNIST", (3, 4), (2,)),
            ("2.2", "DC-WGAN on MNIST", (5,), ()),
            ("2.3", "CIFAR-10", (8, 9), (4,)),
        ),
    ),
)

# What the course report saw, in words (its numbers are not ours to repeat).
REPORT_OBSERVED = {
    "vae_mnist_z128": (
        "training and test loss fall steeply in the first epochs and then flatten, with the "
        "test loss close to the training loss; the KL term grows early, as the encoder starts "
        "to use the latent code, and then levels off; samples are recognisable but soft digits."
    ),
    "vae_mnist_z2": (
        "with only two latent dimensions the loss settles higher than with z=128 and the KL "
        "term is much smaller; samples are blurrier and some digits are ambiguous, but the "
        "whole latent space can be drawn, with the digits in overlapping clusters."
    ),
    "gan_mnist": (
        "the discriminator and generator losses do not converge but oscillate as the two "
        "networks compete; the Jensen-Shannon estimate stays below its upper bound log 2 and "
        "says little about sample quality; samples become digit-like with some noise."
    ),
    "wgan_mnist": (
        "the Earth-Mover estimate falls as training goes on and its decrease goes with better "
        "looking samples, unlike the GAN's losses; with weight clipping and a small learning "
        "rate it learns more slowly and its samples stay noisier than the GAN's."
    ),
    "dcwgan_mnist": (
        "convolutional networks give clearly sharper, better formed digits than the MLP WGAN, "
        "and the Earth-Mover estimate decreases steadily."
    ),
    "convvae_cifar10": (
        "the convolutional VAE reaches a lower loss than the MLP VAE; its samples are blurry "
        "but show colour layout and rough object shapes; test loss tracks training loss."
    ),
    "vae_cifar10": (
        "the MLP VAE's samples are very blurry colour blobs with little structure, worse than "
        "the convolutional VAE's; the loss flattens early."
    ),
    "dcgan_cifar10": (
        "DCGAN samples are sharper than any VAE's, with object-like shapes and backgrounds but "
        "few recognisable objects; the losses oscillate and the JS estimate stays below log 2."
    ),
    "dcwgan_cifar10": (
        "the Earth-Mover estimate falls steadily and training is stable; samples are of "
        "similar quality to the DCGAN's, somewhat less sharp."
    ),
}
FAMILY_OBSERVED = {
    "vae": "the loss falls and flattens; samples are blurry.",
    "gan": "the losses oscillate; the JS estimate stays below log 2.",
    "wgan": "the Earth-Mover estimate falls as samples improve.",
}


@dataclass(frozen=True)
class Claim:
    """One of the report's claims: `better` beats `worse` on `metrics`."""

    text: str
    better: str
    worse: str
    metrics: tuple[str, ...]


CLAIMS = (
    Claim("z=128 beats z=2 on MNIST", "vae_mnist_z128", "vae_mnist_z2", ("fd", "test_elbo")),
    Claim("DC-WGAN beats WGAN on MNIST", "dcwgan_mnist", "wgan_mnist", ("fd", "kid")),
    Claim(
        "the conv VAE beats the MLP VAE on CIFAR-10",
        "convvae_cifar10",
        "vae_cifar10",
        ("fd", "test_elbo"),
    ),
)
METRIC_NAMES = {
    "fd": "FD",
    "kid": "KID",
    "classifier_is": "classifier IS",
    "test_elbo": "test ELBO",
}
TABLE_SAMPLES = 20  # images per row of a sample table (2 lines of 10)
TABLE_SEED = 0  # the tables' latent draw: rebuilding gives the same pixels, as the notebooks do


# ----------------------------------------------------------------------------- runs


@dataclass
class RunInfo:
    """What one experiment's run folder holds for a profile (None where a file is missing)."""

    exp: Any
    run_dir: Path
    history: dict | None = None
    provenance: dict | None = None
    metrics: dict | None = None
    problem: str | None = None  # why a present run could not be read

    @property
    def exists(self) -> bool:
        return self.history is not None

    @property
    def epochs(self) -> int:
        if self.provenance and "epochs" in self.provenance:
            return int(self.provenance["epochs"])
        return max(
            (len(v) for v in (self.history or {}).values() if isinstance(v, list)), default=0
        )


def load_run(exp: Any, runs: str | os.PathLike, profile: str) -> RunInfo:
    """Read history.json, run.json and metrics.json of `runs/<id>/<profile>/` where present."""
    info = RunInfo(exp, Path(runs) / exp.id / profile)
    try:
        if (info.run_dir / "history.json").exists():
            info.history = fileio.read_json(info.run_dir / "history.json")
        if (info.run_dir / "run.json").exists():
            info.provenance = fileio.read_json(info.run_dir / "run.json")
        if (info.run_dir / "metrics.json").exists():
            info.metrics = fileio.read_json(info.run_dir / "metrics.json")
    except RunError as e:
        info.history, info.problem = None, str(e)
    return info


def _registry(registry: Any | None) -> Any:
    if registry is None:
        from assignment4 import experiments as registry  # imports TensorFlow: only when needed
    return registry


def _experiments(registry: Any) -> list[Any]:
    return [registry.get(exp_id) for exp_id in registry.EXPERIMENT_IDS]


def _run_command(exp_id: str, profile: str, runs: str | os.PathLike, verb: str = "run") -> str:
    runs_flag = "" if Path(runs) == Path("runs") else f" --runs {Path(runs).as_posix()}"
    return f"python -m assignment4 {verb} {exp_id} --profile {profile}{runs_flag}"


# ----------------------------------------------------------------------------- figures


def load_model(model_path: Path):
    """A saved model (loads Keras; registers the model classes first)."""
    import keras

    from assignment4 import experiments  # noqa: F401  (registers the classes for loading)

    return keras.saving.load_model(model_path)


def sample_model(model_path: Path, n: int, seed: int | None = TABLE_SEED) -> np.ndarray:
    """n uint8 samples from a saved model (seed 0 by default: the same images every time)."""
    return np.asarray(load_model(model_path).sample(n, seed=seed))


def real_images(dataset: str, n: int) -> np.ndarray:
    """The first n test images of `dataset`, uint8."""
    from assignment4 import data

    _, (x_test, _) = data.load(dataset)
    return x_test[:n]


@dataclass
class TableResult:
    """A sample table: the file written (or None), the runs in it and the models missing."""

    number: int
    path: Path | None = None
    included: list[RunInfo] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    real_row: bool = False
    problems: list[str] = field(default_factory=list)


def _table_row_label(info: RunInfo) -> str:
    return f"{info.exp.title}\n({info.exp.id}, {info.epochs} ep.)"


def _build_table(
    number: int, infos: Sequence[RunInfo], profile: str, figures_dir: Path
) -> TableResult:
    result = TableResult(number)
    rows = []
    for info in infos:
        model_path = info.run_dir / "model.keras"
        if not model_path.exists():
            result.missing.append(info.exp.id)
            continue
        try:
            rows.append((_table_row_label(info), sample_model(model_path, TABLE_SAMPLES)))
            result.included.append(info)
        except Exception as e:  # noqa: BLE001  (a broken model must not stop the report)
            result.problems.append(f"{model_path} could not be sampled ({type(e).__name__}: {e})")
    if not rows:
        return result
    exps = [info.exp for info in infos]
    # The report shows real images above the VAE tables (Tables 1 and 3).
    if all(exp.family == "vae" for exp in exps):
        rows.insert(0, ("real images\n(test set)", real_images(exps[0].dataset, TABLE_SAMPLES)))
        result.real_row = True
    title = f"Table {number}: samples on {plots.dataset_name(exps[0])}, profile '{profile}'"
    result.path = plots.save_table(number, rows, figures_dir, title=title)
    return result


@dataclass
class Built:
    """What `build_figures` wrote: figures per experiment id, tables per number."""

    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[int, TableResult] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        paths = [p for ps in self.figures.values() for p in ps]
        return paths + [t.path for t in self.tables.values() if t.path is not None]


def _build(infos: Sequence[RunInfo], profile: str, figures_dir: Path, tables: bool = True) -> Built:
    built = Built()
    for info in infos:
        if not info.exists:
            continue
        try:
            built.figures[info.exp.id] = plots.save_figures(info.exp, info.run_dir, figures_dir)
        except RunError as e:
            built.problems[info.exp.id] = str(e)
        model_path = info.run_dir / "model.keras"
        if tables and getattr(info.exp, "latent_dim", None) == 2 and model_path.exists():
            model = load_model(model_path)
            built.figures.setdefault(info.exp.id, []).extend(
                plots.save_latent_maps(info.exp, model, figures_dir)
            )
    if tables:
        for number, members in _tables(infos).items():
            built.tables[number] = _build_table(number, members, profile, figures_dir)
    return built


def _tables(infos: Sequence[RunInfo]) -> dict[int, list[RunInfo]]:
    tables: dict[int, list[RunInfo]] = {}
    for info in infos:
        if getattr(info.exp, "table", None) is not None:
            tables.setdefault(int(info.exp.table), []).append(info)
    return dict(sorted(tables.items()))


def build_figures(
    runs: str | os.PathLike = "runs",
    profile: str = "quick",
    figures_dir: str | os.PathLike = "figures",
    *,
    tables: bool = True,
    registry: Any | None = None,
) -> list[Path]:
    """Redraw fig<N>a/b for every run of `profile` and the sample tables from saved models.

    Runs without history.json and tables without any model.keras are skipped.

    Args:
        tables: also draw table<N>.png (loads the models with Keras; no training).
        registry: the experiment registry (default `assignment4.experiments`).
    Returns:
        The files written.
    """
    infos = [load_run(exp, runs, profile) for exp in _experiments(_registry(registry))]
    return _build(infos, profile, Path(figures_dir), tables=tables).paths


# ----------------------------------------------------------------------------- numbers


def _fmt(value: Any) -> str:
    """A number in 4 significant digits ('nan' for missing or not finite)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{value:.4g}" if math.isfinite(value) else "nan"


def _values(history: dict, key: str) -> np.ndarray | None:
    values = history.get(key)
    if not values:
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _trend(values: np.ndarray, what: str) -> str:
    """'the training loss fell from 180 (epoch 1) to 105 (epoch 5, -41.7%)'."""
    n = len(values)
    first, last = values[0], values[-1]
    if n == 1:
        return f"{what} was {_fmt(last)} after its only epoch"
    if not (math.isfinite(first) and math.isfinite(last)):
        return f"{what} went from {_fmt(first)} (epoch 1) to {_fmt(last)} (epoch {n})"
    change = (last - first) / max(abs(first), 1e-12)
    verb = "stayed near" if abs(change) < 0.02 else ("rose" if last > first else "fell")
    if verb == "stayed near":
        return f"{what} stayed near {_fmt(last)} (epoch 1: {_fmt(first)}, epoch {n}: {_fmt(last)})"
    # A relative change means little when the curve crosses zero.
    percent = f", {change:+.1%}" if first * last > 0 else ""
    return f"{what} {verb} from {_fmt(first)} (epoch 1) to {_fmt(last)} (epoch {n}{percent})"


def _extreme(values: np.ndarray, lowest: bool = True) -> tuple[int, float] | None:
    if not np.isfinite(values).any():
        return None
    k = int(np.nanargmin(values) if lowest else np.nanargmax(values))
    return k + 1, float(values[k])


def _last_window(values: np.ndarray, k: int = 5) -> str:
    window = values[-k:]
    if len(values) <= k or not np.isfinite(window).all():
        return ""
    return (
        f" Over the last {len(window)} epochs it averaged {_fmt(window.mean())} "
        f"(range {_fmt(window.min())} to {_fmt(window.max())})."
    )


def _vae_shows(h: dict) -> list[str]:
    out = []
    loss, val_loss, kl, val_kl = (_values(h, k) for k in ("loss", "val_loss", "kl", "val_kl"))
    rec = _values(h, "reconstruction")
    if loss is not None:
        out.append(_trend(loss, "The training loss") + ".")
    if val_loss is not None:
        sentence = _trend(val_loss, "The test loss")
        best = _extreme(val_loss)
        if best is not None and len(val_loss) > 1:
            where = "the last epoch" if best[0] == len(val_loss) else f"epoch {best[0]}"
            sentence += f"; it was lowest at {where} ({_fmt(best[1])})"
        out.append(sentence + ".")
    if loss is not None and val_loss is not None and math.isfinite(loss[-1] * val_loss[-1]):
        gap = val_loss[-1] - loss[-1]
        rel = gap / max(abs(loss[-1]), 1e-12)
        side = "above" if gap > 0 else "below"
        out.append(
            f"At the end the test loss is {_fmt(abs(gap))} {side} the training loss ({rel:+.1%})."
        )
    if kl is not None:
        sentence = _trend(kl, "The training KL")
        if val_kl is not None:
            sentence += f"; the final test KL is {_fmt(val_kl[-1])}"
        out.append(sentence + ".")
    if rec is not None and kl is not None and loss is not None and loss[-1]:
        out.append(
            f"Of the final training loss, reconstruction is {_fmt(rec[-1])} and KL "
            f"{_fmt(kl[-1])} ({kl[-1] / loss[-1]:.1%})."
        )
    return out


def _loss_trends(h: dict, names: Sequence[tuple[str, str]]) -> list[str]:
    """One trend sentence per (history key, what) pair that the history holds."""
    return [_trend(v, what) + "." for key, what in names if (v := _values(h, key)) is not None]


def _gan_shows(h: dict) -> list[str]:
    out = _loss_trends(h, [("d_loss", "The discriminator loss"), ("g_loss", "The generator loss")])
    js = _values(h, "js_estimate")
    if js is not None:
        bound = math.log(2.0)
        out.append(
            _trend(js, "The JS estimate")
            + f", {js[-1] / bound:.0%} of its upper bound log 2 = {bound:.4f}"
            + " (0 would mean a discriminator at chance)."
            + _last_window(js)
        )
    return out


def _wgan_shows(h: dict) -> list[str]:
    out = _loss_trends(h, [("critic_loss", "The critic loss"), ("g_loss", "The generator loss")])
    em = _values(h, "em_estimate")
    if em is not None:
        sentence = _trend(em, "The EM estimate")
        if len(em) > 1:
            steps = np.diff(em)
            falls = int((steps < 0).sum())
            low = _extreme(em)
            sentence += f"; it fell in {falls} of {len(steps)} epoch-to-epoch steps"
            if low is not None:
                sentence += f" and was lowest at epoch {low[0]} ({_fmt(low[1])})"
        out.append(sentence + "." + _last_window(em))
    return out


def run_shows(info: RunInfo) -> str:
    """The "Our run shows" sentences, computed from the run's history."""
    shows = {"vae": _vae_shows, "gan": _gan_shows, "wgan": _wgan_shows}.get(info.exp.family)
    sentences = shows(info.history) if shows and info.history else []
    return " ".join(sentences) or "its history holds none of the expected metrics."


# ----------------------------------------------------------------------------- markdown


def _link(path: Path, report_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), report_dir.resolve())).as_posix()


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _provenance_caption(info: RunInfo) -> str:
    p = info.provenance
    if not p:
        return f"{info.epochs} epochs (run.json is missing, so the profile is not recorded)"
    epochs, planned = p.get("epochs", info.epochs), p.get("epochs_planned")
    text = f"Profile `{p.get('profile', '?')}`, {epochs} epoch{'s' if epochs != 1 else ''}"
    if planned is not None and planned != epochs:
        text += f" of {planned} planned"
    status = p.get("status", "complete")
    if status != "complete":
        text += " (still running)" if status == "running" else f" (status: {status})"
    if "train_size" in p:
        text += f"; {p['train_size']} training and {p.get('test_size', '?')} test images"
    if "seed" in p:
        text += f", seed {p['seed']}"
    if p.get("settings"):
        text += f"; {p['settings']}"
    return text


PANEL_WHAT = {
    family: {k: v[0] for k, v in panels.items()} for family, panels in plots.PANELS.items()
}


LATENT_MAP_WHAT = {
    "latent_scatter": "the test set's latent means, coloured by digit",
    "manifold": "digits decoded over the 2-D latent plane (normal quantiles)",
}


def _experiment_section(
    info: RunInfo, built: Built | None, figures_dir: Path, report_dir: Path, profile: str, runs
) -> list[str]:
    exp = info.exp
    lines = [f"#### Figure {exp.figure}: {exp.title} on {plots.dataset_name(exp)} (`{exp.id}`)", ""]
    observed = REPORT_OBSERVED.get(exp.id, FAMILY_OBSERVED.get(exp.family, ""))
    if not info.exists:
        why = f" ({info.problem})" if info.problem else ""
        lines += [
            (
                f"No `{profile}` run of `{exp.id}` was found in `{info.run_dir.as_posix()}`{why}; "
                f"run it with `{_run_command(exp.id, profile, runs)}`."
            ),
            "",
            f"**The report observed:** {observed}",
            "",
        ]
        return lines
    if built is not None:
        paths = built.figures.get(exp.id, [])
    else:
        candidates = plots.figure_paths(exp, figures_dir) + plots.latent_map_paths(exp, figures_dir)
        paths = [p for p in candidates if p.exists()]
    if built is not None and exp.id in built.problems:
        lines += [f"The figures could not be drawn: {built.problems[exp.id]}", ""]
    for path in paths:
        panel = path.name[len(f"fig{exp.figure}")]
        if panel not in "ab":  # the latent maps of a 2-D VAE
            what = LATENT_MAP_WHAT[path.stem.split("_", 1)[1]]
            lines += [
                f"![Figure {exp.figure}: {what}]({_link(path, report_dir)})",
                "",
                f"*Figure {exp.figure}, latent maps: {what}. {_provenance_caption(info)}.*",
                "",
            ]
            continue
        what = PANEL_WHAT.get(exp.family, {}).get(panel, "")
        lines += [
            f"![Figure {exp.figure}{panel}: {exp.title}, {what}]({_link(path, report_dir)})",
            "",
            (
                f"*Figure {exp.figure}{panel}: {exp.title} on {plots.dataset_name(exp)}, {what}, "
                f"per epoch. {_provenance_caption(info)}.*"
            ),
            "",
        ]
    lines += [
        f"**The report observed:** {observed}",
        "",
        f"**Our run shows** ({_lower_first(_provenance_caption(info))}): {run_shows(info)}",
        "",
    ]
    return lines


def _table_section(
    number: int,
    infos: Sequence[RunInfo],
    built: Built | None,
    figures_dir: Path,
    report_dir: Path,
    profile: str,
    runs,
) -> list[str]:
    lines = [f"#### Table {number}: samples", ""]
    if built is not None:
        result = built.tables.get(number, TableResult(number))
    else:
        path = figures_dir / f"table{number}.png"
        result = TableResult(number, path if path.exists() else None)
        for info in infos:
            if (info.run_dir / "model.keras").exists():
                result.included.append(info)
            else:
                result.missing.append(info.exp.id)
    if result.path is not None:
        rows = (["real test images"] if result.real_row else []) + [
            f"{i.exp.title} (`{i.exp.id}`, {i.epochs} epochs)" for i in result.included
        ]
        lines += [
            f"![Table {number}]({_link(result.path, report_dir)})",
            "",
            (
                f"*Table {number}: samples, one row per model, profile `{profile}`. "
                f"Rows: {'; '.join(rows)}.*"
            ),
            "",
        ]
    if result.missing:
        commands = ", ".join(f"`{_run_command(i, profile, runs)}`" for i in result.missing)
        verb = "is drawn without" if result.path is not None else "is not drawn: there is no"
        lines += [
            (
                f"Table {number} {verb} `model.keras` for "
                f"{', '.join(f'`{i}`' for i in result.missing)} (profile `{profile}`); "
                f"make {'it' if len(result.missing) == 1 else 'them'} with {commands}."
            ),
            "",
        ]
    elif result.path is None and built is None:
        lines += [f"Table {number} has not been drawn yet: run `build_figures`.", ""]
    for problem in result.problems:
        lines += [f"Note: {problem}", ""]
    return lines


def _metrics_section(infos: Sequence[RunInfo], profile: str, runs) -> list[str]:
    lines = ["## 3 Sample quality, measured (beyond the report)", ""]
    measured = [i for i in infos if i.metrics]
    if not measured:
        return lines + [
            (
                f"No `metrics.json` for profile `{profile}` yet; make them with "
                f"`{_run_command('all', profile, runs, verb='evaluate')}`."
            ),
            "",
        ]
    lines += [
        (
            "FD (Fréchet distance) and KID (kernel distance) compare generated samples with the "
            "test set on the penultimate features of the project's own small classifier for each "
            "data set, and the classifier IS is an Inception-Score-style number from its softmax. "
            "These are **not** Inception FID numbers and are not comparable with published FIDs; "
            "compare them within one data set only, against the real-vs-real row (real training "
            "images against the test set). Lower FD and KID are better, higher IS is better; the "
            "test ELBO is in the units of the loss."
        ),
        "",
        "| experiment | data | epochs | samples | FD | KID | classifier IS | test ELBO |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for info in measured:
        m = info.metrics
        elbo = _fmt(m["test_elbo"]) if "test_elbo" in m else "-"
        lines.append(
            f"| `{info.exp.id}` | {plots.dataset_name(info.exp)} | {info.epochs} | "
            f"{m.get('n_samples', '?')} | {_fmt(m.get('fd'))} | {_fmt(m.get('kid'))} | "
            f"{_fmt(m.get('classifier_is'))} | {elbo} |"
        )
    accuracy = []
    seen = set()
    for info in measured:
        m, name = info.metrics, plots.dataset_name(info.exp)
        if name in seen or "fd_real" not in m:
            continue
        seen.add(name)
        lines.append(
            f"| real vs real | {name} | - | - | {_fmt(m.get('fd_real'))} | "
            f"{_fmt(m.get('kid_real'))} | {_fmt(m.get('classifier_is_real'))} | - |"
        )
        if "classifier_test_accuracy" in m:
            acc = float(m["classifier_test_accuracy"])
            accuracy.append(f"{name} {acc * 100 if acc <= 1 else acc:.2f}%")
    lines.append("")
    if accuracy:
        lines += [f"The feature classifiers' test accuracy: {', '.join(accuracy)}.", ""]
    lines += _collapse_lines(measured)
    missing = [i.exp.id for i in infos if i.exists and not i.metrics]
    if missing:
        lines += [
            (
                f"Not evaluated yet: {', '.join(f'`{i}`' for i in missing)} "
                f"(`{_run_command('all', profile, runs, verb='evaluate')}`)."
            ),
            "",
        ]
    return lines


def _collapse_lines(measured: Sequence[RunInfo]) -> list[str]:
    """Mode collapse (class histogram of the samples) and a VAE's active latent units, in words."""
    from assignment4 import evaluation

    said = [(info.exp.id, evaluation.diagnosis(info.metrics)) for info in measured]
    said = [(exp_id, text) for exp_id, text in said if text]
    if not said:
        return []
    return [
        (
            "Collapse diagnostics: the project classifier's class histogram of the samples "
            f"(mode collapse when a class gets under {evaluation.MIN_CLASS_FRACTION:.0%} of them "
            f"or the classifier IS is under {evaluation.MIN_CLASSIFIER_IS:g}) and, for VAEs, the "
            f"latent units whose KL over the test set exceeds {evaluation.ACTIVE_UNIT_KL} nats "
            "(none active is posterior collapse)."
        ),
        "",
        *(f"- `{exp_id}`: {text}" for exp_id, text in said),
        "",
    ]


def _better(metric: str, a: float, b: float) -> bool:
    """Whether value a is strictly better than b for `metric`."""
    if metric == "classifier_is":
        return a > b
    if metric == "test_elbo":
        # The loss is >= 0, so the ELBO is <= 0: closer to 0 is better in either sign convention.
        return abs(a) < abs(b)
    return a < b


def claim_verdict(claim: Claim, metrics: dict[str, dict | None]) -> tuple[str, str]:
    """('supported' | 'not supported' | 'not checked', the sentence with the numbers)."""
    a, b = metrics.get(claim.better), metrics.get(claim.worse)
    lacking = [i for i, m in ((claim.better, a), (claim.worse, b)) if not m]
    if lacking:
        return "not checked", f"no metrics.json for {', '.join(f'`{i}`' for i in lacking)}"
    parts, favours = [], []
    for metric in claim.metrics:
        if metric not in a or metric not in b:
            parts.append(f"{METRIC_NAMES.get(metric, metric)} missing")
            favours.append(False)
            continue
        ok = _better(metric, float(a[metric]), float(b[metric]))
        favours.append(ok)
        winner = claim.better if ok else claim.worse
        parts.append(
            f"{METRIC_NAMES.get(metric, metric)} {_fmt(a[metric])} (`{claim.better}`) vs "
            f"{_fmt(b[metric])} (`{claim.worse}`), favouring `{winner}`"
        )
    verdict = "supported" if all(favours) else "not supported"
    return verdict, "; ".join(parts)


def _claims_section(infos: Sequence[RunInfo], profile: str) -> list[str]:
    metrics = {i.exp.id: i.metrics for i in infos}
    lines = ["## 4 The report's three claims", ""]
    for claim in CLAIMS:
        verdict, detail = claim_verdict(claim, metrics)
        lines.append(f"- **{claim.text}**: {detail}. **{verdict.capitalize()}**.")
    lines += [
        "",
        (
            f"A claim is supported only if every listed number favours it (profile `{profile}`; "
            "the `full` profile is the report's setting). For the test ELBO the better model is "
            "the one closer to zero."
        ),
        "",
    ]
    return lines


def _provenance_section(infos: Sequence[RunInfo]) -> list[str]:
    present = [i for i in infos if i.exists]
    lines = ["## Provenance", ""]
    if not present:
        return lines + ["No runs yet.", ""]
    lines += [
        (
            "| experiment | profile | epochs | train / test images | batch | seed | strategy "
            "| wall time | status |"
        ),
        "| --- | --- | ---: | --- | ---: | ---: | --- | ---: | --- |",
    ]
    versions = {}
    for info in present:
        p = info.provenance or {}
        wall = p.get("wall_time_s")
        wall_text = f"{float(wall) / 60:.1f} min" if isinstance(wall, (int, float)) else "?"
        planned = p.get("epochs_planned")
        epochs = f"{info.epochs}" + (f" / {planned}" if planned is not None else "")
        lines.append(
            f"| `{info.exp.id}` | {p.get('profile', '?')} | {epochs} | "
            f"{p.get('train_size', '?')} / {p.get('test_size', '?')} | "
            f"{p.get('batch_size', '?')} | {p.get('seed', '?')} | "
            f"{p.get('strategy', '?')} ({p.get('replicas', '?')}) | {wall_text} | "
            f"{p.get('status', '?')} |"
        )
        versions.update(p.get("versions") or {})
    lines.append("")
    if versions:
        lines += ["Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())), ""]
    return lines


def build_report(
    runs: str | os.PathLike = "runs",
    profile: str = "quick",
    figures_dir: str | os.PathLike = "figures",
    report_dir: str | os.PathLike = "report",
    *,
    make_figures: bool = True,
    tables: bool = True,
    registry: Any | None = None,
) -> Path:
    """Write `report_dir/report.md` for the runs of `profile`, following the course report.

    Args:
        make_figures: redraw the figures (and, with `tables`, the sample tables) first;
            otherwise link the files already in figures_dir.
        registry: the experiment registry (default `assignment4.experiments`).
    Returns:
        The path of report.md.
    """
    figures_dir, report_dir = Path(figures_dir), Path(report_dir)
    infos = [load_run(exp, runs, profile) for exp in _experiments(_registry(registry))]
    built = _build(infos, profile, figures_dir, tables=tables) if make_figures else None
    by_figure = {int(i.exp.figure): i for i in infos}
    by_table = _tables(infos)
    missing = [i.exp.id for i in infos if not i.exists]

    lines = [
        f"# VAE, GAN and WGAN on MNIST and CIFAR-10: the report reproduced (profile `{profile}`)",
        "",
        (
            f"Built from `{Path(runs).as_posix()}/` on {time.strftime('%Y-%m-%d %H:%M')} by "
            "`assignment4.report.build_report`. Every caption says which profile and how many "
            "epochs made its figure; `full` is the report's setting (200 epochs, all data), "
            "`quick` and `smoke` are shorter runs whose curves and samples are earlier stages "
            "of the same training."
        ),
        "",
        f"Runs found: {len(infos) - len(missing)} of {len(infos)}.",
        "",
    ]
    if missing:
        lines += [
            (
                f"Missing: {', '.join(f'`{i}`' for i in missing)}; make all with "
                f"`{_run_command('all', profile, runs)}`."
            ),
            "",
        ]
    outline = list(OUTLINE)
    extra_figures = sorted(
        set(by_figure) - {f for _, _, subs in OUTLINE for s in subs for f in s[2]}
    )
    extra_tables = sorted(set(by_table) - {t for _, _, subs in OUTLINE for s in subs for t in s[3]})
    if extra_figures or extra_tables:
        outline.append(
            ("", "Other experiments", (("", "", tuple(extra_figures), tuple(extra_tables)),))
        )
    for number, heading, subsections in outline:
        lines += [f"## {number} {heading}".replace("  ", " "), ""]
        for sub_number, sub_heading, figures, table_numbers in subsections:
            if sub_number:
                lines += [f"### {sub_number} {sub_heading}", ""]
            for fig in figures:
                if fig in by_figure:
                    lines += _experiment_section(
                        by_figure[fig], built, figures_dir, report_dir, profile, runs
                    )
            for table in table_numbers:
                if table in by_table:
                    lines += _table_section(
                        table, by_table[table], built, figures_dir, report_dir, profile, runs
                    )
    lines += _metrics_section(infos, profile, runs)
    if any(i.metrics for i in infos):
        lines += _claims_section(infos, profile)
    lines += _provenance_section(infos)
    path = report_dir / "report.md"
    with fileio.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
