"""analyze(): hand-derived values, exact Beta-Binomial, corrections, bad input, decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import (
    ArmSummary,
    DecisionRules,
    adjust_pvalues,
    analyze,
    mde,
    power,
    sample_size,
)


def cont(arm: str, n: int, mean: float, sd: float, metric: str = "m") -> ArmSummary:
    s = n * mean
    return ArmSummary(arm, metric, n=n, sum=s, sum_sq=sd * sd * (n - 1) + s * s / n)


def conv(arm: str, n: int, c: int, metric: str = "cv") -> ArmSummary:
    return ArmSummary(arm, metric, n=n, sum=c, sum_sq=c, kind="binomial")


def all_floats(result) -> list[float]:  # type: ignore[no-untyped-def]
    out: list[float] = []
    for a in result.arms:
        for name in ("effect_abs", "effect_rel", "std_error", "p_value", "p_value_adjusted",
                     "chance_to_win", "expected_loss", "mean", "control_mean"):  # fmt: skip
            v = getattr(a, name)
            if v is not None:
                out.append(v)
        for ci in (a.ci, a.ci_rel):
            if ci is not None:
                out.extend(ci)
    return out


# --- frequentist, by hand / scipy ---------------------------------------------------------


def test_welch_matches_scipy_ttest_from_stats():
    res = analyze([cont("A", 120, 10.0, 3.0), cont("B", 80, 11.2, 4.5)], correction="none")
    arm = res.arms[0]
    ref = stats.ttest_ind_from_stats(11.2, 4.5, 80, 10.0, 3.0, 120, equal_var=False)
    assert arm.effect_abs == pytest.approx(1.2, rel=1e-12)
    assert arm.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    se = math.sqrt(4.5**2 / 80 + 3.0**2 / 120)
    assert arm.std_error == pytest.approx(se, rel=1e-12)
    df = (4.5**2 / 80 + 9 / 120) ** 2 / ((4.5**2 / 80) ** 2 / 79 + (9 / 120) ** 2 / 119)
    half = stats.t.ppf(0.975, df) * se
    assert arm.ci == pytest.approx((1.2 - half, 1.2 + half), rel=1e-10)
    assert arm.effect_rel == pytest.approx(0.12)


def test_z_test_uses_the_normal_distribution():
    arm = analyze([cont("A", 50, 1.0, 1.0), cont("B", 50, 1.5, 1.0)], test="z",
                  correction="none").arms[0]  # fmt: skip
    z = 0.5 / math.sqrt(2 / 50)
    assert arm.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)


def test_relative_lift_over_absolute_control_mean():
    # control mean -10, treatment -8: the treatment is 20 % "higher" relative to |control|
    arm = analyze([cont("A", 500, -10.0, 2.0), cont("B", 500, -8.0, 2.0)]).arms[0]
    assert arm.effect_rel == pytest.approx(0.2)
    assert arm.ci_rel[0] < 0.2 < arm.ci_rel[1]


def test_msprt_with_tau_matches_the_mixture_formula():
    arm = analyze([cont("A", 400, 5.0, 2.0), cont("B", 400, 5.3, 2.0)], method="msprt",
                  msprt_tau=0.2, correction="none").arms[0]  # fmt: skip
    v = 2 * 4 / 400
    lam = math.sqrt(v / (v + 0.04)) * math.exp(0.04 * 0.09 / (2 * v * (v + 0.04)))
    assert arm.p_value == pytest.approx(min(1, 1 / lam), rel=1e-10)
    half = math.sqrt(
        2 * v * (v + 0.04) / 0.04 * (math.log(1 / 0.05) + 0.5 * math.log((v + 0.04) / v))
    )
    assert arm.ci == pytest.approx((0.3 - half, 0.3 + half), rel=1e-10)


# --- exact Beta-Binomial -----------------------------------------------------------------


def evan_miller(a_a: int, b_a: int, a_b: int, b_b: int) -> float:
    """P(p_B > p_A), closed form (Evan Miller, 'Formulas for Bayesian A/B testing')."""
    total = 0.0
    for i in range(a_b):
        total += math.exp(
            _lbeta(a_a + i, b_a + b_b) - math.log(b_b + i) - _lbeta(1 + i, b_b) - _lbeta(a_a, b_a)
        )
    return total


def _lbeta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


@pytest.mark.parametrize(
    ("na", "ca", "nb", "cb"),
    [(100, 10, 100, 15), (1000, 100, 1000, 130), (50, 0, 60, 3), (2000, 40, 500, 20),
     (30, 29, 40, 40), (10_000, 1000, 10_000, 985), (500, 20, 5000, 210), (40, 1, 9, 0)],
)  # fmt: skip
def test_beta_binomial_chance_to_win_and_loss_are_exact(na, ca, nb, cb):
    arm = analyze([conv("A", na, ca), conv("B", nb, cb)], method="bayesian").arms[0]
    a_a, b_a, a_b, b_b = 1 + ca, 1 + na - ca, 1 + cb, 1 + nb - cb
    assert arm.chance_to_win == pytest.approx(evan_miller(a_a, b_a, a_b, b_b), abs=1e-9)
    fa, fb = stats.beta(a_a, b_a), stats.beta(a_b, b_b)

    def inner(x: float) -> float:  # E over p_B of max(x - p_B, 0)
        return x * fb.cdf(x) - fb.mean() * stats.beta(a_b + 1, b_b).cdf(x)

    lo, hi = fa.ppf(1e-13), fa.isf(1e-13)
    loss, _ = integrate.quad(lambda x: fa.pdf(x) * inner(x), lo, hi, epsabs=1e-14, limit=200)
    assert arm.expected_loss == pytest.approx(loss, abs=1e-9)
    assert arm.expected_loss_scale == "absolute"


def test_beta_binomial_inverse_metric_flips_the_question():
    inv = analyze([conv("A", 500, 50), conv("B", 500, 70)], method="bayesian",
                  inverse={"cv"}).arms[0]  # fmt: skip
    ctw = evan_miller(51, 451, 71, 431)
    assert inv.chance_to_win == pytest.approx(1 - ctw, abs=1e-9)
    assert inv.direction == "worse"


# --- corrections -------------------------------------------------------------------------


def _many_metrics() -> list[ArmSummary]:
    out = []
    for i, lift in enumerate([0.0, 0.05, 0.2, 0.4]):
        out += [cont("A", 400, 10, 2, f"m{i}"), cont("B", 400, 10 + lift, 2, f"m{i}"),
                cont("C", 400, 10 + lift / 2, 2, f"m{i}")]  # fmt: skip
    return out


@pytest.mark.parametrize("method", ["bonferroni", "holm", "hochberg", "sidak", "bh", "by"])
def test_corrections_over_all_comparisons(method):
    raw = analyze(_many_metrics(), correction="none")
    res = analyze(_many_metrics(), correction=method)
    p_raw = [a.p_value for a in raw.arms]
    expected = adjust_pvalues(p_raw, method)
    assert [a.p_value_adjusted for a in res.arms] == pytest.approx(expected.tolist(), rel=1e-12)
    m = len(p_raw)
    if method == "bonferroni":
        assert res.arms[0].ci_level == pytest.approx(1 - 0.05 / m)
    if method == "sidak":
        assert res.arms[0].ci_level == pytest.approx((1 - 0.05) ** (1 / m))


def test_correction_per_metric_family():
    res = analyze(_many_metrics(), correction="bonferroni", correction_scope="metric")
    for a in res.arms:
        assert a.p_value_adjusted == pytest.approx(min(1.0, 2 * a.p_value))
        assert a.ci_level == pytest.approx(1 - 0.025)


def test_bonferroni_interval_is_wider_by_the_right_quantile():
    s = [cont("A", 300, 5, 1, "x"), cont("B", 300, 5.1, 1, "x"), cont("C", 300, 5.2, 1, "x")]
    plain = analyze(s, correction="none").arms[0]
    bonf = analyze(s, correction="bonferroni").arms[0]
    df = (1 / 300 + 1 / 300) ** 2 / (2 * (1 / 300) ** 2 / 299)
    ratio = stats.t.isf(0.05 / 4, df) / stats.t.isf(0.025, df)
    width = lambda a: a.ci[1] - a.ci[0]  # noqa: E731
    assert width(bonf) / width(plain) == pytest.approx(ratio, rel=1e-9)


# --- bad input: errors or well-defined outputs ------------------------------------------------


def test_empty_and_tiny_arms_give_none_with_reasons():
    res = analyze(
        [
            cont("A", 100, 1, 1),
            ArmSummary("B", "m", n=0),
            ArmSummary("C", "m", n=1, sum=3, sum_sq=9),
        ]
    )
    b, c = res.arms
    assert b.effect_abs is None and b.p_value is None and "empty_arm" in b.warnings
    assert c.effect_abs is None and "too_few_units" in c.warnings
    assert all(math.isfinite(v) for v in all_floats(res))
    # an empty arm under equal weights is itself a sample-ratio mismatch
    assert res.srm_detected and res.decision.action == "invalid"
    res = analyze([cont("A", 100, 1, 1), ArmSummary("B", "m", n=0)],
                  rules=DecisionRules(block_on_srm=False))  # fmt: skip
    assert res.decision.action == "continue"
    assert "not evaluable" in res.decision.reasons[0]


def test_zero_variance_arms():
    res = analyze([conv("A", 100, 0), conv("B", 100, 0)], method="bayesian")
    arm = res.arms[0]
    assert arm.chance_to_win is None and "zero_variance" in arm.warnings
    res = analyze([cont("A", 100, 3, 0), cont("B", 100, 3, 0)])
    assert res.arms[0].p_value is None and "zero_variance" in res.arms[0].warnings


def test_control_mean_near_zero_hides_relative_lift():
    arm = analyze([cont("A", 100, 0.01, 5), cont("B", 100, 2.0, 5)]).arms[0]
    assert "control_mean_near_zero" in arm.warnings
    assert arm.effect_rel is None and arm.ci_rel is None
    assert arm.effect_abs == pytest.approx(1.99) and arm.p_value is not None
    assert "Relative lift hidden" in arm.summary
    rel = analyze([cont("A", 100, 0.01, 5), cont("B", 100, 2.0, 5)], difference="relative")
    assert rel.arms[0].p_value is None and rel.decision.action == "continue"
    # a control with no conversions at all: the absolute test still works
    arm = analyze([conv("A", 1000, 0), conv("B", 1000, 20)]).arms[0]
    assert arm.effect_rel is None and arm.p_value is not None


def test_ratio_with_zero_denominator():
    a = ArmSummary("A", "r", n=10, sum=5, sum_sq=5, kind="ratio", denom_sum=0.0)
    b = ArmSummary("B", "r", n=10, sum=5, sum_sq=5, kind="ratio", denom_sum=10, denom_sum_sq=10,
                   num_denom_sum=5)  # fmt: skip
    arm = analyze([a, b]).arms[0]
    assert arm.effect_abs is None and "zero_denominator" in arm.warnings


def test_missing_arm_in_one_metric():
    res = analyze(
        [cont("A", 100, 1, 1, "x"), cont("B", 100, 1.2, 1, "x"), cont("A", 100, 1, 1, "y")]
    )
    y = res.arm("y", "B")
    assert y.effect_abs is None and "missing_arm" in y.warnings


@pytest.mark.parametrize(
    ("summaries", "kwargs", "match"),
    [
        ([conv("A", 10, 1, "m"), cont("B", 10, 1, 1, "m")], {}, "different kinds"),
        ([conv("A", 10, 11), conv("B", 10, 1)], {}, "conversions"),
        ([cont("A", 10, 1, 1)], {}, "two arms"),
        ([], {}, "at least one"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"control": "Z"}, "control"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"method": "magic"}, "method"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"alpha": 1.5}, "alpha"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"correction": "tukey"}, "correction"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"weights": {"A": 1}}, "weights"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"weights": {"A": 1, "B": -1}}, "weight"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)], {"inverse": {"nope"}}, "inverse"),
        ([cont("A", 10, 1, 1), cont("B", 10, 1, 1)],
         {"rules": DecisionRules(guardrails={"nope": 0.01})}, "guardrails"),
        (["not a summary"], {}, "ArmSummary"),
    ],
)  # fmt: skip
def test_bad_input_raises_configuration_error(summaries, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        analyze(summaries, **kwargs)


def test_summary_rejects_negative_counts_and_nan():
    with pytest.raises(ConfigurationError):
        ArmSummary("A", "m", n=-1)
    with pytest.raises(ConfigurationError):
        ArmSummary("A", "m", n=3, sum=float("nan"))
    with pytest.raises(ConfigurationError):
        ArmSummary("A", "m", n=3, sum=float("inf"))


def test_srm_min_units_gate():
    res = analyze([cont("A", 20, 1, 1), cont("B", 40, 1, 1)])
    assert res.srm_p_value is None and not res.srm_detected
    assert "srm_not_checked" in res.warnings[0]
    res = analyze([cont("A", 200, 1, 1), cont("B", 400, 1, 1)], weights={"A": 1, "B": 2})
    assert res.srm_p_value == pytest.approx(1.0)


# --- decisions -------------------------------------------------------------------------------


def _experiment(guard_lift: float) -> list[ArmSummary]:
    return [
        conv("A", 20_000, 2000, "conversion"), conv("B", 20_000, 2300, "conversion"),
        cont("A", 20_000, 100.0, 30.0, "latency"),
        cont("B", 20_000, 100.0 * (1 + guard_lift), 30.0, "latency"),
    ]  # fmt: skip


def test_ship_when_primary_wins_and_guardrail_is_non_inferior():
    rules = DecisionRules(primary="conversion", guardrails={"latency": 0.02})
    res = analyze(_experiment(0.0), rules=rules, inverse={"latency"})
    assert res.decision.action == "ship" and res.decision.arm == "B"


def test_guardrail_regression_blocks_shipping():
    rules = DecisionRules(primary="conversion", guardrails={"latency": 0.02})
    res = analyze(_experiment(0.03), rules=rules, inverse={"latency"})
    assert res.decision.action == "continue"
    assert any("latency" in r for r in res.decision.reasons)
    # no margin: blocks only when significantly worse (3 % slower is)
    res = analyze(_experiment(0.03), rules=DecisionRules(guardrails={"latency": None}),
                  inverse={"latency"})  # fmt: skip
    assert res.decision.action == "continue"


def test_bayesian_decision_with_guardrail():
    rules = DecisionRules(primary="conversion", guardrails={"latency": 0.02})
    ok = analyze(_experiment(0.0), method="bayesian", rules=rules, inverse={"latency"})
    assert ok.decision.action == "ship"
    bad = analyze(_experiment(0.03), method="bayesian", rules=rules, inverse={"latency"})
    assert bad.decision.action == "continue"


def test_keep_control_when_every_arm_is_worse():
    res = analyze([conv("A", 20_000, 2300), conv("B", 20_000, 2000)])
    assert res.decision.action == "keep_control"


def test_summary_words():
    res = analyze([conv("A", 20_000, 2000), conv("B", 20_000, 2300)], method="bayesian")
    assert "not a p-value" in res.summary and "Chance to win" in res.summary
    res = analyze([conv("A", 20_000, 2000), conv("B", 20_000, 2300)])
    assert "significantly better" in res.summary
    assert res.to_dict()["decision"]["action"] == "ship"


# --- power / sample size ------------------------------------------------------------------


def test_sample_size_for_proportions_by_hand():
    # equal arms, Cohen's h, both tails: solve numerically by hand
    h = 2 * math.asin(math.sqrt(0.12)) - 2 * math.asin(math.sqrt(0.10))
    z = stats.norm.isf(0.025)

    def pw(n: float) -> float:
        return stats.norm.cdf(h * math.sqrt(n / 2) - z) + stats.norm.cdf(-h * math.sqrt(n / 2) - z)

    from scipy.optimize import brentq

    n1 = brentq(lambda n: pw(n) - 0.8, 10, 1e6, xtol=1e-12)
    res = sample_size(baseline=0.1, mde=0.02, relative=False, alpha=0.05, power=0.8, arms=2)
    assert isinstance(res.total, float)
    assert res.total == pytest.approx(2 * n1, rel=1e-9)
    assert sample_size(baseline=0.1, mde=0.2, relative=True).total == pytest.approx(res.total)


def test_power_and_mde_invert_sample_size():
    res = sample_size(baseline=0.2, mde=0.01, arms=3, power=0.9)
    assert power(res.total, baseline=0.2, mde=0.01, arms=3) == pytest.approx(0.9, abs=1e-9)
    found = mde(res.total, baseline=0.2, arms=3, power=0.9)
    assert found == pytest.approx(0.01, rel=1e-6)
    means = sample_size(baseline=50, mde=1.0, kind="mean", sd=10)
    assert power(means.total, baseline=50, mde=1.0, kind="mean", sd=10) == pytest.approx(0.8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"baseline": 0.1, "mde": 0.0},
        {"baseline": 0.95, "mde": 0.1},
        {"baseline": 1.5, "mde": 0.1},
        {"baseline": 0.1, "mde": 0.02, "power": 0.01},
        {"baseline": 0.1, "mde": 0.02, "alpha": 0.0},
        {"baseline": 0.1, "mde": -0.02, "alternative": "larger"},
        {"baseline": 0.1, "mde": 0.02, "arms": 1},
        {"baseline": 10, "mde": 1, "kind": "mean"},
        {"baseline": 0.1, "mde": 0.02, "allocations": [1, 2, 3]},
    ],
)
def test_sample_size_without_solution_raises(kwargs):
    with pytest.raises(ConfigurationError):
        sample_size(**kwargs)


def test_mde_without_solution_raises():
    with pytest.raises(ConfigurationError, match="no effect is detectable"):
        mde(10, baseline=0.5, power=0.99, alpha=0.001)


def test_ratio_metric_delta_method_by_hand():
    rng = np.random.default_rng(1)
    rows = {}
    for arm in ("A", "B"):
        d = rng.poisson(5, 3000) + 1.0
        m = d * rng.uniform(0.5, 1.5, 3000)
        rows[arm] = (m, d)
    summaries = [
        ArmSummary(arm, "r", n=3000, sum=m.sum(), sum_sq=(m * m).sum(), kind="ratio",
                   denom_sum=d.sum(), denom_sum_sq=(d * d).sum(), num_denom_sum=(m * d).sum())
        for arm, (m, d) in rows.items()
    ]  # fmt: skip
    arm = analyze(summaries, correction="none").arms[0]

    def var_ratio(m: np.ndarray, d: np.ndarray) -> float:
        cov = np.cov(m, d)  # ddof 1
        mm, md = m.mean(), d.mean()
        return (cov[0, 0] / md**2 - 2 * cov[0, 1] * mm / md**3 + mm**2 * cov[1, 1] / md**4) / m.size

    ra = rows["A"][0].sum() / rows["A"][1].sum()
    rb = rows["B"][0].sum() / rows["B"][1].sum()
    assert arm.effect_abs == pytest.approx(rb - ra, rel=1e-10)
    assert arm.std_error == pytest.approx(
        math.sqrt(var_ratio(*rows["A"]) + var_ratio(*rows["B"])), rel=1e-8
    )


def test_fieller_interval_for_the_relative_lift():
    arm = analyze([cont("A", 40, 2.0, 1.5), cont("B", 40, 2.6, 1.5)], correction="none",
                  relative_interval="fieller").arms[0]  # fmt: skip
    va = vb = 1.5**2 / 40
    df = (va + vb) ** 2 / (va**2 / 39 + vb**2 / 39)
    t = stats.t.isf(0.025, df)
    # roots of (2.6 - r 2.0)^2 = t^2 (vb + r^2 va)
    a, b, c = 4.0 - t * t * va, -2 * 2.0 * 2.6, 2.6**2 - t * t * vb
    r = sorted(np.roots([a, b, c]).real)
    assert arm.ci_rel == pytest.approx((r[0] - 1, r[1] - 1), rel=1e-10)
    delta = analyze([cont("A", 40, 2.0, 1.5), cont("B", 40, 2.6, 1.5)], correction="none").arms[0]
    # Fieller is asymmetric: longer on the upper side than the delta interval
    assert arm.ci_rel[1] - 0.3 > 0.3 - arm.ci_rel[0]
    assert delta.ci_rel[1] - 0.3 == pytest.approx(0.3 - delta.ci_rel[0])
    big = [cont("A", 10**6, 2.0, 1.5), cont("B", 10**6, 2.02, 1.5)]
    f = analyze(big, relative_interval="fieller").arms[0].ci_rel
    d = analyze(big).arms[0].ci_rel
    assert f == pytest.approx(d, rel=1e-3)


def test_pre_period_imbalance_is_flagged():
    def arm(name: str, pre_mean: float) -> ArmSummary:
        n, y, x = 2000, 10.0, pre_mean
        return ArmSummary(name, "y", n=n, sum=n * y, sum_sq=n * y * y + 4 * (n - 1),
                          pre_sum=n * x, pre_sum_sq=n * x * x + 4 * (n - 1),
                          cross_sum=n * x * y + 2 * (n - 1))  # fmt: skip

    assert "pre_period_imbalance" in analyze([arm("A", 10.0), arm("B", 10.5)]).arms[0].warnings
    assert analyze([arm("A", 10.0), arm("B", 10.01)]).arms[0].warnings == ()


def _multi_summary(arm: str, y: np.ndarray, xs: np.ndarray) -> ArmSummary:
    p = xs.shape[1]
    prods = tuple(float(xs[:, j] @ xs[:, k]) for j in range(p) for k in range(j, p))
    return ArmSummary(
        arm, "y", n=y.size, sum=float(y.sum()), sum_sq=float(y @ y),
        covariate_sums=tuple(xs.sum(axis=0).tolist()), covariate_products=prods,
        covariate_cross=tuple((xs.T @ y).tolist()),
    )  # fmt: skip


def test_cuped_with_several_covariates_matches_regression_on_raw_data():
    rng = np.random.default_rng(12)
    raw = {}
    for arm, lift in (("A", 0.0), ("B", 0.15)):
        x = rng.normal(size=(3000, 2)) @ np.array([[1.0, 0.3], [0.0, 1.0]]) + 5
        y = 2 + 0.8 * x[:, 0] - 0.5 * x[:, 1] + rng.normal(lift, 1.0, 3000)
        raw[arm] = (y, x)
    arm = analyze([_multi_summary(a, *raw[a]) for a in ("A", "B")], correction="none").arms[0]
    # theta by least squares on the pooled data, then a Welch test of y - theta'x
    pooled = np.vstack([np.column_stack([x, y]) for y, x in raw.values()])
    cov = np.cov(pooled, rowvar=False)
    theta = np.linalg.solve(cov[:2, :2], cov[:2, 2])
    za, zb = (raw[a][0] - raw[a][1] @ theta for a in ("A", "B"))
    ref = stats.ttest_ind(zb, za, equal_var=False)
    assert arm.cuped_coefficients == pytest.approx(tuple(theta), rel=1e-9)
    assert arm.effect_abs == pytest.approx(zb.mean() - za.mean(), rel=1e-9)
    assert arm.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert arm.cuped_theta is None


def test_one_covariate_in_tuple_form_equals_the_pre_fields():
    rng = np.random.default_rng(13)
    tuple_form, pre_form = [], []
    for arm in ("A", "B"):
        x = rng.normal(10, 2, 2000)
        y = x + rng.normal(0.1 if arm == "B" else 0, 1, 2000)
        tuple_form.append(_multi_summary(arm, y, x[:, None]))
        pre_form.append(ArmSummary(arm, "y", n=2000, sum=y.sum(), sum_sq=y @ y, pre_sum=x.sum(),
                                   pre_sum_sq=x @ x, cross_sum=x @ y))  # fmt: skip
    a, b = analyze(tuple_form).arms[0], analyze(pre_form).arms[0]
    assert a.effect_abs == pytest.approx(b.effect_abs, rel=1e-10)
    assert a.ci == pytest.approx(b.ci, rel=1e-10)
    assert a.cuped_coefficients == pytest.approx((b.cuped_theta,), rel=1e-10)


def test_covariate_tuples_are_checked():
    with pytest.raises(ConfigurationError, match="covariate_products"):
        ArmSummary("A", "y", n=3, covariate_sums=(1.0, 2.0), covariate_products=(1.0,),
                   covariate_cross=(1.0, 1.0))  # fmt: skip
    with pytest.raises(ConfigurationError):
        ArmSummary("A", "y", n=3, covariate_sums=(float("nan"),), covariate_products=(1.0,),
                   covariate_cross=(1.0,))  # fmt: skip


def test_ridge_shrinks_and_collinear_covariates_stay_finite():
    rng = np.random.default_rng(14)
    parts = []
    for arm in ("A", "B"):
        x = rng.normal(10, 2, 1000)
        y = x + rng.normal(0, 1, 1000)
        parts.append((arm, y, np.column_stack([x, x])))  # the same covariate twice
    summaries = [_multi_summary(a, y, x) for a, y, x in parts]
    plain = analyze(summaries).arms[0]
    assert plain.cuped_coefficients is not None
    # minimum-norm solution splits theta ~ 1 over the two copies
    assert sum(plain.cuped_coefficients) == pytest.approx(1.0, abs=0.05)
    ridge = analyze(summaries, cuped_ridge=1.0).arms[0]
    assert sum(ridge.cuped_coefficients) < sum(plain.cuped_coefficients)
    assert all(math.isfinite(v) for v in all_floats(analyze(summaries)))
