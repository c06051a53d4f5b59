"""The report's figures and sample tables, drawn with matplotlib from finished runs.

Figures are built with `matplotlib.figure.Figure` directly (no pyplot state), so they work
without a display, show inline when a notebook cell returns them, and need no closing.
Every file is written atomically: a temporary file in the same folder, then `os.replace`.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image

from assignment4.errors import RunError
from assignment4.fileio import atomic_path, read_json
from assignment4.images import image_grid, save_png  # noqa: F401  (part of this API)

# Without a display (a server, CI) draw with Agg; notebooks and desktops keep theirs.
if (
    "MPLBACKEND" not in os.environ
    and not os.environ.get("DISPLAY")
    and not os.environ.get("WAYLAND_DISPLAY")
    and "ipykernel" not in sys.modules
    and "matplotlib.pyplot" not in sys.modules
    and sys.platform.startswith("linux")
):
    matplotlib.use("Agg")

DPI = 120


def _show_figures_in_notebooks() -> None:
    """Let a notebook cell that returns a Figure show it as PNG, with or without pyplot."""
    if "IPython" not in sys.modules:
        return
    ip = sys.modules["IPython"].get_ipython()
    if ip is None or not hasattr(ip, "display_formatter"):
        return
    formatter = ip.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)  # pyplot's inline backend already shows them
    except KeyError:
        formatter.for_type(Figure, _png_bytes)


def _png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


_show_figures_in_notebooks()
TRAIN_COLOR, TEST_COLOR, OTHER_COLOR = "#1f77b4", "#d62728", "#2ca02c"
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linestyle": "-",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.5,
}
DATASET_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10"}

# What each figure of each family plots: (what, y label, [(history key, legend label, colour)]).
PANELS: dict[str, dict[str, tuple[str, str, list[tuple[str, str, str]]]]] = {
    "vae": {
        "a": (
            "total loss, train vs test",
            "loss per image (reconstruction + KL)",
            [("loss", "train", TRAIN_COLOR), ("val_loss", "test", TEST_COLOR)],
        ),
        "b": (
            "KL divergence, train vs test",
            "KL per image (nats)",
            [("kl", "train", TRAIN_COLOR), ("val_kl", "test", TEST_COLOR)],
        ),
    },
    "gan": {
        "a": (
            "discriminator and generator losses",
            "loss",
            [
                ("d_loss", "discriminator loss", TRAIN_COLOR),
                ("g_loss", "generator loss", TEST_COLOR),
            ],
        ),
        "b": (
            "Jensen-Shannon estimate",
            "JS divergence estimate (nats)",
            [("js_estimate", "JS estimate = log 2 - d_loss / 2", OTHER_COLOR)],
        ),
    },
    "wgan": {
        "a": (
            "critic and generator losses",
            "loss",
            [("critic_loss", "critic loss", TRAIN_COLOR), ("g_loss", "generator loss", TEST_COLOR)],
        ),
        "b": (
            "Earth-Mover estimate",
            "EM distance estimate",
            [("em_estimate", "EM estimate = mean C(x) - mean C(G(z))", OTHER_COLOR)],
        ),
    },
}


# ----------------------------------------------------------------------------- files


def save_figure(fig: Figure, path: str | os.PathLike) -> Path:
    """Save `fig` as PNG atomically, then release it if pyplot manages it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
    if "matplotlib.pyplot" in sys.modules:  # a figure made with pyplot stays open otherwise
        sys.modules["matplotlib.pyplot"].close(fig)
    return Path(path)


# ----------------------------------------------------------------------------- curves


def dataset_name(exp: Any) -> str:
    """'MNIST' or 'CIFAR-10' for an experiment's data set."""
    return DATASET_NAMES.get(exp.dataset, str(exp.dataset).upper())


def provenance_text(provenance: Mapping | None, n_epochs: int) -> str:
    """'profile quick, 5 of 200 epochs (running)' from run.json; history length if absent."""
    if not provenance:
        return f"{n_epochs} epoch{'s' if n_epochs != 1 else ''}, profile unknown (no run.json)"
    epochs = provenance.get("epochs", n_epochs)
    planned = provenance.get("epochs_planned")
    text = f"profile '{provenance.get('profile', '?')}', "
    if planned is not None and planned != epochs:
        text += f"{epochs} of {planned} epochs"
    else:
        text += f"{epochs} epoch{'s' if epochs != 1 else ''}"
    if provenance.get("status", "complete") != "complete":
        text += f" ({provenance.get('status')})"
    return text


