"""Quantile metrics (p50, p99 latency, ...): the difference of a quantile between two arms.

Quantiles have no sufficient statistics of fixed size, so this works on the unit-level
values of each arm (for instance pulled from the warehouse for one metric):

- each arm's interval is distribution-free: the order statistics x_(l) and x_(u) with the
  count of values below the true quantile ~ Binomial(n, q) (the interval
  ``scipy.stats.quantile_test`` gives);
- each arm's standard error is that interval's width over 2 z_(alpha/2) (a normal
  approximation, as gbstats' quantile metrics use);
- the difference (and the relative difference, by the delta method) is a z-test on those.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError

__all__ = ["QuantileResult", "quantile_test"]


@attrs.frozen(slots=True)
class QuantileResult:
    """Quantile ``q`` of each arm with its interval, and their difference.

    Values that cannot be computed (too few units for the interval) are ``None`` and
    ``warnings`` says why.
    """

    q: float
    control: float
    treatment: float
    control_ci: tuple[float, float] | None
    treatment_ci: tuple[float, float] | None
    effect_abs: float | None
    effect_rel: float | None
    ci: tuple[float, float] | None
    ci_rel: tuple[float, float] | None
    p_value: float | None
    warnings: tuple[str, ...]


def _order_interval(np: Any, special: Any, xs: Any, q: float, alpha: float) -> tuple[float, float]:
    """Distribution-free interval of the q-quantile from sorted values (may be infinite)."""
    n = xs.size
    k = np.arange(n + 1)
    cdf = special.bdtr(k, n, q)  # P(B <= k)
    sf = 1.0 - cdf  # P(B > k)
    below = np.flatnonzero(cdf <= alpha / 2)
    above = np.flatnonzero(sf <= alpha / 2)
    # x_(l) <= quantile  <=>  B >= l;  x_(u) >= quantile  <=>  B <= u - 1
    low = float(xs[below[-1]]) if below.size else -math.inf  # l = below[-1] + 1 (1-based)
    high = float(xs[above[0]]) if above.size and above[0] < n else math.inf
    return low, high


def quantile_test(
    control: Sequence[float] | Any,
    treatment: Sequence[float] | Any,
    q: float = 0.5,
    *,
    alpha: float = 0.05,
) -> QuantileResult:
    """Compare the ``q``-quantile of ``treatment`` with that of ``control`` (unit values).

    >>> r = quantile_test(range(1000), range(100, 1100), q=0.5)
    >>> round(r.effect_abs), r.p_value < 0.05
    (100, True)
    """
    np = require("numpy", purpose="quantile metrics")
    special = require("scipy.special", purpose="quantile metrics")
    if not (isinstance(q, (int, float)) and 0 < q < 1):
        raise ConfigurationError(f"q={q!r} must lie strictly between 0 and 1")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ConfigurationError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    arms = []
    for name, values in (("control", control), ("treatment", treatment)):
        try:
            xs = np.sort(np.asarray(values, dtype=float).ravel())
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{name} values must be numbers: {exc}") from None
        if xs.size == 0:
            raise ConfigurationError(f"{name} has no values")
        if not np.all(np.isfinite(xs)):
            raise ConfigurationError(f"{name} values must be finite (no NaN or inf)")
        arms.append(xs)
    z = -float(special.ndtri(alpha / 2))
    est: list[float] = []
    cis: list[tuple[float, float] | None] = []
    ses: list[float | None] = []
    warnings: list[str] = []
    for name, xs in zip(("control", "treatment"), arms, strict=True):
        est.append(float(np.quantile(xs, q)))
        low, high = _order_interval(np, special, xs, q, alpha)
        if math.isinf(low) or math.isinf(high):
            warnings.append(f"{name}: too few units for a {1 - alpha:.0%} interval of q={q}")
            cis.append(None)
            ses.append(None)
        else:
            cis.append((low, high))
            ses.append((high - low) / (2 * z))
    qa, qb = est
    se_a, se_b = ses
    if se_a is None or se_b is None:
        return QuantileResult(q, qa, qb, cis[0], cis[1], None, None, None, None, None,
                              tuple(warnings))  # fmt: skip
    se = math.sqrt(se_a**2 + se_b**2)
    diff = qb - qa
    if se > 0:
        p_value = float(math.erfc(abs(diff) / se / math.sqrt(2)))
    else:
        p_value = None
        warnings.append("zero_variance: both quantile intervals have zero width")
    ci = (diff - z * se, diff + z * se)
    effect_rel = ci_rel = None
    if qa != 0 and abs(qa) > z * se_a:
        effect_rel = diff / abs(qa)
        se_rel = math.sqrt(se_b**2 / qa**2 + qb**2 * se_a**2 / qa**4)
        ci_rel = (effect_rel - z * se_rel, effect_rel + z * se_rel)
    else:
        warnings.append("control_mean_near_zero: the control quantile is indistinguishable from 0")
    return QuantileResult(q, qa, qb, cis[0], cis[1], diff, effect_rel, ci, ci_rel, p_value,
                          tuple(warnings))  # fmt: skip
