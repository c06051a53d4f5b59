"""Build report/report.md from the runs of one profile: figures, sample tables, captions.

Everything a caption or an "Our run shows" sentence says is read from the run's files
(history.json, run.json, metrics.json); nothing here trains. Missing runs become a sentence
that names the command to make them, never an error. The words come from `sentences` (and
the prose that no run computes from `report_text.toml`, beside this file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assignment4 import fileio
from assignment4.errors import RunError
from assignment4.reporting import plots
from assignment4.reporting.sentences import (  # noqa: F401  (report.Claim, report.claim_verdict)
    FAMILY_OBSERVED,
    REPORT_OBSERVED,
    TEXT,
    Claim,
    claim_verdict,
    claims_lines,
    collapse_lines,
    fmt,
    provenance_caption,
    run_shows,
)
from assignment4.training import fingerprint
from assignment4.training.fingerprint import NOT_SCORED

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
    metrics: dict | None = None  # metrics.json, when it scored the final model (`fingerprint`)
    problem: str | None = None  # why a present run could not be read
    checkpoint_metrics: dict[int, dict] = field(default_factory=dict)  # metrics_epoch_NNN.json
    unscored: dict | None = None  # a metrics.json that scored other weights than model.keras

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
    """Read history.json, run.json and metrics.json of `runs/<id>/<profile>/` where present.

    Metrics files count only for the weights they scored (`fingerprint.bound`): metrics.json
    for the final model.keras of a finished run, metrics_epoch_NNN.json for the checkpoint
    kept for that epoch. A metrics.json of other weights is kept aside as `unscored`.
    """
    info = RunInfo(exp, Path(runs) / exp.id / profile)
    try:
        for attr, name in (("history", "history"), ("provenance", "run"), ("metrics", "metrics")):
            if (info.run_dir / f"{name}.json").exists():
                setattr(info, attr, fileio.read_json(info.run_dir / f"{name}.json"))
        for path in sorted(info.run_dir.glob("metrics_epoch_[0-9][0-9][0-9].json")):
            info.checkpoint_metrics[int(path.stem[-3:])] = fileio.read_json(path)
    except RunError as e:
        info.history, info.problem = None, str(e)
    if info.metrics is not None and fingerprint.final_metrics(info.run_dir, info.metrics) is None:
        info.metrics, info.unscored = None, info.metrics
    info.checkpoint_metrics = fingerprint.checkpoint_metrics(info.run_dir, info.checkpoint_metrics)
    return info


def _load_runs(runs, profile: str, registry: Any | None) -> list[RunInfo]:
    if registry is None:
        from assignment4 import experiments as registry  # imports TensorFlow: only when needed
    return [load_run(registry.get(exp_id), runs, profile) for exp_id in registry.EXPERIMENT_IDS]


def quality_points(info: RunInfo) -> list[tuple[int, float, float]]:
    """(epoch, classifier IS, FD) of a run's scored checkpoints and of its end, by epoch."""
    scored = dict(info.checkpoint_metrics)
    if info.metrics:
        scored[int(info.metrics.get("epoch") or info.epochs)] = info.metrics
    return [
        (epoch, float(m["classifier_is"]), float(m["fd"]))
        for epoch, m in sorted(scored.items())
        if m.get("classifier_is") is not None and m.get("fd") is not None
    ]


def _draw_quality(infos: Sequence[RunInfo], profile: str, figures_dir: Path) -> Path | None:
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
    title = f"Sample quality along each run, profile '{profile}'"
    return plots.save_figure(
        plots.quality_figure(runs, real, title), figures_dir / plots.QUALITY_FIGURE
    )


def _run_command(exp_id: str, profile: str, runs: str | os.PathLike, verb: str = "run") -> str:
    runs_flag = "" if Path(runs) == Path("runs") else f" --runs {Path(runs).as_posix()}"
    return f"python -m assignment4 {verb} {exp_id} --profile {profile}{runs_flag}"


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

    return data.load(dataset, data_dir)[1][0][:n]


@dataclass
class TableResult:
    """A sample table: the file written (or None), the runs in it and the models missing."""

    number: int
    path: Path | None = None
    included: list[RunInfo] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
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


def _tables(infos: Sequence[RunInfo]) -> dict[int, list[RunInfo]]:
    tables: dict[int, list[RunInfo]] = {}
    for info in infos:
        if getattr(info.exp, "table", None) is not None:
            tables.setdefault(int(info.exp.table), []).append(info)
    return dict(sorted(tables.items()))


