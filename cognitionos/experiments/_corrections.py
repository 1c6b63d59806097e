"""Multiple-comparison corrections: adjusted p-values and the matching CI levels.

``adjust_pvalues(p, "holm")`` follows R's ``p.adjust`` / multtest definitions exactly (tested
against R outputs to 1e-12). NaN entries (comparisons that could not be computed) are left
out of the family: they stay NaN and do not count in m.

Confidence intervals that match a correction (:func:`adjusted_alpha`):

- Bonferroni and Holm: each interval at level 1 - alpha/m (Holm's step-down has no exact
  simultaneous intervals; Bonferroni's are the standard conservative ones);
- Sidak and Holm-Sidak: 1 - (1 - alpha)^(1/m);
- Hochberg and Hommel: Bonferroni intervals (conservative);
- Benjamini-Hochberg: false-coverage-rate intervals of Benjamini & Yekutieli (2005): with R
  discoveries, 1 - R*alpha/m (at least 1 - alpha/m when nothing is discovered);
- Benjamini-Yekutieli: the same with alpha divided by sum_{i<=m} 1/i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError

__all__ = ["CORRECTIONS", "Correction", "adjust_pvalues", "adjusted_alpha"]

Correction = Literal[
    "none", "bonferroni", "holm", "hochberg", "sidak", "holm-sidak", "hommel", "bh", "by"
]
#: every accepted correction name (aliases: "fdr_bh" = "bh", "fdr_by" = "by")
CORRECTIONS: tuple[str, ...] = (
    "none",
    "bonferroni",
    "holm",
    "hochberg",
    "sidak",
    "holm-sidak",
    "hommel",
    "bh",
    "by",
)
_ALIASES = {"fdr_bh": "bh", "fdr_by": "by", "benjamini-hochberg": "bh", None: "none"}


def _method(method: str | None) -> str:
    name = _ALIASES.get(method, method)
    if not isinstance(name, str) or name.lower() not in CORRECTIONS:
        raise ConfigurationError(f"correction {method!r} is not one of {', '.join(CORRECTIONS)}")
    return name.lower()


def _adjust_sorted(np: Any, p: Any, method: str) -> Any:
    """Adjusted p-values for ascending ``p`` (no NaN), same order."""
    m = p.size
    i = np.arange(1, m + 1, dtype=float)
    if method == "bonferroni":
        out = p * m
    elif method == "holm":
        out = np.maximum.accumulate((m - i + 1) * p)
    elif method == "hochberg":
        out = np.minimum.accumulate(((m - i + 1) * p)[::-1])[::-1]
    elif method == "sidak":
        with np.errstate(divide="ignore"):  # p = 1 -> log1p(-1) = -inf -> adjusted 1
            out = -np.expm1(m * np.log1p(-p))
    elif method == "holm-sidak":
        with np.errstate(divide="ignore"):
            out = np.maximum.accumulate(-np.expm1((m - i + 1) * np.log1p(-p)))
    elif method == "bh":
        out = np.minimum.accumulate((m / i * p)[::-1])[::-1]
    elif method == "by":
        c = np.sum(1.0 / i)
        out = np.minimum.accumulate((c * m / i * p)[::-1])[::-1]
    elif method == "hommel":
        out = _hommel(np, p)
    else:  # "none"
        out = p.copy()
    return np.minimum(out, 1.0)


def _hommel(np: Any, p: Any) -> Any:
    """Hommel's (1988) adjusted p-values, as R's p.adjust computes them (p ascending)."""
    n = p.size
    if n == 1:
        return p.copy()
    i = np.arange(1, n + 1, dtype=float)
    q = np.full(n, np.min(n * p / i))
    pa = q.copy()
    for m in range(n - 1, 1, -1):
        head = n - m + 1  # indices 0 .. n-m
        q1 = np.min(m * p[head:] / np.arange(2, m + 1, dtype=float))
        q[:head] = np.minimum(m * p[:head], q1)
        q[head:] = q[head - 1]
        pa = np.maximum(pa, q)
    return np.maximum(pa, p)


def adjust_pvalues(p_values: Sequence[float] | Any, method: str | None = "holm") -> Any:
    """Adjusted p-values (numpy array, input order) for ``method``; NaN stays NaN.

    >>> adjust_pvalues([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    np = require("numpy")
    name = _method(method)
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        p = p.ravel()
    finite = ~np.isnan(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise ConfigurationError("p_values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    if not finite.any():
        return out
    idx = np.flatnonzero(finite)
    order = idx[np.argsort(p[idx], kind="stable")]
    out[order] = _adjust_sorted(np, p[order], name)
    return out


def adjusted_alpha(alpha: float, m: int, method: str | None, discoveries: int = 0) -> float:
    """Per-interval alpha so that intervals match ``method`` over a family of ``m`` tests.

    ``discoveries`` (the number of adjusted p-values below alpha) is used by the FDR methods
    (false-coverage-rate intervals).
    """
    name = _method(method)
    if m <= 1 or name == "none":
        return alpha
    if name in ("sidak", "holm-sidak"):
        return -math.expm1(math.log1p(-alpha) / m)
    if name in ("bh", "by"):
        scale = sum(1.0 / k for k in range(1, m + 1)) if name == "by" else 1.0
        return max(discoveries, 1) * alpha / (m * scale)
    return alpha / m
