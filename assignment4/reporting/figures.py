"""The report's figures for a set of runs, each drawn once: Figures a/b of every run, the
latent maps of a 2-D VAE, the sample tables from saved models, and the quality along the
runs; or, without drawing, the files already in the figures folder."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assignment4.errors import RunError
from assignment4.reporting import plots
from assignment4.reporting.runs import RunInfo, load_runs, profiles_label, quality_points

TABLE_SAMPLES = 20  # images per row of a sample table (2 lines of 10)
TABLE_SEED = 0  # the tables' latent draw: rebuilding gives the same pixels, as the notebooks do


def _draw_quality(infos: Sequence[RunInfo], label: str, figures_dir: Path) -> Path | None:
    """figures_dir/quality_along_runs.png when some run has been scored at two epochs or more."""
    runs = [(i.exp.id, plots.dataset_name(i.exp), quality_points(i)) for i in infos if i.exists]
    runs = [r for r in runs if r[2]]
    if not any(len(points) > 1 for _, _, points in runs):
        return None
    real = {
        plots.dataset_name(i.exp): float(i.metrics["classifier_is_real"])
        for i in infos
        if i.metrics and i.metrics.get("classifier_is_real") is not None
    }
    title = f"Sample quality along each run, profile '{label}'"
    return plots.save_figure(
        plots.quality_figure(runs, real, title), figures_dir / plots.QUALITY_FIGURE
    )


# ----------------------------------------------------------------------------- figures


def load_model(model_path: Path):
    """The model of `<runs>/<id>/<profile>/model.keras` (`artifacts.load_run_model`)."""
    from assignment4 import artifacts

    run_dir = Path(model_path).parent
    return artifacts.load_run_model(run_dir.parent.name, run_dir.name, run_dir.parent.parent)


def sample_model(model_path: Path, n: int, seed: int | None = TABLE_SEED) -> np.ndarray:
    """n uint8 samples from a saved model (seed 0 by default: the same images every time)."""
    return np.asarray(load_model(model_path).sample(n, seed=seed))


def real_images(dataset: str, n: int, data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The first n test images of `dataset` (from `data_dir`, see `data.load`), uint8."""
    from assignment4 import data

    return data.load_cached(dataset, data_dir)[1][0][:n]


@dataclass
class TableResult:
    """A sample table: the file written (or None), the runs in it and the models missing."""

    number: int
    path: Path | None = None
    included: list[RunInfo] = field(default_factory=list)
    missing: list[RunInfo] = field(default_factory=list)
    real_row: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Built:
    """The figures of the report: just drawn (`drawn`) or found in the figures folder."""

    drawn: bool
    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[int, TableResult] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    quality: Path | None = None  # sample quality along the runs, when some were scored twice

    @property
    def paths(self) -> list[Path]:
        paths = [p for ps in self.figures.values() for p in ps]
        paths += [t.path for t in self.tables.values() if t.path is not None]
        return paths + ([self.quality] if self.quality is not None else [])


def tables_of(infos: Sequence[RunInfo]) -> dict[int, list[RunInfo]]:
    tables: dict[int, list[RunInfo]] = {}
    for info in infos:
        if getattr(info.exp, "table", None) is not None:
            tables.setdefault(int(info.exp.table), []).append(info)
    return dict(sorted(tables.items()))


def _draw_table(number: int, infos: Sequence[RunInfo], figures_dir, data_dir=None) -> TableResult:
    result = TableResult(number)
    rows = []
    for info in infos:
        model_path = info.run_dir / "model.keras"
        if not model_path.exists():
            result.missing.append(info)
            continue
        try:
            images = sample_model(model_path, TABLE_SAMPLES)
            rows.append((f"{info.exp.title}\n({info.exp.id}, {info.epochs} ep.)", images))
            result.included.append(info)
        except Exception as e:  # noqa: BLE001  (a broken model must not stop the report)
            result.problems.append(f"{model_path} could not be sampled ({type(e).__name__}: {e})")
    if not rows:
        return result
    result.real_row = all(i.exp.family == "vae" for i in infos)  # Tables 1 and 3, as the report
    if result.real_row:
        real = real_images(infos[0].exp.dataset, TABLE_SAMPLES, data_dir)
        rows.insert(0, ("real images\n(test set)", real))
    label = profiles_label(result.included, None)
    title = f"Table {number}: samples on {plots.dataset_name(infos[0].exp)}, profile '{label}'"
    result.path = plots.save_table(number, rows, figures_dir, title=title)
    return result


def draw(
    infos: Sequence[RunInfo], label: str, figures_dir: Path, tables: bool, data_dir=None
) -> Built:
    """Draw every figure (and with `tables`, the latent maps and sample tables) once; the
    test images they show come from `data_dir` (`data.load`).
    """
    built = Built(drawn=True)
    for info in (i for i in infos if i.exists):
        try:
            built.figures[info.exp.id] = plots.save_figures(info.exp, info.run_dir, figures_dir)
        except RunError as e:
            built.problems[info.exp.id] = str(e)
        model_path = info.run_dir / "model.keras"
        if tables and getattr(info.exp, "latent_dim", None) == 2 and model_path.exists():
            model = load_model(model_path)
            maps = plots.save_latent_maps(info.exp, model, figures_dir, data_dir)
            built.figures.setdefault(info.exp.id, []).extend(maps)
    built.quality = _draw_quality(infos, label, figures_dir)
    if tables:
        for number, members in tables_of(infos).items():
            built.tables[number] = _draw_table(number, members, figures_dir, data_dir)
    return built


def on_disk(infos: Sequence[RunInfo], figures_dir: Path) -> Built:
    """The figures and tables already in figures_dir, for the runs that exist."""
    built = Built(drawn=False)
    for info in (i for i in infos if i.exists):
        names = plots.figure_paths(info.exp, figures_dir)
        names += plots.latent_map_paths(info.exp, figures_dir)
        built.figures[info.exp.id] = [p for p in names if p.exists()]
    for number, members in tables_of(infos).items():
        path = figures_dir / f"table{number}.png"
        result = TableResult(number, path if path.exists() else None)
        result.real_row = all(i.exp.family == "vae" for i in members)
        for info in members:
            if (info.run_dir / "model.keras").exists():
                result.included.append(info)
            else:
                result.missing.append(info)
        built.tables[number] = result
    quality = figures_dir / plots.QUALITY_FIGURE
    built.quality = quality if quality.exists() else None
    return built


def build_figures(
    runs: str | os.PathLike = "runs",
    profile: str | None = "quick",
    figures_dir: str | os.PathLike = "figures",
    *,
    tables: bool = True,
    registry: Any | None = None,
    data_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Redraw fig<N>a/b for every run of `profile` (None: the longest run of each experiment)
    and the sample tables from saved models.

    Runs without history.json and tables without any model.keras are skipped.

    Args:
        tables: also draw table<N>.png (loads the models with Keras; no training).
        registry: the experiment registry (default `assignment4.experiments`).
        data_dir: the folder of the data files (`data.load`): the real images shown.
    Returns:
        The files written.
    """
    infos = load_runs(runs, profile, registry)
    return draw(infos, profiles_label(infos, profile), Path(figures_dir), tables, data_dir).paths
