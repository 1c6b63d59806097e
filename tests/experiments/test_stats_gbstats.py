"""Differential tests: analyze() against PyPI gbstats on the same sufficient statistics.

Hypothesis generates per-arm summaries (n, mean, sd, covariate/denominator moments); the same
numbers go to gbstats' test classes and to :func:`analyze`. Where the method is the same the
answers must agree to 1e-5 (relative). Conventions shared with gbstats are listed in
docs/experiments.md ("Statistics"); generated control means are positive because gbstats
divides by the signed control mean where we divide by its absolute value.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cognitionos.experiments import ArmSummary, GaussianPrior, analyze, srm_check

gb_stats = pytest.importorskip("gbstats.models.statistics", reason="gbstats (peers extra) missing")
gb_freq = pytest.importorskip("gbstats.frequentist.tests")
gb_bayes = pytest.importorskip("gbstats.bayesian.tests")
gb_utils = pytest.importorskip("gbstats.utils")

pytestmark = pytest.mark.peers
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RTOL = 1e-5


def run_gb(make: Callable[[], Any]) -> Any:
    """gbstats' result, with numpy overflow warnings (e.g. exp of a huge e-value) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return make().compute_result()


def usable(warnings: tuple[str, ...]) -> bool:
    """No warning that changes the answer (a pre-period imbalance is only reported)."""
    return not set(warnings) - {"pre_period_imbalance"}


def close(ours: float, theirs: float, rtol: float = RTOL, atol: float = 1e-10) -> bool:
    return math.isclose(ours, theirs, rel_tol=rtol, abs_tol=atol)


@st.composite
def continuous_arm(draw: st.DrawFn) -> tuple[int, float, float]:
    n = draw(st.integers(5, 200_000))
    mean = draw(st.floats(0.5, 1e3))
    sd = draw(st.floats(0.1, 1e3))
    return n, mean, sd


def sums(n: int, mean: float, sd: float) -> tuple[float, float]:
    s = n * mean
    return s, sd * sd * (n - 1) + s * s / n


def summary(arm: str, n: int, mean: float, sd: float) -> ArmSummary:
    s, ss = sums(n, mean, sd)
    return ArmSummary(arm, "m", n=n, sum=s, sum_sq=ss)


def gb_mean(n: int, mean: float, sd: float):  # type: ignore[no-untyped-def]
    s, ss = sums(n, mean, sd)
    return gb_stats.SampleMeanStatistic(n=n, sum=s, sum_squares=ss)


def assert_frequentist(ours, theirs, relative: bool) -> None:  # type: ignore[no-untyped-def]
    effect = ours.effect_rel if relative else ours.effect_abs
    ci = ours.ci_rel if relative else ours.ci
    se = ours.std_error_rel if relative else ours.std_error
    assert close(effect, theirs.expected)
    assert close(se, theirs.uplift.stddev)
    assert close(ci[0], theirs.ci[0]) and close(ci[1], theirs.ci[1])
    assert close(ours.p_value, theirs.p_value, atol=1e-12)


@SETTINGS
@given(continuous_arm(), continuous_arm(), st.booleans(), st.sampled_from([0.01, 0.05, 0.1]))
def test_welch_ttest_matches_gbstats(a, b, relative, alpha):
    res = analyze(
        [summary("A", *a), summary("B", *b)],
        correction="none",
        alpha=alpha,
        difference="relative" if relative else "absolute",
    ).arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    cfg = gb_freq.FrequentistConfig(
        alpha=alpha, difference_type="relative" if relative else "absolute"
    )
    theirs = run_gb(lambda: gb_freq.TwoSidedTTest(gb_mean(*a), gb_mean(*b), cfg))
    assert_frequentist(res, theirs, relative)


@SETTINGS
@given(
    st.integers(50, 500_000),
    st.integers(50, 500_000),
    st.floats(0.02, 0.9),
    st.floats(0.02, 0.9),
    st.booleans(),
)
def test_proportion_ttest_matches_gbstats(na, nb, pa, pb, relative):
    ca, cb = round(na * pa), round(nb * pb)
    res = analyze(
        [
            ArmSummary("A", "cv", n=na, sum=ca, sum_sq=ca, kind="binomial"),
            ArmSummary("B", "cv", n=nb, sum=cb, sum_sq=cb, kind="binomial"),
        ],
        correction="none",
        difference="relative" if relative else "absolute",
    ).arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    cfg = gb_freq.FrequentistConfig(difference_type="relative" if relative else "absolute")
    theirs = run_gb(
        lambda: gb_freq.TwoSidedTTest(
            gb_stats.ProportionStatistic(n=na, sum=ca),
            gb_stats.ProportionStatistic(n=nb, sum=cb),
            cfg,
        )
    )
    assert_frequentist(res, theirs, relative)