def series(history: Mapping, key: str) -> np.ndarray | None:
    """One metric of a history as floats per epoch (None -> NaN); None when it is absent."""
    values = history.get(key)
    if values is None or len(values) == 0:
        return None
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _curve_figure(history: Mapping, exp: Any, provenance: Mapping | None, panel: str) -> Figure:
    try:
        what, ylabel, curves = PANELS[exp.family][panel]
    except KeyError:
        raise ValueError(f"no figure {panel!r} for model family {exp.family!r}") from None
    plotted = [(series(history, key), label, color) for key, label, color in curves]
    if all(s is None for s, _, _ in plotted):
        keys = ", ".join(k for k, _, _ in curves)
        raise RunError(
            f"history of {exp.id} has none of {keys} (it has: {', '.join(history) or 'nothing'})"
        )
    n = max(len(s) for s, _, _ in plotted if s is not None)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(6.4, 4.2))
        ax = fig.add_subplot()
        for values, label, color in plotted:
            if values is None:
                continue
            epochs = np.arange(1, len(values) + 1)
            ax.plot(
                epochs,
                values,
                label=label,
                color=color,
                marker="o",
                markevery=max(1, len(values) // 25),
            )
        if exp.family == "gan" and panel == "b":
            bound = np.log(2.0)
            ax.axhline(
                bound, color="0.3", linestyle="--", linewidth=1.2, label="log 2 (upper bound)"
            )
            # Show the whole range [0, log 2] the divergence can take.
            low = min(0.0, np.nanmin([np.nanmin(s) for s, _, _ in plotted if s is not None]))
            ax.set_ylim(low - 0.05 * bound, 1.08 * bound)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        pad = 0.5 if n < 10 else 0.02 * n  # room for the first and last markers
        ax.set_xlim(1 - pad, n + pad)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.set_title(
            f"Figure {exp.figure}{panel}: {exp.title} on {dataset_name(exp)} ({exp.id})\n"
            f"{what}; {provenance_text(provenance, n)}"
        )
        ax.legend(loc="best")
        fig.tight_layout()
    return fig


def figure_a(history: Mapping, exp: Any, provenance: Mapping | None = None) -> Figure:
    """Figure a: VAE total loss (train vs test); GAN/WGAN both losses. One point per epoch.

    Args:
        history: the run's history.json, one list per metric.
        exp: the experiment (`.id, .figure, .title, .dataset, .family`).
        provenance: the run's run.json (profile, epochs) for the title, or None.
    """
    return _curve_figure(history, exp, provenance, "a")


def figure_b(history: Mapping, exp: Any, provenance: Mapping | None = None) -> Figure:
    """Figure b: VAE KL (train vs test); GAN JS estimate under log 2; WGAN EM estimate."""
    return _curve_figure(history, exp, provenance, "b")


def figure_paths(exp: Any, out_dir: str | os.PathLike) -> list[Path]:
    """The two file names of an experiment's figures: fig<N>a_<id>.png, fig<N>b_<id>.png."""
    return [Path(out_dir) / f"fig{exp.figure}{p}_{exp.id}.png" for p in ("a", "b")]


def save_figures(exp: Any, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Draw figures a and b of `exp` from run_dir's history.json (and run.json) into out_dir."""
    run_dir = Path(run_dir)
    history = read_json(run_dir / "history.json")
    provenance = read_json(run_dir / "run.json") if (run_dir / "run.json").exists() else None
    path_a, path_b = figure_paths(exp, out_dir)
    return [
        save_figure(figure_a(history, exp, provenance), path_a),
        save_figure(figure_b(history, exp, provenance), path_b),
    ]


QUALITY_FIGURE = "quality_along_runs.png"


def _sparse_log_label(value: float, _position=None) -> str:
    """Minor tick labels of a log axis at 2, 3 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    lead = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if round(lead) in (2, 3, 5) and abs(lead - round(lead)) < 1e-6 else ""


def quality_figure(
    runs: Sequence[tuple[str, str, Sequence[tuple[int, float, float]]]],
    real_is: Mapping[str, float] | None = None,
    title: str = "",
) -> Figure:
    """Classifier IS (top) and FD (bottom, log scale) against epoch, one column per data set.

    Args:
        runs: (experiment id, data set name, [(epoch, classifier IS, FD), ...]) per run, the
            points in epoch order (checkpoints scored by `evaluate --epoch N`, and the end).
        real_is: data set name -> the classifier IS of real images, drawn dotted.
        title: a line above the panels (the profile).
    """
    datasets = list(dict.fromkeys(name for _, name, _ in runs))
    real_is = real_is or {}
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(5.6 * len(datasets), 7.4))
        for col, name in enumerate(datasets):
            top = fig.add_subplot(2, len(datasets), col + 1)
            bottom = fig.add_subplot(2, len(datasets), len(datasets) + col + 1, sharex=top)
            for exp_id, _, points in (r for r in runs if r[1] == name):
                epochs, scores, fds = zip(*points)
                top.plot(epochs, scores, marker="o", label=exp_id)
                bottom.plot(epochs, fds, marker="o", label=exp_id)
            if name in real_is:
                top.axhline(real_is[name], color="0.4", linestyle=":", label="real images")
            top.set_title(f"{name}: classifier IS (higher is better)")
            top.set_ylabel("classifier IS")
            bottom.set_title(f"{name}: FD against the test set (lower is better)")
            bottom.set_ylabel("FD (log scale)")
            bottom.set_yscale("log")
            bottom.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            bottom.yaxis.set_minor_formatter(FuncFormatter(_sparse_log_label))
            bottom.set_xlabel("epoch")
            bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
            top.legend(loc="best", fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- images


def _imshow(ax, image: np.ndarray) -> None:
    if image.ndim == 2:
        ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")


def sample_table(
    rows: Sequence[tuple[str, np.ndarray]], title: str, cols: int = 10, lines: int = 2
) -> Figure:
    """A table of samples like the report's Tables 1-4: one row per model, label on the left.

    Args:
        rows: (label, uint8 images) per row, e.g. ("real images", x_test[:20]).
        title: the table's title (say which profile and epochs made it).
        cols, lines: each row shows a lines x cols grid of its first images.
    """
    if not rows:
        raise ValueError("sample_table needs at least one row")
    strips = [image_grid(images, lines, cols) for _, images in rows]
    strip_h, strip_w = strips[0].shape[:2]
    image_w, label_w, title_h, gap_h = 8.0, 2.0, 0.6, 0.12
    row_h = image_w * strip_h / strip_w
    fig_w = label_w + image_w + 0.1
    fig_h = title_h + len(rows) * (row_h + gap_h)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(fig_w, fig_h))
        fig.suptitle(title, y=1 - 0.12 / fig_h, va="top", fontsize=11)
        for i, ((label, _), strip) in enumerate(zip(rows, strips)):
            bottom = fig_h - title_h - (i + 1) * (row_h + gap_h) + gap_h / 2
            ax = fig.add_axes((label_w / fig_w, bottom / fig_h, image_w / fig_w, row_h / fig_h))
            _imshow(ax, strip)
            ax.set_axis_off()
            fig.text(
                (label_w - 0.12) / fig_w,
                (bottom + row_h / 2) / fig_h,
                label,
                ha="right",
                va="center",
                fontsize=10,
                wrap=True,
            )
    return fig


def save_table(
    table_number: int,
    rows: Sequence[tuple[str, np.ndarray]],
    out_dir: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Write `table<N>.png` into out_dir (see `sample_table`)."""
    title = title or f"Table {table_number}: samples"
    return save_figure(sample_table(rows, title), Path(out_dir) / f"table{table_number}.png")


# ----------------------------------------------------------------------------- latent maps


def latent_grid_points(n: int, margin: float = 0.05) -> np.ndarray:
    """(n*n, 2) latent points on the normal quantiles of evenly spaced probabilities.

    Probabilities run from `margin` to 1 - `margin`. Point i*n + j is tile (row i, column j)
    of `manifold_grid`: z[0] grows left to right, z[1] grows bottom to top.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 < margin < 0.5:
        raise ValueError(f"margin must lie in (0, 0.5), got {margin}")
    probabilities = np.linspace(margin, 1 - margin, n) if n > 1 else np.array([0.5])
    q = np.array([NormalDist().inv_cdf(float(p)) for p in probabilities])
    q = (q - q[::-1]) / 2  # exactly antisymmetric around 0
    zx, zy = np.meshgrid(q, q[::-1])
    return np.stack([zx.ravel(), zy.ravel()], axis=1)


def latent_scatter(
    means_2d: np.ndarray,
    labels: np.ndarray,
    title: str = "Test-set latent means",
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Scatter of 2-D latent means coloured by class, with a legend of the classes."""
    means_2d = np.asarray(means_2d, dtype=float)
    labels = np.asarray(labels).reshape(-1)
    if means_2d.ndim != 2 or means_2d.shape[1] != 2 or len(means_2d) != len(labels):
        raise ValueError(
            f"expected (N, 2) means and N labels, got {means_2d.shape} and {labels.shape}"
        )
    classes = np.unique(labels)
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(6.4, 5.6))
        ax = fig.add_subplot()
        handles = []
        for k, cls in enumerate(classes):
            color = cmap(k % cmap.N)
            mask = labels == cls
            ax.scatter(means_2d[mask, 0], means_2d[mask, 1], s=4, alpha=0.6, color=color, lw=0)
            name = class_names[int(cls)] if class_names is not None else str(cls)
            handles.append(
                Line2D([], [], marker="o", linestyle="", color=color, markersize=6, label=name)
            )
        ax.legend(handles=handles, title="class", loc="upper left", bbox_to_anchor=(1.01, 1))
        ax.set_xlabel("z[0] (latent mean)")
        ax.set_ylabel("z[1] (latent mean)")
        ax.set_title(title)
        ax.set_aspect("equal", adjustable="datalim")
        fig.tight_layout()
    return fig


def manifold_grid(
    decoded_images: np.ndarray, n: int, title: str = "Decoded latent plane", margin: float = 0.05
) -> Figure:
    """The n x n images decoded at `latent_grid_points(n, margin)`, as one picture with z axes."""
    decoded_images = np.asarray(decoded_images)
    if len(decoded_images) != n * n:
        raise ValueError(f"expected {n * n} decoded images for n={n}, got {len(decoded_images)}")
    gap = 0
    grid = image_grid(decoded_images, n, n, gap=gap)
    h, w = decoded_images.shape[1:3]
    q = latent_grid_points(n, margin)[:n, 0]
    step = max(1, int(np.ceil(n / 8)))
    ticks = list(range(0, n, step))
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(6.4, 6.6))
        ax = fig.add_subplot()
        _imshow(ax, grid)
        ax.grid(False)
        ax.set_xticks([j * w + w / 2 - 0.5 for j in ticks], [f"{q[j]:.2f}" for j in ticks])
        ax.set_yticks([i * h + h / 2 - 0.5 for i in ticks], [f"{q[n - 1 - i]:.2f}" for i in ticks])
        ax.set_xlabel("z[0]")
        ax.set_ylabel("z[1]")
        ax.set_title(title)
        fig.tight_layout()
    return fig


