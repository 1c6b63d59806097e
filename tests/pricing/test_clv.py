"""CLV models against the published CDNOW / donations results and independent likelihoods."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    ConvergenceWarning,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    customer_lifetime_value,
)


@pytest.fixture(scope="module")
def bgnbd(cdnow):
    return BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


# -- independent likelihoods (plain math, one customer at a time, no shared code) ----------
def naive_bgnbd_ll(r, alpha, a, b, x, tx, T):
    lb = math.lgamma
    total = 0.0
    for xi, ti, Ti in zip(x, tx, T, strict=True):
        beta_ratio = math.exp(lb(a) + lb(b + xi) - lb(a + b + xi) - (lb(a) + lb(b) - lb(a + b)))
        gam = math.exp(lb(r + xi) - lb(r)) * alpha**r
        like = beta_ratio * gam / (alpha + Ti) ** (r + xi)
        if xi > 0:
            like += beta_ratio * gam * (a / (b + xi - 1)) / (alpha + ti) ** (r + xi)
        total += math.log(like)
    return total


def naive_gg_ll(p, q, v, x, m):
    total = 0.0
    for xi, mi in zip(x, m, strict=True):
        total += (
            math.lgamma(p * xi + q)
            - math.lgamma(p * xi)
            - math.lgamma(q)
            + q * math.log(v)
            + (p * xi - 1) * math.log(mi)
            + p * xi * math.log(xi)
            - (p * xi + q) * math.log(v + mi * xi)
        )
    return total


def naive_pareto_ll(r, alpha, s, beta, x, tx, T):
    """The untransformed FHL formula with scipy's hyp2f1 (fine at CDNOW's parameters)."""
    from scipy.special import hyp2f1

    total = 0.0
    for xi, ti, Ti in zip(x, tx, T, strict=True):
        if alpha >= beta:
            big, b2 = alpha, s + 1
            z = lambda t, big=big: (alpha - beta) / (big + t)  # noqa: E731
        else:
            big, b2 = beta, r + xi
            z = lambda t, big=big: (beta - alpha) / (big + t)  # noqa: E731
        c = r + s + xi
        a0 = (
            hyp2f1(c, b2, c + 1, z(ti)) / (big + ti) ** c
            - hyp2f1(c, b2, c + 1, z(Ti)) / (big + Ti) ** c
        )
        head = math.exp(math.lgamma(r + xi) - math.lgamma(r)) * alpha**r * beta**s
        like = head * (1 / ((alpha + Ti) ** (r + xi) * (beta + Ti) ** s) + s / (r + s + xi) * a0)
        total += math.log(like)
    return total


# -- BG/NBD ---------------------------------------------------------------------------------
def test_bgnbd_reproduces_fader_hardie_lee(bgnbd, clv_reference):
    ref = clv_reference["bg_nbd_cdnow"]
    assert bgnbd.converged
    assert bgnbd.log_likelihood == pytest.approx(ref["loglik_computed_here_at_mle"], abs=1e-3)
    assert round(bgnbd.log_likelihood, 1) == ref["loglik_published"]
    for name, value in ref["params_mle_computed_here"].items():
        assert bgnbd.params[name] == pytest.approx(value, abs=1e-4)
    for name, value in ref["params_published"].items():
        assert round(bgnbd.params[name], 3) == value


def test_bgnbd_predictions_match_hardie_sheet(bgnbd, clv_reference):
    ref = clv_reference["bg_nbd_cdnow"]
    c = ref["conditional_expected_purchases"]
    got = bgnbd.conditional_expected_purchases(c["t"], c["x"], c["t_x"], c["T"])
    assert got[0] == pytest.approx(c["expected"], abs=c["tolerance_abs"])
    alive = ref["conditional_probability_alive_computed_here"]
    assert bgnbd.probability_alive(alive["x"], alive["t_x"], alive["T"])[0] == pytest.approx(
        alive["p_alive"], abs=1e-4
    )
    u = ref["unconditional_expected_purchases"]
    np.testing.assert_allclose(
        bgnbd.unconditional_expected_purchases(u["t"]), u["expected"], atol=u["tolerance_abs"]
    )


def test_bgnbd_pmf_matches_btyd(clv_reference):
    ref = clv_reference["bg_nbd_cdnow"]["prob_n_purchases_given_params"]
    m = BetaGeoModel.from_params(**ref["params"])
    tol = ref["tolerance_abs"]
    assert m.probability_of_purchases(2, 10) == pytest.approx(ref["P(X(2)=10)"], abs=tol)
    assert m.probability_of_purchases(39, 0) == pytest.approx(ref["P(X(39)=0)"], abs=tol)
    np.testing.assert_allclose(
        m.probability_of_purchases(30, np.arange(11, 21)), ref["P(X(30)=n) for n=11..20"], atol=tol
    )


def test_bgnbd_pmf_sums_to_one():
    m = BetaGeoModel.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    total = m.probability_of_purchases(10, np.arange(0, 200)).sum()
    assert total == pytest.approx(1.0, abs=1e-9)
    # and the pmf's mean is the unconditional expectation
    mean = (np.arange(200) * m.probability_of_purchases(10, np.arange(200))).sum()
    assert mean == pytest.approx(m.unconditional_expected_purchases(10), rel=1e-8)


def test_bgnbd_standard_errors_from_the_hessian(bgnbd, cdnow):
    se = bgnbd.standard_errors
    assert all(math.isfinite(v) and v > 0 for v in se.values())
    # independent check: invert a finite-difference Hessian of the naive likelihood in r
    p = bgnbd.params
    h = 1e-4
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    idx = np.argsort(cdnow["ID"])[:]
    f = lambda **kw: naive_bgnbd_ll(**{**p, **kw}, x=x[idx], tx=tx[idx], T=T[idx])  # noqa: E731
    d2 = (f(r=p["r"] + h) - 2 * f() + f(r=p["r"] - h)) / h**2
    # the marginal SE is >= 1/sqrt(-d2) (equality only without correlation)
    assert se["r"] >= 1 / math.sqrt(-d2) * 0.999
    assert se["r"] < 0.1


def test_bgnbd_expectations_are_continuous_at_a_equal_one():
    # (a+b-1)/(a-1) is a removable singularity: a = 1 must sit between its neighbours
    def model(a):
        return BetaGeoModel.from_params(r=0.5, alpha=5.0, a=a, b=2.0)

    def cond(a):
        return model(a).conditional_expected_purchases(10, [0, 3], [0, 12], [20, 20])

    below, at, above = cond(1 - 1e-3), cond(1.0), cond(1 + 1e-3)
    assert np.all(np.isfinite(at))
    np.testing.assert_allclose(at, (below + above) / 2, rtol=1e-6)
    u = model(1.0).unconditional_expected_purchases(10)
    lo = model(0.999).unconditional_expected_purchases(10)
    hi = model(1.001).unconditional_expected_purchases(10)
    assert u == pytest.approx((lo + hi) / 2, rel=1e-6)


def test_bgnbd_expectations_at_a_plus_b_equal_one():
    # c = a + b - 1 = 0 for x = 0: c * 2F1(.; c; z) tends to a finite limit
    def cond(b):
        m = BetaGeoModel.from_params(r=1.0, alpha=1.0, a=0.5, b=b)
        return m.conditional_expected_purchases(1.0, [0, 2], [0, 5], [20, 20]), (
            m.unconditional_expected_purchases(3.0)
        )

    (c_at, u_at), (c_lo, u_lo), (c_hi, u_hi) = cond(0.5), cond(0.5 - 1e-4), cond(0.5 + 1e-4)
    assert np.all(np.isfinite(c_at)) and np.isfinite(u_at)
    np.testing.assert_allclose(c_at, (c_lo + c_hi) / 2, rtol=1e-5)
    assert u_at == pytest.approx((u_lo + u_hi) / 2, rel=1e-5)


def test_bgnbd_no_purchase_probability_and_one_time_buyers(bgnbd):
    from cognitionos.pricing import OneTimeBuyerWarning

    with pytest.warns(OneTimeBuyerWarning, match="1 customer"):
        alive = bgnbd.probability_alive([0, 5], [0, 10], [30, 30])
    assert alive[0] == 1.0  # the BG/NBD assumption the warning names
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # repeat buyers only: no warning
        assert bgnbd.probability_alive([5], [10], [30])[0] < 1
    silent = bgnbd.probability_no_purchase(10, [0, 5], [0, 10], [30, 30])
    assert np.all((silent > 0) & (silent < 1))
    # P(no purchase in 0 time) is 1
    assert bgnbd.probability_no_purchase(0, [3], [20], [30])[0] == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(0.05, 5),
    alpha=st.floats(0.5, 50),
    a=st.floats(0.1, 5),
    b=st.floats(0.2, 10),
    seed=st.integers(0, 10_000),
)
def test_bgnbd_loglik_equals_naive_formula(r, alpha, a, b, seed):
    rng = np.random.default_rng(seed)
    T = rng.uniform(5, 40, 30)
    x = rng.integers(0, 8, 30).astype(float)
    tx = np.where(x > 0, rng.uniform(0.1, 1, 30) * T, 0.0)
    ours = BetaGeoModel._ll_rows(np.array([[r, alpha, a, b]]), x, tx, T).sum()
    assert ours == pytest.approx(naive_bgnbd_ll(r, alpha, a, b, x, tx, T), rel=1e-9)
    grad = BetaGeoModel._grad(np.array([r, alpha, a, b]), x, tx, T, np.ones(30))
    for i, name in enumerate(["r", "alpha", "a", "b"]):
        p = {"r": r, "alpha": alpha, "a": a, "b": b}
        h = 1e-6 * p[name]
        up = naive_bgnbd_ll(**{**p, name: p[name] + h}, x=x, tx=tx, T=T)
        down = naive_bgnbd_ll(**{**p, name: p[name] - h}, x=x, tx=tx, T=T)
        assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-5)


def test_weights_equal_repeated_rows(cdnow):
    x, tx, T = cdnow["frequency"][:300], cdnow["recency"][:300], cdnow["T"][:300]
    doubled = BetaGeoModel().fit(np.r_[x, x], np.r_[tx, tx], np.r_[T, T])
    weighted = BetaGeoModel().fit(x, tx, T, weights=np.full(300, 2.0))
    for k, v in doubled.params.items():
        assert weighted.params[k] == pytest.approx(v, rel=1e-5)


def test_penalizer_shrinks_parameters(cdnow):
    plain = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    shrunk = BetaGeoModel(penalizer=0.1).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert sum(v * v for v in shrunk.params.values()) < sum(v * v for v in plain.params.values())
    assert shrunk.log_likelihood < plain.log_likelihood


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(0.05, 5),
    alpha=st.floats(0.5, 50),
    a=st.floats(0.1, 5),
    b=st.floats(0.2, 10),
    modified=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_bg_table_value_and_gradient_equal_naive_formula(r, alpha, a, b, modified, seed):
    # the fit's one-pass value+gradient (cumulative-sum tables over integer frequencies)
    from cognitionos.pricing._clv import _bg_value_and_gradient

    rng = np.random.default_rng(seed)
    T = rng.uniform(5, 40, 25)
    x = rng.integers(0, 60, 25).astype(float)
    x[:5] = 0.0
    tx = np.where(x > 0, rng.uniform(0.1, 1, 25) * T, 0.0)
    w = rng.integers(1, 4, 25).astype(float)
    naive = naive_mbg_ll if modified else naive_bgnbd_ll

    def total(q):
        return sum(
            wi * naive(*q, x[i : i + 1], tx[i : i + 1], T[i : i + 1]) for i, wi in enumerate(w)
        )

    p = np.array([r, alpha, a, b])
    value, grad = _bg_value_and_gradient(p, x.astype(np.int64), tx, T, w, modified)
    assert value == pytest.approx(total(p), rel=1e-9)
    for i in range(4):
        h = p[i] * 1e-6
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        assert grad[i] == pytest.approx((total(up) - total(down)) / (2 * h), rel=1e-5, abs=1e-3)


def test_bg_fit_without_tables_is_the_same_fit(cdnow, monkeypatch):
    import cognitionos.pricing._clv as clv

    with_tables = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    monkeypatch.setattr(clv, "_TABLE_MAX", 0)  # as for frequencies too large to tabulate
    plain = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert plain.log_likelihood == pytest.approx(with_tables.log_likelihood, abs=1e-8)
    for name, value in with_tables.params.items():
        assert plain.params[name] == pytest.approx(value, rel=1e-6)


# -- MBG/NBD ---------------------------------------------------------------------------------
def naive_mbg_ll(r, alpha, a, b, x, tx, T):
    """Batislam et al. (2007) likelihood, one customer at a time in plain floats."""
    total = 0.0
    for xi, ti, Ti in zip(x, tx, T, strict=True):
        beta_ratio = math.exp(
            math.lgamma(a + b)
            + math.lgamma(b + xi + 1)
            - math.lgamma(b)
            - math.lgamma(a + b + xi + 1)
        )
        nbd = math.exp(math.lgamma(r + xi) - math.lgamma(r)) * alpha**r
        like = (
            beta_ratio
            * nbd
            * ((alpha + Ti) ** -(r + xi) + a / (b + xi) * (alpha + ti) ** -(r + xi))
        )
        total += math.log(like)
    return total


def test_mbgnbd_reproduces_btydplus_fit(cdnow, clv_reference):
    ref = clv_reference["modified_bg_nbd_cdnow"]["params"]
    m = ModifiedBetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert m.converged and m.fit_result.standard_errors_valid
    for name, value in ref.items():  # the reference is rounded to 3 decimals
        assert m.params[name] == pytest.approx(value, abs=1.5e-3)
    # the dropout at time zero buys a little likelihood over BG/NBD on the same data
    bg = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert m.log_likelihood > bg.log_likelihood


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(0.05, 5),
    alpha=st.floats(0.5, 50),
    a=st.floats(0.1, 5),
    b=st.floats(0.2, 10),
    seed=st.integers(0, 10_000),
)
def test_mbgnbd_loglik_and_gradient_equal_naive_formula(r, alpha, a, b, seed):
    rng = np.random.default_rng(seed)
    T = rng.uniform(5, 40, 30)
    x = rng.integers(0, 8, 30).astype(float)
    tx = np.where(x > 0, rng.uniform(0.1, 1, 30) * T, 0.0)
    p = np.array([r, alpha, a, b])
    ours = ModifiedBetaGeoModel._ll_rows(p[None, :], x, tx, T).sum()
    assert ours == pytest.approx(naive_mbg_ll(r, alpha, a, b, x, tx, T), rel=1e-9)
    grad = ModifiedBetaGeoModel._grad(p, x, tx, T, np.ones(30))
    for i in range(4):
        h = p[i] * 1e-6
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        numeric = (naive_mbg_ll(*up, x, tx, T) - naive_mbg_ll(*down, x, tx, T)) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-4)


def test_mbgnbd_one_time_buyers_can_be_gone():
    m = ModifiedBetaGeoModel.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    alive = m.probability_alive([0, 0, 3], [0, 0, 30], [5, 30, 31])
    # P(alive | x=0) = 1 / (1 + a/b ((alpha+T)/alpha)^r): below 1, falling with T
    expected0 = 1 / (1 + 0.891 / 1.614 * ((6.183 + 5) / 6.183) ** 0.525)
    assert alive[0] == pytest.approx(expected0, rel=1e-12)
    assert alive[1] < alive[0] < 1
    assert 0 < alive[2] < 1
    silent = m.probability_no_purchase(10, [0, 3], [0, 30], [30, 31])
    assert np.all((silent > 0) & (silent < 1))


def test_mbgnbd_pmf_is_a_distribution_with_the_model_mean():
    m = ModifiedBetaGeoModel.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
    n = np.arange(400)
    pmf = m.probability_of_purchases(30.0, n)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    # sum n P(X = n) is the closed-form E[X(t)] (an independent formula: 2F1, not the pmf)
    assert float(n @ pmf) == pytest.approx(
        float(m.unconditional_expected_purchases(30.0)), rel=1e-6
    )
    assert m.probability_of_purchases(0.0, [0, 1]).tolist() == [1.0, 0.0]


def test_mbgnbd_expectations_are_continuous_at_a_equal_one():
    def cond(a):
        m = ModifiedBetaGeoModel.from_params(r=0.5, alpha=5.0, a=a, b=2.0)
        return m.conditional_expected_purchases(10, [0, 3], [0, 12], [20, 20]), (
            m.unconditional_expected_purchases(10.0)
        )

    (c_at, u_at), (c_lo, u_lo), (c_hi, u_hi) = cond(1.0), cond(1 - 1e-3), cond(1 + 1e-3)
    assert np.all(np.isfinite(c_at)) and np.isfinite(u_at)
    np.testing.assert_allclose(c_at, (c_lo + c_hi) / 2, rtol=1e-6)
    assert u_at == pytest.approx((u_lo + u_hi) / 2, rel=1e-6)


def test_mbgnbd_save_load_round_trip(cdnow, tmp_path):
    m = ModifiedBetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    m.save(tmp_path / "mbg.json")
    back = ModifiedBetaGeoModel.load(tmp_path / "mbg.json")
    assert back.params == m.params and back.log_likelihood == m.log_likelihood
    with pytest.raises(ConfigurationError, match="mbg_nbd"):
        BetaGeoModel.load(tmp_path / "mbg.json")


# -- Pareto/NBD -------------------------------------------------------------------------------
def test_pareto_nbd_reproduces_published_fit(cdnow, clv_reference):
    ref = clv_reference["pareto_nbd_cdnow"]
    m = ParetoNBDModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert m.converged
    assert round(m.log_likelihood, 0) == ref["loglik_published"]
    assert m.log_likelihood >= ref["loglik_computed_here_at_published_params"] - 1e-6
    for name, value in ref["params_published"].items():
        assert m.params[name] == pytest.approx(value, abs=2e-3)
    assert all(math.isfinite(v) for v in m.standard_errors.values())


def test_pareto_nbd_loglik_and_predictions_at_published_params(cdnow, clv_reference):
    ref = clv_reference["pareto_nbd_cdnow"]
    p = ref["params_published"]
    m = ParetoNBDModel.from_params(**p)
    ll = ParetoNBDModel._ll_rows(
        np.array([[p["r"], p["alpha"], p["s"], p["beta"]]]),
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
    ).sum()
    assert ll == pytest.approx(ref["loglik_computed_here_at_published_params"], abs=1e-3)
    np.testing.assert_allclose(
        m.unconditional_expected_purchases(np.arange(10)),
        ref["unconditional_expected_purchases_t0_9"],
        atol=ref["unconditional_tolerance_abs"],
    )
    c = ref["conditional_expected_purchases"]
    got = m.conditional_expected_purchases(c["t"], c["x"], c["t_x"], c["T"])[0]
    assert got == pytest.approx(c["expected"], abs=c["tolerance_abs"])


@settings(max_examples=20, deadline=None)
@given(
    r=st.floats(0.1, 3),
    alpha=st.floats(1, 30),
    s=st.floats(0.1, 3),
    beta=st.floats(1, 30),
    seed=st.integers(0, 10_000),
)
def test_pareto_loglik_equals_untransformed_formula(r, alpha, s, beta, seed):
    rng = np.random.default_rng(seed)
    T = rng.uniform(5, 40, 20)
    x = rng.integers(0, 6, 20).astype(float)
    tx = np.where(x > 0, rng.uniform(0.1, 1, 20) * T, 0.0)
    ours = ParetoNBDModel._ll_rows(np.array([[r, alpha, s, beta]]), x, tx, T).sum()
    assert ours == pytest.approx(naive_pareto_ll(r, alpha, s, beta, x, tx, T), rel=1e-7)


def test_pareto_survives_heavy_buyers():
    # 2F1 of the untransformed formula overflows here; the Euler form stays finite
    m = ParetoNBDModel.from_params(r=0.5, alpha=0.01, s=0.6, beta=500.0)
    ll = ParetoNBDModel._ll_rows(
        np.array([[0.5, 0.01, 0.6, 500.0]]), np.array([400.0]), np.array([99.0]), np.array([100.0])
    )
    assert np.all(np.isfinite(ll))
    assert 0 <= m.probability_alive([400], [99], [100])[0] <= 1


@settings(max_examples=30, deadline=None)
@given(
    r=st.floats(0.05, 5),
    alpha=st.floats(0.05, 60),
    s=st.floats(0.05, 5),
    beta=st.floats(0.05, 60),
    seed=st.integers(0, 10_000),
)
def test_pareto_analytic_gradient_equals_finite_difference(r, alpha, s, beta, seed):
    # both branches (alpha >= beta, alpha < beta), the series and the scipy fallback
    # (z > SERIES_Z_MAX), t_x = T rows, repeated rows: the gradient the fit climbs is exact
    from cognitionos.pricing._pareto import ParetoRows, pareto_value_and_gradient

    rng = np.random.default_rng(seed)
    n = 30
    T = np.round(rng.uniform(0.5, 40, n), 1)
    x = rng.integers(0, 15, n).astype(float)
    tx = np.where(x > 0, np.round(rng.uniform(0.05, 1, n) * T, 1), 0.0)
    tx[:3] = np.where(x[:3] > 0, T[:3], 0.0)
    w = rng.integers(1, 5, n).astype(float)
    p = np.array([r, alpha, s, beta])
    value, grad = pareto_value_and_gradient(p, ParetoRows(x, tx, T, w), ParetoNBDModel._ll_rows)
    # the value agrees with the scipy-hyp2f1 likelihood (itself checked against the naive one)
    assert value == pytest.approx(float(ParetoNBDModel._ll_rows(p[None, :], x, tx, T)[0] @ w))
    for i in range(4):
        h = p[i] * 1e-5
        up, down = p.copy(), p.copy()
        up[i] += h
        down[i] -= h
        fd = ParetoNBDModel._ll_rows(np.array([up, down]), x, tx, T) @ w
        numeric = (fd[0] - fd[1]) / (2 * h)
        assert grad[i] == pytest.approx(numeric, rel=1e-5, abs=1e-3)


def test_pareto_fit_from_a_far_start_reaches_the_published_maximum(cdnow, clv_reference):
    # a single start where alpha and beta are far apart sends the fit through the region
    # where the hypergeometric series is slow (and the scipy fallback takes over)
    m = ParetoNBDModel(n_starts=1).fit(
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
        initial={"r": 1.0, "alpha": 1.0, "s": 1.0, "beta": 80.0},
    )
    assert m.converged
    assert m.log_likelihood == pytest.approx(-9594.9739, abs=1e-3)


# -- Gamma-Gamma ---------------------------------------------------------------------------------
def test_gamma_gamma_reproduces_hardie_note(cdnow_monetary, clv_reference):
    ref = clv_reference["gamma_gamma_cdnow"]
    gg = GammaGammaModel().fit(cdnow_monetary["x"], cdnow_monetary["zbar"])
    assert gg.converged
    assert gg.n_customers == ref["n_repeat_customers"]
    assert gg.excluded_one_time == 2357 - ref["n_repeat_customers"]
    assert gg.frequency_spend_correlation == pytest.approx(
        ref["corr_x_zbar_computed_here"], abs=1e-3
    )
    for name, value in ref["params_published"].items():
        assert gg.params[name] == pytest.approx(value, abs=0.01)  # the note prints 2 decimals
    for name, value in ref["params_mle_computed_here"].items():
        assert gg.params[name] == pytest.approx(value, abs=1e-3)
    assert gg.log_likelihood == pytest.approx(ref["loglik_computed_here_at_mle"], abs=1e-3)
    repeat = cdnow_monetary["x"] > 0
    naive = naive_gg_ll(
        **gg.params, x=cdnow_monetary["x"][repeat], m=cdnow_monetary["zbar"][repeat]
    )
    assert gg.log_likelihood == pytest.approx(naive, rel=1e-10)
    got = gg.conditional_expected_average_spend(
        cdnow_monetary["x"][:10], cdnow_monetary["zbar"][:10]
    )
    np.testing.assert_allclose(
        got, ref["conditional_expected_average_profit_first10_customers"], atol=ref["tolerance_abs"]
    )


def test_gamma_gamma_refuses_non_positive_spend():
    with pytest.raises(ConfigurationError, match=r"repeat purchases: row 1$"):
        GammaGammaModel().fit([1, 2, 0], [10.0, -1.0, 0.0])
    with pytest.raises(ConfigurationError, match="row 0"):
        GammaGammaModel().fit([1, 2, 3], [0.0, 5.0, 6.0])


# -- BG/BB ----------------------------------------------------------------------------------------
def test_bgbb_reproduces_fader_hardie_shang(donations, clv_reference):
    ref = clv_reference["bg_bb_donations"]
    f, r, n, w = (
        donations["frequency"],
        donations["recency"],
        donations["periods"],
        donations["weights"],
    )
    m = BetaGeoBetaBinomModel().fit(f, r, n, weights=w)
    assert m.converged
    assert m.n_customers == 11104
    for name, value in ref["params_published"].items():
        assert round(m.params[name], 3) == pytest.approx(value, abs=1e-9)
    assert m.log_likelihood == pytest.approx(ref["loglik_computed_here_at_mle"], abs=1e-3)
    nxt = ref["conditional_expected_transactions_next5_total"]
    total = float((m.conditional_expected_purchases(5, f, r, n) * w).sum())
    assert total == pytest.approx(nxt["value"], abs=nxt["tolerance_abs"])
    fit = ref["expected_transactions_in_first_n_periods"]
    counts = 11104 * m.probability_of_purchases(6, [0, 6])
    assert counts[0] == pytest.approx(fit["n=0 row"], abs=fit["tolerance_abs"])
    assert counts[1] == pytest.approx(fit["n=6 row"], abs=fit["tolerance_abs"])
    alive = m.probability_alive([0, 2, 6], [0, 4, 6], [6, 6, 6])
    table = ref["p_alive_next_period"]
    np.testing.assert_allclose(
        alive,
        [table["(x=0,t_x=0,n=6)"], table["(x=2,t_x=4,n=6)"], table["(x=6,t_x=6,n=6)"]],
        atol=table["tolerance_abs"],
    )
    # the pmf is a distribution whose mean is the unconditional expectation
    pmf = m.probability_of_purchases(6, np.arange(7))
    assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert (np.arange(7) * pmf).sum() == pytest.approx(m.unconditional_expected_purchases(6))


# -- bad input, convergence, persistence -------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "tx", "T", "message"),
    [
        ([1, 2], [5, 50], [10, 40], "recency > T at row 1"),
        ([0, 2], [3, 5], [10, 40], "frequency 0 with recency > 0 at row 0"),
        ([-1, 2], [0, 5], [10, 40], "negative frequency"),
        ([1, 2], [1, 5], [0, 40], "T must be > 0"),
        ([1.5, 2], [1, 5], [5, 40], "non-integer frequency"),
        ([1, float("nan")], [1, 5], [5, 40], "frequency has missing"),
    ],
)
def test_inconsistent_rfm_rows_are_named(x, tx, T, message):
    with pytest.raises(ConfigurationError, match=message):
        BetaGeoModel().fit(x, tx, T)


def test_unidentified_fit_says_it_did_not_converge():
    # nobody ever came back: the dropout parameters run off to the edge of the box
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        m = BetaGeoModel().fit(np.zeros(50), np.zeros(50), np.full(50, 30.0))
    assert not m.converged
    assert all(math.isnan(v) for v in m.standard_errors.values())
    assert m.summary()["standard_errors"]["r"] is None


def test_save_load_round_trip(bgnbd, tmp_path):
    path = tmp_path / "m.json"
    bgnbd.save(path)
    text = path.read_text()
    assert len(text) < 2000  # parameters and metadata, no data
    back = BetaGeoModel.load(path)
    assert back.params == bgnbd.params
    assert back.log_likelihood == bgnbd.log_likelihood
    assert back.converged
    doc = json.loads(text)
    doc["version"] = 99
    with pytest.raises(ConfigurationError, match="newer"):
        BetaGeoModel.from_dict(doc)
    with pytest.raises(ConfigurationError, match="not 'pareto_nbd'"):
        ParetoNBDModel.from_dict(json.loads(text))


def test_unfitted_model_refuses_to_predict():
    with pytest.raises(ConfigurationError, match="not fitted"):
        BetaGeoModel().probability_alive([1], [1], [2])


# -- lifetime value ------------------------------------------------------------------------------
def test_clv_discounts_each_period_increment(bgnbd, cdnow_monetary):
    gg = GammaGammaModel().fit(cdnow_monetary["x"], cdnow_monetary["zbar"])
    x, tx, T, z = (cdnow_monetary[k][:20] for k in ("x", "t_x", "T", "zbar"))
    # no discount: the total expected purchases over 12 four-week periods, priced
    flat = customer_lifetime_value(
        bgnbd, gg, x, tx, T, z, periods=12, period_length=4, discount_rate=0
    )
    spend = gg.conditional_expected_average_spend(x, z)
    np.testing.assert_allclose(flat, bgnbd.conditional_expected_purchases(48, x, tx, T) * spend)
    # with discounting, by hand: increments between period ends, each discounted once
    d = 0.01
    cum = [bgnbd.conditional_expected_purchases(4 * i, x, tx, T) for i in range(13)]
    expected = sum((cum[i] - cum[i - 1]) / (1 + d) ** i for i in range(1, 13)) * spend
    got = customer_lifetime_value(
        bgnbd, gg, x, tx, T, z, periods=12, period_length=4, discount_rate=d
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert np.all(got < flat)


def test_clv_requires_an_explicit_period_length(bgnbd):
    gg = GammaGammaModel.from_params(p=6.25, q=3.74, v=15.44)
    with pytest.raises(TypeError):
        customer_lifetime_value(bgnbd, gg, [1], [1], [2], [10.0], periods=3, discount_rate=0.0)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="period_length"):
        customer_lifetime_value(
            bgnbd, gg, [1], [1], [2], [10], periods=3, period_length=0, discount_rate=0.0
        )


def test_predictions_in_chunks_equal_one_pass(bgnbd, monkeypatch):
    import cognitionos.pricing._clv as clv

    rng = np.random.default_rng(1)
    T = rng.uniform(1, 40, 5000)
    x = rng.integers(0, 10, 5000).astype(float)
    tx = np.where(x > 0, rng.uniform(0.01, 1, 5000) * T, 0)
    whole = bgnbd.conditional_expected_purchases(10, x, tx, T)
    monkeypatch.setattr(clv, "CHUNK", 777)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(bgnbd.conditional_expected_purchases(10, x, tx, T), whole)


@pytest.mark.parametrize("model_class", [BetaGeoModel, ModifiedBetaGeoModel])
def test_shared_hypergeometric_terms_equal_per_customer_ones(model_class, monkeypatch):
    # customers on a day grid share (x, T): the 2F1 is evaluated once per pair
    import cognitionos.pricing._clv as clv

    rng = np.random.default_rng(5)
    n = 5000
    days = rng.integers(1, 120, n)
    x = rng.integers(0, 15, n).astype(float)
    tx = np.where(x > 0, np.maximum(1, np.floor(rng.uniform(0, 1, n) * days)), 0.0) / 7
    T = days / 7.0
    pairs = clv._distinct_pairs(x, T)
    assert pairs is not None and pairs[0].size < n / 2  # the sharing path is taken
    xu, tu, inverse = pairs
    np.testing.assert_array_equal(xu[inverse], x)
    np.testing.assert_array_equal(tu[inverse], T)
    m = model_class.from_params(r=0.5, alpha=6.0, a=0.9, b=1.6)
    shared = m.conditional_expected_purchases(10, x, tx, T)
    monkeypatch.setattr(clv, "_distinct_pairs", lambda x, T: None)
    np.testing.assert_allclose(shared, m.conditional_expected_purchases(10, x, tx, T), rtol=1e-13)
