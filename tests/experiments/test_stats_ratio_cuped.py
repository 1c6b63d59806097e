"""CUPED for ratio metrics, checked against an independent computation from unit-level data.

The installed gbstats (0.8.0, the newest on the package index) has no
``RegressionAdjustedRatioStatistic``, so the reference here is built from the raw units of
hypothesis-generated experiments, without the sufficient-sums formulas of the engine:

- per arm, the mean vector of (y, d, x, e) and its covariance matrix (``numpy.cov``, n - 1);
- the estimate of each arm, R_post - theta R_pre, as a function of those four means; its
  gradient by central finite differences and the delta-method variance J L J' / n;
- theta as the minimizer of the summed per-unit variance of the two arms, which is what the
  closed form (C_A + C_B) / (V_A + V_B) of gbstats' convention solves: that variance is a
  parabola in theta, so its vertex follows from three evaluations (theta = -1, 0, 1);
- the relative lift (adjusted B - adjusted A) / |R_post,A| differentiated numerically in all
  eight means (theta held fixed), variances of the two arms added.
"""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ArmSummary, analyze


def _units(rng: np.random.Generator, n: int, lift: float, rho: float) -> np.ndarray:
    """Columns y (numerator), d (denominator), x (pre numerator), e (pre denominator)."""
    e = rng.poisson(4.0, n) + 1.0
    x = e * rng.gamma(2.0, 1.5, n)
    d = np.maximum(1.0, np.round(e * rho + rng.poisson(2.0, n)))
    y = d * (rho * x / e + rng.gamma(2.0, 1.0, n)) * (1 + lift)
    return np.column_stack([y, d, x, e])


def _summary(arm: str, u: np.ndarray) -> ArmSummary:
    y, d, x, e = u.T
    return ArmSummary(
        arm, "rpu", n=len(y), kind="ratio",
        sum=y.sum(), sum_sq=(y * y).sum(), denom_sum=d.sum(), denom_sum_sq=(d * d).sum(),
        num_denom_sum=(y * d).sum(), pre_sum=x.sum(), pre_sum_sq=(x * x).sum(),
        cross_sum=(x * y).sum(),
        ratio_pre=((e).sum(), (e * e).sum(), (d * e).sum(), (x * e).sum(), (y * e).sum(),
                   (x * d).sum()),
    )  # fmt: skip


def _adjusted(means: np.ndarray, theta: float) -> float:
    y, d, x, e = means
    return y / d - theta * x / e


def _grad(f, point: np.ndarray) -> np.ndarray:
    out = np.empty(point.size)
    for i in range(point.size):
        h = 1e-6 * max(abs(point[i]), 1.0)
        up, down = point.copy(), point.copy()
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


def _reference(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)

    def unit_var(theta: float) -> float:
        ja = _grad(lambda m: _adjusted(m, theta), mean_a)
        jb = _grad(lambda m: _adjusted(m, theta), mean_b)
        return float(ja @ cov_a @ ja + jb @ cov_b @ jb)

    lo, mid, hi = unit_var(-1.0), unit_var(0.0), unit_var(1.0)
    theta = (lo - hi) / (2 * (lo - 2 * mid + hi))
    ja = _grad(lambda m: _adjusted(m, theta), mean_a)
    jb = _grad(lambda m: _adjusted(m, theta), mean_b)
    effect = _adjusted(mean_b, theta) - _adjusted(mean_a, theta)
    var_abs = ja @ cov_a @ ja / len(a) + jb @ cov_b @ jb / len(b)

    def rel(m8: np.ndarray) -> float:
        ma, mb = m8[:4], m8[4:]
        return (_adjusted(mb, theta) - _adjusted(ma, theta)) / abs(ma[0] / ma[1])

    j = _grad(rel, np.concatenate([mean_a, mean_b]))
    var_rel = j[:4] @ cov_a @ j[:4] / len(a) + j[4:] @ cov_b @ j[4:] / len(b)
    return {
        "theta": theta, "effect": effect, "se": var_abs**0.5,
        "effect_rel": rel(np.concatenate([mean_a, mean_b])), "se_rel": var_rel**0.5,
    }  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_a=st.integers(20, 400),
    n_b=st.integers(20, 400),
    lift=st.floats(-0.2, 0.2),
    rho=st.floats(0.2, 1.5),
)
def test_ratio_cuped_matches_unit_level_delta_method(seed, n_a, n_b, lift, rho):
    rng = np.random.default_rng(seed)
    a, b = _units(rng, n_a, 0.0, rho), _units(rng, n_b, lift, rho)
    ref = _reference(a, b)
    res = analyze([_summary("A", a), _summary("B", b)], correction="none").arms[0]
    assert res.cuped_theta == pytest.approx(ref["theta"], rel=1e-5, abs=1e-8)
    assert res.effect_abs == pytest.approx(ref["effect"], rel=1e-5, abs=1e-9)
    assert res.std_error == pytest.approx(ref["se"], rel=1e-5)
    assert res.effect_rel == pytest.approx(ref["effect_rel"], rel=1e-5, abs=1e-9)
    assert res.std_error_rel == pytest.approx(ref["se_rel"], rel=1e-5)


def test_ratio_cuped_reduces_the_standard_error_and_can_be_switched_off():
    rng = np.random.default_rng(3)
    a, b = _units(rng, 2000, 0.0, 1.0), _units(rng, 2000, 0.05, 1.0)
    arms = [_summary("A", a), _summary("B", b)]
    on = analyze(arms, correction="none").arms[0]
    off = analyze(arms, correction="none", cuped=False).arms[0]
    assert off.cuped_theta is None and on.cuped_theta is not None
    assert on.std_error < off.std_error
    # without CUPED the effect is the plain difference of the ratios of sums
    y_a, d_a = a[:, 0].sum(), a[:, 1].sum()
    y_b, d_b = b[:, 0].sum(), b[:, 1].sum()
    assert off.effect_abs == pytest.approx(y_b / d_b - y_a / d_a, rel=1e-12)


def test_ratio_pre_is_refused_on_other_kinds_and_with_the_wrong_length():
    with pytest.raises(ConfigurationError, match="ratio_pre is for ratio metrics"):
        ArmSummary("A", "m", n=3, sum=1.0, sum_sq=1.0, ratio_pre=(1.0,) * 6)
    with pytest.raises(ConfigurationError, match="ratio_pre needs 6 sums"):
        ArmSummary("A", "m", n=3, kind="ratio", ratio_pre=(1.0, 2.0))


def test_ratio_cuped_needs_the_sums_in_both_arms():
    rng = np.random.default_rng(5)
    a, b = _units(rng, 300, 0.0, 1.0), _units(rng, 300, 0.0, 1.0)
    sa = _summary("A", a)
    bare = attrs.evolve(_summary("B", b), ratio_pre=())
    res = analyze([sa, bare], correction="none").arms[0]
    assert res.cuped_theta is None
    assert "cuped_not_applied" in res.warnings