def class_examples(x: np.ndarray, y: np.ndarray, per_class: int = 2) -> np.ndarray:
    """The first `per_class` images of each class, ordered so each grid column is one class."""
    labels = np.asarray(y).ravel()
    picks = [np.flatnonzero(labels == c)[:per_class] for c in range(10)]
    return np.stack([x[picks[c][i]] for i in range(per_class) for c in range(10)])


def data_preview(names: Sequence[str], data_dir: str | os.PathLike | None = None) -> Figure:
    """A glance at the data sets: two test images of every class (one class per column)."""
    from assignment4 import data

    rows = []
    for name in names:
        _, (x_test, y_test) = data.load(name, data_dir)
        label = f"{DATASET_NAMES.get(name, name)}\n" + ", ".join(data.CLASS_NAMES[name][:3]) + "…"
        rows.append((label, class_examples(x_test, y_test)))
    return sample_table(rows, "Test images, one class per column", cols=10, lines=2)


def save_data_preview(
    names: Sequence[str], path: str | os.PathLike, data_dir: str | os.PathLike | None = None
) -> Path:
    """Write `data_preview(names)` as a PNG (the CLI's `data --preview FILE`)."""
    return save_figure(data_preview(names, data_dir), path)


def latent_map_paths(exp: Any, out_dir: str | os.PathLike) -> list[Path]:
    """`fig<N>_latent_scatter.png` and `fig<N>_manifold.png` of a 2-D VAE."""
    return [
        Path(out_dir) / f"fig{exp.figure}_{kind}.png" for kind in ("latent_scatter", "manifold")
    ]


