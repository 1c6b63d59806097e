"""Thompson-sampling price bandit: regret on seeded simulations, posterior sanity, bad input."""

from __future__ import annotations

import math

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import PricingBandit

PRICES = [4.99, 7.99, 9.99, 12.99, 14.99, 19.99]


def logit_conversion(p: float) -> float:
    return 1 / (1 + math.exp(-(2.0 - 0.25 * p)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regret_below_two_percent_after_10k_rounds(seed):
    sim = PricingBandit.simulate(PRICES, logit_conversion, rounds=10_000, seed=seed)
    # the truth, computed here: revenue p * conversion(p) peaks at 7.99 on this grid
    best = max(PRICES, key=lambda p: p * logit_conversion(p))
    assert sim.optimal_price == best == 7.99
    assert sim.regret_fraction <= 0.02
    assert sim.pulls[7.99] > 0.8 * 10_000
    assert sum(sim.pulls.values()) == 10_000


def test_profit_objective_moves_the_price_up():
    rev = PricingBandit.simulate(PRICES, logit_conversion, rounds=3000, seed=3)
    prof = PricingBandit.simulate(
        PRICES, logit_conversion, rounds=3000, seed=3, objective="profit", unit_cost=6.0
    )
    best = max(PRICES, key=lambda p: (p - 6.0) * logit_conversion(p))
    assert prof.optimal_price == best > rev.optimal_price


def test_independent_model_finds_the_top_of_any_curve():
    def curve(p):
        return 0.6 * math.exp(-p / 10)  # not logit: each price learns on its own

    sim = PricingBandit.simulate(
        [4, 6, 8, 10, 14, 20], curve, rounds=10_000, seed=0, model="independent"
    )
    assert sim.optimal_price == 10
    assert sim.regret_fraction < 0.06
    assert max(sim.pulls, key=sim.pulls.get) in (8, 10, 14)


def test_posterior_and_updates():
    bandit = PricingBandit([10, 20], model="independent", seed=1)
    bandit.update(10, purchased=3, visitors=10)
    bandit.update(20, purchased=True)
    arms = bandit.arms()
    assert (arms[0].alpha, arms[0].beta, arms[0].trials) == (4.0, 8.0, 10)
    assert arms[1].conversion == pytest.approx(2 / 3)
    assert bandit.best_price() == 20  # 20 * 2/3 > 10 * 1/3
    logit = PricingBandit([10, 20], seed=1)
    for _ in range(200):
        logit.update(10, purchased=1)
        logit.update(20, purchased=0)
    assert logit.best_price() == 10
    assert logit.choose() in (10, 20)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([[10]], {}, "at least two"),
        ([[10, -1]], {}, "> 0"),
        ([[10, 20]], {"objective": "clicks"}, "objective"),
        ([[10, 20]], {"model": "nn"}, "model"),
        ([[10, 20]], {"prior": (0, 1)}, "prior"),
    ],
)
def test_bad_bandits(args, kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        PricingBandit(*args, **kwargs)


def test_bad_updates_and_simulations():
    bandit = PricingBandit([10, 20])
    with pytest.raises(ConfigurationError, match="not on the grid"):
        bandit.update(15, True)
    with pytest.raises(ConfigurationError, match="purchased"):
        bandit.update(10, purchased=3, visitors=2)
    with pytest.raises(ConfigurationError, match="not a probability"):
        PricingBandit.simulate([1, 2], lambda p: 2.0, rounds=10)