@st.composite
def ratio_arm(draw: st.DrawFn) -> dict[str, float]:
    n = draw(st.integers(10, 100_000))
    mm, md = draw(st.floats(0.5, 100)), draw(st.floats(0.5, 100))
    sm, sd = draw(st.floats(0.1, 50)), draw(st.floats(0.1, 50))
    rho = draw(st.floats(-0.9, 0.9))
    s_m, ss_m = sums(n, mm, sm)
    s_d, ss_d = sums(n, md, sd)
    cross = rho * sm * sd * (n - 1) + s_m * s_d / n
    return {"n": n, "sum": s_m, "sum_sq": ss_m, "d": s_d, "dd": ss_d, "nd": cross}


@SETTINGS
@given(ratio_arm(), ratio_arm(), st.booleans())
def test_ratio_delta_method_matches_gbstats(a, b, relative):
    def ours_arm(arm: str, x: dict[str, float]) -> ArmSummary:
        return ArmSummary(
            arm, "r", n=int(x["n"]), sum=x["sum"], sum_sq=x["sum_sq"], kind="ratio",
            denom_sum=x["d"], denom_sum_sq=x["dd"], num_denom_sum=x["nd"],
        )  # fmt: skip

    def theirs_arm(x: dict[str, float]):  # type: ignore[no-untyped-def]
        n = int(x["n"])
        return gb_stats.RatioStatistic(
            n=n,
            m_statistic=gb_stats.SampleMeanStatistic(n=n, sum=x["sum"], sum_squares=x["sum_sq"]),
            d_statistic=gb_stats.SampleMeanStatistic(n=n, sum=x["d"], sum_squares=x["dd"]),
            m_d_sum_of_products=x["nd"],
        )

    res = analyze(
        [ours_arm("A", a), ours_arm("B", b)],
        correction="none",
        difference="relative" if relative else "absolute",
    ).arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    cfg = gb_freq.FrequentistConfig(difference_type="relative" if relative else "absolute")
    theirs = run_gb(lambda: gb_freq.TwoSidedTTest(theirs_arm(a), theirs_arm(b), cfg))
    assume(theirs.error_message is None)
    assert_frequentist(res, theirs, relative)


@st.composite
def cuped_arm(draw: st.DrawFn) -> dict[str, float]:
    n = draw(st.integers(10, 100_000))
    my, mx = draw(st.floats(1, 100)), draw(st.floats(1, 100))
    sy, sx = draw(st.floats(0.5, 50)), draw(st.floats(0.5, 50))
    rho = draw(st.floats(-0.95, 0.95))
    s_y, ss_y = sums(n, my, sy)
    s_x, ss_x = sums(n, mx, sx)
    cross = rho * sy * sx * (n - 1) + s_y * s_x / n
    return {"n": n, "sum": s_y, "sum_sq": ss_y, "pre": s_x, "pre_sq": ss_x, "cross": cross}


def cuped_pair(a, b):  # type: ignore[no-untyped-def]
    def ours_arm(arm: str, x: dict[str, float]) -> ArmSummary:
        return ArmSummary(
            arm, "y", n=int(x["n"]), sum=x["sum"], sum_sq=x["sum_sq"],
            pre_sum=x["pre"], pre_sum_sq=x["pre_sq"], cross_sum=x["cross"],
        )  # fmt: skip

    def theirs_arm(x: dict[str, float]):  # type: ignore[no-untyped-def]
        n = int(x["n"])
        return gb_stats.RegressionAdjustedStatistic(
            n=n,
            post_statistic=gb_stats.SampleMeanStatistic(n=n, sum=x["sum"], sum_squares=x["sum_sq"]),
            pre_statistic=gb_stats.SampleMeanStatistic(n=n, sum=x["pre"], sum_squares=x["pre_sq"]),
            post_pre_sum_of_products=x["cross"],
            theta=0,
        )

    return [ours_arm("A", a), ours_arm("B", b)], theirs_arm(a), theirs_arm(b)