def latent_maps(
    model: Any,
    dataset: str,
    n_points: int = 5000,
    n_grid: int = 20,
    data_dir: str | os.PathLike | None = None,
) -> list[Figure]:
    """For a VAE with a 2-D latent space: the test set's latent means coloured by class, and
    the images decoded over the latent plane at normal quantiles (test set: `data.load`).
    """
    from assignment4 import data

    if getattr(model, "latent_dim", None) != 2:
        raise ValueError(f"latent maps need a 2-D latent space, got {model.latent_dim}")
    _, (x_test, y_test) = data.load_cached(dataset, data_dir)
    means, _ = model.encode(data.scale_images(x_test[:n_points], "unit"))
    scatter = latent_scatter(
        np.asarray(means), y_test[:n_points], f"{DATASET_NAMES.get(dataset, dataset)} test set "
        f"({n_points} images): latent means q(z|x)", class_names=data.CLASS_NAMES[dataset],
    )  # fmt: skip
    decoded = model.generate(latent_grid_points(n_grid))
    manifold = manifold_grid(decoded, n_grid, "Images decoded over the 2-D latent plane")
    return [scatter, manifold]


def save_latent_maps(
    exp: Any, model: Any, out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None
) -> list[Path]:
    """Write the two `latent_maps` figures of a 2-D VAE into out_dir (test set from data_dir)."""
    figures = latent_maps(model, exp.dataset, data_dir=data_dir)
    return [save_figure(fig, path) for fig, path in zip(figures, latent_map_paths(exp, out_dir))]


