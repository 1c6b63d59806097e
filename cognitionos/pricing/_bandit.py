"""Dynamic pricing: Thompson sampling over a price grid with a Bayesian demand model.

Two demand models:

- ``model="logit"`` (default): the purchase probability is ``sigmoid(a - b * price)`` (logit
  demand) with a Gaussian prior on ``(a, b)``; its posterior is the Laplace approximation
  around the MAP, refitted by Newton steps after every observation. Every price teaches the
  model about every other price, so it learns fast when demand is (close to) logit.
- ``model="independent"``: one Beta posterior per price point, no shape assumed (robust to any
  curve, slower to learn).

To choose, a demand curve is drawn from the posterior and the price with the highest sampled
*reward* wins: revenue ``p * theta`` or profit ``(p - c) * theta`` (never the bare conversion
rate, which would favour the cheapest price).

    bandit = PricingBandit([9.99, 12.99, 14.99], unit_cost=4.0, objective="profit", seed=1)
    price = bandit.choose()
    bandit.update(price, purchased=True)
    PricingBandit.simulate([1, 2, 3], conversion=lambda p: 0.9 - 0.25 * p, rounds=10_000)
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError

__all__ = ["ArmState", "BanditSimulation", "PricingBandit"]


@attrs.frozen(slots=True)
class ArmState:
    """Posterior of one price point: Beta(alpha, beta) over its purchase probability."""

    price: float
    alpha: float
    beta: float
    trials: int
    purchases: int

    @property
    def conversion(self) -> float:
        """Posterior mean purchase probability."""
        return self.alpha / (self.alpha + self.beta)


@attrs.frozen(slots=True)
class BanditSimulation:
    """What a seeded simulation did: regret against always playing the best price."""

    rounds: int
    optimal_price: float
    optimal_reward_per_round: float
    expected_reward: float
    regret: float
    regret_fraction: float
    pulls: dict[float, int]
    seed: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        out = attrs.asdict(self)
        out["pulls"] = {str(k): v for k, v in self.pulls.items()}
        return out


class PricingBandit:
    """Thompson sampling over ``prices`` (see the module docstring)."""

    def __init__(
        self,
        prices: Sequence[float],
        *,
        unit_cost: float = 0.0,
        objective: str = "revenue",
        prior: tuple[float, float] = (1.0, 1.0),
        model: str = "logit",
        prior_sd: float = 10.0,
        seed: int | None = None,
    ) -> None:
        grid = []
        for p in prices:
            try:
                value = float(p)
            except (TypeError, ValueError):
                raise ConfigurationError(f"prices must be numbers, got {p!r}") from None
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"prices must be > 0, got {p!r}")
            grid.append(value)
        if len(grid) < 2 or len(set(grid)) != len(grid):
            raise ConfigurationError("a price grid needs at least two distinct prices")
        if objective not in ("revenue", "profit"):
            raise ConfigurationError(f"objective must be 'revenue' or 'profit', got {objective!r}")
        cost = float(unit_cost)
        if not (math.isfinite(cost) and cost >= 0):
            raise ConfigurationError(f"unit_cost must be >= 0, got {unit_cost!r}")
        if model not in ("logit", "independent"):
            raise ConfigurationError(f"model must be 'logit' or 'independent', got {model!r}")
        if not (math.isfinite(prior_sd) and prior_sd > 0):
            raise ConfigurationError(f"prior_sd must be > 0, got {prior_sd!r}")
        a, b = (float(v) for v in prior)
        if not (a > 0 and b > 0):
            raise ConfigurationError("prior must be two positive numbers (Beta alpha, beta)")
        self.prices = tuple(grid)
        self.unit_cost = cost if objective == "profit" else 0.0
        self.objective = objective
        self._alpha = [a] * len(grid)
        self._beta = [b] * len(grid)
        self._trials = [0] * len(grid)
        self._purchases = [0] * len(grid)
        self._rng = random.Random(seed)
        self.model = model
        # logit model on a standardized price: x = (1, z), z = (p - mean) / sd
        mean = sum(grid) / len(grid)
        sd = math.sqrt(sum((p - mean) ** 2 for p in grid) / len(grid))
        self._z = [(p - mean) / sd for p in grid]
        self._prior_precision = 1.0 / prior_sd**2
        self._theta = [0.0, 0.0]
        self._cov = [[prior_sd**2, 0.0], [0.0, prior_sd**2]]

    def _refit(self, steps: int = 3) -> None:
        """Newton steps to the MAP of the logit model; the covariance is -H^-1 there."""
        t0, t1 = self._theta
        lam = self._prior_precision
        for _ in range(steps):
            g0, g1 = -lam * t0, -lam * t1
            h00, h01, h11 = lam, 0.0, lam
            for z, n, k in zip(self._z, self._trials, self._purchases, strict=True):
                if n == 0:
                    continue
                u = t0 + t1 * z
                s = 1 / (1 + math.exp(-u)) if u > -700 else 0.0
                g0 += k - n * s
                g1 += (k - n * s) * z
                w = n * s * (1 - s)
                h00 += w
                h01 += w * z
                h11 += w * z * z
            det = h00 * h11 - h01 * h01
            d0 = (h11 * g0 - h01 * g1) / det
            d1 = (h00 * g1 - h01 * g0) / det
            # damped: a saturated sigmoid makes plain Newton overshoot and oscillate
            norm = math.hypot(d0, d1)
            if norm > 1.0:
                d0, d1 = d0 / norm, d1 / norm
            t0 += d0
            t1 += d1
        self._theta = [t0, t1]
        self._cov = [[h11 / det, -h01 / det], [-h01 / det, h00 / det]]

    def _draw_conversions(self) -> list[float]:
        if self.model == "independent":
            return [
                self._rng.betavariate(a, b) for a, b in zip(self._alpha, self._beta, strict=True)
            ]
        (c00, c01), (_, c11) = self._cov
        l00 = math.sqrt(c00)
        l10 = c01 / l00
        l11 = math.sqrt(max(c11 - l10 * l10, 0.0))
        e0, e1 = self._rng.gauss(0, 1), self._rng.gauss(0, 1)
        t0 = self._theta[0] + l00 * e0
        t1 = self._theta[1] + l10 * e0 + l11 * e1
        return [1 / (1 + math.exp(-max(t0 + t1 * z, -700))) for z in self._z]

    def _margin(self, i: int) -> float:
        return self.prices[i] - self.unit_cost

    def choose(self) -> float:
        """The price to show next: argmax over prices of margin x a posterior draw."""
        conv = self._draw_conversions()
        draws = [self._margin(i) * conv[i] for i in range(len(self.prices))]
        return self.prices[max(range(len(draws)), key=draws.__getitem__)]

    def update(self, price: float, purchased: bool | int, visitors: int = 1) -> None:
        """Record ``visitors`` shown ``price`` of whom ``purchased`` (a count or a bool) bought."""
        try:
            i = self.prices.index(float(price))
        except ValueError:
            raise ConfigurationError(f"price {price!r} is not on the grid {self.prices}") from None
        bought = int(purchased)
        if visitors < 1 or not (0 <= bought <= visitors):
            raise ConfigurationError("need 0 <= purchased <= visitors and visitors >= 1")
        self._alpha[i] += bought
        self._beta[i] += visitors - bought
        self._trials[i] += visitors
        self._purchases[i] += bought
        if self.model == "logit":
            self._refit()

    def arms(self) -> list[ArmState]:
        """The posterior of every price point."""
        return [
            ArmState(p, self._alpha[i], self._beta[i], self._trials[i], self._purchases[i])
            for i, p in enumerate(self.prices)
        ]

    def best_price(self) -> float:
        """The price with the highest posterior (MAP, for the logit model) mean reward."""
        if self.model == "logit":
            t0, t1 = self._theta
            conv = [1 / (1 + math.exp(-max(t0 + t1 * z, -700))) for z in self._z]
        else:
            conv = [arm.conversion for arm in self.arms()]
        best = max(range(len(conv)), key=lambda i: self._margin(i) * conv[i])
        return self.prices[best]

    @classmethod
    def simulate(
        cls,
        prices: Sequence[float],
        conversion: Callable[[float], float],
        *,
        rounds: int = 10_000,
        unit_cost: float = 0.0,
        objective: str = "revenue",
        model: str = "logit",
        seed: int = 0,
    ) -> BanditSimulation:
        """Play ``rounds`` visitors whose purchase probability at price p is ``conversion(p)``.

        Regret is expected (pseudo-)regret: the best price's expected reward times ``rounds``
        minus the expected reward of the prices actually chosen.
        """
        if not isinstance(rounds, int) or rounds < 1:
            raise ConfigurationError(f"rounds must be an integer >= 1, got {rounds!r}")
        bandit = cls(prices, unit_cost=unit_cost, objective=objective, model=model, seed=seed)
        truth = []
        for p in bandit.prices:
            c = float(conversion(p))
            if not (0 <= c <= 1):
                raise ConfigurationError(f"conversion({p}) = {c} is not a probability")
            truth.append(c)
        rewards = [bandit._margin(i) * truth[i] for i in range(len(truth))]
        best = max(range(len(rewards)), key=rewards.__getitem__)
        world = random.Random(seed + 1)
        expected = 0.0
        pulls = dict.fromkeys(bandit.prices, 0)
        for _ in range(rounds):
            price = bandit.choose()
            i = bandit.prices.index(price)
            pulls[price] += 1
            expected += rewards[i]
            bandit.update(price, world.random() < truth[i])
        optimum = rewards[best] * rounds
        regret = optimum - expected
        return BanditSimulation(
            rounds=rounds,
            optimal_price=bandit.prices[best],
            optimal_reward_per_round=rewards[best],
            expected_reward=expected,
            regret=regret,
            regret_fraction=regret / optimum if optimum > 0 else 0.0,
            pulls=pulls,
            seed=seed,
        )
