"""Price elasticity of demand: log-log OLS with controls and fixed effects, and 2SLS.

    e = estimate_elasticity(prices, quantities, controls={"promo": promo}, robust=True)
    e.estimate, e.std_error, (e.ci_low, e.ci_high)
    e_iv = estimate_elasticity(prices, quantities, method="iv", instruments={"cost": cost})
    e_iv.first_stage_f      # weak instruments below ~10 (Stock & Yogo)

The model is ``log q = b0 + e log p + controls + fixed effects + u``. Standard errors are the
classical ones or, with ``robust=True``, White's HC1; intervals use Student's t with the
residual degrees of freedom (as statsmodels does). 2SLS standard errors use the structural
residuals ``y - X b`` (not the second-stage ones).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._inputs import as_float_array, rows_text

__all__ = ["ElasticityEstimate", "estimate_elasticity", "segment_elasticities"]

#: first-stage F below this flags weak instruments (Staiger & Stock rule of thumb)
WEAK_F = 10.0


@attrs.frozen(slots=True)
class ElasticityEstimate:
    """An elasticity with its uncertainty and the diagnostics of the regression behind it."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float
    method: str
    robust: bool
    n: int
    dof: int
    coefficients: dict[str, float]
    r_squared: float | None = None
    first_stage_f: float | None = None
    dropped_zero_quantities: int = 0
    bootstrap_ci: tuple[float, float] | None = None
    notes: tuple[str, ...] = ()
    #: IV with one endogenous regressor: the Cragg-Donald minimum-eigenvalue statistic, which
    #: then equals the first-stage F of the excluded instruments (compare with Stock-Yogo)
    cragg_donald: float | None = None
    #: ``varying=True``: d elasticity / d log price (the fit is quadratic in log price)
    curvature: float | None = None
    #: ``varying=True``: the log price where ``estimate`` holds (mean log price of the data)
    center_log_price: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return attrs.asdict(self)

    def at(self, price: float) -> float:
        """The elasticity at ``price``: constant, unless fitted with ``varying=True``, where it
        is ``estimate + curvature * (log(price) - center_log_price)``."""
        value = float(price)
        if not (math.isfinite(value) and value > 0):
            raise ConfigurationError(f"price must be a finite number > 0, got {price!r}")
        if self.curvature is None or self.center_log_price is None:
            return self.estimate
        return self.estimate + self.curvature * (math.log(value) - self.center_log_price)


def _matrix(name: str, value: Any, n: int) -> tuple[list[str], Any]:
    """Controls/instruments as (names, n x k matrix)."""
    import numpy as np

    if value is None:
        return [], np.empty((n, 0))
    if isinstance(value, Mapping):
        names = [str(k) for k in value]
        cols = [as_float_array(f"{name} {k!r}", value[k], length=n) for k in value]
        return names, (np.column_stack(cols) if cols else np.empty((n, 0)))
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{name} must be numbers") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ConfigurationError(f"{name} must have {n} rows, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigurationError(f"{name} has missing or infinite values")
    return [f"{name}{i}" for i in range(arr.shape[1])], arr


def _dummies(labels: Any, n: int) -> tuple[list[str], Any]:
    import numpy as np

    if labels is None:
        return [], np.empty((n, 0))
    arr = np.asarray(labels)
    if arr.shape != (n,):
        raise ConfigurationError(f"fixed_effects must have {n} labels, got shape {arr.shape}")
    levels, codes = np.unique(arr, return_inverse=True)
    codes = codes.ravel()
    mat = np.zeros((n, max(levels.size - 1, 0)))
    for j in range(1, levels.size):  # the first level is the baseline
        mat[codes == j, j - 1] = 1.0
    return [f"fe[{lv}]" for lv in levels[1:].tolist()], mat


def _ols(X: Any, y: Any) -> tuple[Any, Any, Any]:
    """Coefficients, residuals and (X'X)^-1 via a pivot-free solve (rank checked by caller)."""
    import numpy as np

    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ (X.T @ y)
    return beta, y - X @ beta, xtx_inv


def _check_rank(X: Any, names: list[str], what: str) -> None:
    import numpy as np

    rank = np.linalg.matrix_rank(X)
    if rank < X.shape[1]:
        # find the first column that adds nothing, to name it
        for j in range(1, X.shape[1] + 1):
            if np.linalg.matrix_rank(X[:, :j]) < j:
                raise ConfigurationError(
                    f"{what}: {names[j - 1]!r} is collinear with the columns before it "
                    "(the regression is not identified)"
                )


