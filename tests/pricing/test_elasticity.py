"""Elasticity estimators: statsmodels agreement, coverage on simulated data, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import estimate_elasticity, segment_elasticities


def simulate(seed, n=400, elasticity=-1.8, endogenous=False):
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0.5, 1.5, n)
    promo = rng.integers(0, 2, n).astype(float)
    store = rng.integers(0, 4, n)
    demand_shock = rng.normal(0, 0.3, n)
    log_p = 1.0 + 0.8 * cost + (0.5 * demand_shock if endogenous else 0) + rng.normal(0, 0.2, n)
    log_q = 3.0 + elasticity * log_p + 0.4 * promo + 0.1 * store + demand_shock
    return np.exp(log_p), np.exp(log_q), cost, promo, store


def test_recovers_known_elasticity_with_nominal_coverage():
    covered = 0
    runs = 200
    for seed in range(runs):
        p, q, _, promo, store = simulate(seed, n=200)
        e = estimate_elasticity(p, q, controls={"promo": promo}, fixed_effects=store)
        covered += e.ci_low <= -1.8 <= e.ci_high
    # 95% nominal: 200 runs give 190 +- 3 sd ~ 9; allow a generous band
    assert 178 <= covered <= 199


def test_iv_fixes_endogenous_prices_where_ols_is_biased():
    p, q, cost, promo, store = simulate(7, n=3000, endogenous=True)
    ols = estimate_elasticity(p, q, controls={"promo": promo}, fixed_effects=store)
    iv = estimate_elasticity(
        p,
        q,
        controls={"promo": promo},
        fixed_effects=store,
        method="iv",
        instruments={"cost": cost},
    )
    assert not (ols.ci_low <= -1.8 <= ols.ci_high)  # the demand shock biases OLS upward
    assert iv.ci_low <= -1.8 <= iv.ci_high
    assert iv.first_stage_f > 100


def test_lerner_textbook_and_bootstrap():
    p, q, *_ = simulate(3, n=300)
    e = estimate_elasticity(p, q, bootstrap=300, seed=1)
    lo, hi = e.bootstrap_ci
    assert lo < e.estimate < hi
    assert abs((hi - lo) - (e.ci_high - e.ci_low)) < 0.5 * (e.ci_high - e.ci_low)


def test_segments_get_their_own_elasticity():
    p1, q1, *_ = simulate(1, n=300, elasticity=-1.2)
    p2, q2, *_ = simulate(2, n=300, elasticity=-2.5)
    out = segment_elasticities(np.r_[p1, p2], np.r_[q1, q2], ["a"] * 300 + ["b"] * 300)
    assert out["a"].ci_low <= -1.2 <= out["a"].ci_high
    assert out["b"].ci_low <= -2.5 <= out["b"].ci_high


@pytest.mark.parametrize(
    ("prices", "quantities", "kwargs", "message"),
    [
        ([1, 2, 0, 3], [1, 2, 3, 4], {}, "non-positive at row 2"),
        ([2, 2, 2, 2], [1, 2, 3, 4], {}, "prices are constant"),
        ([1, 2, 3, 4], [1, 0, 3, 4], {}, "quantities are 0 at row 1"),
        ([1, 2, 3, 4], [1, -1, 3, 4], {}, "negative at row 1"),
        ([1, 2, 3, 4], [1, 2, 3, 4], {"method": "iv"}, "at least one instrument"),
        ([1, 2, 3, 4], [1, 2, 3, 4], {"method": "ols"}, "method must be"),
        (
            [1, 2, 3, 4, 5],
            [1, 2, 3, 4, 5],
            {"controls": {"dup": [0, 1, 2, 3, 4]}, "fixed_effects": None},
            None,
        ),
    ],
)
def test_bad_input_is_named(prices, quantities, kwargs, message):
    if message is None:
        estimate_elasticity(prices, quantities, **kwargs)  # a varying control is fine
        return
    with pytest.raises(ConfigurationError, match=message):
        estimate_elasticity(prices, quantities, **kwargs)


def test_collinear_control_is_named():
    p = np.array([1.0, 2, 3, 4, 5, 6])
    with pytest.raises(ConfigurationError, match="'lp' is collinear"):
        estimate_elasticity(p, p * 2, controls={"lp": np.log(p) * 3})


def test_zero_quantities_can_be_dropped():
    e = estimate_elasticity([1, 2, 3, 4, 5], [5, 0, 3, 2, 1.5], zero_quantities="drop")
    assert e.dropped_zero_quantities == 1 and e.n == 4


# -- differential against statsmodels ---------------------------------------------------------
sm = None
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        import statsmodels.api as sm
        from statsmodels.sandbox.regression.gmm import IV2SLS
    except ImportError:  # pragma: no cover - the peers extra is not installed
        sm = None


needs_sm = pytest.mark.skipif(sm is None, reason="statsmodels (peers extra) not installed")


@needs_sm
@pytest.mark.peers
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(20, 300), robust=st.booleans())
def test_ols_matches_statsmodels(seed, n, robust):
    p, q, _, promo, store = simulate(seed, n=n)
    ours = estimate_elasticity(p, q, controls={"promo": promo}, fixed_effects=store, robust=robust)
    dummies = np.column_stack([(store == k).astype(float) for k in np.unique(store)[1:]])
    X = np.column_stack([np.ones(n), np.log(p), promo, dummies])
    fit = sm.OLS(np.log(q), X).fit(cov_type="HC1" if robust else "nonrobust")
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-9, abs=1e-12)
    assert ours.std_error == pytest.approx(fit.bse[1], rel=1e-8)
    if not robust:  # statsmodels' robust intervals use the normal, ours Student's t
        lo, hi = fit.conf_int(0.05)[1]
        assert ours.ci_low == pytest.approx(lo, rel=1e-8)
        assert ours.ci_high == pytest.approx(hi, rel=1e-8)
        assert ours.r_squared == pytest.approx(fit.rsquared, rel=1e-9)


@needs_sm
@pytest.mark.peers
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(30, 300))
def test_2sls_matches_statsmodels(seed, n):
    p, q, cost, promo, _ = simulate(seed, n=n, endogenous=True)
    ours = estimate_elasticity(
        p, q, controls={"promo": promo}, method="iv", instruments={"cost": cost}
    )
    X = np.column_stack([np.ones(n), np.log(p), promo])
    Z = np.column_stack([np.ones(n), promo, cost])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = IV2SLS(np.log(q), X, Z).fit()
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-8)
    assert ours.std_error == pytest.approx(fit.bse[1], rel=1e-7)
    first = sm.OLS(np.log(p), Z).fit()
    f_test = first.f_test(np.array([[0.0, 0.0, 1.0]]))
    assert ours.first_stage_f == pytest.approx(float(np.squeeze(f_test.fvalue)), rel=1e-8)
    # one endogenous regressor: Cragg-Donald's minimum eigenvalue is that same F
    assert ours.cragg_donald == pytest.approx(float(np.squeeze(f_test.fvalue)), rel=1e-8)


@needs_sm
@pytest.mark.peers
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(20, 300))
def test_price_varying_elasticity_matches_statsmodels(seed, n):
    p, q, _, promo, _ = simulate(seed, n=n)
    ours = estimate_elasticity(p, q, controls={"promo": promo}, varying=True)
    lp = np.log(p) - np.log(p).mean()
    fit = sm.OLS(np.log(q), np.column_stack([np.ones(n), lp, lp**2, promo])).fit()
    assert ours.estimate == pytest.approx(fit.params[1], rel=1e-8, abs=1e-10)
    assert ours.std_error == pytest.approx(fit.bse[1], rel=1e-7)
    assert ours.curvature == pytest.approx(2 * fit.params[2], rel=1e-8, abs=1e-10)
    price = float(np.exp(np.log(p).mean() + 0.25))
    assert ours.at(price) == pytest.approx(fit.params[1] + 2 * fit.params[2] * 0.25, abs=1e-9)


def test_price_varying_elasticity_recovers_a_known_curve():
    rng = np.random.default_rng(3)
    lp = rng.uniform(0.0, 1.5, 4000)
    center = lp.mean()
    # elasticity -2 at the mean log price, falling by 1 per unit of log price
    lq = 5 - 2.0 * (lp - center) - 0.5 * (lp - center) ** 2 + rng.normal(0, 0.05, lp.size)
    e = estimate_elasticity(np.exp(lp), np.exp(lq), varying=True)
    assert e.estimate == pytest.approx(-2.0, abs=0.01)
    assert e.curvature == pytest.approx(-1.0, abs=0.05)
    assert e.at(float(np.exp(center + 0.5))) == pytest.approx(-2.5, abs=0.05)
    constant = estimate_elasticity(np.exp(lp), np.exp(lq))
    assert constant.at(1.0) == constant.at(4.0) == constant.estimate


def test_price_varying_elasticity_refuses_iv_and_bad_prices():
    p, q, cost, _promo, _ = simulate(1, n=100, endogenous=True)
    with pytest.raises(ConfigurationError, match="varying=True needs method='loglog'"):
        estimate_elasticity(p, q, method="iv", instruments={"cost": cost}, varying=True)
    e = estimate_elasticity(p, q, varying=True)
    with pytest.raises(ConfigurationError, match="price must be"):
        e.at(0)
