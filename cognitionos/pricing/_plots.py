"""Model-fit diagnostics: expected vs actual repeat-purchase histogram, and a tracking plot.

Each function computes its data (returned as a :class:`PlotData`) and, given ``path``, draws
it with matplotlib (the ``plots`` extra) to PNG or SVG, chosen by the file suffix::

    h = repeat_purchase_histogram(m, frequency, recency, T, path="fit.png")
    h.actual, h.expected             # customers with 0, 1, ..., max-1 and >= max repeats
    tracking_plot(m, first_purchase, repeat_times, times=range(1, 79), path="track.svg")

The histogram is Fader, Hardie & Lee's in-sample check: customers by number of repeat
purchases in the calibration period, against ``sum_i P(X(T_i) = k)`` under the fitted model.
The tracking plot compares cumulative repeat purchases of the cohort over time with
``sum_i E[X(t - t0_i)]`` (``t0_i`` the customer's first purchase).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._inputs import as_float_array, rows_text

__all__ = ["PlotData", "repeat_purchase_histogram", "tracking_plot"]

_FORMATS = {".png": "png", ".svg": "svg"}


@attrs.frozen(slots=True, eq=False)
class PlotData:
    """What a diagnostic plot shows: x positions or labels, actual and expected values."""

    x: Any
    actual: Any
    expected: Any
    labels: tuple[str, ...] = ()
    path: str | None = None
    #: the values read back from the drawn figure's bars or lines (when a path was given)
    plotted: dict[str, Any] | None = None


def _figure_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ConfigurationError(f"plot path must end in .png or .svg, got {str(path)!r}")
    return _FORMATS[suffix]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ConfigurationError(
            "plots need matplotlib: pip install 'cognitionos[plots]'"
        ) from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> str:
    fmt = _figure_format(path)
    fig.savefig(path, format=fmt, dpi=100)
    return str(path)


def repeat_purchase_histogram(
    model: Any,
    frequency: Any,
    recency: Any,
    T: Any,
    *,
    max_frequency: int = 7,
    path: str | Path | None = None,
    title: str | None = None,
) -> PlotData:
    """Customers by number of repeat purchases (0 .. max-1, then ">= max"): actual counts
    and the fitted model's expectation ``sum_i P(X(T_i) = k)``.

    ``model`` needs ``probability_of_purchases(t, n)`` (BG/NBD, MBG/NBD).
    """
    import numpy as np

    if not hasattr(model, "probability_of_purchases") or getattr(model, "KIND", "") == "bg_bb":
        raise ConfigurationError(
            f"{type(model).__name__} has no continuous-time P(X(t) = n): use BetaGeoModel or "
            "ModifiedBetaGeoModel"
        )
    if not isinstance(max_frequency, int) or max_frequency < 1:
        raise ConfigurationError(f"max_frequency must be an integer >= 1, got {max_frequency!r}")
    if path is not None:
        _figure_format(path)  # refuse a bad suffix before any work
    x = as_float_array("frequency", frequency)
    as_float_array("recency", recency, length=x.size)
    t = as_float_array("T", T, length=x.size)
    bad = np.flatnonzero((x < 0) | (x != np.round(x)) | (t <= 0))
    if bad.size:
        raise ConfigurationError(f"frequency must be integers >= 0 and T > 0: {rows_text(bad)}")
    actual = np.bincount(np.minimum(x, max_frequency).astype(int), minlength=max_frequency + 1)
    t_values, counts = np.unique(t, return_counts=True)
    pmf = np.asarray(model.probability_of_purchases(t_values, np.arange(max_frequency)))
    pmf = pmf.reshape(max_frequency, t_values.size)
    expected = pmf @ counts
    expected = np.append(expected, x.size - expected.sum())
    labels = (*tuple(str(k) for k in range(max_frequency)), f"{max_frequency}+")
    positions = np.arange(max_frequency + 1)
    saved = None
    plotted = None
    if path is not None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        try:
            width = 0.4
            bars_a = ax.bar(positions - width / 2, actual, width, label="actual")
            bars_e = ax.bar(positions + width / 2, expected, width, label=f"model ({model.KIND})")
            plotted = {
                "actual": np.array([b.get_height() for b in bars_a]),
                "expected": np.array([b.get_height() for b in bars_e]),
            }
            ax.set_xticks(positions, labels)
            ax.set_xlabel("repeat purchases in the calibration period")
            ax.set_ylabel("customers")
            ax.set_title(title or "Repeat purchases: actual vs model")
            ax.legend()
            fig.tight_layout()
            saved = _save(fig, path)
        finally:
            plt.close(fig)
    return PlotData(
        x=positions,
        actual=actual.astype(float),
        expected=expected,
        labels=labels,
        path=saved,
        plotted=plotted,
    )


def tracking_plot(
    model: Any,
    first_purchase: Any,
    repeat_times: Any,
    *,
    times: Any,
    path: str | Path | None = None,
    title: str | None = None,
) -> PlotData:
    """Cumulative repeat purchases of a cohort at ``times``: actual and ``sum_i E[X(t - t0_i)]``.

    ``first_purchase`` holds each customer's first purchase time, ``repeat_times`` the times
    of all repeat purchases (any customer), in the model's time unit on one clock.
    """
    import numpy as np

    if path is not None:
        _figure_format(path)
    t0 = as_float_array("first_purchase", first_purchase)
    grid = as_float_array("times", times)
    if np.any(np.diff(grid) <= 0):
        raise ConfigurationError("times must be increasing")
    rep = np.asarray(repeat_times, dtype=float).ravel()
    if rep.size:
        rep = as_float_array("repeat_times", rep)
        early = np.flatnonzero(rep < t0.min())
        if early.size:
            raise ConfigurationError(
                f"repeat_times before every first purchase at {rows_text(early)}"
            )
    actual = np.searchsorted(np.sort(rep), grid, side="right").astype(float)
    starts, counts = np.unique(t0, return_counts=True)
    expected = np.empty(grid.size)
    for i, g in enumerate(grid):
        age = np.maximum(g - starts, 0.0)
        expected[i] = float(np.dot(counts, model.unconditional_expected_purchases(age)))
    saved = None
    plotted = None
    if path is not None:
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        try:
            (line_a,) = ax.plot(grid, actual, label="actual")
            (line_e,) = ax.plot(grid, expected, linestyle="--", label=f"model ({model.KIND})")
            plotted = {
                "x": np.asarray(line_a.get_xdata(), dtype=float),
                "actual": np.asarray(line_a.get_ydata(), dtype=float),
                "expected": np.asarray(line_e.get_ydata(), dtype=float),
            }
            ax.set_xlabel("time")
            ax.set_ylabel("cumulative repeat purchases")
            ax.set_title(title or "Tracking: cumulative repeat purchases")
            ax.legend()
            fig.tight_layout()
            saved = _save(fig, path)
        finally:
            plt.close(fig)
    return PlotData(x=grid, actual=actual, expected=expected, path=saved, plotted=plotted)
