"""Differential tests against PyPI ``lifetimes`` (the ``peers`` extra)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st

from cognitionos.pricing import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    rfm_summary,
)

pytestmark = [pytest.mark.peers, pytest.mark.filterwarnings("ignore")]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    lifetimes = pytest.importorskip("lifetimes")
    pd = pytest.importorskip("pandas")


def _history(seed: int, n: int = 40):
    rng = np.random.default_rng(seed)
    T = np.round(rng.uniform(5, 40, n), 2)
    x = rng.integers(0, 12, n).astype(float)
    tx = np.where(x > 0, np.round(rng.uniform(0.05, 1, n) * T, 2), 0.0)
    return x, np.minimum(tx, T), T


params = st.fixed_dictionaries(
    {
        "r": st.floats(0.1, 3),
        "alpha": st.floats(1, 30),
        "a": st.floats(0.2, 3),
        "b": st.floats(0.5, 8),
    }
)


@settings(max_examples=25, deadline=None)
@given(p=params, seed=st.integers(0, 10_000), t=st.floats(0.5, 60))
def test_bgnbd_predictions_match_lifetimes(p, seed, t):
    x, tx, T = _history(seed)
    ours = BetaGeoModel.from_params(**p)
    theirs = lifetimes.BetaGeoFitter()
    theirs.params_ = pd.Series(p)
    mine = ours.conditional_expected_purchases(t, x, tx, T)
    assert np.all(np.isfinite(mine))  # also at a = 1, where lifetimes divides 0 by 0
    np.testing.assert_allclose(
        ours.probability_alive(x, tx, T), theirs.conditional_probability_alive(x, tx, T), rtol=1e-8
    )
    if abs(p["a"] - 1) < 1e-3:
        return
    peer = theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    both = np.isfinite(peer)  # lifetimes returns NaN where a + b + x - 1 = 0; we take the limit
    np.testing.assert_allclose(mine[both], peer[both], rtol=1e-8)
    peer_u = theirs.expected_number_of_purchases_up_to_time(t)
    assert np.isfinite(ours.unconditional_expected_purchases(t))
    if np.isfinite(peer_u):
        np.testing.assert_allclose(ours.unconditional_expected_purchases(t), peer_u, rtol=1e-8)


@settings(max_examples=20, deadline=None)
@given(
    p=st.fixed_dictionaries(
        {
            "r": st.floats(0.1, 3),
            "alpha": st.floats(1, 30),
            "s": st.floats(0.2, 3),
            "beta": st.floats(1, 30),
        }
    ),
    seed=st.integers(0, 10_000),
    t=st.floats(0.5, 60),
)
def test_pareto_predictions_match_lifetimes(p, seed, t):
    x, tx, T = _history(seed)
    ours = ParetoNBDModel.from_params(**p)
    theirs = lifetimes.ParetoNBDFitter()
    theirs.params_ = pd.Series(p)
    np.testing.assert_allclose(
        ours.probability_alive(x, tx, T), theirs.conditional_probability_alive(x, tx, T), rtol=1e-6
    )
    np.testing.assert_allclose(
        ours.conditional_expected_purchases(t, x, tx, T),
        theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T),
        rtol=1e-6,
    )


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
@example(seed=479)  # the maximum on a ridge (see below)
def test_bgnbd_fit_matches_lifetimes_on_simulated_data(seed):
    from lifetimes.generate_data import beta_geometric_nbd_model

    np.random.seed(seed)
    data = beta_geometric_nbd_model(30, 0.3, 5.0, 0.8, 2.5, size=600)
    x, tx, T = data["frequency"].to_numpy(), data["recency"].to_numpy(), data["T"].to_numpy()
    ours = BetaGeoModel().fit(x, tx, T)
    try:
        theirs = lifetimes.BetaGeoFitter().fit(x, tx, T)
    except lifetimes.utils.ConvergenceError:
        reject()  # the peer gave up on this sample: nothing to compare with
    our_ll = ours.log_likelihood
    their_ll = BetaGeoModel._ll_rows(np.array([list(theirs.params_.to_numpy())]), x, tx, T).sum()
    # the same maximum (ours at least as high: lifetimes stops at its own tolerance), to
    # 1e-9 relative: some samples put the maximum on a ridge (a, b -> infinity with a/(a+b)
    # fixed, seed 479: a = 5.9e5 for us, 1.7e5 for lifetimes) where the log-likelihood is
    # flat to rounding and two fits differ by 2e-6 in 2,583
    assert our_ll >= their_ll - 1e-9 * abs(their_ll)
    assert our_ll - their_ll < 1e-2
    for name in ("r", "alpha"):
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=2e-2)


def test_bgnbd_standard_errors_match_lifetimes(cdnow):
    ours = BetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theirs = lifetimes.BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name in ("r", "alpha", "a", "b"):
        assert ours.standard_errors[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-2)


def test_gamma_gamma_and_bgbb_fits_match_lifetimes(cdnow_monetary, donations):
    repeat = cdnow_monetary["x"] > 0
    x, z = cdnow_monetary["x"][repeat], cdnow_monetary["zbar"][repeat]
    ours = GammaGammaModel().fit(x, z)
    theirs = lifetimes.GammaGammaFitter().fit(x, z)
    for name in ("p", "q", "v"):
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=1e-3)
    np.testing.assert_allclose(
        ours.conditional_expected_average_spend(x, z),
        theirs.conditional_expected_average_profit(x, z),
        rtol=1e-3,
    )
    f, r, n, w = (donations[k] for k in ("frequency", "recency", "periods", "weights"))
    bb = BetaGeoBetaBinomModel().fit(f, r, n, weights=w)
    theirs_bb = lifetimes.BetaGeoBetaBinomFitter().fit(f, r, n, weights=w)
    for name in ("alpha", "beta", "gamma", "delta"):
        assert bb.params[name] == pytest.approx(theirs_bb.params_[name], rel=1e-3)
    np.testing.assert_allclose(
        bb.conditional_expected_purchases(5, f, r, n),
        theirs_bb.conditional_expected_number_of_purchases_up_to_time(5, f, r, n),
        rtol=1e-4,
    )


def test_rfm_summary_matches_lifetimes(data_file):
    log = pd.read_csv(data_file("stats/lifetimes/example_transactions.csv"))
    theirs = lifetimes.utils.summary_data_from_transaction_data(log, "id", "date", freq="D")
    ours = rfm_summary(
        {"id": log["id"].to_numpy(), "date": log["date"].to_numpy()},
        customer="id",
        timestamp="date",
    )
    theirs = theirs.loc[ours.customer]
    np.testing.assert_array_equal(ours.frequency, theirs["frequency"].to_numpy())
    np.testing.assert_array_equal(ours.recency, theirs["recency"].to_numpy())
    np.testing.assert_array_equal(ours.T, theirs["T"].to_numpy())


@settings(max_examples=25, deadline=None)
@given(p=params, seed=st.integers(0, 10_000), t=st.floats(0.5, 60))
def test_mbgnbd_predictions_match_lifetimes(p, seed, t):
    x, tx, T = _history(seed)
    ours = ModifiedBetaGeoModel.from_params(**p)
    theirs = lifetimes.ModifiedBetaGeoFitter()
    theirs.params_ = pd.Series(p)
    np.testing.assert_allclose(
        ours.probability_alive(x, tx, T), theirs.conditional_probability_alive(x, tx, T), rtol=1e-10
    )
    mine = ours.conditional_expected_purchases(t, x, tx, T)
    assert np.all(np.isfinite(mine))
    if abs(p["a"] - 1) < 1e-3:
        return  # lifetimes divides by a - 1 there
    peer = theirs.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    np.testing.assert_allclose(mine, peer, rtol=1e-8)
    np.testing.assert_allclose(
        ours.unconditional_expected_purchases(t),
        theirs.expected_number_of_purchases_up_to_time(t),
        rtol=1e-8,
    )
    for n in (0, 1, 4):
        assert ours.probability_of_purchases(t, n) == pytest.approx(
            theirs.probability_of_n_purchases_up_to_time(t, n), rel=1e-8
        )


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_mbgnbd_fit_matches_lifetimes_on_simulated_data(seed):
    from lifetimes.generate_data import modified_beta_geometric_nbd_model

    np.random.seed(seed)
    data = modified_beta_geometric_nbd_model(30, 0.5, 6.0, 0.9, 1.6, size=600)
    x, tx, T = data["frequency"].to_numpy(), data["recency"].to_numpy(), data["T"].to_numpy()
    ours = ModifiedBetaGeoModel().fit(x, tx, T)
    try:
        theirs = lifetimes.ModifiedBetaGeoFitter().fit(x, tx, T)
    except lifetimes.utils.ConvergenceError:
        reject()
    their_ll = ModifiedBetaGeoModel._ll_rows(
        np.array([list(theirs.params_.to_numpy())]), x, tx, T
    ).sum()
    assert ours.log_likelihood >= their_ll - 1e-6
    assert ours.log_likelihood - their_ll < 1e-2
    for name in ("r", "alpha"):
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=2e-2)


def test_mbgnbd_fit_and_standard_errors_match_lifetimes(cdnow):
    ours = ModifiedBetaGeoModel().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theirs = lifetimes.ModifiedBetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name in ("r", "alpha", "a", "b"):
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=1e-4)
        assert ours.standard_errors[name] == pytest.approx(theirs.standard_errors_[name], rel=1e-2)


def test_pareto_fit_matches_lifetimes_on_cdnow(cdnow, clv_reference):
    x, tx, T = cdnow["frequency"], cdnow["recency"], cdnow["T"]
    ours = ParetoNBDModel().fit(x, tx, T)
    theirs = lifetimes.ParetoNBDFitter().fit(x, tx, T, initial_params=np.ones(4))
    their_ll = ParetoNBDModel._ll_rows(np.array([list(theirs.params_.to_numpy())]), x, tx, T).sum()
    # the same maximum; ours at least as high (lifetimes' Nelder-Mead stops at tol 1e-4)
    assert ours.log_likelihood >= their_ll - 1e-6
    assert ours.log_likelihood - their_ll < 1e-3
    for name in ("r", "alpha", "s", "beta"):
        assert ours.params[name] == pytest.approx(theirs.params_[name], rel=2e-3)
        # and the values recorded from lifetimes 0.11.3 (its loose stop leaves beta 2e-3 off)
        recorded = clv_reference["pareto_nbd_cdnow"]["params_lifetimes_0_11_3"][name]
        assert ours.params[name] == pytest.approx(recorded, abs=2.5e-3)
