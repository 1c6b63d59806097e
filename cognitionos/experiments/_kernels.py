"""Vectorized statistical kernels: numpy arrays in, numpy arrays out.

Every function here works elementwise on arrays of any (broadcastable) shape, so one call
answers a whole (metrics x arms) grid. numpy and scipy are imported by the callers in
:mod:`cognitionos.experiments.analysis` and passed in as modules; importing this module
costs nothing.

Conventions (shared with GrowthBook's gbstats so both give the same numbers, see
docs/experiments.md, section "Statistics"):

- per-unit variance of a binomial arm is p(1-p) (no n-1); of any other arm the sample
  variance with n-1;
- relative lift is (treatment - control) / |control|; its variance by the delta method uses
  the *unadjusted* means (CUPED changes the numerator, not the scale);
- Welch degrees of freedom use the per-arm (CUPED-adjusted) variances;
- the sequential confidence sequence is eq. 9 of Waudby-Smith et al. (2023) with N the total
  units of both arms and rho tuned for N* units (default 5000).
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []

# numpy is typed as Any here: the module is imported lazily and passed in.
Array = Any


def welch_df(np: Any, var_a: Array, n_a: Array, var_b: Array, n_b: Array) -> Array:
    """Welch-Satterthwaite degrees of freedom (NaN where undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        num = (var_b / n_b + var_a / n_a) ** 2
        den = var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
        return num / den


def relative_variance(
    np: Any, var_a: Array, mean_a: Array, n_a: Array, var_b: Array, mean_b: Array, n_b: Array
) -> Array:
    """Delta-method variance of (mean_b - mean_a) / |mean_a| (means unadjusted)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)


def confidence_sequence_halfwidth(
    np: Any, variance: Array, n_total: Array, alpha: Array, n_star: float
) -> tuple[Array, Array]:
    """Half-width of the asymptotic confidence sequence and the mixing variance tau^2.

    ``variance`` is the variance of the effect estimate; rho is tuned so the sequence is
    tightest at ``n_star`` units (Waudby-Smith et al. 2023, eqs. 9 and 161).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        la = np.log(alpha)
        rho2 = (-2.0 * la + np.log(-2.0 * la + 1.0)) / n_star
        s2 = variance * n_total
        nr = n_total * rho2 + 1.0
        half = np.sqrt(s2) * np.sqrt(2.0 * nr * np.log(np.sqrt(nr) / alpha) / (n_total**2 * rho2))
        return half, rho2 * s2


def mixture_sequential(
    np: Any, effect: Array, variance: Array, tau2: Array, alpha: Array
) -> tuple[Array, Array]:
    """mSPRT with a normal mixture N(0, tau2): always-valid p-value and CI half-width.

    The likelihood ratio of the mixture against H0 (effect 0) for an estimate with variance
    V is sqrt(V / (V + tau2)) * exp(tau2 * effect^2 / (2 V (V + tau2))) (Johari et al. 2017);
    the p-value is its reciprocal capped at 1, and the interval collects the effects it does
    not reject at level alpha.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vt = variance + tau2
        log_lr = 0.5 * np.log(variance / vt) + tau2 * effect**2 / (2.0 * variance * vt)
        p = np.minimum(1.0, np.exp(-log_lr))
        half = np.sqrt(2.0 * variance * vt / tau2 * (-np.log(alpha) + 0.5 * np.log(vt / variance)))
        return p, half


def normal_risk(np: Any, special: Any, mu: Array, sigma: Array) -> Array:
    """E[max(-X, 0)] for X ~ N(mu, sigma^2): the expected loss of shipping an effect X."""
    z = mu / sigma
    pdf = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return sigma * pdf - mu * special.ndtr(-z)


def beta_prob_greater(
    np: Any, special: Any, a1: Array, b1: Array, a2: Array, b2: Array, nodes: int = 512
) -> Array:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), elementwise.

    Integrates density(narrower) x cdf(other) by Gauss-Legendre quadrature over the
    narrower distribution's central 1 - 2e-15 mass (so the neglected tails weigh < 1e-14),
    split in 8 panels: accurate to ~1e-12 for any parameters, vectorized over all pairs.
    """
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a1, b1, a2, b2)))
    var1 = a1 * b1 / ((a1 + b1) ** 2 * (a1 + b1 + 1.0))
    var2 = a2 * b2 / ((a2 + b2) ** 2 * (a2 + b2 + 1.0))
    # integrate over the narrower one: P(X1 > X2) = E_2[sf_1(X2)] = E_1[cdf_2(X1)]
    over_2 = var2 <= var1
    ia = np.where(over_2, a2, a1)
    ib = np.where(over_2, b2, b1)
    oa = np.where(over_2, a1, a2)
    ob = np.where(over_2, b1, b2)
    lo = special.betaincinv(ia, ib, 1e-15)
    hi = special.betaincinv(ia, ib, 1.0 - 1e-15)
    x, w = np.polynomial.legendre.leggauss(nodes // 8)
    panels = 8
    edges = lo[..., None] + (hi - lo)[..., None] * (np.arange(panels + 1) / panels)
    left = edges[..., :-1, None]
    width = (edges[..., 1:, None] - left) / 2.0
    pts = left + width * (x + 1.0)  # shape (..., panels, nodes/8)
    log_pdf = (
        (ia[..., None, None] - 1.0) * np.log(pts)
        + (ib[..., None, None] - 1.0) * np.log1p(-pts)
        - special.betaln(ia, ib)[..., None, None]
    )
    pdf = np.exp(log_pdf)
    other_cdf = special.betainc(oa[..., None, None], ob[..., None, None], pts)
    mass = np.sum(pdf * width * w, axis=(-1, -2))
    integral = np.sum(pdf * other_cdf * width * w, axis=(-1, -2)) / mass
    # integral is E_i[cdf_o(X_i)] = P(X_o < X_i)
    return np.where(over_2, 1.0 - integral, integral)
