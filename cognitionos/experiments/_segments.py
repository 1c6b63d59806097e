"""Analyses built on :func:`analyze`: effect over time, breakdowns, interaction between
overlapping experiments, percentile winsorization of per-unit values.

All of them take per-arm sufficient statistics (:class:`ArmSummary`) except
:func:`winsorized_summaries`, which turns per-unit values into summaries with percentile
caps computed once over all arms (so every arm is capped at the same threshold).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.experiments._analysis import AnalysisResult, MetricResult, analyze
from cognitionos.experiments._corrections import adjust_pvalues
from cognitionos.experiments._summary import ArmSummary

__all__ = [
    "InteractionResult",
    "SeriesPoint",
    "analyze_breakdown",
    "effect_series",
    "interaction_check",
    "winsorized_summaries",
]


def _merge_cells(summaries: Iterable[ArmSummary]) -> list[ArmSummary]:
    cells: dict[tuple[str, str], ArmSummary] = {}
    for s in summaries:
        k = (s.arm, s.metric)
        cells[k] = s if k not in cells else cells[k].merge(s)
    return list(cells.values())


@attrs.frozen(slots=True)
class SeriesPoint:
    """The analysis of one period: ``daily`` uses that period's units only, ``cumulative``
    every unit up to and including it."""

    period: Any
    daily: AnalysisResult
    cumulative: AnalysisResult


def effect_series(
    periods: Mapping[Any, Sequence[ArmSummary]] | Sequence[tuple[Any, Sequence[ArmSummary]]],
    **options: Any,
) -> list[SeriesPoint]:
    """Daily and cumulative analysis of an effect over time.

    ``periods`` maps each period (a date, a day number, ... in time order) to the summaries
    of the units *first exposed* in that period (so each unit is in exactly one period, and
    the cumulative sums are exact). The daily series shows novelty (an effect that fades);
    the cumulative one is what the experiment concludes at each date. ``options`` go to
    :func:`analyze` for every point (use ``method="sequential"`` to look at the cumulative
    series every day without inflating the false-positive rate).
    """
    items = list(periods.items()) if isinstance(periods, Mapping) else list(periods)
    if not items:
        raise ConfigurationError("effect_series needs at least one period")
    out: list[SeriesPoint] = []
    running: list[ArmSummary] = []
    for period, summaries in items:
        day = list(summaries)
        if not day:
            raise ConfigurationError(f"period {period!r} has no summaries")
        running = _merge_cells([*running, *day])
        out.append(SeriesPoint(period, analyze(day, **options), analyze(running, **options)))
    return out


def analyze_breakdown(
    segments: Mapping[str, Sequence[ArmSummary]],
    *,
    correction: str | None = "holm",
    **options: Any,
) -> dict[str, AnalysisResult]:
    """One :func:`analyze` per value of a dimension (e.g. country), corrected across them.

    Each segment is analysed without correction inside, then the p-values of every
    comparison of every segment are corrected together with ``correction`` (a breakdown
    is a family of its own: looking at 20 countries finds one "significant" by chance).
    The corrected values replace ``p_value_adjusted`` and ``significant``/``direction`` of
    each result; intervals stay at the per-segment level. Call it once per dimension:
    each dimension gets its own correction.
    """
    if not segments:
        raise ConfigurationError("analyze_breakdown needs at least one segment")
    if options.get("method") == "bayesian":
        return {k: analyze(v, correction="none", **options) for k, v in segments.items()}
    results = {k: analyze(v, correction="none", **options) for k, v in segments.items()}
    flat = [a.p_value for r in results.values() for a in r.arms]
    np = require("numpy")
    raw = np.array([math.nan if p is None else p for p in flat], dtype=float)
    adj = adjust_pvalues(raw, correction).tolist()
    alpha = float(options.get("alpha", 0.05))
    out: dict[str, AnalysisResult] = {}
    i = 0
    for seg, r in results.items():
        arms = []
        for a in r.arms:
            p_adj = None if math.isnan(adj[i]) else float(adj[i])
            i += 1
            sig = p_adj is not None and p_adj < alpha and a.direction != "none"
            row = list(a)
            row[16] = p_adj  # p_value_adjusted
            row[20] = sig  # significant
            row[21] = a.direction if sig else "none"
            arms.append(type(a)(tuple(row)))
        metrics = tuple(
            MetricResult(
                m.metric,
                m.kind,
                m.control,
                tuple(x for x in arms if x.metric == m.metric),
                m.inverse,
            )
            for m in r.metrics
        )
        out[seg] = attrs.evolve(r, arms=tuple(arms), metrics=metrics, correction=str(correction))
    return out


@attrs.frozen(slots=True)
class InteractionResult:
    """Interaction of two overlapping experiments on one metric.

    ``interaction`` is (mean[b1,a1] - mean[b1,a0]) - (mean[b0,a1] - mean[b0,a0]): how much
    experiment A's effect changes when the unit is also in B's treatment. ``p_value`` is
    the two-sided z-test of interaction == 0 with per-cell variances (heteroskedasticity
    consistent; it equals an OLS fit with an interaction term and HC2 errors).
    """

    metric: str
    interaction: float
    std_error: float
    ci: tuple[float, float]
    p_value: float
    detected: bool
    effect_a_by_b: Mapping[str, float]


def interaction_check(
    cells: Mapping[tuple[str, str], ArmSummary],
    *,
    alpha: float = 0.05,
) -> InteractionResult:
    """Check whether experiment A's effect depends on the arm of experiment B.

    ``cells`` maps ``(arm of A, arm of B)`` to the summary of the units in both, with
    exactly two arms per experiment, control first in insertion order (e.g. from
    ``summaries_from_sql`` grouped by both assignments). Large interactions mean the two
    experiments should not overlap (put them in one namespace) or be analysed jointly.
    """
    special = require("scipy.special")
    a_arms = list(dict.fromkeys(k[0] for k in cells))
    b_arms = list(dict.fromkeys(k[1] for k in cells))
    if len(a_arms) != 2 or len(b_arms) != 2 or len(cells) != 4:
        raise ConfigurationError(
            f"interaction_check needs the 2 x 2 cells of two two-arm experiments, "
            f"got A arms {a_arms} and B arms {b_arms}"
        )
    metrics = {s.metric for s in cells.values()}
    if len(metrics) != 1:
        raise ConfigurationError(f"cells must be of one metric, got {sorted(metrics)}")
    if not (isinstance(alpha, float) and 0 < alpha < 1):
        raise ConfigurationError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    mean: dict[tuple[str, str], float] = {}
    var: dict[tuple[str, str], float] = {}
    for k, s in cells.items():
        if s.n < 2:
            raise ConfigurationError(f"cell {k} has n={s.n}: needs at least 2 units")
        if s.kind == "ratio":
            raise ConfigurationError("interaction_check takes per-unit metrics, not ratios")
        m = s.sum / s.n
        v = m * (1 - m) if s.kind == "binomial" else (s.sum_sq - s.sum * s.sum / s.n) / (s.n - 1)
        mean[k], var[k] = m, max(v, 0.0) / s.n
    a0, a1 = a_arms
    b0, b1 = b_arms
    by_b = {b: mean[(a1, b)] - mean[(a0, b)] for b in b_arms}
    inter = by_b[b1] - by_b[b0]
    se = math.sqrt(sum(var.values()))
    if se == 0:
        raise ConfigurationError("every cell has zero variance: no interaction test possible")
    z = inter / se
    crit = float(-special.ndtri(alpha / 2))
    p = float(2 * special.ndtr(-abs(z)))
    return InteractionResult(
        metric=metrics.pop(),
        interaction=inter,
        std_error=se,
        ci=(inter - crit * se, inter + crit * se),
        p_value=p,
        detected=p < alpha,
        effect_a_by_b=by_b,
    )


def winsorized_summaries(
    units: Mapping[str, Sequence[float]],
    metric: str,
    *,
    lower: float | None = None,
    upper: float | None = 0.99,
    nonzero_only: bool = False,
    kind: str = "continuous",
) -> tuple[list[ArmSummary], tuple[float | None, float | None]]:
    """Summaries of per-unit values with percentile caps pooled across arms.

    ``units`` maps each arm to its units' values. The caps are the ``lower`` and ``upper``
    quantiles (fractions, e.g. 0.99; ``None`` = no cap on that side) of the values of all
    arms together (one threshold for every arm, so capping cannot create an effect), using
    linear interpolation (numpy's default). With ``nonzero_only`` the quantiles are taken
    over the non-zero values and zeros are left as they are (e.g. revenue where most units
    buy nothing). Returns the summaries and the caps ``(lower, upper)`` used.
    """
    np = require("numpy")
    for name, q in (("lower", lower), ("upper", upper)):
        if q is not None and not (isinstance(q, (int, float)) and 0 <= q <= 1):
            raise ConfigurationError(f"{name}={q!r} must be a fraction in [0, 1] or None")
    if lower is not None and upper is not None and lower > upper:
        raise ConfigurationError(f"lower={lower} must not exceed upper={upper}")
    if not units:
        raise ConfigurationError("winsorized_summaries needs at least one arm")
    arrays = {arm: np.asarray(v, dtype=float) for arm, v in units.items()}
    for arm, a in arrays.items():
        if a.ndim != 1 or not np.all(np.isfinite(a)):
            raise ConfigurationError(f"arm {arm!r}: values must be a flat list of finite numbers")
    pooled = np.concatenate(list(arrays.values()))
    basis = pooled[pooled != 0] if nonzero_only else pooled
    lo = float(np.quantile(basis, lower)) if lower is not None and basis.size else None
    hi = float(np.quantile(basis, upper)) if upper is not None and basis.size else None
    out = []
    for arm, a in arrays.items():
        capped = np.clip(a, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        if nonzero_only:
            capped = np.where(a == 0, 0.0, capped)
        out.append(
            ArmSummary(
                arm,
                metric,
                n=int(a.size),
                sum=float(capped.sum()),
                sum_sq=float((capped * capped).sum()),
                kind=kind,  # type: ignore[arg-type]
            )
        )
    return out, (lo, hi)
