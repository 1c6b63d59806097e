"""Power, sample size and minimum detectable effect for proportions and means.

Formulas (the ones R's ``pwr`` and G*Power use, so the numbers agree with both):

- proportions: Cohen's h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1)) with the normal test of two
  independent samples (``pwr.2p2n.test``); two-sided power counts both rejection regions;
- means: the two-sample t-test with pooled variance through the noncentral t distribution
  (``pwr.t2n.test``), effect size d = mde / sd;
- several arms: every comparison (each treatment against the control, or all pairs) must
  reach the power; the total is the smallest N with allocations ``N * allocation``.
  ``correction="bonferroni"`` or ``"sidak"`` divides alpha over the comparisons.

Sample sizes are floats (the exact solution); round up yourself to plan an experiment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError

__all__ = [
    "SampleSize",
    "chisquare_power",
    "f2_power",
    "anova_power",
    "mde",
    "normal_power",
    "power",
    "sample_size",
    "ttest_power",
]

Alternative = Literal["two-sided", "larger", "smaller"]


@attrs.frozen(slots=True)
class SampleSize:
    """Solution of a sample-size problem: units per arm and in total (floats, not rounded)."""

    total: float
    per_arm: tuple[float, ...]
    allocations: tuple[float, ...]
    effect_size: float
    method: str

    def __float__(self) -> float:
        return self.total


def _check_prob(name: str, value: float, *, open_interval: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(f"{name}={value!r} must be a finite number")
    if open_interval and not 0.0 < value < 1.0:
        raise ConfigurationError(f"{name}={value!r} must lie strictly between 0 and 1")
    return float(value)


def _alternative(alternative: str) -> str:
    if alternative not in ("two-sided", "larger", "smaller"):
        raise ConfigurationError(
            f"alternative={alternative!r} must be 'two-sided', 'larger' or 'smaller'"
        )
    return alternative


def normal_power(
    effect_size: float,
    nobs1: float,
    alpha: float = 0.05,
    ratio: float = 1.0,
    alternative: str = "two-sided",
) -> float:
    """Power of the two-sample normal (z) test for a standardized effect (Cohen's d or h).

    ``ratio`` = nobs2 / nobs1; ``ratio=0`` is the one-sample test with ``nobs1`` units.
    """
    sc = require("scipy.special")
    alpha = _check_prob("alpha", alpha)
    _alternative(alternative)
    if nobs1 <= 0 or ratio < 0:
        raise ConfigurationError("nobs1 must be > 0 and ratio >= 0")
    n_eff = nobs1 if ratio == 0 else nobs1 * ratio / (1.0 + ratio)
    shift = effect_size * math.sqrt(n_eff)
    if alternative == "two-sided":
        crit = -float(sc.ndtri(alpha / 2.0))
        return float(sc.ndtr(shift - crit) + sc.ndtr(-shift - crit))
    crit = -float(sc.ndtri(alpha))
    if alternative == "larger":
        return float(sc.ndtr(shift - crit))
    return float(sc.ndtr(-shift - crit))


def ttest_power(
    effect_size: float,
    nobs1: float,
    alpha: float = 0.05,
    ratio: float | None = 1.0,
    alternative: str = "two-sided",
) -> float:
    """Power of Student's t-test: two-sample (pooled) with ``ratio`` = nobs2 / nobs1, or
    one-sample with ``ratio=None``."""
    st = require("scipy.stats")
    alpha = _check_prob("alpha", alpha)
    _alternative(alternative)
    if ratio is None:
        if nobs1 <= 1:
            raise ConfigurationError("a one-sample t-test needs nobs1 > 1")
        df = nobs1 - 1.0
        nc = effect_size * math.sqrt(nobs1)
    else:
        if ratio <= 0:
            raise ConfigurationError("ratio must be > 0 for a two-sample t-test")
        nobs2 = nobs1 * ratio
        df = nobs1 + nobs2 - 2.0
        if df <= 0:
            raise ConfigurationError("a two-sample t-test needs more than 2 units in total")
        nc = effect_size * math.sqrt(nobs1 * nobs2 / (nobs1 + nobs2))
    if alternative == "two-sided":
        crit = float(st.t.isf(alpha / 2.0, df))
        return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))
    crit = float(st.t.isf(alpha, df))
    if alternative == "larger":
        return float(st.nct.sf(crit, df, nc))
    return float(st.nct.cdf(-crit, df, nc))


def chisquare_power(effect_size: float, nobs: float, df: int, alpha: float = 0.05) -> float:
    """Power of a chi-squared test with Cohen's w (``pwr.chisq.test``): ncp = w^2 N."""
    st = require("scipy.stats")
    alpha = _check_prob("alpha", alpha)
    if df < 1 or nobs <= 0:
        raise ConfigurationError("df must be >= 1 and nobs > 0")
    crit = st.chi2.isf(alpha, df)
    return float(st.ncx2.sf(crit, df, effect_size**2 * nobs))


def f2_power(f2: float, df_num: float, df_denom: float, alpha: float = 0.05) -> float:
    """Power of the regression F test (``pwr.f2.test``: u = df_num, v = df_denom)."""
    st = require("scipy.stats")
    alpha = _check_prob("alpha", alpha)
    if df_num <= 0 or df_denom <= 0:
        raise ConfigurationError("df_num and df_denom must be > 0")
    crit = st.f.isf(alpha, df_num, df_denom)
    return float(st.ncf.sf(crit, df_num, df_denom, f2 * (df_num + df_denom + 1.0)))


def anova_power(effect_size: float, nobs: float, k_groups: int, alpha: float = 0.05) -> float:
    """Power of one-way ANOVA with Cohen's f over ``nobs`` units in total (ncp = f^2 N)."""
    st = require("scipy.stats")
    alpha = _check_prob("alpha", alpha)
    if k_groups < 2 or nobs <= k_groups:
        raise ConfigurationError("need k_groups >= 2 and nobs > k_groups")
    d1, d2 = k_groups - 1.0, nobs - k_groups
    crit = st.f.isf(alpha, d1, d2)
    return float(st.ncf.sf(crit, d1, d2, effect_size**2 * nobs))


# --- experiment planning ---------------------------------------------------------------


def _effect(
    kind: str, baseline: float, mde_value: float, relative: bool, sd: float | None
) -> tuple[float, str]:
    if kind == "binomial":
        p1 = _check_prob("baseline", baseline)
        p2 = p1 * (1.0 + mde_value) if relative else p1 + mde_value
        if not 0.0 < p2 < 1.0:
            raise ConfigurationError(
                f"baseline {p1} with mde {mde_value} gives a treatment rate {p2} outside (0, 1)"
            )
        return 2.0 * math.asin(math.sqrt(p2)) - 2.0 * math.asin(math.sqrt(p1)), "cohen_h_z"
    if kind == "mean":
        if sd is None or not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0):
            raise ConfigurationError(f"sd={sd!r} must be a positive number for kind='mean'")
        if not math.isfinite(baseline):
            raise ConfigurationError(f"baseline={baseline!r} must be finite")
        delta = abs(baseline) * mde_value if relative else mde_value
        return delta / sd, "t_test"
    raise ConfigurationError(f"kind={kind!r} must be 'binomial' or 'mean'")