def _fit(
    y: Any,
    X: Any,
    Z: Any | None,
    robust: bool,
) -> tuple[Any, Any, Any, int]:
    """(coefficients, covariance, residuals, dof) of OLS (Z None) or 2SLS."""
    import numpy as np

    n, k = X.shape
    dof = n - k
    if Z is None:
        beta, resid, bread = _ols(X, y)
        design = X
    else:
        ztz_inv = np.linalg.inv(Z.T @ Z)
        x_hat = Z @ (ztz_inv @ (Z.T @ X))
        bread = np.linalg.inv(x_hat.T @ x_hat)
        beta = bread @ (x_hat.T @ y)
        resid = y - X @ beta
        design = x_hat
    if robust:
        meat = (design * (resid**2)[:, None]).T @ design
        cov = bread @ meat @ bread * (n / dof)
    else:
        cov = bread * float(resid @ resid) / dof
    return beta, cov, resid, dof


def estimate_elasticity(
    prices: Any,
    quantities: Any,
    *,
    controls: Any = None,
    fixed_effects: Any = None,
    method: str = "loglog",
    instruments: Any = None,
    robust: bool = False,
    confidence: float = 0.95,
    zero_quantities: str = "error",
    bootstrap: int = 0,
    seed: int = 0,
    varying: bool = False,
) -> ElasticityEstimate:
    """Estimate the price elasticity of demand from (price, quantity) observations.

    ``method="loglog"`` is OLS of log quantity on log price; ``method="iv"`` is 2SLS with
    ``instruments`` (cost shifters, say) for an endogenous price. ``controls`` is a mapping
    name -> column or a matrix; ``fixed_effects`` a label per row (one dummy per level but the
    first). Zero quantities have no logarithm: ``zero_quantities="drop"`` drops them (counted
    in the result), the default refuses them naming the rows. ``bootstrap=B`` adds a
    percentile interval from ``B`` pairs-bootstrap resamples. ``varying=True`` (log-log only)
    lets the elasticity change with price: log quantity is quadratic in centred log price,
    ``estimate`` is the elasticity at the mean log price and ``result.at(price)`` anywhere.
    """
    import numpy as np
    from scipy import stats

    if method not in ("loglog", "iv"):
        raise ConfigurationError(f"method must be 'loglog' or 'iv', got {method!r}")
    if zero_quantities not in ("error", "drop"):
        raise ConfigurationError("zero_quantities must be 'error' or 'drop'")
    if not (0 < confidence < 1):
        raise ConfigurationError(f"confidence must be in (0, 1), got {confidence!r}")
    p = as_float_array("prices", prices)
    q = as_float_array("quantities", quantities, length=p.size)
    n_all = p.size
    bad = np.flatnonzero(p <= 0)
    if bad.size:
        raise ConfigurationError(f"prices must be > 0: non-positive at {rows_text(bad)}")
    bad = np.flatnonzero(q < 0)
    if bad.size:
        raise ConfigurationError(f"quantities must be >= 0: negative at {rows_text(bad)}")
    c_names, C = _matrix("controls", controls, n_all)
    fe_names, F = _dummies(fixed_effects, n_all)
    i_names, Inst = _matrix("instruments", instruments, n_all)
    zero = q == 0
    dropped = int(np.count_nonzero(zero))
    if dropped:
        if zero_quantities == "error":
            raise ConfigurationError(
                f"quantities are 0 at {rows_text(np.flatnonzero(zero))}: log(0) is undefined; "
                "pass zero_quantities='drop' to leave them out"
            )
        keep = ~zero
        p, q, C, F, Inst = p[keep], q[keep], C[keep], F[keep], Inst[keep]
    if np.ptp(p) == 0:
        raise ConfigurationError("prices are constant: the elasticity is not identified")
    n = p.size
    y = np.log(q)
    center = None
    if varying:
        if method != "loglog":
            raise ConfigurationError(
                "varying=True needs method='loglog' (2SLS would need instruments for the "
                "squared log price too)"
            )
        center = float(np.log(p).mean())
        lpc = np.log(p) - center
        names = ["const", "log_price", "log_price_sq", *c_names, *fe_names]
        X = np.column_stack([np.ones(n), lpc, lpc**2, C, F])
    else:
        names = ["const", "log_price", *c_names, *fe_names]
        X = np.column_stack([np.ones(n), np.log(p), C, F])
    Z = None
    notes: list[str] = []
    if method == "iv":
        if Inst.shape[1] == 0:
            raise ConfigurationError("method='iv' needs at least one instrument")
        Z = np.column_stack([np.ones(n), C, F, Inst])
        _check_rank(Z, ["const", *c_names, *fe_names, *i_names], "instruments")
    elif Inst.shape[1]:
        raise ConfigurationError("instruments are only used with method='iv'")
    if n <= X.shape[1]:
        raise ConfigurationError(f"{n} observations cannot fit {X.shape[1]} coefficients")
    _check_rank(X, names, "regression")

    beta, cov, resid, dof = _fit(y, X, Z, robust)
    se = float(math.sqrt(cov[1, 1]))
    tcrit = float(stats.t.ppf(0.5 + confidence / 2, dof))
    est = float(beta[1])
    r2 = None
    first_f = None
    if Z is None:
        tss = float(((y - y.mean()) ** 2).sum())
        r2 = 1 - float(resid @ resid) / tss if tss > 0 else None
    else:
        # first stage: log price on the exogenous columns with and without the instruments
        lp = np.log(p)
        exog = np.column_stack([np.ones(n), C, F])
        _, r_full, _ = _ols(Z, lp)
        _, r_restricted, _ = _ols(exog, lp)
        q_inst = Inst.shape[1]
        rss_u = float(r_full @ r_full)
        df_u = n - Z.shape[1]
        first_f = ((float(r_restricted @ r_restricted) - rss_u) / q_inst) / (rss_u / df_u)
        if first_f < WEAK_F:
            notes.append(f"weak instruments: first-stage F = {first_f:.2f} < {WEAK_F:g}")
    if dropped:
        notes.append(f"{dropped} zero-quantity row(s) dropped")

    boot_ci = None
    if bootstrap:
        rng = np.random.default_rng(seed)
        draws = []
        for _ in range(int(bootstrap)):
            idx = rng.integers(0, n, n)
            Xb, yb = X[idx], y[idx]
            Zb = None if Z is None else Z[idx]
            if np.linalg.matrix_rank(Xb) < X.shape[1] or (
                Zb is not None and np.linalg.matrix_rank(Zb) < Zb.shape[1]
            ):
                continue
            draws.append(float(_fit(yb, Xb, Zb, False)[0][1]))
        if len(draws) >= 10:
            alpha = (1 - confidence) / 2
            lo, hi = np.quantile(draws, [alpha, 1 - alpha])
            boot_ci = (float(lo), float(hi))
        else:
            notes.append("bootstrap failed: too few identified resamples")
    return ElasticityEstimate(
        estimate=est,
        std_error=se,
        ci_low=est - tcrit * se,
        ci_high=est + tcrit * se,
        confidence=confidence,
        method=method,
        robust=robust,
        n=n,
        dof=dof,
        coefficients={nm: float(b) for nm, b in zip(names, beta, strict=True)},
        r_squared=r2,
        first_stage_f=first_f,
        dropped_zero_quantities=dropped,
        bootstrap_ci=boot_ci,
        notes=tuple(notes),
        cragg_donald=first_f,
        curvature=float(2 * beta[2]) if varying else None,
        center_log_price=center,
    )


def segment_elasticities(
    prices: Any, quantities: Any, segments: Any, **options: Any
) -> dict[Any, ElasticityEstimate]:
    """One :func:`estimate_elasticity` per segment label (same options for each)."""
    import numpy as np

    p = as_float_array("prices", prices)
    q = as_float_array("quantities", quantities, length=p.size)
    labels = np.asarray(segments)
    if labels.shape != p.shape:
        raise ConfigurationError(f"segments must have {p.size} labels")
    out: dict[Any, ElasticityEstimate] = {}
    for level in np.unique(labels).tolist():
        mask = labels == level
        sub: dict[str, Any] = {
            k: (
                {kk: np.asarray(vv)[mask] for kk, vv in v.items()}
                if isinstance(v, Mapping)
                else np.asarray(v)[mask]
            )
            if k in ("controls", "instruments", "fixed_effects") and v is not None
            else v
            for k, v in options.items()
        }
        try:
            out[level] = estimate_elasticity(p[mask], q[mask], **sub)  # type: ignore[arg-type]
        except ConfigurationError as exc:
            raise ConfigurationError(f"segment {level!r}: {exc}") from None
    return out
