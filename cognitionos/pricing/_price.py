"""Demand curves and the revenue- or profit-optimal price under constraints.

    optimal_price(elasticity=-2.5, unit_cost=4.0)                 # Lerner: 4 * 2.5/1.5
    optimal_price(demand=LinearDemand(100, 2), objective="revenue")   # a / (2b) = 25
    optimal_price(elasticity=-0.6, unit_cost=4, bounds=(5, 12))   # inelastic: the upper bound
    optimal_price(demand=d, unit_cost=3, bounds=(5, 20), charm_endings=(0.99, 0.49))

Each curve knows its own unconstrained optimum in closed form (the logit one solves its
first-order condition by bracketing). These objectives are unimodal in price, so the
constrained continuous optimum is the unconstrained one clipped into the bounds; price ladders
and charm endings are searched exhaustively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._elasticity import ElasticityEstimate

__all__ = [
    "ConstantElasticityDemand",
    "DemandCurve",
    "LinearDemand",
    "LogitDemand",
    "PriceDecision",
    "optimal_price",
]

OBJECTIVES = ("profit", "revenue")


class DemandCurve(Protocol):
    """Quantity as a function of price, with its closed-form optimum."""

    def quantity(self, price: float) -> float:
        """Expected quantity sold at ``price``."""

    def unconstrained_optimum(self, unit_cost: float) -> tuple[float | None, str]:
        """(price, note); price None means the objective grows without bound (note says where)."""


def _finite(name: str, value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigurationError(f"{name} must be finite, got {value!r}")
    return v


@attrs.frozen(slots=True)
class LinearDemand:
    """``q = intercept - slope * p`` (zero beyond ``intercept / slope``)."""

    intercept: float = attrs.field(converter=float)
    slope: float = attrs.field(converter=float)

    def __attrs_post_init__(self) -> None:
        if not (self.intercept > 0 and self.slope > 0):
            raise ConfigurationError("LinearDemand needs intercept > 0 and slope > 0")

    @classmethod
    def fit(cls, prices: Any, quantities: Any) -> LinearDemand:
        """Least squares line through (price, quantity)."""
        import numpy as np

        from cognitionos.pricing._inputs import as_float_array

        p = as_float_array("prices", prices)
        q = as_float_array("quantities", quantities, length=p.size)
        if np.ptp(p) == 0:
            raise ConfigurationError("prices are constant: the demand slope is not identified")
        slope, intercept = np.polyfit(p, q, 1)
        return cls(intercept=float(intercept), slope=float(-slope))

    def quantity(self, price: float) -> float:
        """``max(0, a - b p)``."""
        return max(0.0, self.intercept - self.slope * price)

    def elasticity(self, price: float) -> float:
        """Point elasticity ``-b p / q``."""
        return -self.slope * price / self.quantity(price)

    def unconstrained_optimum(self, unit_cost: float) -> tuple[float | None, str]:
        """``(a/b + c) / 2``; with ``c = 0`` the revenue optimum ``a / (2b)``."""
        return (self.intercept / self.slope + unit_cost) / 2, "closed form (a/b + c)/2"


@attrs.frozen(slots=True)
class ConstantElasticityDemand:
    """``q = scale * p ** elasticity`` (log-linear demand)."""

    elasticity: float = attrs.field(converter=float)
    scale: float = attrs.field(default=1.0, converter=float)

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.elasticity) and self.scale > 0):
            raise ConfigurationError(
                "ConstantElasticityDemand needs a finite elasticity, scale > 0"
            )

    def quantity(self, price: float) -> float:
        """``A p^e``."""
        return float(self.scale * price**self.elasticity)

    def unconstrained_optimum(self, unit_cost: float) -> tuple[float | None, str]:
        """Lerner's rule ``c e / (1 + e)`` when demand is elastic (e < -1) and c > 0."""
        e = self.elasticity
        if e < -1:
            if unit_cost > 0:
                return unit_cost * e / (1 + e), "Lerner rule p = c e/(1+e)"
            return 0.0, "elastic demand, no cost: the objective falls with price (lowest price)"
        if e == -1 and unit_cost == 0:
            return None, "unit elasticity: revenue does not depend on price"
        return None, f"|elasticity| = {abs(e):g} <= 1: the objective rises without bound in price"


@attrs.frozen(slots=True)
class LogitDemand:
    """``q = market_size * s(p)``, ``s = 1 / (1 + exp(-(alpha - beta p)))`` (buy vs. not buy)."""

    alpha: float = attrs.field(converter=float)
    beta: float = attrs.field(converter=float)
    market_size: float = attrs.field(default=1.0, converter=float)

    def __attrs_post_init__(self) -> None:
        if not (self.beta > 0 and self.market_size > 0 and math.isfinite(self.alpha)):
            raise ConfigurationError("LogitDemand needs beta > 0 and market_size > 0")

    def share(self, price: float) -> float:
        """Purchase probability at ``price``."""
        u = self.alpha - self.beta * price
        return 1 / (1 + math.exp(-u)) if u > -700 else 0.0

    def quantity(self, price: float) -> float:
        """``M s(p)``."""
        return self.market_size * self.share(price)

    def elasticity(self, price: float) -> float:
        """Point elasticity ``-beta p (1 - s)``."""
        return -self.beta * price * (1 - self.share(price))

    def unconstrained_optimum(self, unit_cost: float) -> tuple[float | None, str]:
        """Root of ``p - c = 1 / (beta (1 - s(p)))`` (unique: left side rises, right falls)."""
        from scipy.optimize import brentq

        def foc(p: float) -> float:
            return (p - unit_cost) * self.beta * (1 - self.share(p)) - 1

        lo = max(unit_cost, 0.0)
        hi = lo + 1 / self.beta
        while foc(hi) < 0:
            hi = lo + 2 * (hi - lo)
        return float(brentq(foc, lo, hi, xtol=1e-12)), "first-order condition (logit)"