def _allocations(arms: int, allocations: Sequence[float] | None) -> tuple[float, ...]:
    if isinstance(arms, bool) or not isinstance(arms, int) or arms < 2:
        raise ConfigurationError(f"arms={arms!r} must be an integer >= 2")
    if allocations is None:
        return tuple(1.0 / arms for _ in range(arms))
    alloc = tuple(float(a) for a in allocations)
    if len(alloc) != arms or any(not (a > 0 and math.isfinite(a)) for a in alloc):
        raise ConfigurationError(f"allocations must be {arms} positive numbers")
    total = sum(alloc)
    return tuple(a / total for a in alloc)


def _pairs(arms: int, comparisons: str) -> list[tuple[int, int]]:
    if comparisons == "control_vs_all":
        return [(0, j) for j in range(1, arms)]
    if comparisons == "all_vs_all":
        return [(i, j) for i in range(arms) for j in range(i + 1, arms)]
    raise ConfigurationError(
        f"comparisons={comparisons!r} must be 'control_vs_all' or 'all_vs_all'"
    )


def _comparison_alpha(alpha: float, m: int, correction: str | None) -> float:
    if correction in (None, "none"):
        return alpha
    if correction == "bonferroni":
        return alpha / m
    if correction == "sidak":
        return -math.expm1(math.log1p(-alpha) / m)
    raise ConfigurationError(f"correction={correction!r} must be None, 'bonferroni' or 'sidak'")


def _power_at(
    total: float,
    effect: float,
    method: str,
    alloc: tuple[float, ...],
    pairs: list[tuple[int, int]],
    alpha: float,
    alternative: str,
) -> float:
    worst = 1.0
    for i, j in pairs:
        n1 = total * alloc[i]
        ratio = alloc[j] / alloc[i]
        if method == "t_test":
            value = ttest_power(effect, n1, alpha, ratio, alternative)
        else:
            value = normal_power(effect, n1, alpha, ratio, alternative)
        worst = min(worst, value)
    return worst


def _plan(
    baseline: float,
    mde_value: float,
    relative: bool,
    kind: str,
    sd: float | None,
    arms: int,
    allocations: Sequence[float] | None,
    comparisons: str,
    alpha: float,
    alternative: str,
    correction: str | None,
) -> tuple[float, str, tuple[float, ...], list[tuple[int, int]], float]:
    alpha = _check_prob("alpha", alpha)
    _alternative(alternative)
    effect, method = _effect(kind, baseline, mde_value, relative, sd)
    alloc = _allocations(arms, allocations)
    pairs = _pairs(arms, comparisons)
    return effect, method, alloc, pairs, _comparison_alpha(alpha, len(pairs), correction)