def _draw_table(
    number: int, infos: Sequence[RunInfo], profile: str, figures_dir, data_dir=None
) -> TableResult:
    result = TableResult(number)
    rows = []
    for info in infos:
        model_path = info.run_dir / "model.keras"
        if not model_path.exists():
            result.missing.append(info.exp.id)
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
    title = f"Table {number}: samples on {plots.dataset_name(infos[0].exp)}, profile '{profile}'"
    result.path = plots.save_table(number, rows, figures_dir, title=title)
    return result


def _draw(
    infos: Sequence[RunInfo], profile: str, figures_dir: Path, tables: bool, data_dir=None
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
    built.quality = _draw_quality(infos, profile, figures_dir)
    if tables:
        for number, members in _tables(infos).items():
            built.tables[number] = _draw_table(number, members, profile, figures_dir, data_dir)
    return built


def _on_disk(infos: Sequence[RunInfo], figures_dir: Path) -> Built:
    """The figures and tables already in figures_dir, for the runs that exist."""
    built = Built(drawn=False)
    for info in (i for i in infos if i.exists):
        names = plots.figure_paths(info.exp, figures_dir)
        names += plots.latent_map_paths(info.exp, figures_dir)
        built.figures[info.exp.id] = [p for p in names if p.exists()]
    for number, members in _tables(infos).items():
        path = figures_dir / f"table{number}.png"
        result = TableResult(number, path if path.exists() else None)
        result.real_row = all(i.exp.family == "vae" for i in members)
        for info in members:
            if (info.run_dir / "model.keras").exists():
                result.included.append(info)
            else:
                result.missing.append(info.exp.id)
        built.tables[number] = result
    quality = figures_dir / plots.QUALITY_FIGURE
    built.quality = quality if quality.exists() else None
    return built


def build_figures(
    runs: str | os.PathLike = "runs",
    profile: str = "quick",
    figures_dir: str | os.PathLike = "figures",
    *,
    tables: bool = True,
    registry: Any | None = None,
    data_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Redraw fig<N>a/b for every run of `profile` and the sample tables from saved models.

    Runs without history.json and tables without any model.keras are skipped.

    Args:
        tables: also draw table<N>.png (loads the models with Keras; no training).
        registry: the experiment registry (default `assignment4.experiments`).
        data_dir: the folder of the data files (`data.load`): the real images shown.
    Returns:
        The files written.
    """
    infos = _load_runs(runs, profile, registry)
    return _draw(infos, profile, Path(figures_dir), tables, data_dir).paths


# ----------------------------------------------------------------------------- markdown


def _link(path: Path, report_dir: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), report_dir.resolve())).as_posix()


def _md_table(header: str, rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table from 'a|b:|c' (a column whose title ends in ':' is right-aligned)."""
    titles = header.split("|")
    rule = ["---:" if t.endswith(":") else "---" for t in titles]
    cells = [[t.rstrip(":") for t in titles], rule, *rows]
    return ["| " + " | ".join(str(c) for c in row) + " |" for row in cells]


def _ids(ids: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in ids)


def _experiment_section(info: RunInfo, built: Built, report_dir: Path, profile, runs) -> list[str]:
    exp, dataset = info.exp, plots.dataset_name(info.exp)
    lines = [f"#### Figure {exp.figure}: {exp.title} on {dataset} (`{exp.id}`)", ""]
    observed = TEXT["observed"].format(
        text=REPORT_OBSERVED.get(exp.id, FAMILY_OBSERVED.get(exp.family, ""))
    )
    if not info.exists:
        why = f" ({info.problem})" if info.problem else ""
        command = _run_command(exp.id, profile, runs)
        no_run = TEXT["no_run"].format(
            profile=profile, id=exp.id, run_dir=info.run_dir.as_posix(), why=why, command=command
        )
        return lines + [no_run, "", observed, ""]
    if exp.id in built.problems:
        lines += [TEXT["not_drawn"].format(problem=built.problems[exp.id]), ""]
    caption = provenance_caption(info.provenance, info.epochs)
    for path in built.figures.get(exp.id, []):
        panel, link = path.name[len(f"fig{exp.figure}")], _link(path, report_dir)
        fields = {"figure": exp.figure, "title": exp.title, "dataset": dataset, "link": link}
        if panel in ("a", "b"):
            what = plots.PANELS.get(exp.family, {}).get(panel, ("",))[0]
            text = TEXT["figure"].format(panel=panel, what=what, provenance=caption, **fields)
        else:  # the latent maps of a 2-D VAE
            what = TEXT["latent_map_what"][path.stem.split("_", 1)[1]]
            text = TEXT["latent_map"].format(what=what, provenance=caption, **fields)
        lines += [text, ""]
    shows = TEXT["shows"].format(
        provenance=caption[:1].lower() + caption[1:], text=run_shows(exp.family, info.history)
    )
    return lines + [observed, "", shows, ""]


def _table_section(number: int, built: Built, report_dir: Path, profile, runs) -> list[str]:
    lines = [f"#### Table {number}: samples", ""]
    result = built.tables.get(number, TableResult(number))
    if result.path is not None:
        rows = (["real test images"] if result.real_row else []) + [
            f"{i.exp.title} (`{i.exp.id}`, {i.epochs} epochs)" for i in result.included
        ]
        link = _link(result.path, report_dir)
        lines += [
            TEXT["table"].format(number=number, link=link, profile=profile, rows="; ".join(rows)),
            "",
        ]
    if result.missing:
        missing = TEXT["table_missing"].format(
            number=number,
            verb="is drawn without" if result.path is not None else "is not drawn: there is no",
            ids=_ids(result.missing),
            profile=profile,
            them="it" if len(result.missing) == 1 else "them",
            commands=", ".join(f"`{_run_command(i, profile, runs)}`" for i in result.missing),
        )
        lines += [missing, ""]
    elif result.path is None and not built.drawn:
        lines += [TEXT["table_not_drawn"].format(number=number), ""]
    return lines + [line for problem in result.problems for line in (f"Note: {problem}", "")]


def _spread(metrics: dict, key: str) -> str:
    """'10 ± 0.3': a metric and its recorded spread (`<key>_std`), or the value alone."""
    if metrics.get(f"{key}_std") is None:
        return fmt(metrics.get(key))
    return f"{fmt(metrics.get(key))} ± {fmt(metrics[f'{key}_std'])}"


def _metric_rows(infos: Sequence[RunInfo]) -> list[list]:
    """One table row per run with metrics: its numbers, or 'not scored' for other weights."""
    rows = []
    for info in infos:
        m, name = info.metrics, plots.dataset_name(info.exp)
        if m is None:
            rows.append([f"`{info.exp.id}`", name, info.epochs, "-", *[NOT_SCORED] * 3,
                         NOT_SCORED if info.exp.family == "vae" else "-"])  # fmt: skip
            continue
        rows.append(
            [f"`{info.exp.id}`", name, info.epochs, m.get("n_samples", "?"), _spread(m, "fd"),
             _spread(m, "kid"), _spread(m, "classifier_is"),
             fmt(m["test_elbo"]) if "test_elbo" in m else "-"]
        )  # fmt: skip
    return rows


def _real_rows(measured: Sequence[RunInfo]) -> tuple[list[list], list[str]]:
    """The real-vs-real row of each data set, and the classifiers' test accuracy."""
    rows, accuracy, seen = [], [], set()
    for info in measured:
        m, name = info.metrics, plots.dataset_name(info.exp)
        if name in seen or "fd_real" not in m:
            continue
        seen.add(name)
        rows.append(
            ["real vs real", name, "-", "-", _spread(m, "fd_real"), _spread(m, "kid_real"),
             fmt(m.get("classifier_is_real")), "-"]
        )  # fmt: skip
        if "classifier_test_accuracy" in m:
            acc = float(m["classifier_test_accuracy"])
            accuracy.append(f"{name} {acc * 100 if acc <= 1 else acc:.2f}%")
    return rows, accuracy


def _metrics_section(
    infos: Sequence[RunInfo], profile: str, runs, built: Built, report_dir: Path
) -> list[str]:
    lines = [TEXT["metrics_heading"], ""]
    measured = [i for i in infos if i.metrics]
    shown = [i for i in infos if i.metrics or i.unscored]
    evaluate = _run_command("all", profile, runs, verb="evaluate")
    if not shown:
        return lines + [TEXT["no_metrics"].format(profile=profile, command=evaluate), ""]
    real, accuracy = _real_rows(measured)
    header = "experiment|data|epochs:|samples:|FD:|KID:|classifier IS:|test ELBO:"
    lines += [TEXT["metrics_intro"], "", *_md_table(header, _metric_rows(shown) + real), ""]
    if accuracy:
        lines += [TEXT["accuracy"].format(accuracy=", ".join(accuracy)), ""]
    unscored = [i.exp.id for i in infos if i.unscored]
    if unscored:
        command = _run_command("ID", profile, runs, verb="evaluate")
        lines += [TEXT["not_scored"].format(ids=_ids(unscored), command=command), ""]
    if built.quality is not None:
        along = [i for i in infos if i.exists and quality_points(i)]
        scored = ", ".join(f"`{i.exp.id}` ({len(quality_points(i))})" for i in along)
        command = _run_command("ID", profile, runs, verb="evaluate") + " --epoch N"
        link = _link(built.quality, report_dir)
        text = TEXT["quality"].format(link=link, profile=profile, command=command, runs=scored)
        lines += [text, ""]
    lines += collapse_lines({i.exp.id: i.metrics for i in measured}, _read_as(measured))
    missing = [i.exp.id for i in infos if i.exists and not i.metrics and not i.unscored]
    if missing:
        lines += [TEXT["not_evaluated"].format(ids=_ids(missing), command=evaluate), ""]
    return lines


def _read_as(infos: Sequence[RunInfo]) -> dict[str, tuple[str, list[str] | None]]:
    """{run id: (model family, class names)}: how each run's class histogram is read."""
    from assignment4 import data

    return {
        i.exp.id: (i.exp.family, list(data.CLASS_NAMES.get(i.exp.dataset, [])) or None)
        for i in infos
    }


def _provenance_section(infos: Sequence[RunInfo]) -> list[str]:
    present = [i for i in infos if i.exists]
    lines = ["## Provenance", ""]
    if not present:
        return lines + ["No runs yet.", ""]
    rows, versions = [], {}
    for info in present:
        p = info.provenance or {}
        wall = p.get("wall_time_s")
        planned = p.get("epochs_planned")
        rows.append(
            [f"`{info.exp.id}`", p.get("profile", "?"),
             f"{info.epochs}" + (f" / {planned}" if planned is not None else ""),
             f"{p.get('train_size', '?')} / {p.get('test_size', '?')}", p.get("batch_size", "?"),
             p.get("seed", "?"), f"{p.get('strategy', '?')} ({p.get('replicas', '?')})",
             f"{float(wall) / 60:.1f} min" if isinstance(wall, (int, float)) else "?",
             p.get("status", "?")]
        )  # fmt: skip
        versions.update(p.get("versions") or {})
    header = (
        "experiment|profile|epochs:|train / test images|batch:|seed:|strategy|wall time:|status"
    )
    lines += _md_table(header, rows)
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
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Write `report_dir/report.md` for the runs of `profile`, following the course report.

    Args:
        make_figures: draw the figures (and, with `tables`, the sample tables) first, each
            once; otherwise link the files already in figures_dir (after `build_figures`).
        registry: the experiment registry (default `assignment4.experiments`).
        data_dir: the folder of the data files (`data.load`): the real images shown.
    Returns:
        The path of report.md.
    """
    figures_dir, report_dir = Path(figures_dir), Path(report_dir)
    infos = _load_runs(runs, profile, registry)
    if make_figures:
        built = _draw(infos, profile, figures_dir, tables, data_dir)
    else:
        built = _on_disk(infos, figures_dir)
    by_figure = {int(i.exp.figure): i for i in infos}
    by_table = _tables(infos)
    missing = [i.exp.id for i in infos if not i.exists]
    date = time.strftime("%Y-%m-%d %H:%M")
    lines = [
        TEXT["title"].format(profile=profile),
        "",
        TEXT["intro"].format(runs=Path(runs).as_posix(), date=date),
        "",
        TEXT["runs_found"].format(found=len(infos) - len(missing), total=len(infos)),
        "",
    ]
    if missing:
        command = _run_command("all", profile, runs)
        lines += [TEXT["runs_missing"].format(ids=_ids(missing), command=command), ""]
    outline = list(TEXT["outline"])
    placed = [s for part in outline for s in part["sections"]]
    extra_figures = sorted(set(by_figure) - {f for s in placed for f in s["figures"]})
    extra_tables = sorted(set(by_table) - {t for s in placed for t in s["tables"]})
    if extra_figures or extra_tables:
        others = {"heading": "", "figures": extra_figures, "tables": extra_tables}
        outline.append({"heading": "Other experiments", "sections": [others]})
    for part in outline:
        lines += [f"## {part['heading']}", ""]
        for section in part["sections"]:
            if section["heading"]:
                lines += [f"### {section['heading']}", ""]
            for fig in (f for f in section["figures"] if f in by_figure):
                lines += _experiment_section(by_figure[fig], built, report_dir, profile, runs)
            for table in (t for t in section["tables"] if t in by_table):
                lines += _table_section(table, built, report_dir, profile, runs)
    lines += _metrics_section(infos, profile, runs, built, report_dir)
    if any(i.metrics for i in infos):
        lines += claims_lines({i.exp.id: i.metrics for i in infos}, profile)
    lines += _provenance_section(infos)
    path = report_dir / "report.md"
    with fileio.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path
