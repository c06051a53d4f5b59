"""The report's words: the prose of `report_text.toml`, and the sentences computed from runs.

"Our run shows" sentences come from a run's history.json, captions from its run.json, the
claims' verdicts from metrics.json; `report` puts them together with the figures.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from assignment4.reporting import captions, plots
from assignment4.texttable import with_spread

TEXT = tomllib.loads(
    resources.files("assignment4.reporting")
    .joinpath("report_text.toml")
    .read_text(encoding="utf-8")
)
REPORT_OBSERVED: dict[str, str] = TEXT["report_observed"]
FAMILY_OBSERVED: dict[str, str] = TEXT["family_observed"]
METRIC_NAMES: dict[str, str] = TEXT["metric_names"]


@dataclass(frozen=True)
class Claim:
    """One of the report's claims: `better` beats `worse` on `metrics`."""

    text: str
    better: str
    worse: str
    metrics: tuple[str, ...]


CLAIMS = tuple(
    Claim(c["text"], c["better"], c["worse"], tuple(c["metrics"])) for c in TEXT["claims"]
)


def fmt(value: Any) -> str:
    """A number in 4 significant digits ('nan' for missing or not finite)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return f"{value:.4g}" if math.isfinite(value) else "nan"


def _trend(values: np.ndarray, what: str) -> str:
    """'the training loss fell from 180 (epoch 1) to 105 (epoch 5, -41.7%)'."""
    n = len(values)
    first, last = values[0], values[-1]
    if n == 1:
        return f"{what} was {fmt(last)} after its only epoch"
    if not (math.isfinite(first) and math.isfinite(last)):
        return f"{what} went from {fmt(first)} (epoch 1) to {fmt(last)} (epoch {n})"
    change = (last - first) / max(abs(first), 1e-12)
    if abs(change) < 0.02:
        return f"{what} stayed near {fmt(last)} (epoch 1: {fmt(first)}, epoch {n}: {fmt(last)})"
    verb = "rose" if last > first else "fell"
    # A relative change means little when the curve crosses zero.
    percent = f", {change:+.1%}" if first * last > 0 else ""
    return f"{what} {verb} from {fmt(first)} (epoch 1) to {fmt(last)} (epoch {n}{percent})"


def _lowest(values: np.ndarray) -> tuple[int, float] | None:
    if not np.isfinite(values).any():
        return None
    k = int(np.nanargmin(values))
    return k + 1, float(values[k])


def _last_window(values: np.ndarray, k: int = 5) -> str:
    window = values[-k:]
    if len(values) <= k or not np.isfinite(window).all():
        return ""
    return (
        f" Over the last {len(window)} epochs it averaged {fmt(window.mean())} "
        f"(range {fmt(window.min())} to {fmt(window.max())})."
    )


def _vae_shows(h: dict) -> list[str]:
    loss, val_loss, kl, val_kl, rec = (
        plots.series(h, k) for k in ("loss", "val_loss", "kl", "val_kl", "reconstruction")
    )
    out = [] if loss is None else [_trend(loss, "The training loss") + "."]
    if val_loss is not None:
        sentence = _trend(val_loss, "The test loss")
        best = _lowest(val_loss)
        if best is not None and len(val_loss) > 1:
            where = "the last epoch" if best[0] == len(val_loss) else f"epoch {best[0]}"
            sentence += f"; it was lowest at {where} ({fmt(best[1])})"
        out.append(sentence + ".")
    if loss is not None and val_loss is not None and math.isfinite(loss[-1] * val_loss[-1]):
        gap = val_loss[-1] - loss[-1]
        side = "above" if gap > 0 else "below"
        rel = gap / max(abs(loss[-1]), 1e-12)
        out.append(
            f"At the end the test loss is {fmt(abs(gap))} {side} the training loss ({rel:+.1%})."
        )
    if kl is not None:
        final_test = "" if val_kl is None else f"; the final test KL is {fmt(val_kl[-1])}"
        out.append(_trend(kl, "The training KL") + final_test + ".")
    if rec is not None and kl is not None and loss is not None and loss[-1]:
        out.append(
            f"Of the final training loss, reconstruction is {fmt(rec[-1])} and KL "
            f"{fmt(kl[-1])} ({kl[-1] / loss[-1]:.1%})."
        )
    return out


def _loss_trends(h: dict, names: Sequence[tuple[str, str]]) -> list[str]:
    """One trend sentence per (history key, what) pair that the history holds."""
    return [_trend(v, what) + "." for key, what in names if (v := plots.series(h, key)) is not None]


def _gan_shows(h: dict) -> list[str]:
    out = _loss_trends(h, [("d_loss", "The discriminator loss"), ("g_loss", "The generator loss")])
    js, bound = plots.series(h, "js_estimate"), math.log(2.0)
    if js is not None:
        out.append(
            _trend(js, "The JS estimate")
            + f", {js[-1] / bound:.0%} of its upper bound log 2 = {bound:.4f}"
            + " (0 would mean a discriminator at chance)."
            + _last_window(js)
        )
    return out


def _wgan_shows(h: dict) -> list[str]:
    out = _loss_trends(h, [("critic_loss", "The critic loss"), ("g_loss", "The generator loss")])
    em = plots.series(h, "em_estimate")
    if em is not None:
        sentence = _trend(em, "The EM estimate")
        if len(em) > 1:
            steps = np.diff(em)
            sentence += (
                f"; it fell in {int((steps < 0).sum())} of {len(steps)} epoch-to-epoch steps"
            )
            if (low := _lowest(em)) is not None:
                sentence += f" and was lowest at epoch {low[0]} ({fmt(low[1])})"
        out.append(sentence + "." + _last_window(em))
    return out


def run_shows(family: str, history: dict | None) -> str:
    """The "Our run shows" sentences of a run of model `family`, computed from its history."""
    shows = {"vae": _vae_shows, "gan": _gan_shows, "wgan": _wgan_shows}.get(family)
    sentences = shows(history) if shows and history else []
    return " ".join(sentences) or "its history holds none of the expected metrics."


def provenance_caption(p: dict | None, n_epochs: int) -> str:
    """'Profile `quick`, 5 epochs of 200 planned (still running); ...' from run.json."""
    if not p:
        return f"{n_epochs} epochs (run.json is missing, so the profile is not recorded)"
    epochs, planned = p.get("epochs", n_epochs), p.get("epochs_planned")
    text = f"Profile `{p.get('profile', '?')}`, {epochs} epoch{'s' if epochs != 1 else ''}"
    if planned is not None and planned != epochs:
        text += f" of {planned} planned"
    status = p.get("status", "complete")
    if status != "complete":
        text += {"running": " (still running)", "stopped": " (stopped; `run` resumes it)"}.get(
            status, f" (status: {status})"
        )
    if "train_size" in p:
        text += f"; {p['train_size']} training and {p.get('test_size', '?')} test images"
    if "seed" in p:
        text += f", seed {p['seed']}"
    settings = captions.run_settings(p)
    if settings:
        text += f"; {settings}"
    return text


def _better(metric: str, a: float, b: float) -> bool:
    """Whether value a is strictly better than b for `metric`."""
    if metric == "classifier_is":
        return a > b
    if metric == "test_elbo":
        # The loss is >= 0, so the ELBO is <= 0: closer to 0 is better in either sign convention.
        return abs(a) < abs(b)
    return a < b


#: Metrics whose estimate varies with the draw of the samples: their gap must beat a spread.
NEEDS_SPREAD = ("fd", "kid", "classifier_is")
NOT_SEPARABLE = "not separable at this budget"


def _compare(metric: str, a: dict, b: dict, better: str, worse: str) -> tuple[str, str]:
    """('better' | 'worse' | 'tie', the sentence) for one metric of a claim.

    The gap counts when it exceeds its spread sqrt(s_a^2 + s_b^2), from the standard
    deviations recorded beside the values (`<metric>_std`); the test ELBO, a mean over the
    whole test set, is compared as it is (spread 0).
    """
    name = METRIC_NAMES.get(metric, metric)
    if metric not in a or metric not in b:
        return "worse", f"{name} missing"
    va, vb = float(a[metric]), float(b[metric])
    sa, sb = a.get(f"{metric}_std"), b.get(f"{metric}_std")
    known = (sa is not None and sb is not None) or metric not in NEEDS_SPREAD
    spread = math.hypot(float(sa or 0.0), float(sb or 0.0))
    winner = better if _better(metric, va, vb) else worse
    gap = abs(va - vb) if metric != "test_elbo" else abs(abs(va) - abs(vb))

    said = functools.partial(with_spread, plain=fmt)
    text = f"{name} {said(va, sa)} (`{better}`) vs {said(vb, sb)} (`{worse}`)"
    if not known:
        return "tie", f"{text}, favouring `{winner}` by {fmt(gap)} with no spread recorded"
    # the gap with its spread ('by 23.17 ± 0.39'), to the digits that the spread supports
    by = said(gap, spread if metric in NEEDS_SPREAD else None)
    if gap <= spread or va == vb:
        return "tie", f"{text}: the gap {by} is within its spread"
    side = "better" if winner == better else "worse"
    return side, f"{text}, favouring `{winner}` by {by}"


def claim_verdict(
    claim: Claim, metrics: dict[str, dict | None], profiles: dict[str, str] | None = None
) -> tuple[str, str]:
    """(verdict, the sentence with the numbers) of one claim.

    'supported': every listed metric favours `better` by more than its spread (`_compare`);
    'not supported': one favours `worse` by more than its spread, or is missing;
    'not separable at this budget': otherwise (a gap within its spread);
    'not checked': a run has no metrics of its final model, or (with `profiles`, each run's
    profile) the two runs are of different profiles: a claim compares runs of one profile.
    """
    a, b = metrics.get(claim.better), metrics.get(claim.worse)
    lacking = [i for i, m in ((claim.better, a), (claim.worse, b)) if not m]
    if lacking:
        return "not checked", "no scored metrics.json for " + ", ".join(f"`{i}`" for i in lacking)
    pa, pb = (profiles or {}).get(claim.better), (profiles or {}).get(claim.worse)
    if pa != pb:
        return "not checked", (
            f"`{claim.better}` is a `{pa}` run and `{claim.worse}` a `{pb}` run: a claim "
            "compares runs of one profile"
        )
    results = [_compare(metric, a, b, claim.better, claim.worse) for metric in claim.metrics]
    sides = {side for side, _ in results}
    detail = "; ".join(text for _, text in results)
    if "worse" in sides:
        return "not supported", detail
    return ("supported" if sides == {"better"} else NOT_SEPARABLE), detail


def collapse_lines(
    metrics: dict[str, dict], read_as: dict[str, tuple[str, list[str] | None]] | None = None
) -> list[str]:
    """The class histogram of the samples (mode collapse for a GAN or WGAN, classes
    under-represented for a VAE) and a VAE's active latent units, in words, for each run
    id -> metrics.json that has a diagnosis; `read_as` gives each run's (family, class names).
    """
    from assignment4 import evaluation

    read_as = read_as or {}
    said = [
        (exp_id, evaluation.diagnosis(m, *read_as.get(exp_id, (None, None))))
        for exp_id, m in metrics.items()
    ]
    said = [(exp_id, text) for exp_id, text in said if text]
    if not said:
        return []
    intro = TEXT["collapse_intro"].format(
        fraction=f"{evaluation.MIN_CLASS_FRACTION:.0%}",
        min_is=f"{evaluation.MIN_CLASSIFIER_IS:g}",
        kl=evaluation.ACTIVE_UNIT_KL,
    )
    return [intro, "", *(f"- `{exp_id}`: {text}" for exp_id, text in said), ""]


def claims_lines(
    metrics: dict[str, dict | None],
    profile: str,
    profiles: dict[str, str] | None = None,
    quick_setting: dict[str, dict | None] | None = None,
) -> list[str]:
    """The report's section on its claims: each claim's numbers and verdict, and the profile
    its runs come from (`profiles`: each run's, where the report shows several).

    A claim whose two runs shown are of different profiles is checked at the quick setting
    of both instead, where `quick_setting` (experiment id -> the metrics of its quick run, or
    of its full run's checkpoint at the quick epochs) has both scored.
    """
    lines = [TEXT["claims_heading"], ""]
    for claim in CLAIMS:
        verdict, detail = claim_verdict(claim, metrics, profiles)
        where = ""
        if profiles and verdict != "not checked":
            where = f" (profile `{profiles.get(claim.better)}`)"
        elif profiles and profiles.get(claim.better) != profiles.get(claim.worse):
            at_quick = claim_verdict(claim, quick_setting or {})
            if at_quick[0] != "not checked":
                verdict, detail = at_quick
                longer = [i for i in (claim.better, claim.worse) if profiles.get(i) != "quick"]
                where = (
                    " (at the quick setting of both: "
                    + ", ".join(f"`{i}` is shown at `{profiles.get(i)}`" for i in longer)
                    + ")"
                )
        lines.append(f"- **{claim.text}**{where}: {detail}. **{verdict.capitalize()}**.")
    return lines + ["", TEXT["claims_rule"].format(profile=profile), ""]