def power(
    n_total: float,
    *,
    baseline: float,
    mde: float,
    relative: bool = False,
    kind: str = "binomial",
    sd: float | None = None,
    alpha: float = 0.05,
    arms: int = 2,
    allocations: Sequence[float] | None = None,
    comparisons: str = "control_vs_all",
    alternative: str = "two-sided",
    correction: str | None = None,
) -> float:
    """Power (the smallest over the comparisons) with ``n_total`` units split by allocations."""
    effect, method, alloc, pairs, a = _plan(
        baseline, mde, relative, kind, sd, arms, allocations, comparisons, alpha,
        alternative, correction,
    )  # fmt: skip
    if not (isinstance(n_total, (int, float)) and math.isfinite(n_total) and n_total > 0):
        raise ConfigurationError(f"n_total={n_total!r} must be a positive number")
    return _power_at(float(n_total), effect, method, alloc, pairs, a, alternative)


def sample_size(
    baseline: float,
    mde: float,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    kind: str = "binomial",
    sd: float | None = None,
    allocations: Sequence[float] | None = None,
    comparisons: str = "control_vs_all",
    alternative: str = "two-sided",
    correction: str | None = None,
) -> SampleSize:
    """Units needed to detect ``mde`` with ``power`` (float totals; see the module docstring).

    >>> round(sample_size(baseline=0.1, mde=0.02).total)
    7669

    Raises :class:`~cognitionos.errors.ConfigurationError` when no sample size can reach the
    power (e.g. ``mde=0``, a treatment rate outside (0, 1), ``power <= alpha``, or a
    one-sided test looking the wrong way).
    """
    brentq = require("scipy.optimize").brentq
    target = _check_prob("power", power)
    effect, method, alloc, pairs, a = _plan(
        baseline, mde, relative, kind, sd, arms, allocations, comparisons, alpha,
        alternative, correction,
    )  # fmt: skip
    if effect == 0.0:
        raise ConfigurationError("mde=0 cannot be detected with any sample size")
    if (alternative == "larger" and effect < 0) or (alternative == "smaller" and effect > 0):
        raise ConfigurationError(
            f"a one-sided {alternative!r} test cannot detect an effect of sign {effect:+g}"
        )
    if target <= a:
        raise ConfigurationError(f"power={target} must exceed the per-comparison alpha={a:g}")

    def gap(total: float) -> float:
        return _power_at(total, effect, method, alloc, pairs, a, alternative) - target

    # smallest total with more than 2 units in each compared pair (t-test needs df > 0)
    lo = 3.0 / min(alloc) if method == "t_test" else 1e-9 / min(alloc)
    if gap(lo) >= 0:
        total = lo
    else:
        hi = max(lo * 2.0, 16.0)
        while gap(hi) < 0:
            hi *= 2.0
            if hi > 1e15:
                raise ConfigurationError("no sample size below 1e15 units reaches that power")
        total = float(brentq(gap, lo, hi, xtol=1e-10, rtol=1e-14, maxiter=500))
    per_arm = tuple(total * x for x in alloc)
    return SampleSize(total=total, per_arm=per_arm, allocations=alloc, effect_size=effect,
                      method=method)  # fmt: skip


def mde(
    n_total: float,
    *,
    baseline: float,
    relative: bool = False,
    kind: str = "binomial",
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    allocations: Sequence[float] | None = None,
    comparisons: str = "control_vs_all",
    alternative: str = "two-sided",
    correction: str | None = None,
    direction: int = 1,
) -> float:
    """Minimum detectable effect (absolute, or relative to ``baseline`` with ``relative``) for
    ``n_total`` units; ``direction=-1`` looks for a decrease.

    Raises :class:`~cognitionos.errors.ConfigurationError` when no effect is detectable
    (for a proportion, not even moving the rate to 0 or 1).
    """
    brentq = require("scipy.optimize").brentq
    target = _check_prob("power", power)
    if direction not in (1, -1):
        raise ConfigurationError("direction must be 1 or -1")
    if not (isinstance(n_total, (int, float)) and math.isfinite(n_total) and n_total > 0):
        raise ConfigurationError(f"n_total={n_total!r} must be a positive number")
    # the largest effect size worth searching
    if kind == "binomial":
        p1 = _check_prob("baseline", baseline)
        limit_abs = (1.0 - p1 if direction > 0 else p1) * (1.0 - 1e-12)
        limit = limit_abs / p1 if relative else limit_abs
    else:
        limit = 1e12

    def gap(size: float) -> float:
        return (
            power_fn(n_total, baseline=baseline, mde=direction * size, relative=relative,
                     kind=kind, sd=sd, alpha=alpha, arms=arms, allocations=allocations,
                     comparisons=comparisons, alternative=alternative, correction=correction)
            - target
        )  # fmt: skip

    if gap(limit) < 0:
        raise ConfigurationError(
            f"no effect is detectable with power {target} using {n_total:g} units"
        )
    return float(direction * brentq(gap, 1e-15 * max(limit, 1.0), limit, xtol=1e-14, rtol=1e-12))


power_fn = power
