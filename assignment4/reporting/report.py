"""Build report/report.md from the runs: figures, sample tables, captions, metrics, claims.

The runs are those of one profile, or the longest finished run of each experiment (`runs`).

Everything a caption or an "Our run shows" sentence says is read from the run's files
(history.json, run.json, metrics.json); nothing here trains. Missing runs become a sentence
that names the command to make them, never an error. The words come from `sentences` (and
the prose that no run computes from `report_text.toml`, beside this file).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assignment4 import fileio
from assignment4.reporting import figures, plots
from assignment4.reporting.figures import Built, TableResult, build_figures  # noqa: F401
from assignment4.reporting.runs import (
    SUGGESTED_PROFILE,
    RunInfo,
    SettingPoint,
    load_runs,
    profiles_label,
    quality_points,
    quick_against_full,
    run_command,
)
from assignment4.reporting.sentences import (  # noqa: F401  (report.Claim, report.claim_verdict)
    CLAIMS,
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
from assignment4.texttable import with_spread
from assignment4.training.fingerprint import NOT_SCORED

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


def _experiment_section(info: RunInfo, built: Built, report_dir: Path, runs) -> list[str]:
    exp, dataset = info.exp, plots.dataset_name(info.exp)
    lines = [f"#### Figure {exp.figure}: {exp.title} on {dataset} (`{exp.id}`)", ""]
    observed = TEXT["observed"].format(
        text=REPORT_OBSERVED.get(exp.id, FAMILY_OBSERVED.get(exp.family, ""))
    )
    if not info.exists:
        why = f" ({info.problem})" if info.problem else ""
        command = run_command(exp.id, info.profile, runs)
        no_run = TEXT["no_run"].format(
            profile=info.profile,
            id=exp.id,
            run_dir=info.run_dir.as_posix(),
            why=why,
            command=command,
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


def _table_section(number: int, built: Built, report_dir: Path, runs) -> list[str]:
    lines = [f"#### Table {number}: samples", ""]
    result = built.tables.get(number, TableResult(number))
    if result.path is not None:
        rows = (["real test images"] if result.real_row else []) + [
            f"{i.exp.title} (`{i.exp.id}`, {i.epochs} epochs)" for i in result.included
        ]
        link = _link(result.path, report_dir)
        label = profiles_label(result.included, None)
        text = TEXT["table"].format(number=number, link=link, profile=label, rows="; ".join(rows))
        lines += [text, ""]
    if result.missing:
        missing = TEXT["table_missing"].format(
            number=number,
            verb="is drawn without" if result.path is not None else "is not drawn: there is no",
            ids=_ids([i.exp.id for i in result.missing]),
            profile=profiles_label(result.missing, None),
            them="it" if len(result.missing) == 1 else "them",
            commands=", ".join(
                f"`{run_command(i.exp.id, i.profile, runs)}`" for i in result.missing
            ),
        )
        lines += [missing, ""]
    elif result.path is None and not built.drawn:
        lines += [TEXT["table_not_drawn"].format(number=number), ""]
    return lines + [line for problem in result.problems for line in (f"Note: {problem}", "")]


def _spread(metrics: dict, key: str) -> str:
    """'10 ± 0.3': a metric and its recorded spread (`<key>_std`), or the value alone."""
    if metrics.get(key) is None:
        return fmt(None)
    return with_spread(metrics[key], metrics.get(f"{key}_std"), plain=fmt)


def _metric_rows(infos: Sequence[RunInfo]) -> list[list]:
    """One table row per run with metrics: its numbers, or 'not scored' for other weights."""
    rows = []
    for info in infos:
        m, name = info.metrics, plots.dataset_name(info.exp)
        run = [f"`{info.exp.id}`", name, info.profile, info.epochs]
        if m is None:
            rows.append([*run, "-", *[NOT_SCORED] * 3,
                         NOT_SCORED if info.exp.family == "vae" else "-"])  # fmt: skip
            continue
        rows.append(
            [*run, m.get("n_samples", "?"), _spread(m, "fd"), _spread(m, "kid"),
             _spread(m, "classifier_is"), fmt(m["test_elbo"]) if "test_elbo" in m else "-"]
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
            ["real vs real", name, "-", "-", "-", _spread(m, "fd_real"), _spread(m, "kid_real"),
             fmt(m.get("classifier_is_real")), "-"]
        )  # fmt: skip
        if "classifier_test_accuracy" in m:
            acc = float(m["classifier_test_accuracy"])
            accuracy.append(f"{name} {acc * 100 if acc <= 1 else acc:.2f}%")
    return rows, accuracy


def _metrics_section(infos: Sequence[RunInfo], shown: Shown, built: Built) -> list[str]:
    lines = [TEXT["metrics_heading"], ""]
    measured = [i for i in infos if i.metrics]
    listed = [i for i in infos if i.metrics or i.unscored]
    evaluate = shown.command("all", "evaluate")
    if not listed:
        return lines + [TEXT["no_metrics"].format(profile=shown.label, command=evaluate), ""]
    real, accuracy = _real_rows(measured)
    header = "experiment|data|profile|epochs:|samples:|FD:|KID:|classifier IS:|test ELBO:"
    lines += [TEXT["metrics_intro"], "", *_md_table(header, _metric_rows(listed) + real), ""]
    if accuracy:
        lines += [TEXT["accuracy"].format(accuracy=", ".join(accuracy)), ""]
    unscored = [i.exp.id for i in infos if i.unscored]
    if unscored:
        command = shown.command("ID", "evaluate")
        lines += [TEXT["not_scored"].format(ids=_ids(unscored), command=command), ""]
    if built.quality is not None:
        along = [i for i in infos if i.exists and quality_points(i)]
        scored = ", ".join(f"`{i.exp.id}` ({len(quality_points(i))})" for i in along)
        command = shown.command("ID", "evaluate") + " --epoch N"
        link = _link(built.quality, shown.report_dir)
        text = TEXT["quality"].format(link=link, profile=shown.label, command=command, runs=scored)
        lines += [text, ""]
    lines += collapse_lines({i.exp.id: i.metrics for i in measured}, _read_as(measured))
    missing = [i.exp.id for i in infos if i.exists and not i.metrics and not i.unscored]
    if missing:
        lines += [TEXT["not_evaluated"].format(ids=_ids(missing), command=evaluate), ""]
    return lines


def _class_shares(metrics: dict) -> str:
    """'2.2-33.6%': the smallest and largest share of the samples' classes, or '-'."""
    counts = metrics.get("class_histogram") or []
    total = float(sum(counts))
    if not total:
        return "-"
    return f"{min(counts) / total:.1%}-{max(counts) / total:.1%}"


