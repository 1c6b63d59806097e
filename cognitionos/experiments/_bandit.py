"""Thompson-sampling bandit: next traffic weights, period-weighted analysis and regret.

A bandit changes the arm weights between periods. Pooling the units of all periods then
biases the comparison whenever the metric drifts over time (an arm that got more traffic in
a good period looks better: Simpson's paradox). :func:`bandit_report` therefore estimates
each arm's mean period by period and averages the periods with the same weights for every
arm (each period's share of all units), which removes that bias.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.experiments._summary import ArmSummary

__all__ = ["BanditPeriod", "BanditReport", "bandit_periods", "bandit_report", "thompson_weights"]


@attrs.frozen(slots=True)
class BanditPeriod:
    """One period of a bandit: the weights it ran with and what each arm saw (one metric)."""

    weights: Mapping[str, float]
    summaries: Sequence[ArmSummary]


@attrs.frozen(slots=True)
class BanditReport:
    """Period-weighted estimates, next weights and regret of a bandit run.

    ``means``/``std_errors``: period-weighted mean of each arm (and its standard error);
    ``naive_means``: the pooled means, biased when weights and the metric both move;
    ``best_probability``: posterior probability that each arm is the best (Thompson
    sampling over the period-weighted estimates), which is also ``next_weights`` after
    ``min_weight`` is applied; ``regret``: estimated units lost to inferior arms over all
    periods, sum over periods and arms of n (best mean - arm mean), in metric units.
    """

    arms: tuple[str, ...]
    means: Mapping[str, float]
    std_errors: Mapping[str, float]
    naive_means: Mapping[str, float]
    best_probability: Mapping[str, float]
    next_weights: Mapping[str, float]
    best_arm: str
    regret: float
    regret_per_period: tuple[float, ...]


def _posterior_draws(
    np: Any, rng: Any, means: Any, ses: Any, draws: int
) -> Any:  # shape (draws, arms)
    return rng.normal(means, ses, size=(draws, means.size))


def _best_probability(np: Any, samples: Any, inverse: bool) -> Any:
    best = np.argmin(samples, axis=1) if inverse else np.argmax(samples, axis=1)
    return np.bincount(best, minlength=samples.shape[1]) / samples.shape[0]


def _apply_floor(np: Any, p: Any, min_weight: float) -> Any:
    if min_weight <= 0:
        return p
    k = p.size
    if min_weight * k > 1:
        raise ConfigurationError(f"min_weight={min_weight} is too large for {k} arms")
    return min_weight + (1 - min_weight * k) * p


def thompson_weights(
    summaries: Sequence[ArmSummary],
    *,
    draws: int = 10_000,
    seed: int | None = None,
    min_weight: float = 0.0,
    inverse: bool = False,
) -> dict[str, float]:
    """Thompson-sampling weights: the posterior probability that each arm is the best.

    Binomial arms use Beta(1 + conversions, 1 + failures) posteriors; other kinds a normal
    posterior N(mean, var / n) (arms with n < 2 get an uninformative spread). ``min_weight``
    keeps every arm explored; ``inverse`` means lower is better.
    """
    np = require("numpy", purpose="bandit weights")
    arms = _one_metric(summaries)
    if not (isinstance(draws, int) and draws >= 100):
        raise ConfigurationError(f"draws={draws!r} must be an integer >= 100")
    rng = np.random.default_rng(seed)
    if summaries[0].kind == "binomial":
        a = np.array([1.0 + s.sum for s in summaries])
        b = np.array([1.0 + s.n - s.sum for s in summaries])
        samples = rng.beta(a, b, size=(draws, len(summaries)))
    else:
        means, ses = _means_and_ses(np, summaries)
        samples = _posterior_draws(np, rng, means, ses, draws)
    p = _apply_floor(np, _best_probability(np, samples, inverse), min_weight)
    return dict(zip(arms, p.tolist(), strict=True))


def _one_metric(summaries: Sequence[ArmSummary]) -> list[str]:
    if not summaries:
        raise ConfigurationError("a bandit needs at least one arm")
    if any(not isinstance(s, ArmSummary) for s in summaries):
        raise ConfigurationError("bandit input must be ArmSummary objects")
    if len({s.metric for s in summaries}) != 1 or len({s.kind for s in summaries}) != 1:
        raise ConfigurationError("bandit summaries must all be of one metric and kind")
    arms = [s.arm for s in summaries]
    if len(set(arms)) != len(arms):
        raise ConfigurationError(f"duplicate arms in bandit summaries: {arms}")
    if summaries[0].kind == "ratio":
        raise ConfigurationError("ratio metrics are not supported by the bandit")
    return arms


def _means_and_ses(np: Any, summaries: Sequence[ArmSummary]) -> tuple[Any, Any]:
    n = np.array([float(s.n) for s in summaries])
    total = np.array([s.sum for s in summaries])
    sq = np.array([s.sum_sq for s in summaries])
    binomial = summaries[0].kind == "binomial"
    with np.errstate(all="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), 0.0)
        if binomial:
            var = mean * (1 - mean)
        else:
            var = np.where(n > 1, (sq - total * total / np.maximum(n, 1)) / np.maximum(n - 1, 1), 0)
        se = np.sqrt(np.maximum(var, 0) / np.maximum(n, 1))
    # arms without enough data: a spread wide enough to keep them explored
    spread = max(float(np.max(np.abs(mean))), 1.0) * 10.0
    se = np.where((n < 2) | (se <= 0), spread, se)
    return mean, se


def bandit_periods(
    experiment: Any, summaries_per_phase: Sequence[Sequence[ArmSummary]]
) -> list[BanditPeriod]:
    """The periods of :func:`bandit_report` from an experiment's phase log: phase i's
    weights (``experiment.phases[i].weights``) with ``summaries_per_phase[i]`` (what each arm
    saw during that phase, one metric). One list of summaries per phase, in phase order."""
    phases = list(getattr(experiment, "phases", None) or [])
    if len(phases) != len(summaries_per_phase):
        raise ConfigurationError(
            f"experiment {getattr(experiment, 'key', '?')!r} has {len(phases)} phases, "
            f"got summaries for {len(summaries_per_phase)}"
        )
    return [
        BanditPeriod(dict(phase.weights), list(summaries))
        for phase, summaries in zip(phases, summaries_per_phase, strict=True)
    ]


def bandit_report(
    periods: Sequence[BanditPeriod],
    *,
    draws: int = 20_000,
    seed: int | None = None,
    min_weight: float = 0.0,
    inverse: bool = False,
) -> BanditReport:
    """Analyze a bandit run from its log of periods (weights and per-arm summaries)."""
    np = require("numpy", purpose="bandit analysis")
    if not periods:
        raise ConfigurationError("bandit_report needs at least one period")
    arm_order: list[str] = []
    for period in periods:
        if not isinstance(period, BanditPeriod):
            raise ConfigurationError("periods must be BanditPeriod objects")
        names = _one_metric(period.summaries)
        if set(period.weights) != set(names):
            raise ConfigurationError(
                f"period weights {sorted(period.weights)} do not match its arms {sorted(names)}"
            )
        if any(
            not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0)
            for w in period.weights.values()
        ):
            raise ConfigurationError("period weights must be non-negative numbers")
        arm_order.extend(a for a in names if a not in arm_order)
    metrics = {s.metric for p in periods for s in p.summaries}
    if len(metrics) != 1:
        raise ConfigurationError(f"all periods must report the same metric, got {sorted(metrics)}")
    k = len(arm_order)
    t = len(periods)
    n = np.zeros((t, k))
    mean = np.zeros((t, k))
    se = np.zeros((t, k))
    for i, period in enumerate(periods):
        m, s = _means_and_ses(np, period.summaries)
        for j, summ in enumerate(period.summaries):
            col = arm_order.index(summ.arm)
            n[i, col], mean[i, col], se[i, col] = summ.n, m[j], s[j]
    share = n.sum(axis=1) / n.sum()  # each period's share of all units, the same for every arm
    seen = n > 0
    with np.errstate(all="ignore"):
        w = np.where(seen, share[:, None], 0.0)
        w = w / w.sum(axis=0, keepdims=True)
        est = np.nansum(np.where(seen, w * mean, 0.0), axis=0)
        est_se = np.sqrt(np.nansum(np.where(seen, (w * se) ** 2, 0.0), axis=0))
        pooled = np.where(n.sum(axis=0) > 0, (n * mean).sum(axis=0) / n.sum(axis=0), np.nan)
    if not seen.any(axis=0).all():
        missing = [a for a, ok in zip(arm_order, seen.any(axis=0), strict=True) if not ok]
        raise ConfigurationError(f"arms without any units in any period: {missing}")
    rng = np.random.default_rng(seed)
    samples = _posterior_draws(np, rng, est, est_se, draws)
    best_p = _best_probability(np, samples, inverse)
    next_w = _apply_floor(np, best_p, min_weight)
    best = int(np.argmin(est) if inverse else np.argmax(est))
    gap = (est - est[best]) if inverse else (est[best] - est)
    per_period = (n * gap).sum(axis=1)
    return BanditReport(
        arms=tuple(arm_order),
        means=dict(zip(arm_order, est.tolist(), strict=True)),
        std_errors=dict(zip(arm_order, est_se.tolist(), strict=True)),
        naive_means=dict(zip(arm_order, pooled.tolist(), strict=True)),
        best_probability=dict(zip(arm_order, best_p.tolist(), strict=True)),
        next_weights=dict(zip(arm_order, next_w.tolist(), strict=True)),
        best_arm=arm_order[best],
        regret=float(per_period.sum()),
        regret_per_period=tuple(per_period.tolist()),
    )
