"""Pareto/NBD log-likelihood with its analytic gradient, for one parameter vector.

The likelihood's hard part is ``A0``, built from ``F(t) = (a+t)^-e1 (b+t)^-e2 H(z)`` at
``t = t_x`` and ``t = T``, where ``H(z) = 2F1(1, c1; c2; z)`` is the Euler-transformed Gauss
hypergeometric function (see ``_pareto_log_terms`` in ``_clv``) with ``0 <= z < 1`` and
``c1 < c2``. Its derivatives in ``c1``, ``c2`` and ``z`` have no closed form in scipy, so
``H`` and all three partial derivatives come from one pass of the power series

    H = sum_n T_n,  T_n = (c1)_n / (c2)_n z^n,  dH/dc1 = sum_n T_n S1_n,
    dH/dc2 = -sum_n T_n S2_n,  dH/dz = sum_n n T_n / z,

with ``S1_n = sum_{k<n} 1/(c1+k)`` (and ``S2`` likewise). The term ratio is below ``z``, so
the series converges geometrically; rows with ``z`` above :data:`SERIES_Z_MAX` (slow
convergence) get the value from scipy's ``hyp2f1`` and a central-difference gradient instead,
so every row is exact to rounding. One call evaluates every distinct (x, t_x, T) row at both
``t_x`` and ``T`` in one vectorized loop: a value and gradient cost about two likelihoods,
where a central-difference gradient costs nine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: rows whose hypergeometric argument exceeds this use scipy + finite differences
SERIES_Z_MAX = 0.85
#: stop the series when the next terms are below this fraction of the sums
_SERIES_RTOL = 1e-17
#: hard cap on series terms (log(1e-17)/log(0.85) is about 241, plus the n factor of dH/dz)
_SERIES_MAX_TERMS = 400
#: central-difference step (natural scale, relative) for the fallback rows
_FD_STEP = 1e-6


class ParetoRows:
    """Distinct (x, t_x, T) rows with weights, prepared once per fit.

    ``F`` is needed at ``(x, t_x)`` and ``(x, T)``; the distinct ``(x, t)`` pairs among both
    (all one-time buyers share ``(0, 0)``) are kept sorted by ``t``, so that for any
    parameters the hypergeometric argument ``z = |alpha - beta| / (max + t)`` is
    non-increasing along them and the rows still needing series terms are always a prefix.
    """

    __slots__ = ("T", "inv_T", "inv_tx", "t", "tx", "w", "x", "xt")

    def __init__(self, x: Any, tx: Any, T: Any, w: Any) -> None:
        import numpy as np

        self.x, self.tx, self.T, self.w = x, tx, T, w
        pairs = np.column_stack([np.concatenate([tx, T]), np.concatenate([x, x])])
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)  # sorted by t first
        inverse = inverse.ravel()
        self.t, self.xt = unique[:, 0].copy(), unique[:, 1].copy()
        self.inv_tx, self.inv_T = inverse[: x.size], inverse[x.size :]

    def subset(self, keep: Any) -> ParetoRows:
        return ParetoRows(self.x[keep], self.tx[keep], self.T[keep], self.w[keep])


def _hyp_series(c1: Any, c2: Any, z: Any) -> tuple[Any, Any, Any, Any]:
    """``H, dH/dc1, dH/dc2, dH/dz`` of ``2F1(1, c1; c2; z)`` for ``0 <= z < 1``, ``z``
    non-increasing along the rows.

    Row ``i`` needs ``N_i`` terms for its neglected tail (below ``z^N / (1-z)^2``) to be
    under ``_SERIES_RTOL``; as ``z`` is sorted, term ``n`` only touches the prefix of rows
    with ``N_i > n``, so the work is the sum of the ``N_i``, not rows x max ``N_i``.
    ``dH/dz`` follows from the term recurrence ``(c2+n) T_{n+1} = (c1+n) z T_n`` summed over
    n: ``z (1-z) H' = c1 z H - (c2-1)(H-1)``.
    """
    import numpy as np

    tail = np.zeros_like(z)  # H - 1, summed directly (no cancellation)
    h_c1 = np.zeros_like(z)
    h_c2 = np.zeros_like(z)
    with np.errstate(divide="ignore"):
        needed = (math.log(_SERIES_RTOL) - 2.0 * np.log1p(-z)) / np.log(z)
    needed = np.minimum(np.ceil(np.nan_to_num(needed, nan=0.0, posinf=0.0)) + 4, _SERIES_MAX_TERMS)
    needed = np.where(z > 0, needed, 0).astype(np.int64)
    n_terms = int(needed[0]) if z.size else 0
    # active[n] = how many leading rows still need term n
    active = needed.size - np.searchsorted(needed[::-1], np.arange(n_terms), side="right")
    term = np.ones_like(z)
    s1 = np.zeros_like(z)
    s2 = np.zeros_like(z)
    for n in range(n_terms):
        k = int(active[n])
        inv1 = 1.0 / (c1[:k] + n)
        inv2 = 1.0 / (c2[:k] + n)
        s1[:k] += inv1
        s2[:k] += inv2
        term[:k] *= z[:k] * inv2 / inv1
        tk = term[:k]
        tail[:k] += tk
        h_c1[:k] += tk * s1[:k]
        h_c2[:k] -= tk * s2[:k]
    h = 1.0 + tail
    with np.errstate(divide="ignore", invalid="ignore"):
        h_z = (c1 * z * h - (c2 - 1.0) * tail) / (z * (1.0 - z))
    h_z = np.where(z > 0, h_z, c1 / c2)
    return h, h_c1, h_c2, h_z


def _log_f_and_grad(p: Any, x: Any, t: Any) -> tuple[Any, Any]:
    """``log F(t)`` per row and its gradient (4, rows) in (r, alpha, s, beta)."""
    import numpy as np

    r, alpha, s, beta = (float(v) for v in p)
    la, lb = np.log(alpha + t), np.log(beta + t)
    c2 = r + s + x + 1.0
    if alpha >= beta:
        e1, e2, c1 = r + x, s, r + x
        z = (alpha - beta) / (alpha + t)
        dz_da, dz_db = (beta + t) / (alpha + t) ** 2, -1.0 / (alpha + t)
    else:
        e1, e2, c1 = r + x - 1.0, s + 1.0, np.full_like(x, s + 1.0)
        z = (beta - alpha) / (beta + t)
        dz_da, dz_db = -1.0 / (beta + t), (alpha + t) / (beta + t) ** 2
    h, h_c1, h_c2, h_z = _hyp_series(c1, c2, z)
    log_f = -e1 * la - e2 * lb + np.log(h)
    g_c1, g_c2, g_z = h_c1 / h, h_c2 / h, h_z / h
    if alpha >= beta:  # c1 = r + x moves with r
        d_r = -la + g_c1 + g_c2
        d_s = -lb + g_c2
    else:  # c1 = s + 1 moves with s
        d_r = -la + g_c2
        d_s = -lb + g_c1 + g_c2
    d_alpha = -e1 / (alpha + t) + g_z * dz_da
    d_beta = -e2 / (beta + t) + g_z * dz_db
    return log_f, np.array([d_r, d_alpha, d_s, d_beta])


def pareto_value_and_gradient(
    p: Any,
    rows: ParetoRows,
    ll_rows: Callable[[Any, Any, Any, Any], Any],
) -> tuple[float, Any]:
    """Weighted total log-likelihood at ``p`` and its gradient in (r, alpha, s, beta).

    ``ll_rows(P, x, tx, T)`` is the scipy-based row likelihood, used for the rows whose
    hypergeometric argument is too close to 1 for the series.
    """
    import numpy as np
    from scipy.special import digamma, gammaln

    r, alpha, s, beta = (float(v) for v in p)
    big = max(alpha, beta)
    slow = abs(alpha - beta) / (big + rows.tx) > SERIES_Z_MAX  # z is largest at t_x
    value = 0.0
    grad = np.zeros(4)
    if np.any(slow):
        value, grad = _fallback(p, rows.subset(slow), ll_rows)
        if np.all(slow):
            return value, grad
        rows = rows.subset(~slow)
    x, T, w = rows.x, rows.T, rows.w
    log_f, d_f = _log_f_and_grad(p, rows.xt, rows.t)
    lt_x, lt_T = log_f[rows.inv_tx], log_f[rows.inv_T]
    d_x, d_T = d_f[:, rows.inv_tx], d_f[:, rows.inv_T]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.exp(np.minimum(lt_T - lt_x, 0.0))  # F(T)/F(t_x) <= 1
        log_a0 = lt_x + np.log(-np.expm1(np.minimum(lt_T - lt_x, 0.0)))
        d_a0 = (d_x - ratio * d_T) / (1.0 - ratio)
    rsx = r + s + x
    head = gammaln(r + x) - gammaln(r) + r * math.log(alpha) + s * math.log(beta)
    la_T, lb_T = np.log(alpha + T), np.log(beta + T)
    b1 = -(r + x) * la_T - s * lb_T
    b2 = math.log(s) - np.log(rsx) + log_a0
    top = np.logaddexp(b1, b2)
    w1 = np.exp(b1 - top)
    w2 = np.exp(b2 - top)
    # where A0 = 0 (t_x = T) its weight is 0: keep its (undefined) derivative out of the sum
    d_a0 = np.where(w2 > 0, d_a0, 0.0)
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w1 * la_T + w2 * (-1.0 / rsx + d_a0[0])
    d_alpha = r / alpha - w1 * (r + x) / (alpha + T) + w2 * d_a0[1]
    d_s = math.log(beta) - w1 * lb_T + w2 * (1.0 / s - 1.0 / rsx + d_a0[2])
    d_beta = s / beta - w1 * s / (beta + T) + w2 * d_a0[3]
    value += float(np.dot(w, head + top))
    grad = grad + np.array([np.dot(w, d) for d in (d_r, d_alpha, d_s, d_beta)])
    return value, grad


def _fallback(
    p: Any, rows: ParetoRows, ll_rows: Callable[[Any, Any, Any, Any], Any]
) -> tuple[float, Any]:
    """Value and central-difference gradient from the scipy likelihood (a few rows only)."""
    import numpy as np

    p = np.asarray(p, dtype=float)
    k = p.size
    steps = p * _FD_STEP
    points = np.vstack([p, p + np.diag(steps), p - np.diag(steps)])
    totals = ll_rows(points, rows.x, rows.tx, rows.T) @ rows.w
    grad = (totals[1 : k + 1] - totals[k + 1 :]) / (2 * steps)
    return float(totals[0]), grad