def _setting_row(exp: Any, point: SettingPoint, command: str) -> list:
    m = point.metrics
    if m is None:
        said = "not scored" if point.made else "not run"
        return [f"`{exp.id}`", point.source, point.epochs, f"{said} (`{command}`)",
                "-", "-", "-", "-"]  # fmt: skip
    elbo = fmt(m["test_elbo"]) if "test_elbo" in m else "-"
    return [f"`{exp.id}`", point.source, point.epochs, _spread(m, "classifier_is"),
            _spread(m, "fd"), _spread(m, "kid"), elbo, _class_shares(m)]  # fmt: skip


def _settings_section(infos: Sequence[RunInfo], shown: Shown) -> list[str]:
    """Each experiment shown at `full` against its quick setting, and the claims at both."""
    points = {i.exp.id: (i, quick_against_full(i, shown.runs)) for i in infos}
    points = {k: v for k, v in points.items() if v[1]}
    if not points:
        return []
    rows = []
    for info, pair in points.values():
        for point in pair:
            if point.source == "quick run":  # its own run, to be made or scored
                verb = "evaluate" if point.made else "run"
                command = run_command(info.exp.id, "quick", shown.runs, verb)
            else:
                epoch = f" --epoch {point.epochs}" if point.epochs < info.epochs else ""
                command = run_command(info.exp.id, "full", shown.runs, "evaluate") + epoch
            rows.append(_setting_row(info.exp, point, command))
    header = "experiment|setting|epochs:|classifier IS:|FD:|KID:|test ELBO:|class shares"
    lines = [TEXT["settings_heading"], "", TEXT["settings_intro"], ""]
    lines += [*_md_table(header, rows), ""]
    return lines + _claims_at_both(points)


def _quick_setting(infos: Sequence[RunInfo], runs: Path) -> dict[str, dict | None]:
    """{experiment id: metrics at the quick setting}: a quick run's own, or a full run's
    quick point (`quick_against_full`: its quick run, or its checkpoint at the quick epochs)."""
    at_quick = {}
    for info in infos:
        if info.profile == "quick":
            at_quick[info.exp.id] = info.metrics
        elif len(pair := quick_against_full(info, runs)) == 2:
            at_quick[info.exp.id] = pair[0].metrics
    return at_quick


