"""Optimal prices: closed-form identities (Lerner, a/2b), logit FOC, constraints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import (
    ConstantElasticityDemand,
    LinearDemand,
    LogitDemand,
    estimate_elasticity,
    optimal_price,
)


@given(e=st.floats(-8, -1.05), c=st.floats(0.1, 100))
def test_lerner_rule_exact(e, c):
    d = optimal_price(elasticity=e, unit_cost=c)
    assert d.price / c == pytest.approx(e / (1 + e), rel=1e-12)
    assert not d.constrained
    # and it is a maximum: a grid around it earns less
    grid = d.price * np.linspace(0.8, 1.2, 41)
    profits = (grid - c) * grid**e
    assert d.value >= profits.max() * (1 - 1e-12)


@given(a=st.floats(1, 1000), b=st.floats(0.01, 50))
def test_linear_demand_revenue_optimum_is_a_over_2b(a, b):
    d = optimal_price(demand=LinearDemand(a, b), objective="revenue")
    assert d.price == pytest.approx(a / (2 * b), rel=1e-12)
    assert d.quantity == pytest.approx(a / 2, rel=1e-9)


def test_linear_demand_profit_optimum():
    d = optimal_price(demand=LinearDemand(100, 2), unit_cost=10)
    assert d.price == pytest.approx(30.0)  # (a/b + c)/2
    assert d.value == pytest.approx((30 - 10) * (100 - 60))


def test_logit_optimum_satisfies_its_first_order_condition():
    dem = LogitDemand(alpha=4.0, beta=0.5, market_size=1000)
    d = optimal_price(demand=dem, unit_cost=2.0)
    s = dem.share(d.price)
    assert (d.price - 2.0) * 0.5 * (1 - s) == pytest.approx(1.0, rel=1e-9)
    grid = np.linspace(0.5, 30, 3000)
    best = max(grid, key=lambda p: (p - 2) * dem.quantity(p))
    assert abs(best - d.price) < 0.02


def test_inelastic_demand_stays_inside_bounds_and_says_so():
    with pytest.raises(ConfigurationError, match="bounds"):
        optimal_price(elasticity=-0.6, unit_cost=4)
    d = optimal_price(elasticity=-0.6, unit_cost=4, bounds=(5, 12))
    assert d.price == 12 and d.constrained
    assert any("without bound" in n for n in d.notes)
    r = optimal_price(elasticity=-2.0, objective="revenue", bounds=(5, 12))
    assert r.price == 5  # elastic revenue falls with price


def test_bounds_clip_and_ladders_and_charm_endings():
    d = optimal_price(elasticity=-3, unit_cost=10, bounds=(5, 12))  # unconstrained 15
    assert d.price == 12 and d.unconstrained_price == pytest.approx(15)
    ladder = optimal_price(elasticity=-3, unit_cost=10, ladder=[9.99, 14.0, 14.5, 19.99])
    assert ladder.price == 14.5
    charm = optimal_price(
        demand=LinearDemand(100, 2), unit_cost=10, bounds=(20, 40), charm_endings=(0.99, 0.49)
    )
    # profit (p-10)(100-2p) peaks at 30: the nearest charm prices are 29.99 and 30.49
    assert charm.price == pytest.approx(29.99)


def test_optimal_price_takes_an_estimate():
    rng = np.random.default_rng(0)
    p = np.exp(rng.uniform(0, 1, 500))
    q = np.exp(2 - 2.0 * np.log(p) + rng.normal(0, 0.05, 500))
    e = estimate_elasticity(p, q)
    d = optimal_price(elasticity=e, unit_cost=5)
    assert d.price == pytest.approx(5 * e.estimate / (1 + e.estimate))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"elasticity": -2, "objective": "margin"}, "objective"),
        ({"elasticity": -2, "unit_cost": -1}, "unit_cost"),
        ({"elasticity": -2, "unit_cost": 1, "bounds": (5, 2)}, "bounds"),
        ({"elasticity": -2, "unit_cost": 1, "ladder": [100], "bounds": (1, 10)}, "no allowed"),
        ({"elasticity": "steep"}, "number"),
        # a huge range of charm prices is refused up front, not listed (time and memory)
        (
            {"elasticity": -2, "bounds": (1e-9, 1e300), "charm_endings": (0.99,)},
            "narrow the bounds",
        ),
    ],
)
def test_bad_price_requests(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        optimal_price(**kwargs)


def test_demand_curve_validation():
    with pytest.raises(ConfigurationError):
        LinearDemand(10, -1)
    with pytest.raises(ConfigurationError):
        ConstantElasticityDemand(elasticity=-2, scale=0)
    with pytest.raises(ConfigurationError, match="constant"):
        LinearDemand.fit([3, 3, 3], [1, 2, 3])
    fitted = LinearDemand.fit([1, 2, 3, 4], [10, 8, 6, 4])
    assert fitted.intercept == pytest.approx(12) and fitted.slope == pytest.approx(2)
