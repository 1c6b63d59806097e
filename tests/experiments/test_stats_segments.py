"""Effect over time, breakdowns, interaction check and percentile winsorization, each
checked against statsmodels / numpy computed here from the raw per-unit data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import (
    ArmSummary,
    analyze_breakdown,
    effect_series,
    interaction_check,
    winsorized_summaries,
)

sm_ws = pytest.importorskip("statsmodels.stats.weightstats", reason="statsmodels (peers) missing")
sm_mt = pytest.importorskip("statsmodels.stats.multitest")
sm_api = pytest.importorskip("statsmodels.api")
pytestmark = pytest.mark.peers


def _summary(arm: str, metric: str, y: np.ndarray) -> ArmSummary:
    return ArmSummary(arm, metric, n=int(y.size), sum=float(y.sum()), sum_sq=float((y * y).sum()))


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(effect, p-value) of b - a by statsmodels' Welch t-test."""
    cm = sm_ws.CompareMeans(sm_ws.DescrStatsW(b), sm_ws.DescrStatsW(a))
    _t, p, _df = cm.ttest_ind(usevar="unequal")
    return float(b.mean() - a.mean()), float(p)


def test_daily_and_cumulative_series_match_welch_tests_on_the_raw_units():
    rng = np.random.default_rng(3)
    days = {}
    raw: dict[int, dict[str, np.ndarray]] = {}
    for d in range(5):
        # a novelty effect: large on day 0, fading to nothing
        a = rng.normal(10, 3, 300 + 40 * d)
        b = rng.normal(10 + 2.0 / (d + 1) ** 2, 3, 280 + 50 * d)
        raw[d] = {"A": a, "B": b}
        days[d] = [_summary("A", "y", a), _summary("B", "y", b)]
    series = effect_series(days, correction="none")
    assert [p.period for p in series] == list(range(5))
    for d, point in enumerate(series):
        eff, p = _welch(raw[d]["A"], raw[d]["B"])
        arm = point.daily.arms[0]
        assert arm.effect_abs == pytest.approx(eff, rel=1e-9)
        assert arm.p_value == pytest.approx(p, rel=1e-7)
        cum_a = np.concatenate([raw[k]["A"] for k in range(d + 1)])
        cum_b = np.concatenate([raw[k]["B"] for k in range(d + 1)])
        eff_c, p_c = _welch(cum_a, cum_b)
        c = point.cumulative.arms[0]
        assert c.effect_abs == pytest.approx(eff_c, rel=1e-9)
        assert c.p_value == pytest.approx(p_c, rel=1e-7)
        assert c.n == cum_b.size and c.control_n == cum_a.size
    # the novelty shows as a falling daily effect
    daily = [p.daily.arms[0].effect_abs for p in series]
    assert daily[0] > 1.0 and daily[-1] < 0.6


def test_breakdown_corrects_across_segments_like_statsmodels():
    rng = np.random.default_rng(11)
    segments = {}
    raw_p = []
    for i, country in enumerate(["NL", "DE", "FR", "US", "JP", "BR"]):
        a = rng.normal(5, 2, 400)
        b = rng.normal(5 + (0.5 if i == 0 else 0.0), 2, 400)
        segments[country] = [_summary("A", "y", a), _summary("B", "y", b)]
        raw_p.append(_welch(a, b)[1])
    out = analyze_breakdown(segments, correction="holm")
    expected = sm_mt.multipletests(raw_p, method="holm")[1]
    got = [out[c].arms[0].p_value_adjusted for c in segments]
    assert got == pytest.approx(list(expected), rel=1e-9)
    assert [out[c].arms[0].p_value for c in segments] == pytest.approx(raw_p, rel=1e-7)
    for c in segments:
        arm = out[c].arms[0]
        assert arm.significant == (arm.p_value_adjusted < 0.05)
        assert out[c].metric("y").arms[0].p_value_adjusted == arm.p_value_adjusted
    bh = analyze_breakdown(segments, correction="bh")
    assert [bh[c].arms[0].p_value_adjusted for c in segments] == pytest.approx(
        list(sm_mt.multipletests(raw_p, method="fdr_bh")[1]), rel=1e-9
    )


