"""Group-sequential boundaries: Pocock, O'Brien-Fleming and alpha-spending designs.

A design fixes, before the experiment starts, ``looks`` interim analyses at information
fractions t_1 < ... < t_K = 1 and two-sided critical values c_k for the z statistic; stopping
the first time |z_k| >= c_k keeps the overall type-I error at alpha. Crossing probabilities
are computed exactly (to quadrature accuracy) by the recursive numerical integration of
Armitage, McPherson & Rowe (1969) over the score process S_k = Z_k sqrt(I_k), whose
increments are independent N(0, I_k - I_(k-1)) under the null.

- ``"pocock"``: one constant c for every look;
- ``"obrien-fleming"``: c_k = C / sqrt(t_k);
- ``"spending"``: Lan & DeMets alpha spending, with ``spending="obrien-fleming"``
  (each side spends a(t) = 2 - 2 Phi(z_(1 - a/4) / sqrt t) of its one-sided a = alpha/2,
  the convention of gsDesign's sfLDOF, rpact and ldbounds), ``"pocock"``
  (alpha ln(1 + (e - 1) t)) or ``"power"`` (alpha t^rho, Kim & DeMets).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError

__all__ = ["GroupSequentialDesign", "group_sequential_bounds"]

_GRID = 801  # quadrature points per look (odd, for Simpson's rule)


@attrs.frozen(slots=True)
class GroupSequentialDesign:
    """Two-sided boundaries on the z statistic, one per look."""

    kind: str
    alpha: float
    information: tuple[float, ...]
    bounds: tuple[float, ...]
    cumulative_alpha: tuple[float, ...]

    @property
    def nominal_alpha(self) -> tuple[float, ...]:
        """Two-sided p-value threshold of each look (2 (1 - Phi(c_k)))."""
        return tuple(math.erfc(c / math.sqrt(2.0)) for c in self.bounds)

    def crossed(self, z: float, look: int) -> bool:
        """True when the z statistic at ``look`` (1-based) crosses the boundary: stop."""
        if not 1 <= look <= len(self.bounds):
            raise ConfigurationError(f"look={look} must be between 1 and {len(self.bounds)}")
        if not math.isfinite(z):
            raise ConfigurationError(f"z={z!r} must be finite")
        return abs(z) >= self.bounds[look - 1]


class _Recursion:
    """Continuation density of the score process, look by look."""

    def __init__(self, np: Any, special: Any, info: Sequence[float]) -> None:
        self.np, self.special, self.info = np, special, list(info)
        self.grid: Any = None  # points of S_(k-1) inside the continuation region
        self.weights: Any = None  # quadrature weight x density there

    def exit_probability(self, k: int, bound: float) -> float:
        """P(continue up to look k-1, then |Z_k| >= bound)."""
        np, sp = self.np, self.special
        b = bound * math.sqrt(self.info[k])
        if k == 0:
            return float(2.0 * sp.ndtr(-bound))
        sd = math.sqrt(self.info[k] - self.info[k - 1])
        u = self.grid
        tail = sp.ndtr((-b - u) / sd) + sp.ndtr((u - b) / sd)
        return float(np.sum(self.weights * tail))

    def advance(self, k: int, bound: float) -> None:
        """Condition on continuing at look k (|Z_k| < bound)."""
        np = self.np
        b = bound * math.sqrt(self.info[k])
        s = np.linspace(-b, b, _GRID)
        simpson = np.ones(_GRID)
        simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
        simpson *= (s[1] - s[0]) / 3.0
        if k == 0:
            dens = np.exp(-0.5 * s * s / self.info[0]) / math.sqrt(2 * math.pi * self.info[0])
        else:
            sd = math.sqrt(self.info[k] - self.info[k - 1])
            z = (s[:, None] - self.grid[None, :]) / sd
            kernel = np.exp(-0.5 * z * z) / (sd * math.sqrt(2 * math.pi))
            dens = kernel @ self.weights
        self.grid, self.weights = s, simpson * dens


def _spend(kind: str, alpha: float, t: float, rho: float, special: Any) -> float:
    if kind == "obrien-fleming":
        # per side with one-sided alpha/2, as gsDesign's sfLDOF, rpact and ldbounds do
        side = alpha / 2.0
        z = -float(special.ndtri(side / 2.0))
        return float(2.0 * (2.0 * special.ndtr(-z / math.sqrt(t))))
    if kind == "pocock":
        return alpha * math.log1p((math.e - 1.0) * t)
    return float(alpha * t**rho)


def group_sequential_bounds(
    looks: int = 5,
    alpha: float = 0.05,
    kind: str = "obrien-fleming",
    *,
    spending: str = "obrien-fleming",
    rho: float = 1.0,
    information: Sequence[float] | None = None,
) -> GroupSequentialDesign:
    """Two-sided group-sequential boundaries for ``looks`` analyses at level ``alpha``.

    >>> [round(c, 3) for c in group_sequential_bounds(5, kind="pocock").bounds]
    [2.413, 2.413, 2.413, 2.413, 2.413]

    ``information``: the fractions of the final sample at each look (increasing, ending
    at 1); equally spaced by default.
    """
    np = require("numpy", purpose="group-sequential boundaries")
    special = require("scipy.special", purpose="group-sequential boundaries")
    brentq = require("scipy.optimize").brentq
    if isinstance(looks, bool) or not isinstance(looks, int) or not 1 <= looks <= 50:
        raise ConfigurationError(f"looks={looks!r} must be an integer from 1 to 50")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigurationError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    if kind not in ("pocock", "obrien-fleming", "spending"):
        raise ConfigurationError(f"kind={kind!r} must be 'pocock', 'obrien-fleming' or 'spending'")
    if spending not in ("obrien-fleming", "pocock", "power"):
        raise ConfigurationError(
            f"spending={spending!r} must be 'obrien-fleming', 'pocock' or 'power'"
        )
    if not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho > 0):
        raise ConfigurationError(f"rho={rho!r} must be a positive number")
    if information is None:
        info = [(k + 1) / looks for k in range(looks)]
    else:
        info = [float(x) for x in information]
        if (
            len(info) != looks
            or any(not math.isfinite(x) for x in info)
            or any(b <= a for a, b in itertools.pairwise(info))
            or info[0] <= 0
            or abs(info[-1] - 1.0) > 1e-12
        ):
            raise ConfigurationError(
                "information must be `looks` increasing fractions in (0, 1] ending at 1"
            )

    def run(bounds: list[float]) -> list[float]:
        rec = _Recursion(np, special, info)
        crossed = []
        for k, c in enumerate(bounds):
            crossed.append(rec.exit_probability(k, c))
            if k + 1 < len(bounds):
                rec.advance(k, c)
        return crossed

    if kind in ("pocock", "obrien-fleming"):

        def shape(c: float) -> list[float]:
            if kind == "pocock":
                return [c] * looks
            return [c / math.sqrt(t) for t in info]

        const = float(
            brentq(lambda c: sum(run(shape(c))) - alpha, 0.1, 40.0, xtol=1e-12, rtol=1e-14)
        )
        bounds = shape(const)
        spent = run(bounds)
    else:
        bounds, spent = [], []
        rec = _Recursion(np, special, info)
        used = 0.0
        for k, t in enumerate(info):
            target = _spend(spending, alpha, t, rho, special) - used
            if target <= 1e-15:
                c = 40.0  # nothing to spend at this look
            else:
                c = float(
                    brentq(
                        lambda c, k=k, target=target: rec.exit_probability(k, c) - target,
                        1e-6, 40.0, xtol=1e-12, rtol=1e-14,
                    )
                )  # fmt: skip
            p = rec.exit_probability(k, c)
            bounds.append(c)
            spent.append(p)
            used += p
            if k + 1 < looks:
                rec.advance(k, c)
    cumulative = tuple(float(x) for x in np.cumsum(spent))
    name = kind if kind != "spending" else f"spending:{spending}"
    return GroupSequentialDesign(name, float(alpha), tuple(info), tuple(bounds), cumulative)