def progression_figure(run_dir: str | os.PathLike, n: int = 4) -> Figure:
    """Up to `n` of a run's fixed-noise sample grids side by side, first and last included."""
    grids = sorted((Path(run_dir) / "samples").glob("epoch_*.png"))
    if not grids:
        raise RunError(f"{Path(run_dir) / 'samples'} holds no sample grids yet")
    shown = [grids[round(i)] for i in np.linspace(0, len(grids) - 1, min(n, len(grids)))]
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(3.2 * len(shown), 3.5))
        for k, path in enumerate(shown):
            ax = fig.add_subplot(1, len(shown), k + 1)
            _imshow(ax, np.asarray(Image.open(path)))
            ax.set_title(path.stem.replace("_", " "))
            ax.set_axis_off()
        fig.suptitle("The same latent points as training goes on")
        fig.tight_layout()
    return fig


def class_counts_figure(summaries: Sequence[Mapping]) -> Figure:
    """Train and test images per class, one panel per data set (from `data.summary`)."""
    from assignment4 import data

    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(6 * len(summaries), 3.8))
        for k, s in enumerate(summaries):
            ax = fig.add_subplot(1, len(summaries), k + 1)
            classes = np.arange(len(s["train_class_counts"]))
            ax.bar(classes - 0.2, s["train_class_counts"], width=0.4, label="train")
            ax.bar(classes + 0.2, s["test_class_counts"], width=0.4, label="test")
            ax.set_xticks(classes, data.CLASS_NAMES[s["name"]], rotation=45)
            ax.set_ylabel("images")
            ax.set_title(DATASET_NAMES.get(s["name"], s["name"]))
            ax.margins(y=0.2)  # room for the legend above the bars
            ax.legend(ncols=2, loc="upper center")
        fig.tight_layout()
    return fig
