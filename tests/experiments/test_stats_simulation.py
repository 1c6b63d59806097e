"""Seeded simulations of the error rates under the null (modest sizes; bigger in benchmarks).

Each (replication, look) pair is one metric of a single ``analyze`` call, so thousands of
interim analyses cost one vectorized pass.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cognitionos.experiments import ArmSummary, analyze, srm_check


def _null_streams(reps: int, looks: int, per_look: int, seed: int) -> list[ArmSummary]:
    """Summaries of two identical arms (N(10, 2^2)) at every look of every replication."""
    rng = np.random.default_rng(seed)
    out: list[ArmSummary] = []
    cum = {}
    for arm in ("A", "B"):
        x = rng.normal(10.0, 2.0, size=(reps, looks, per_look))
        cum[arm] = (np.cumsum(x.sum(axis=2), axis=1), np.cumsum((x * x).sum(axis=2), axis=1))
    for r in range(reps):
        for k in range(looks):
            n = (k + 1) * per_look
            for arm in ("A", "B"):
                s, ss = cum[arm]
                out.append(ArmSummary(arm, f"r{r}l{k}", n=n, sum=float(s[r, k]),
                                      sum_sq=float(ss[r, k])))  # fmt: skip
    return out


def _rejected_any(summaries: list[ArmSummary], reps: int, looks: int, **kw: object) -> float:
    res = analyze(summaries, correction="none", srm_min_units=10**12, **kw)  # type: ignore[arg-type]
    p = np.array([a.p_value for a in res.arms], dtype=float).reshape(reps, looks)
    return float(np.mean(np.any(p < 0.05, axis=1)))


def _mc_bound(p: float, reps: int) -> float:
    return p + 3 * math.sqrt(p * (1 - p) / reps)


@pytest.mark.parametrize(("looks", "expected"), [(5, 0.142), (10, 0.193)])
def test_naive_peeking_inflates_the_false_positive_rate(looks, expected):
    # Armitage, McPherson & Rowe (1969): 5 looks -> 0.142, 10 looks -> 0.193 at alpha 0.05
    reps = 2000
    rate = _rejected_any(_null_streams(reps, looks, 100, seed=looks), reps, looks)
    se = math.sqrt(expected * (1 - expected) / reps)
    assert abs(rate - expected) < 3.5 * se, rate


@pytest.mark.parametrize("method", ["sequential", "msprt"])
def test_sequential_stays_valid_over_100_looks(method):
    reps, looks = 300, 100
    summaries = _null_streams(reps, looks, 50, seed=7)
    rate = _rejected_any(summaries, reps, looks, method=method)
    assert rate <= _mc_bound(0.05, reps), rate
    # while the same looks with the fixed-horizon test reject far more often
    naive = _rejected_any(summaries, reps, looks, method="frequentist")
    assert naive > 0.25, naive


def test_msprt_with_explicit_tau_stays_valid():
    reps, looks = 300, 100
    rate = _rejected_any(
        _null_streams(reps, looks, 50, seed=11), reps, looks, method="msprt", msprt_tau=0.05
    )
    assert rate <= _mc_bound(0.05, reps), rate


def test_fixed_horizon_test_has_nominal_size():
    reps = 3000
    rate = _rejected_any(_null_streams(reps, 1, 200, seed=3), reps, 1)
    assert abs(rate - 0.05) < 3 * math.sqrt(0.05 * 0.95 / reps)


def test_srm_flags_1000_vs_1100():
    # chi2 = (50^2 + 50^2) / 1050 = 4.7619 on 1 df -> p = 0.02910
    expected = math.erfc(math.sqrt((2 * 50**2 / 1050) / 2))
    assert srm_check([1000, 1100], [0.5, 0.5]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.0291, abs=1e-4)
    res = analyze(
        [
            ArmSummary("A", "m", n=1000, sum=100, sum_sq=100, kind="binomial"),
            ArmSummary("B", "m", n=1100, sum=110, sum_sq=110, kind="binomial"),
        ],
        srm_threshold=0.05,
    )
    assert res.srm_detected and res.decision.action == "invalid"
    # the default threshold (0.001) does not call it a mismatch
    assert not analyze(
        [
            ArmSummary("A", "m", n=1000, sum=5, sum_sq=5),
            ArmSummary("B", "m", n=1100, sum=5, sum_sq=5),
        ]
    ).srm_detected


def test_cuped_shrinks_intervals_on_correlated_data():
    rng = np.random.default_rng(5)
    out = []
    for arm, lift in (("A", 0.0), ("B", 0.3)):
        x = rng.normal(10, 3, 5000)
        y = x + rng.normal(lift, 1, 5000)
        out.append(ArmSummary(arm, "y", n=5000, sum=y.sum(), sum_sq=(y * y).sum(),
                              pre_sum=x.sum(), pre_sum_sq=(x * x).sum(),
                              cross_sum=(x * y).sum()))  # fmt: skip
    with_cuped = analyze(out).arms[0]
    without = analyze(out, cuped=False).arms[0]
    # Var(y - x) = 1 against Var(y) = 10: intervals about sqrt(10) times narrower
    ratio = (without.ci[1] - without.ci[0]) / (with_cuped.ci[1] - with_cuped.ci[0])
    assert 2.8 < ratio < 3.5
    assert with_cuped.cuped_theta == pytest.approx(1.0, abs=0.03)
    assert with_cuped.significant and with_cuped.direction == "better"


def test_sequential_srm_is_the_bayes_factor_of_scipy_distributions():
    from scipy.stats import dirichlet_multinomial, multinomial

    from cognitionos.experiments import srm_sequential

    counts, weights = [480, 530, 990], [0.25, 0.25, 0.5]
    alpha = [100 * w for w in weights]
    bf = dirichlet_multinomial.pmf(counts, alpha, sum(counts)) / multinomial.pmf(
        counts, sum(counts), weights
    )
    assert srm_sequential(counts, weights) == pytest.approx(min(1.0, 1 / bf), rel=1e-9)


def test_sequential_srm_stays_valid_over_many_looks():
    from cognitionos.experiments import srm_sequential

    rng = np.random.default_rng(4)
    reps, looks, per_look = 400, 50, 200
    hits = 0
    for _ in range(reps):
        a = np.cumsum(rng.binomial(per_look, 0.5, size=looks))
        totals = per_look * np.arange(1, looks + 1)
        p = [srm_sequential([int(x), int(t - x)], [1, 1]) for x, t in zip(a, totals, strict=True)]
        hits += min(p) < 0.05
    assert hits / reps <= _mc_bound(0.05, reps)
    # and it does catch a real 45/55 split
    assert srm_sequential([4500, 5500], [1, 1]) < 1e-6
