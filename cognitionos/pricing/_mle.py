"""Maximum likelihood machinery shared by the CLV models.

Every model gives a *vectorized* total log-likelihood ``ll(P) -> (m,)`` for ``m`` parameter
vectors at once (rows of ``P``, natural scale). The optimizer works on log parameters (all
model parameters are positive), minimises the mean negative log-likelihood (so tolerances do
not depend on the number of customers) from several starting points, polishes the best with
Newton steps on a finite-difference Hessian, and reports standard errors from that Hessian
by the delta method. Numerical derivatives evaluate all perturbed parameter vectors in one
vectorized call, so a gradient costs one pass over the data, not ``2k``.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import attrs

#: log-parameter box: e^-15 .. e^15 (a fit that ends on it did not converge)
LOG_BOUND = 15.0
#: step of the numerical derivatives, in log-parameter units
_STEP_GRAD = 1e-6
_STEP_HESS = 1e-4


class ConvergenceWarning(UserWarning):
    """A fit did not converge, or its standard errors could not be computed (they are NaN)."""


class OneTimeBuyerWarning(UserWarning):
    """BG/NBD's P(alive) is 1 for customers with no repeat purchase (frequency 0); MBG/NBD
    (``ModifiedBetaGeoModel``) lets them drop out too."""


@attrs.frozen(slots=True)
class MLEResult:
    """What the optimizer found: parameters, log-likelihood, standard errors, diagnostics."""

    params: tuple[float, ...]
    log_likelihood: float
    standard_errors: tuple[float, ...]
    converged: bool
    standard_errors_valid: bool
    message: str
    iterations: int
    starts_agreeing: int
    starts: int


def _penalized(ll: Callable[[Any], Any], penalizer: float) -> Callable[[Any], Any]:
    import numpy as np

    def total(theta: Any) -> Any:
        p = np.exp(theta)
        value = ll(p)
        if penalizer:
            value = value - penalizer * np.sum(p * p, axis=1)
        return value

    return total


def _value_and_log_gradient(
    total: Callable[[Any], Any],
    grad: Callable[[Any], Any] | None,
    theta: Any,
    penalizer: float,
    value_grad: Callable[[Any], tuple[float, Any]] | None = None,
) -> tuple[float, Any]:
    import numpy as np

    k = theta.size
    if value_grad is not None:
        p = np.exp(theta)
        value, g_nat = value_grad(p)
        value = float(value) - penalizer * float(np.sum(p * p))
        return value, (g_nat - 2.0 * penalizer * p) * p
    if grad is not None:
        p = np.exp(theta)
        value = float(total(theta[None, :])[0])
        g_nat = grad(p) - 2.0 * penalizer * p
        return value, g_nat * p
    offsets = np.vstack([np.zeros(k), np.eye(k) * _STEP_GRAD, -np.eye(k) * _STEP_GRAD])
    values = total(theta[None, :] + offsets)
    g = (values[1 : k + 1] - values[k + 1 :]) / (2 * _STEP_GRAD)
    return float(values[0]), g


def log_hessian_from_gradient(log_gradient: Callable[[Any], Any], theta: Any) -> Any:
    """Hessian at ``theta`` (log scale) by central differences of an analytic gradient:
    ``2k`` gradient calls, and O(h^2) error without the cancellation of second differences."""
    import numpy as np

    k = theta.size
    h = _STEP_HESS
    cols = []
    for i in range(k):
        step = np.zeros(k)
        step[i] = h
        cols.append((log_gradient(theta + step) - log_gradient(theta - step)) / (2 * h))
    hess = np.column_stack(cols)
    return (hess + hess.T) / 2


def log_hessian(total: Callable[[Any], Any], theta: Any) -> Any:
    """Hessian of ``total`` at ``theta`` (log scale), every point evaluated in one call."""
    import numpy as np

    k = theta.size
    h = _STEP_HESS
    eye = np.eye(k) * h
    points = [np.zeros(k)]
    for i in range(k):
        points += [eye[i], -eye[i]]
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    for i, j in pairs:
        points += [eye[i] + eye[j], eye[i] - eye[j], -eye[i] + eye[j], -eye[i] - eye[j]]
    v = total(theta[None, :] + np.array(points))
    hess = np.empty((k, k))
    for i in range(k):
        hess[i, i] = (v[1 + 2 * i] - 2 * v[0] + v[2 + 2 * i]) / (h * h)
    base = 1 + 2 * k
    for n, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = v[base + 4 * n : base + 4 * n + 4]
        hess[i, j] = hess[j, i] = (pp - pm - mp + mm) / (4 * h * h)
    return hess


def maximize(
    ll: Callable[[Any], Any],
    *,
    names: Sequence[str],
    starts: Sequence[Sequence[float]],
    weight_sum: float,
    penalizer: float = 0.0,
    grad: Callable[[Any], Any] | None = None,
    value_grad: Callable[[Any], tuple[float, Any]] | None = None,
    max_iter: int = 1000,
    model: str = "model",
) -> MLEResult:
    """Maximise ``ll`` (vectorized total log-likelihood) over positive parameters.

    ``grad(p) -> (k,)`` is the analytic gradient of the total log-likelihood on the natural
    scale; ``value_grad(p) -> (value, gradient)`` gives both from one pass over the data.
    Without either a vectorized central difference is used. With an analytic gradient the
    Hessian is a central difference of gradients.
    """
    import numpy as np
    from scipy.optimize import minimize

    total = _penalized(ll, penalizer)
    k = len(names)
    scale = 1.0 / max(weight_sum, 1.0)

    def objective(theta: Any) -> tuple[float, Any]:
        theta = np.clip(theta, -LOG_BOUND, LOG_BOUND)
        value, g = _value_and_log_gradient(total, grad, theta, penalizer, value_grad)
        if not math.isfinite(value) or not np.all(np.isfinite(g)):
            return 1e100, np.zeros(k)
        return -value * scale, -g * scale

    results = []
    iterations = 0
    for start in starts:
        theta0 = np.clip(np.log(np.asarray(start, dtype=float)), -LOG_BOUND + 1, LOG_BOUND - 1)
        with np.errstate(all="ignore"):
            res = minimize(
                objective,
                theta0,
                jac=True,
                method="BFGS",
                options={"maxiter": max_iter, "gtol": 1e-9},
            )
        iterations += int(res.nit)
        results.append(res)
        # two starts that land on the same optimum are enough evidence; skip the rest
        funs = sorted(float(r.fun) for r in results if math.isfinite(float(r.fun)))
        if any(abs(a - b) < 1e-9 for a, b in itertools.pairwise(funs)):
            break
    best = min(results, key=lambda r: float(r.fun))
    theta = np.clip(np.asarray(best.x, dtype=float), -LOG_BOUND, LOG_BOUND)
    agreeing = sum(1 for r in results if abs(float(r.fun) - float(best.fun)) < 1e-7)
    tried = len(results)

    def hessian_at(theta: Any) -> Any:
        if grad is None and value_grad is None:
            return log_hessian(total, theta)
        return log_hessian_from_gradient(
            lambda th: _value_and_log_gradient(total, grad, th, penalizer, value_grad)[1], theta
        )

    def value_and_gradient(theta: Any) -> tuple[float, Any]:
        return _value_and_log_gradient(total, grad, theta, penalizer, value_grad)

    # polish with Newton steps: BFGS stops a little early on flat likelihoods. The Hessian
    # is recomputed only after a step that could change it beyond its own rounding.
    with np.errstate(all="ignore"):
        value, g = value_and_gradient(theta)
        hess = hessian_at(theta)
        for _ in range(3):
            try:
                step = np.linalg.solve(hess, g)
            except np.linalg.LinAlgError:
                break
            size = float(np.max(np.abs(step)))
            if size < 1e-10:
                break  # already at the maximum to rounding
            candidate = np.clip(theta - step, -LOG_BOUND, LOG_BOUND)
            new_value, new_g = value_and_gradient(candidate)
            if not math.isfinite(new_value) or new_value < value - 1e-12:
                break
            theta, value, g = candidate, new_value, new_g
            if size > 1e-6:
                hess = hessian_at(theta)

    messages = []
    converged = math.isfinite(value) and bool(np.all(np.isfinite(g)))
    if converged and float(np.max(np.abs(g))) * scale > 1e-5:
        converged = False
        messages.append(f"gradient still {float(np.max(np.abs(g))) * scale:.2e} per customer")
    at_bound = [names[i] for i in range(k) if abs(theta[i]) > LOG_BOUND - 1e-6]
    if at_bound:
        converged = False
        messages.append(f"parameter(s) {', '.join(at_bound)} ran to the edge e^±{LOG_BOUND:g}")
    if not math.isfinite(value):
        messages.append("log-likelihood is not finite")

    params = np.exp(theta)
    se = np.full(k, np.nan)
    se_valid = False
    if converged:
        with np.errstate(all="ignore"):
            info = -hess
            eig = np.linalg.eigvalsh(info) if np.all(np.isfinite(info)) else np.array([-1.0])
            if np.all(eig > 0):
                cov_log = np.linalg.inv(info)
                cov = cov_log * np.outer(params, params)
                se = np.sqrt(np.diag(cov))
                se_valid = bool(np.all(np.isfinite(se)))
        if not se_valid:
            # a flat or saddle direction: no unique maximum, so no honest estimate either
            converged = False
            messages.append(
                "Hessian not negative definite: the maximum is not unique (parameters not "
                "identified by this data); standard errors are NaN"
            )
    if not converged:
        warnings.warn(
            f"{model} fit did not converge: {'; '.join(messages) or best.message}",
            ConvergenceWarning,
            stacklevel=3,
        )
    elif not se_valid:
        warnings.warn(
            f"{model}: standard errors are NaN (Hessian not positive definite)",
            ConvergenceWarning,
            stacklevel=3,
        )
    loglik = float(ll(params[None, :])[0])
    return MLEResult(
        params=tuple(float(x) for x in params),
        log_likelihood=loglik,
        standard_errors=tuple(float(x) for x in se),
        converged=converged,
        standard_errors_valid=se_valid,
        message="; ".join(messages) or "converged",
        iterations=iterations,
        starts_agreeing=agreeing,
        starts=tried,
    )