@attrs.frozen(slots=True)
class PriceDecision:
    """The chosen price, what it earns under the demand curve, and why it was chosen."""

    price: float
    objective: str
    value: float
    quantity: float
    unconstrained_price: float | None
    constrained: bool
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return attrs.asdict(self)


#: the most price points a ladder or bounds x charm endings may list (each one is evaluated)
MAX_PRICE_POINTS = 1_000_000


def _candidates(
    bounds: tuple[float, float] | None,
    ladder: Sequence[float] | None,
    charm_endings: Sequence[float] | None,
) -> list[float] | None:
    if ladder is not None:
        if len(ladder) > MAX_PRICE_POINTS:
            raise ConfigurationError(
                f"the ladder lists {len(ladder):,} prices; at most {MAX_PRICE_POINTS:,}"
            )
        prices = sorted({_finite("ladder price", p) for p in ladder})
        if any(p <= 0 for p in prices):
            raise ConfigurationError("ladder prices must be > 0")
    elif charm_endings is not None:
        if bounds is None:
            raise ConfigurationError("charm_endings need bounds=(lo, hi) to list prices")
        endings = [_finite("charm ending", e) for e in charm_endings]
        if any(not (0 <= e < 1) for e in endings):
            raise ConfigurationError("charm endings are the cents part, in [0, 1)")
        lo, hi = bounds
        count = (math.floor(hi) - math.floor(lo) + 1) * len(endings)
        if count > MAX_PRICE_POINTS:
            raise ConfigurationError(
                f"bounds={bounds!r} with {len(endings)} charm ending(s) list {count:,} prices; "
                f"at most {MAX_PRICE_POINTS:,}: narrow the bounds or pass a ladder"
            )
        prices = [
            whole + e
            for whole in range(math.floor(lo), math.floor(hi) + 1)
            for e in endings
            if lo <= whole + e <= hi
        ]
    else:
        return None
    if bounds is not None:
        prices = [p for p in prices if bounds[0] <= p <= bounds[1]]
    if not prices:
        raise ConfigurationError("no allowed price lies inside the bounds")
    return prices


def optimal_price(
    elasticity: float | ElasticityEstimate | None = None,
    *,
    demand: Any = None,
    unit_cost: float = 0.0,
    bounds: tuple[float, float] | None = None,
    objective: str = "profit",
    ladder: Sequence[float] | None = None,
    charm_endings: Sequence[float] | None = None,
) -> PriceDecision:
    """The price maximising profit ``(p - c) q(p)`` or revenue ``p q(p)``.

    Give either a constant ``elasticity`` (a number or an :class:`ElasticityEstimate`) or a
    ``demand`` curve. ``bounds=(lo, hi)`` keep the price inside a range (and are required
    when the optimum is unbounded, e.g. inelastic demand); ``ladder`` restricts it to listed
    price points, ``charm_endings=(0.99,)`` to prices ending in those cents.
    """
    if objective not in OBJECTIVES:
        raise ConfigurationError(f"objective must be 'profit' or 'revenue', got {objective!r}")
    if (elasticity is None) == (demand is None):
        raise ConfigurationError("give exactly one of elasticity= or demand=")
    if demand is None:
        e = elasticity.estimate if isinstance(elasticity, ElasticityEstimate) else elasticity
        demand = ConstantElasticityDemand(elasticity=_finite("elasticity", e))
    if not (hasattr(demand, "quantity") and hasattr(demand, "unconstrained_optimum")):
        raise ConfigurationError("demand must be a demand curve (LinearDemand, ...)")
    cost = _finite("unit_cost", unit_cost)
    if cost < 0:
        raise ConfigurationError(f"unit_cost must be >= 0, got {unit_cost!r}")
    if objective == "revenue":
        cost = 0.0
    if bounds is not None:
        lo, hi = (_finite("bounds", b) for b in bounds)
        if not (0 < lo <= hi):
            raise ConfigurationError(f"bounds must satisfy 0 < lo <= hi, got {bounds!r}")
        bounds = (lo, hi)

    def value(p: float) -> float:
        return float((p - cost) * demand.quantity(p))

    notes: list[str] = []
    best, why = demand.unconstrained_optimum(cost)
    notes.append(why)
    candidates = _candidates(bounds, ladder, charm_endings)
    if candidates is not None:
        price = max(candidates, key=lambda p: (value(p), -p))
        notes.append(f"best of {len(candidates)} allowed price points")
        constrained = best is None or not math.isclose(price, best, rel_tol=1e-12)
    else:
        if best is None or best <= 0:
            if bounds is None:
                raise ConfigurationError(
                    f"{why}; give bounds=(lo, hi) to choose a price inside them"
                )
            price = bounds[1] if best is None else bounds[0]
            notes.append(f"kept inside bounds: price {'upper' if best is None else 'lower'} bound")
            constrained = True
        elif bounds is not None and not (bounds[0] <= best <= bounds[1]):
            price = min(max(best, bounds[0]), bounds[1])
            notes.append("optimum outside bounds: clipped (the objective is unimodal)")
            constrained = True
        else:
            price, constrained = best, False
    return PriceDecision(
        price=float(price),
        objective=objective,
        value=float(value(price)),
        quantity=float(demand.quantity(price)),
        unconstrained_price=None if best is None else float(best),
        constrained=constrained,
        notes=tuple(notes),
    )
