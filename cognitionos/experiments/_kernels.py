"""Vectorized statistical kernels: numpy arrays in, numpy arrays out.

Every function here works elementwise on arrays of any (broadcastable) shape, so one call
answers a whole (metrics x arms) grid. numpy and scipy are imported by the callers in
:mod:`cognitionos.experiments.analysis` and passed in as modules; importing this module
costs nothing. The kernels do not silence floating-point warnings themselves: callers run
them under ``np.errstate(all="ignore")`` and mask undefined cells.

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
    num = (var_b / n_b + var_a / n_a) ** 2
    den = var_b**2 / (n_b**2 * (n_b - 1)) + var_a**2 / (n_a**2 * (n_a - 1))
    return num / den


def relative_variance(
    np: Any, var_a: Array, mean_a: Array, n_a: Array, var_b: Array, mean_b: Array, n_b: Array
) -> Array:
    """Delta-method variance of (mean_b - mean_a) / |mean_a| (means unadjusted)."""
    return var_b / (mean_a**2 * n_b) + var_a * mean_b**2 / (mean_a**4 * n_a)


def confidence_sequence_factor(np: Any, n_total: Array, alpha: Array, n_star: float) -> Array:
    """Half-width of the asymptotic confidence sequence over the effect's standard error.

    rho is tuned so the sequence is tightest at ``n_star`` units (Waudby-Smith et al.
    2023, eqs. 9 and 161); the factor does not depend on the variance, so one serves the
    absolute and the relative scale. The mixing variance of the matching mSPRT is
    tau^2 = rho^2 N V (see :func:`confidence_sequence_p_value`).
    """
    la = np.log(alpha)
    rho2 = (-2.0 * la + np.log(-2.0 * la + 1.0)) / n_star
    nr = n_total * rho2 + 1.0
    return np.sqrt(2.0 * nr * np.log(np.sqrt(nr) / alpha) / (n_total * rho2))


def confidence_sequence_p_value(
    np: Any, effect: Array, variance: Array, n_total: Array, alpha: float, n_star: float
) -> Array:
    """Always-valid p-value of the asymptotic confidence sequence (the mSPRT of
    :func:`mixture_sequential` with tau^2 = rho^2 N V, rho as in
    :func:`confidence_sequence_factor`).

    With that tau^2, V / (V + tau^2) = 1 / (1 + rho^2 N) does not depend on V, so the log
    likelihood ratio is -log(1 + rho^2 N) / 2 + rho^2 N effect^2 / (2 V (1 + rho^2 N)).
    """
    la = np.log(alpha)
    rho2 = (-2.0 * la + np.log(-2.0 * la + 1.0)) / n_star
    nr = n_total * rho2
    nr1 = nr + 1.0
    log_lr = nr * effect**2 / (2.0 * variance * nr1) - 0.5 * np.log(nr1)
    return np.minimum(1.0, np.exp(-log_lr))


def mixture_sequential(
    np: Any, effect: Array, variance: Array, tau2: Array, alpha: Array
) -> tuple[Array, Array]:
    """mSPRT with a normal mixture N(0, tau2): always-valid p-value and CI half-width.

    The likelihood ratio of the mixture against H0 (effect 0) for an estimate with variance
    V is sqrt(V / (V + tau2)) * exp(tau2 * effect^2 / (2 V (V + tau2))) (Johari et al. 2017);
    the p-value is its reciprocal capped at 1, and the interval collects the effects it does
    not reject at level alpha.
    """
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


def _beta_grid(np: Any, special: Any, a: Array, b: Array, nodes: int) -> tuple[Array, Array]:
    """Gauss-Legendre nodes and density weights over Beta(a, b)'s central 1 - 2e-15 mass.

    8 panels of ``nodes / 8`` points each; the weights include the density, normalized so
    they sum to 1 (the neglected tails weigh < 1e-14).
    """
    lo = special.betaincinv(a, b, 1e-15)
    hi = special.betaincinv(a, b, 1.0 - 1e-15)
    panels = 8
    x, w = np.polynomial.legendre.leggauss(max(nodes // panels, 2))
    edges = lo[..., None] + (hi - lo)[..., None] * (np.arange(panels + 1) / panels)
    left = edges[..., :-1, None]
    half = (edges[..., 1:, None] - left) / 2.0
    pts = (left + half * (x + 1.0)).reshape(*a.shape, -1)
    log_pdf = (
        (a[..., None] - 1.0) * np.log(pts)
        + (b[..., None] - 1.0) * np.log1p(-pts)
        - special.betaln(a, b)[..., None]
    )
    weights = np.exp(log_pdf) * np.broadcast_to(half * w, (*a.shape, panels, x.size)).reshape(
        *a.shape, -1
    )
    return pts, weights / weights.sum(axis=-1, keepdims=True)


def beta_prob_greater(
    np: Any, special: Any, a1: Array, b1: Array, a2: Array, b2: Array, nodes: int = 96
) -> Array:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), elementwise.

    Integrates density(narrower) x cdf(other) by Gauss-Legendre quadrature over the
    narrower distribution (see :func:`_beta_grid`): accurate to ~1e-11 for any parameters.
    """
    a1, b1, a2, b2 = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a1, b1, a2, b2)))
    over_2 = _beta_var(a2, b2) <= _beta_var(a1, b1)
    ia, ib = np.where(over_2, a2, a1), np.where(over_2, b2, b1)
    oa, ob = np.where(over_2, a1, a2), np.where(over_2, b1, b2)
    pts, wts = _beta_grid(np, special, ia, ib, nodes)
    # E_i[cdf_o(X_i)] = P(X_o < X_i)
    integral = np.sum(wts * special.betainc(oa[..., None], ob[..., None], pts), axis=-1)
    return np.where(over_2, 1.0 - integral, integral)


