"""Quantile metrics: order-statistic intervals (against scipy) and coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import quantile_test


@pytest.mark.parametrize(("n", "q"), [(101, 0.5), (500, 0.9), (2000, 0.99), (40, 0.25)])
def test_arm_intervals_match_scipy_quantile_test(n, q):
    rng = np.random.default_rng(n)
    a, b = rng.exponential(size=n), rng.exponential(size=n) * 1.2
    res = quantile_test(a, b, q)
    for values, ci in ((a, res.control_ci), (b, res.treatment_ci)):
        ref = stats.quantile_test(values, q=np.quantile(values, q), p=q).confidence_interval(0.95)
        assert ci == pytest.approx((ref.low, ref.high))
    assert res.control == pytest.approx(np.quantile(a, q))


def test_difference_covers_the_true_difference():
    rng = np.random.default_rng(9)
    reps, covered = 600, 0
    true_diff = math.log(2) * 0.5  # medians of Exp(1) and Exp(mean 1.5)
    for _ in range(reps):
        r = quantile_test(rng.exponential(size=800), rng.exponential(1.5, size=800), 0.5)
        covered += r.ci[0] <= true_diff <= r.ci[1]
    rate = covered / reps
    assert abs(rate - 0.95) < 4 * math.sqrt(0.95 * 0.05 / reps), rate


def test_too_few_units_and_bad_input():
    r = quantile_test([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], 0.99)
    assert r.effect_abs is None and r.p_value is None and r.warnings
    with pytest.raises(ConfigurationError):
        quantile_test([], [1.0], 0.5)
    with pytest.raises(ConfigurationError):
        quantile_test([1.0, float("nan")], [1.0], 0.5)
    with pytest.raises(ConfigurationError):
        quantile_test([1.0], [1.0], 1.0)
    with pytest.raises(ConfigurationError):
        quantile_test(["a"], [1.0], 0.5)