def test_interaction_check_equals_ols_with_an_interaction_term_and_hc2_errors():
    rng = np.random.default_rng(5)
    ys, xa, xb = [], [], []
    cells = {}
    for ia, arm_a in enumerate(["a0", "a1"]):
        for ib, arm_b in enumerate(["b0", "b1"]):
            n = 300 + 70 * ia + 30 * ib
            # A's effect is 1.0 without B's treatment and 2.5 with it: interaction 1.5
            mu = 10 + 1.0 * ia + 0.5 * ib + 1.5 * ia * ib
            y = rng.normal(mu, 2 + ia + ib, n)
            cells[(arm_a, arm_b)] = _summary(arm_a, "y", y)
            ys.append(y)
            xa.append(np.full(n, ia))
            xb.append(np.full(n, ib))
    y, a, b = np.concatenate(ys), np.concatenate(xa), np.concatenate(xb)
    design = np.column_stack([np.ones_like(y), a, b, a * b])
    fit = sm_api.OLS(y, design).fit(cov_type="HC2")
    res = interaction_check(cells)
    assert res.interaction == pytest.approx(fit.params[3], rel=1e-9)
    assert res.std_error == pytest.approx(fit.bse[3], rel=1e-9)
    assert res.p_value == pytest.approx(fit.pvalues[3], rel=1e-6, abs=1e-300)
    assert res.detected
    lo, hi = fit.conf_int(0.05)[3]
    assert res.ci == pytest.approx((lo, hi), rel=1e-9)


def test_interaction_check_rejects_other_shapes():
    s = ArmSummary("a0", "y", n=10, sum=5, sum_sq=5)
    with pytest.raises(ConfigurationError, match="2 x 2"):
        interaction_check({("a0", "b0"): s, ("a1", "b0"): s})


@pytest.mark.parametrize(
    ("lower", "upper", "nonzero"), [(None, 0.99, False), (0.05, 0.95, False), (None, 0.9, True)]
)
def test_percentile_winsorization_uses_one_pooled_threshold(lower, upper, nonzero):
    rng = np.random.default_rng(2)
    units = {
        "A": np.where(rng.random(2000) < 0.7, 0.0, rng.lognormal(3, 1.2, 2000)),
        "B": np.where(rng.random(1800) < 0.7, 0.0, rng.lognormal(3.1, 1.2, 1800)),
    }
    summaries, (lo, hi) = winsorized_summaries(
        units, "revenue", lower=lower, upper=upper, nonzero_only=nonzero
    )
    pooled = np.concatenate([units["A"], units["B"]])
    basis = pooled[pooled != 0] if nonzero else pooled
    # reference: numpy percentiles (linear interpolation) of the pooled values
    exp_hi = np.percentile(basis, 100 * upper)
    exp_lo = None if lower is None else np.percentile(basis, 100 * lower)
    assert hi == pytest.approx(exp_hi, rel=1e-12)
    assert (lo is None) == (exp_lo is None) and (lo is None or lo == pytest.approx(exp_lo))
    for s in summaries:
        v = units[s.arm]
        ref = np.minimum(v, exp_hi)
        if exp_lo is not None:
            ref = np.maximum(ref, exp_lo)
        if nonzero:
            ref = np.where(v == 0, 0.0, ref)
        assert s.n == v.size
        assert s.sum == pytest.approx(ref.sum(), rel=1e-12)
        assert s.sum_sq == pytest.approx((ref * ref).sum(), rel=1e-12)
    # capping shrinks the variance of the heavy tail
    raw_var = np.var(units["A"], ddof=1)
    capped = summaries[0]
    assert (capped.sum_sq - capped.sum**2 / capped.n) / (capped.n - 1) < raw_var


def test_winsorization_bad_input():
    with pytest.raises(ConfigurationError, match="upper"):
        winsorized_summaries({"A": [1.0]}, "m", upper=1.5)
    with pytest.raises(ConfigurationError, match="finite"):
        winsorized_summaries({"A": [1.0, math.nan]}, "m")