def _beta_var(a: Array, b: Array) -> Array:
    return a * b / ((a + b) ** 2 * (a + b + 1.0))


def beta_binomial_decision(
    np: Any, special: Any, a_a: Array, b_a: Array, a_b: Array, b_b: Array, nodes: int = 96
) -> tuple[Array, Array, Array]:
    """Exact P(p_B > p_A), E[max(p_A - p_B, 0)] and E[max(p_B - p_A, 0)] for Beta posteriors.

    Uses E[p_A 1(p_A > p_B)] = mean_A P(A' > B) with A' ~ Beta(a_A + 1, b_A) (and the same
    for B), so one quadrature grid over the narrower posterior serves all three integrals.
    """
    a_a, b_a, a_b, b_b = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (a_a, b_a, a_b, b_b))
    )
    m_a, m_b = a_a / (a_a + b_a), a_b / (a_b + b_b)
    over_a = _beta_var(a_a, b_a) <= _beta_var(a_b, b_b)
    ga, gb = np.where(over_a, a_a, a_b), np.where(over_a, b_a, b_b)  # grid distribution
    pts, wts = _beta_grid(np, special, ga, gb, nodes)
    # over A: cdfs of B and B'; over B: cdfs of A and A'
    oa, ob = np.where(over_a, a_b, a_a)[..., None], np.where(over_a, b_b, b_a)[..., None]
    cdf_o = special.betainc(oa, ob, pts)
    cdf_o1 = special.betainc(oa + 1.0, ob, pts)
    tilt = pts / np.where(over_a, m_a, m_b)[..., None]  # density of the primed grid variable
    e_cdf = np.sum(wts * cdf_o, axis=-1)
    e_cdf1 = np.sum(wts * cdf_o1, axis=-1)
    e_tilt_cdf = np.sum(wts * tilt * cdf_o, axis=-1)
    e_tilt = np.sum(wts * tilt, axis=-1)
    # over A: P(B > A) = 1 - E_A[F_B]; P(A' > B) = E_A[tilt F_B]; P(A > B') = E_A[F_B']
    # over B: P(B > A) = E_B[F_A];     P(A' > B) = 1 - E_B[F_A']; P(A > B') = E_B[tilt (1 - F_A)]
    p_b_gt_a = np.where(over_a, 1.0 - e_cdf, e_cdf)
    p_a1_gt_b = np.where(over_a, e_tilt_cdf, 1.0 - e_cdf1)
    p_a_gt_b1 = np.where(over_a, e_cdf1, e_tilt - e_tilt_cdf)
    loss_b = np.maximum(m_a * p_a1_gt_b - m_b * p_a_gt_b1, 0.0)
    # E[max(p_B - p_A, 0)] = E[p_B - p_A] + E[max(p_A - p_B, 0)]
    loss_a = np.maximum(m_b - m_a + loss_b, 0.0)
    return p_b_gt_a, loss_b, loss_a