@SETTINGS
@given(cuped_arm(), cuped_arm(), st.booleans())
def test_cuped_matches_gbstats(a, b, relative):
    ours_in, ta, tb = cuped_pair(a, b)
    res = analyze(
        ours_in, correction="none", difference="relative" if relative else "absolute"
    ).arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    assert res.cuped_theta is not None
    cfg = gb_freq.FrequentistConfig(difference_type="relative" if relative else "absolute")
    theirs = run_gb(lambda: gb_freq.TwoSidedTTest(ta, tb, cfg))
    assert_frequentist(res, theirs, relative)


@SETTINGS
@given(
    continuous_arm(),
    continuous_arm(),
    st.booleans(),
    st.sampled_from([0.05, 0.1]),
    st.sampled_from([1000.0, 5000.0, 50_000.0]),
)
def test_sequential_matches_gbstats(a, b, relative, alpha, tuning):
    res = analyze(
        [summary("A", *a), summary("B", *b)],
        method="sequential",
        alpha=alpha,
        correction="none",
        sequential_tuning=tuning,
        difference="relative" if relative else "absolute",
    ).arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    cfg = gb_freq.SequentialConfig(
        alpha=alpha,
        difference_type="relative" if relative else "absolute",
        sequential_tuning_parameter=tuning,
    )
    theirs = run_gb(lambda: gb_freq.SequentialTwoSidedTTest(gb_mean(*a), gb_mean(*b), cfg))
    assert_frequentist(res, theirs, relative)


@SETTINGS
@given(cuped_arm(), cuped_arm())
def test_sequential_cuped_matches_gbstats(a, b):
    ours_in, ta, tb = cuped_pair(a, b)
    res = analyze(ours_in, method="sequential", correction="none", difference="relative").arms[0]
    assume(res.p_value is not None and usable(res.warnings))
    theirs = run_gb(lambda: gb_freq.SequentialTwoSidedTTest(ta, tb, gb_freq.SequentialConfig()))
    assert_frequentist(res, theirs, True)


@SETTINGS
@given(
    continuous_arm(),
    continuous_arm(),
    st.booleans(),
    st.booleans(),
    st.one_of(st.none(), st.tuples(st.floats(-0.2, 0.2), st.floats(0.001, 1.0))),
)
def test_bayesian_gaussian_matches_gbstats(a, b, relative, inverse, prior):
    diff = "relative" if relative else "absolute"
    priors = {"m": GaussianPrior(prior[0], prior[1], proper=True)} if prior else None
    res = analyze(
        [summary("A", *a), summary("B", *b)],
        method="bayesian",
        difference=diff,
        priors=priors,
        inverse={"m"} if inverse else (),
    ).arms[0]
    assume(res.chance_to_win is not None and not res.warnings)
    gb_prior = (
        gb_bayes.GaussianPrior(mean=prior[0], variance=prior[1], proper=True)
        if prior
        else gb_bayes.GaussianPrior()
    )
    cfg = gb_bayes.EffectBayesianConfig(
        difference_type=diff,
        inverse=inverse,
        prior_effect=gb_prior,
        prior_type="relative" if relative else "absolute",
    )
    theirs = run_gb(lambda: gb_bayes.EffectBayesianABTest(gb_mean(*a), gb_mean(*b), cfg))
    ci = res.ci_rel if relative else res.ci
    assert close(res.chance_to_win, theirs.chance_to_win, atol=1e-9)
    assert close(ci[0], theirs.ci[0]) and close(ci[1], theirs.ci[1])
    # gbstats risk = [risk of keeping control, risk of shipping the variation]
    assert close(res.expected_loss, theirs.risk[1], atol=1e-9)


@SETTINGS
@given(
    st.lists(st.integers(0, 1_000_000), min_size=2, max_size=6),
    st.data(),
)
def test_srm_matches_gbstats(users, data):
    weights = data.draw(st.lists(st.floats(0.05, 1.0), min_size=len(users), max_size=len(users)))
    assume(sum(users) > 0)
    assert close(srm_check(users, weights), float(gb_utils.check_srm(users, weights)), atol=1e-12)