def _claims_at_both(points: dict[str, tuple[RunInfo, list[SettingPoint]]]) -> list[str]:
    """Each claim whose two experiments have both settings scored: its verdict at each."""
    quick = {k: pair[0].metrics for k, (_, pair) in points.items() if len(pair) == 2}
    full = {k: pair[-1].metrics for k, (_, pair) in points.items()}
    lines = []
    for claim in CLAIMS:
        ids = (claim.better, claim.worse)
        if not all(quick.get(k) and full.get(k) for k in ids):
            continue
        at_quick, _ = claim_verdict(claim, quick)
        at_full, _ = claim_verdict(claim, full)
        same = "the same at both" if at_quick == at_full else "**they differ**"
        lines.append(
            f"- **{claim.text}**: quick setting {at_quick.capitalize()}, "
            f"full {at_full.capitalize()}: {same}."
        )
    return [TEXT["settings_claims"], "", *lines, ""] if lines else []


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


@dataclass(frozen=True)
class Shown:
    """Which runs the report shows, and where it is written: what its sentences name."""

    runs: Path
    label: str  # 'quick', or 'full, quick' for the longest runs of several profiles
    profile: str | None  # the one profile asked for (None: the longest run of each)
    report_dir: Path

    def command(self, exp_id: str, verb: str = "run") -> str:
        """A command for the runs shown: of their one profile, or PROFILE when they mix."""
        one = self.profile or (self.label if "," not in self.label else "PROFILE")
        return run_command(exp_id, one, self.runs, verb)


def build_report(
    runs: str | os.PathLike = "runs",
    profile: str | None = "quick",
    figures_dir: str | os.PathLike = "figures",
    report_dir: str | os.PathLike = "report",
    *,
    make_figures: bool = True,
    tables: bool = True,
    registry: Any | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Write `report_dir/report.md`, following the course report, for the runs of `profile`
    or, with None, the longest finished run of each experiment (`runs.longest_run`).

    Args:
        make_figures: draw the figures (and, with `tables`, the sample tables) first, each
            once; otherwise link the files already in figures_dir (after `build_figures`).
        registry: the experiment registry (default `assignment4.experiments`).
        data_dir: the folder of the data files (`data.load`): the real images shown.
    Returns:
        The path of report.md.
    """
    figures_dir = Path(figures_dir)
    infos = load_runs(runs, profile, registry)
    shown = Shown(Path(runs), profiles_label(infos, profile), profile, Path(report_dir))
    if make_figures:
        built = figures.draw(infos, shown.label, figures_dir, tables, data_dir)
    else:
        built = figures.on_disk(infos, figures_dir)
    lines = _opening(infos, shown) + _sections(infos, built, shown)
    lines += _metrics_section(infos, shown, built)
    lines += _settings_section(infos, shown)
    if any(i.metrics for i in infos):
        scored = {i.exp.id: i.metrics for i in infos}
        profiles = {i.exp.id: i.profile for i in infos}
        lines += claims_lines(scored, shown.label, profiles, _quick_setting(infos, shown.runs))
    lines += _provenance_section(infos)
    path = shown.report_dir / "report.md"
    with fileio.atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _opening(infos: Sequence[RunInfo], shown: Shown) -> list[str]:
    """The title, where the runs came from, and which are missing."""
    missing = [i.exp.id for i in infos if not i.exists]
    date = time.strftime("%Y-%m-%d %H:%M")
    lines = [
        TEXT["title"].format(profile=shown.label),
        "",
        TEXT["intro"].format(runs=shown.runs.as_posix(), date=date),
        "",
        TEXT["runs_found"].format(found=len(infos) - len(missing), total=len(infos)),
        "",
    ]
    if missing:
        one = shown.profile or SUGGESTED_PROFILE
        command = run_command("all", one, shown.runs)
        lines += [TEXT["runs_missing"].format(ids=_ids(missing), command=command), ""]
    return lines


def _sections(infos: Sequence[RunInfo], built: Built, shown: Shown) -> list[str]:
    """The figures and tables in the course report's order (`outline` of report_text.toml),
    then any experiment that it does not place."""
    by_figure = {int(i.exp.figure): i for i in infos}
    by_table = figures.tables_of(infos)
    outline = list(TEXT["outline"])
    placed = [s for part in outline for s in part["sections"]]
    extra_figures = sorted(set(by_figure) - {f for s in placed for f in s["figures"]})
    extra_tables = sorted(set(by_table) - {t for s in placed for t in s["tables"]})
    if extra_figures or extra_tables:
        others = {"heading": "", "figures": extra_figures, "tables": extra_tables}
        outline.append({"heading": "Other experiments", "sections": [others]})
    lines, runs, report_dir = [], shown.runs, shown.report_dir
    for part in outline:
        lines += [f"## {part['heading']}", ""]
        for section in part["sections"]:
            if section["heading"]:
                lines += [f"### {section['heading']}", ""]
            for fig in (f for f in section["figures"] if f in by_figure):
                lines += _experiment_section(by_figure[fig], built, report_dir, runs)
            for table in (t for t in section["tables"] if t in by_table):
                lines += _table_section(table, built, report_dir, runs)
    return lines
