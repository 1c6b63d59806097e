"""Pictures of results: the effect over time with its interval, and posterior densities.

matplotlib comes from the ``plots`` extra (``pip install 'cognitionos[plots]'``) and is
imported on the first call. Figures are drawn on matplotlib's object API (no pyplot, no
global state) and written as PNG or SVG, chosen by the file suffix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.experiments._analysis import AnalysisResult, analyze
from cognitionos.experiments._summary import ArmSummary

__all__ = ["plot_effect_over_time", "plot_posteriors"]


def _figure(width: float = 7.0, height: float = 4.0) -> Any:
    figure_mod = require("matplotlib.figure", extra="plots", purpose="experiment plots")
    agg = require("matplotlib.backends.backend_agg", extra="plots")
    fig = figure_mod.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ConfigurationError(f"plot path {str(out)!r} must end in .png or .svg")
    fig.savefig(out, format=suffix[1:], dpi=120)
    return out


def plot_effect_over_time(
    snapshots: Sequence[tuple[float | str, Sequence[ArmSummary]]],
    metric: str,
    path: str | Path,
    *,
    method: str = "sequential",
    difference: str = "relative",
    **analyze_options: Any,
) -> Path:
    """Cumulative effect of each treatment arm on ``metric`` at every snapshot, with its
    interval (the always-valid confidence sequence with ``method="sequential"``).

    ``snapshots`` is a list of (time label, cumulative summaries at that time). All of them
    are analyzed in one vectorized call. Returns the path written.
    """
    if not snapshots:
        raise ConfigurationError("plot_effect_over_time needs at least one snapshot")
    if difference not in ("relative", "absolute"):
        raise ConfigurationError(f"difference={difference!r} must be 'absolute' or 'relative'")
    # every snapshot becomes its own metric of one analyze() call
    renamed: list[ArmSummary] = []
    for i, (_, summaries) in enumerate(snapshots):
        chosen = [s for s in summaries if s.metric == metric]
        if not chosen:
            raise ConfigurationError(f"snapshot {i} has no summaries of metric {metric!r}")
        renamed.extend(_rename(s, f"{i}") for s in chosen)
    options = {"correction": "none", "srm_min_units": 10**18, **analyze_options}
    result = analyze(renamed, method, difference=difference, **options)
    labels = [label for label, _ in snapshots]
    x = list(range(len(labels))) if any(isinstance(v, str) for v in labels) else labels
    fig = _figure()
    ax = fig.add_subplot()
    treatments = [a.arm for a in result.metric("0").arms]
    for arm in treatments:
        points = [result.arm(str(i), arm) for i in range(len(snapshots))]
        eff = [_effect(a, difference) for a in points]
        ci = [a.ci_rel if difference == "relative" else a.ci for a in points]
        xs = [xv for xv, e in zip(x, eff, strict=True) if e is not None]
        ys = [e for e in eff if e is not None]
        lo = [c[0] for c in ci if c is not None]
        hi = [c[1] for c in ci if c is not None]
        (line,) = ax.plot(xs, ys, marker="o", label=f"{arm} vs {result.control}")
        ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color())
    ax.axhline(0.0, color="grey", linewidth=1)
    if any(isinstance(v, str) for v in labels):
        ax.set_xticks(x, [str(v) for v in labels], rotation=30)
    scale = "relative lift" if difference == "relative" else "absolute effect"
    interval = "confidence sequence" if method in ("sequential", "msprt") else "interval"
    ax.set_title(f"{metric}: cumulative {scale} with its {interval}")
    ax.set_ylabel(scale)
    if difference == "relative":
        ax.yaxis.set_major_formatter(require("matplotlib.ticker").PercentFormatter(xmax=1.0))
    ax.legend()
    return _save(fig, path)


def _effect(a: Any, difference: str) -> float | None:
    return a.effect_rel if difference == "relative" else a.effect_abs  # type: ignore[no-any-return]


def _rename(s: ArmSummary, metric: str) -> ArmSummary:
    return attrs.evolve(s, metric=metric)


def plot_posteriors(result: AnalysisResult, metric: str, path: str | Path) -> Path:
    """Posterior densities: Beta posteriors of each arm's rate for a binomial metric,
    normal posteriors of each treatment's effect otherwise. Returns the path written."""
    np = require("numpy")
    special = require("scipy.special")
    m = result.metric(metric)
    fig = _figure()
    ax = fig.add_subplot()
    if m.kind == "binomial":
        arms = [(m.control, m.arms[0].control_n, m.arms[0].control_mean)] + [
            (a.arm, a.n, a.mean) for a in m.arms
        ]
        curves = []
        for name, n, mean in arms:
            if not n or mean is None:
                continue
            c = round(mean * n)
            alpha, beta = 1.0 + c, 1.0 + n - c
            sd = math.sqrt(alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1)))
            curves.append((name, alpha, beta, alpha / (alpha + beta), sd))
        if not curves:
            raise ConfigurationError(f"metric {metric!r} has no arm with data to plot")
        lo = max(0.0, min(c[3] - 5 * c[4] for c in curves))
        hi = min(1.0, max(c[3] + 5 * c[4] for c in curves))
        x = np.linspace(lo, hi, 400)[1:-1]
        for name, a, b, _, _ in curves:
            dens = np.exp((a - 1) * np.log(x) + (b - 1) * np.log1p(-x) - special.betaln(a, b))
            ax.plot(x, dens, label=f"{name}: Beta({a:g}, {b:g})")
            ax.fill_between(x, dens, alpha=0.15)
        ax.set_xlabel(f"{metric} rate")
        ax.set_title(f"{metric}: posterior of each arm's rate")
    else:
        scale = "relative" if result.difference == "relative" else "absolute"
        shown = 0
        for cmp in m.arms:
            eff = cmp.effect_rel if scale == "relative" else cmp.effect_abs
            se = cmp.std_error_rel if scale == "relative" else cmp.std_error
            if eff is None or se is None or se <= 0:
                continue
            x = np.linspace(eff - 5 * se, eff + 5 * se, 400)
            dens = np.exp(-0.5 * ((x - eff) / se) ** 2) / (se * math.sqrt(2 * math.pi))
            ax.plot(x, dens, label=f"{cmp.arm} vs {cmp.control}")
            ax.fill_between(x, dens, alpha=0.15)
            shown += 1
        if not shown:
            raise ConfigurationError(f"metric {metric!r} has no comparison with data to plot")
        ax.axvline(0.0, color="grey", linewidth=1)
        ax.set_xlabel(f"{scale} effect")
        ax.set_title(f"{metric}: posterior of the {scale} effect")
    ax.set_ylabel("density")
    ax.legend()
    return _save(fig, path)
