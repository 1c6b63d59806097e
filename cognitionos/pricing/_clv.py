"""Buy-till-you-die customer models: BG/NBD, Pareto/NBD, Gamma-Gamma and BG/BB.

Likelihoods follow Fader, Hardie & Lee (2005) for BG/NBD, Fader & Hardie's notes for
Pareto/NBD and Gamma-Gamma, and Fader, Hardie & Shang (2010) for BG/BB. Every likelihood is
written in log space (``gammaln``, ``betaln``, ``logaddexp``); the Pareto/NBD hypergeometric
terms go through Euler's transformation ``2F1(a,b;a+1;z) = (1-z)^(1-b) 2F1(1,a+1-b;a+1;z)``
whose right-hand side is bounded (between 1 and ``(r+s+x)/min(r+x, s)``), so nothing
overflows or underflows however many purchases a customer made. Identical (frequency,
recency, T) rows are fitted once, weighted by their count.

    m = BetaGeoModel().fit(frequency, recency, T)
    m.params, m.log_likelihood, m.standard_errors
    m.conditional_expected_purchases(4, frequency, recency, T)
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._inputs import as_float_array, column, is_table, rows_text
from cognitionos.pricing._mle import ConvergenceWarning, MLEResult, maximize
from cognitionos.pricing._pareto import ParetoRows, pareto_value_and_gradient

__all__ = [
    "BetaGeoBetaBinomModel",
    "BetaGeoModel",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "customer_lifetime_value",
]

#: version of the JSON written by ``to_dict``/``save``; ``from_dict`` refuses newer ones
FORMAT_VERSION = 1
#: customers predicted per chunk (keeps memory flat for millions of customers)
CHUNK = 262_144

M = TypeVar("M", bound="_Model")


class _Model:
    """Parameters, fit diagnostics, JSON round trip: what every CLV model shares."""

    PARAM_NAMES: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""

    def __init__(self, *, penalizer: float = 0.0, n_starts: int = 3, max_iter: int = 1000):
        if not (isinstance(penalizer, int | float) and math.isfinite(penalizer) and penalizer >= 0):
            raise ConfigurationError(f"penalizer must be a finite number >= 0, got {penalizer!r}")
        if not isinstance(n_starts, int) or n_starts < 1:
            raise ConfigurationError(f"n_starts must be an integer >= 1, got {n_starts!r}")
        self.penalizer = float(penalizer)
        self.n_starts = n_starts
        self.max_iter = max_iter
        self._params: dict[str, float] | None = None
        self.fit_result: MLEResult | None = None
        self.n_customers: int = 0

    # -- parameters ---------------------------------------------------------------------
    @classmethod
    def from_params(cls: type[M], **params: float) -> M:
        """A model with given parameters (e.g. published ones), ready to predict."""
        model = cls()
        missing = set(cls.PARAM_NAMES) - set(params)
        extra = set(params) - set(cls.PARAM_NAMES)
        if missing or extra:
            raise ConfigurationError(
                f"{cls.__name__} parameters are {', '.join(cls.PARAM_NAMES)}; "
                f"missing {sorted(missing)}, unknown {sorted(extra)}"
            )
        for name, value in params.items():
            v = float(value)
            if not (math.isfinite(v) and v > 0):
                raise ConfigurationError(
                    f"{cls.__name__} parameter {name} must be > 0, got {value!r}"
                )
        model._params = {n: float(params[n]) for n in cls.PARAM_NAMES}
        return model

    @property
    def params(self) -> dict[str, float]:
        """Fitted (or given) parameters by name."""
        if self._params is None:
            raise ConfigurationError(f"{type(self).__name__} is not fitted: call fit() first")
        return dict(self._params)

    @property
    def log_likelihood(self) -> float:
        """Log-likelihood of the fitted data at the parameters (without the penalty)."""
        return self._result().log_likelihood

    @property
    def standard_errors(self) -> dict[str, float]:
        """Asymptotic standard errors from the Hessian (NaN when it is not positive definite)."""
        return dict(zip(self.PARAM_NAMES, self._result().standard_errors, strict=True))

    @property
    def converged(self) -> bool:
        """Whether the optimizer reached a stationary point inside the parameter box."""
        return self._result().converged

    def _result(self) -> MLEResult:
        if self.fit_result is None:
            raise ConfigurationError(f"{type(self).__name__} has no fit: call fit() first")
        return self.fit_result

    def _p(self) -> tuple[float, ...]:
        params = self.params
        return tuple(params[n] for n in self.PARAM_NAMES)

    def confidence_intervals(self, level: float = 0.95) -> dict[str, tuple[float, float]]:
        """Wald intervals ``estimate ± z * se`` per parameter."""
        from statistics import NormalDist

        z = NormalDist().inv_cdf(0.5 + level / 2)
        se = self.standard_errors
        return {n: (v - z * se[n], v + z * se[n]) for n, v in self.params.items()}

    def summary(self) -> dict[str, Any]:
        """Parameters, standard errors, log-likelihood and convergence, as plain data."""
        out: dict[str, Any] = {"model": self.KIND, "params": self.params}
        if self.fit_result is not None:
            r = self.fit_result
            out.update(
                standard_errors={
                    n: (None if math.isnan(s) else s)
                    for n, s in zip(self.PARAM_NAMES, r.standard_errors, strict=True)
                },
                standard_errors_valid=r.standard_errors_valid,
                log_likelihood=r.log_likelihood,
                converged=r.converged,
                message=r.message,
                n_customers=self.n_customers,
                penalizer=self.penalizer,
                starts=r.starts,
                starts_agreeing=r.starts_agreeing,
            )
        return out

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Parameters and fit metadata as JSON-ready data (no customer data)."""
        from cognitionos import __version__

        return {
            "format": "cognitionos.pricing.model",
            "version": FORMAT_VERSION,
            "written_by": __version__,
            **self.summary(),
        }

    @classmethod
    def from_dict(cls: type[M], data: Mapping[str, Any]) -> M:
        """Rebuild a model written by :meth:`to_dict` (refuses other kinds and newer versions)."""
        if not isinstance(data, Mapping) or data.get("format") != "cognitionos.pricing.model":
            raise ConfigurationError("not a cognitionos pricing model document")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigurationError(
                f"model document version {version!r} is newer than this cognitionos reads "
                f"({FORMAT_VERSION}); upgrade cognitionos"
            )
        if data.get("model") != cls.KIND:
            raise ConfigurationError(
                f"document holds a {data.get('model')!r} model, not {cls.KIND!r}"
            )
        params = data.get("params")
        if not isinstance(params, Mapping):
            raise ConfigurationError("model document has no params")
        model = cls.from_params(**{str(k): float(v) for k, v in params.items()})
        if "log_likelihood" in data:
            se = data.get("standard_errors") or {}
            model.fit_result = MLEResult(
                params=tuple(model.params[n] for n in cls.PARAM_NAMES),
                log_likelihood=float(data["log_likelihood"]),
                standard_errors=tuple(
                    float("nan") if se.get(n) is None else float(se[n]) for n in cls.PARAM_NAMES
                ),
                converged=bool(data.get("converged")),
                standard_errors_valid=bool(data.get("standard_errors_valid")),
                message=str(data.get("message", "")),
                iterations=0,
                starts_agreeing=int(data.get("starts_agreeing", 0)),
                starts=int(data.get("starts", 0)),
            )
            model.n_customers = int(data.get("n_customers", 0))
            model.penalizer = float(data.get("penalizer", 0.0))
        return model

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls: type[M], path: str | Path) -> M:
        """Read a model saved by :meth:`save`."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{path}: not JSON ({exc})") from None
        return cls.from_dict(data)

    def _fit(
        self,
        ll: Callable[[Any], Any],
        weight_sum: float,
        starts: list[list[float]],
        grad: Callable[[Any], Any] | None,
        value_grad: Callable[[Any], tuple[float, Any]] | None = None,
    ) -> None:
        import numpy as np

        rng = np.random.default_rng(0)
        while len(starts) < self.n_starts:
            base = np.asarray(starts[0])
            starts.append(list(base * np.exp(rng.normal(0.0, 0.7, base.size))))
        self.fit_result = maximize(
            ll,
            names=self.PARAM_NAMES,
            starts=starts[: self.n_starts],
            weight_sum=weight_sum,
            penalizer=self.penalizer,
            grad=grad,
            value_grad=value_grad,
            max_iter=self.max_iter,
            model=type(self).__name__,
        )
        self._params = dict(zip(self.PARAM_NAMES, self.fit_result.params, strict=True))


# -- inputs -------------------------------------------------------------------------------
def _rfm_columns(frequency: Any, recency: Any, T: Any, what: str) -> tuple[Any, Any, Any]:
    if recency is None and T is None and is_table(frequency):
        table = frequency
        frequency = column(table, "frequency", what)
        recency = column(table, "recency", what)
        T = column(table, "T", what)
    x = as_float_array("frequency", frequency)
    tx = as_float_array("recency", recency, length=x.size)
    t = as_float_array("T", T, length=x.size)
    return x, tx, t


def check_rfm(x: Any, tx: Any, t: Any, *, discrete: bool = False) -> None:
    """Refuse inconsistent RFM rows, naming them."""
    import numpy as np

    tol = 1e-9
    problems = [
        (x < 0, "negative frequency"),
        (np.abs(x - np.round(x)) > tol, "non-integer frequency"),
        (tx < 0, "negative recency"),
        (t <= 0, "T must be > 0"),
        (tx > t + tol, "recency > T"),
        ((x == 0) & (tx > tol), "frequency 0 with recency > 0"),
        ((x > 0) & (tx <= 0), "frequency > 0 with recency 0"),
    ]
    if discrete:
        problems += [
            (np.abs(t - np.round(t)) > tol, "non-integer number of periods"),
            (np.abs(tx - np.round(tx)) > tol, "non-integer recency"),
            (x > tx + tol, "frequency > recency (more transactions than periods)"),
        ]
    for mask, text in problems:
        bad = np.flatnonzero(mask)
        if bad.size:
            raise ConfigurationError(f"inconsistent RFM data: {text} at {rows_text(bad)}")


def _weights(weights: Any, n: int) -> Any:
    import numpy as np

    if weights is None:
        return np.ones(n)
    w = as_float_array("weights", weights, length=n)
    bad = np.flatnonzero(w < 0)
    if bad.size:
        raise ConfigurationError(f"weights must be >= 0: negative at {rows_text(bad)}")
    if w.sum() <= 0:
        raise ConfigurationError("weights sum to zero")
    return w


def _fit_rfm(
    frequency: Any, recency: Any, T: Any, weights: Any, what: str
) -> tuple[Any, Any, Any, Any]:
    """Checked (frequency, recency, T) columns and weights for a fit, identical rows merged."""
    x, tx, t = _rfm_columns(frequency, recency, T, what)
    check_rfm(x, tx, t)
    (x, tx, t), w = _compress([x, tx, t], _weights(weights, x.size))
    return x, tx, t, w


def _compress(columns: list[Any], w: Any) -> tuple[list[Any], Any]:
    """Unique rows and their summed weights: identical customers are evaluated once."""
    import numpy as np

    stacked = np.column_stack(columns)
    unique, inverse = np.unique(stacked, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=unique.shape[0])
    keep = counts > 0
    return [unique[keep, i] for i in range(unique.shape[1])], counts[keep]


def _cols(P: Any, k: int) -> list[Any]:
    return [P[:, i : i + 1] for i in range(k)]


def _chunked(fn: Callable[..., Any], *arrays: Any) -> Any:
    import numpy as np

    n = arrays[0].size
    if n <= CHUNK:
        return fn(*arrays)
    return np.concatenate([fn(*(a[i : i + CHUNK] for a in arrays)) for i in range(0, n, CHUNK)])


#: below this share of distinct (x, T) pairs a prediction evaluates each pair once
_DISTINCT_SHARE = 0.5


def _distinct_pairs(x: Any, T: Any) -> tuple[Any, Any, Any] | None:
    """Distinct (integer x, T) pairs and the index mapping rows onto them, or None when
    the rows are mostly distinct already (judged on a sample, so that case costs no sort).

    Real summaries have few: T counts whole days (or weeks) since the first purchase.
    """
    import numpy as np

    n = x.size
    if n < 1024:
        return None
    sample = T[:: max(1, n // 4096)]
    if np.unique(sample).size > _DISTINCT_SHARE * sample.size:
        return None
    t_values = np.unique(T)  # a sort without argsort, then a binary search per row
    if t_values.size > _DISTINCT_SHARE * n:
        return None
    x_int = x.astype(np.int64)
    width = int(x_int.max()) + 1
    if width * t_values.size > 4 * n:
        return None  # the dense (x, T) table would be larger than the data
    key = x_int * np.int64(t_values.size) + np.searchsorted(t_values, T)
    present = np.zeros(width * t_values.size, dtype=bool)
    present[key] = True
    keys = np.flatnonzero(present)
    if keys.size > _DISTINCT_SHARE * n:
        return None
    slot = np.cumsum(present) - 1
    return (keys // t_values.size).astype(float), t_values[keys % t_values.size], slot[key]


#: half-width of the symmetric step around a = 1 (see _smooth_at_one)
_A_STEP = 1e-5


def _smooth_at_one(a: float, at: Callable[[float], Any]) -> Any:
    """``at(a)``, or near a = 1 (a removable 0/0 in the BG/NBD expectations) the mean of
    ``at(1 - h)`` and ``at(1 + h)``: exact to O(h^2) instead of NaN or noise."""
    if abs(a - 1) < _A_STEP:
        return (at(1 - _A_STEP) + at(1 + _A_STEP)) / 2
    return at(a)


def _time(name: str, t: Any) -> Any:
    import numpy as np

    arr = np.asarray(t, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ConfigurationError(f"{name} must be finite and >= 0, got {t!r}")
    return arr


#: the integer-frequency tables below are used while max(frequency) is at most this
_TABLE_MAX = 100_000


def _bg_value_and_gradient(p: Any, xi: Any, tx: Any, T: Any, w: Any, modified: bool) -> Any:
    """BG/NBD (or MBG/NBD when ``modified``) total log-likelihood and gradient in one pass.

    Frequencies are integers, so every ``gammaln(c + x) - gammaln(c)`` is the cumulative sum
    ``sum_{k<x} log(c + k)`` and every digamma difference ``sum_{k<x} 1/(c + k)``: tables
    over 0..max(x) replace eight special-function calls per customer row.
    """
    import numpy as np

    r, alpha, a, b = (float(v) for v in p)
    top_x = int(xi.max()) + 2
    k = np.arange(top_x - 1, dtype=float)

    def tables(c: float) -> tuple[Any, Any]:
        return (
            np.concatenate([[0.0], np.cumsum(np.log(c + k))]),
            np.concatenate([[0.0], np.cumsum(1.0 / (c + k))]),
        )

    lg_r, dg_r = tables(r)
    lg_b, dg_b = tables(b)
    lg_ab, dg_ab = tables(a + b)
    x = xi.astype(float)
    j = xi + 1 if modified else xi  # MBG/NBD's beta terms run one coin flip further
    log_at, log_atx = np.log(alpha + T), np.log(alpha + tx)
    a3 = -(r + x) * log_at
    if modified:
        denom = b + x
        a4 = math.log(a) - np.log(denom) - (r + x) * log_atx
    else:
        denom = b + np.maximum(x, 1.0) - 1.0
        with np.errstate(divide="ignore"):
            a4 = np.where(xi > 0, math.log(a) - np.log(denom) - (r + x) * log_atx, -np.inf)
    top = np.logaddexp(a3, a4)
    value = lg_r[xi] + r * math.log(alpha) + lg_b[j] - lg_ab[j] + top
    w3 = np.exp(a3 - top)
    w4 = np.exp(a4 - top)
    d_r = dg_r[xi] + math.log(alpha) - w3 * log_at - w4 * log_atx
    d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx))
    d_a = -dg_ab[j] + w4 / a
    d_b = dg_b[j] - dg_ab[j] - w4 / denom
    grad = np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)])
    return float(np.dot(w, value)), grad


def _bg_fit_functions(
    model: Any, x: Any, tx: Any, t: Any, w: Any, modified: bool
) -> tuple[Any, Any]:
    """(grad, value_grad) for ``_fit``: the table form when frequencies are small integers."""
    import numpy as np

    if float(x.max()) > _TABLE_MAX:
        return (lambda p: model._grad(p, x, tx, t, w)), None
    xi = np.round(x).astype(np.int64)
    return None, (lambda p: _bg_value_and_gradient(p, xi, tx, t, w, modified))


def _fit_bg_family(
    model: Any,
    frequency: Any,
    recency: Any,
    T: Any,
    weights: Any,
    initial: Mapping[str, float] | None,
    *,
    modified: bool,
) -> None:
    """Maximum likelihood for BG/NBD (``modified=False``) and MBG/NBD: the same starting
    points and optimizer, each model's own likelihood and gradient."""
    x, tx, t, w = _fit_rfm(frequency, recency, T, weights, f"{type(model).__name__}.fit")
    model.n_customers = round(float(w.sum()))
    starts = [[initial[n] for n in model.PARAM_NAMES]] if initial else []
    starts += [
        [0.5, float(t.mean()) / 4, 1.0, 2.0],
        [1.0, 1.0, 1.0, 1.0],
        [0.1, 10.0, 0.5, 5.0],
    ]
    grad, value_grad = _bg_fit_functions(model, x, tx, t, w, modified=modified)
    model._fit(
        lambda P: model._ll_rows(P, x, tx, t) @ w, float(w.sum()), starts, grad, value_grad
    )


# -- BG/NBD -------------------------------------------------------------------------------
class BetaGeoModel(_Model):
    """BG/NBD (Fader, Hardie & Lee 2005): Poisson purchases, a coin flip after each one decides
    whether the customer drops out. Parameters ``r, alpha`` (gamma purchase rates) and ``a, b``
    (beta dropout probability); time in the unit of ``recency`` and ``T``.

        m = BetaGeoModel().fit(frequency, recency, T)
        m.probability_alive(frequency, recency, T)
    """

    PARAM_NAMES = ("r", "alpha", "a", "b")
    KIND = "bg_nbd"

    @staticmethod
    def _ll_rows(P: Any, x: Any, tx: Any, T: Any) -> Any:
        import numpy as np
        from scipy.special import gammaln

        r, alpha, a, b = _cols(P, 4)
        pos = x > 0
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
        a3 = -(r + x) * np.log(alpha + T)
        with np.errstate(divide="ignore"):
            a4 = np.where(
                pos,
                np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + tx),
                -np.inf,
            )
        return a1 + a2 + np.logaddexp(a3, a4)

    @staticmethod
    def _grad(p: Any, x: Any, tx: Any, T: Any, w: Any) -> Any:
        import numpy as np
        from scipy.special import digamma

        r, alpha, a, b = p
        pos = x > 0
        a3 = -(r + x) * np.log(alpha + T)
        bx1 = b + np.maximum(x, 1) - 1
        with np.errstate(divide="ignore"):
            a4 = np.where(pos, np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + tx), -np.inf)
        top = np.logaddexp(a3, a4)
        w3 = np.exp(a3 - top)
        w4 = np.exp(a4 - top)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T)
        d_r -= w4 * np.log(alpha + tx)
        d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
        d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
        d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / bx1
        return np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)])

    def fit(
        self,
        frequency: Any,
        recency: Any = None,
        T: Any = None,
        *,
        weights: Any = None,
        initial: Mapping[str, float] | None = None,
    ) -> BetaGeoModel:
        """Fit by maximum likelihood; ``frequency`` may be a table with the three columns."""
        _fit_bg_family(self, frequency, recency, T, weights, initial, modified=False)
        return self

    def unconditional_expected_purchases(self, t: Any) -> Any:
        """E[X(t)]: purchases a random new customer makes in ``t`` (a count, not a probability)."""
        import numpy as np
        from scipy.special import hyp2f1

        r, alpha, a, b = self._p()
        t = _time("t", t)
        z = t / (alpha + t)

        def at(a: float) -> Any:
            q = (alpha / (alpha + t)) ** r
            if abs(a + b - 1) < 1e-9:  # c * 2F1(r, b; c; z) -> r b z 2F1(r+1, b+1; 2; z)
                return -q * r * b * z * hyp2f1(r + 1, b + 1, 2.0, z) / (a - 1)
            return (a + b - 1) / (a - 1) * (1 - q * hyp2f1(r, b, a + b - 1, z))

        return np.where(t == 0, 0.0, _smooth_at_one(a, at))

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(still active at T | history). Customers with no repeat purchase get 1 under BG/NBD
        (they cannot have dropped out yet): a :class:`OneTimeBuyerWarning` says so when the
        input has any; prefer P(no purchase in next t) to rank them, or MBG/NBD."""
        import numpy as np

        x, tx, t = _rfm_columns(frequency, recency, T, "probability_alive")
        check_rfm(x, tx, t)
        if np.any(x == 0):
            import warnings

            from cognitionos.pricing._mle import OneTimeBuyerWarning

            warnings.warn(
                OneTimeBuyerWarning(
                    f"{int(np.sum(x == 0)):,} customer(s) with no repeat purchase get "
                    "P(alive) = 1 under BG/NBD (it cannot see them drop out); rank them with "
                    "probability_no_purchase(t, ...) or fit ModifiedBetaGeoModel (MBG/NBD)"
                ),
                stacklevel=2,
            )
        return self._alive(x, tx, t)

    def _alive(self, x: Any, tx: Any, t: Any) -> Any:
        import numpy as np

        r, alpha, a, b = self._p()

        def compute(x: Any, tx: Any, t: Any) -> Any:
            with np.errstate(divide="ignore"):
                log_odds = (
                    np.log(a)
                    - np.log(b + np.maximum(x, 1) - 1)
                    + (r + x) * (np.log(alpha + t) - np.log(alpha + tx))
                )
            return np.where(x > 0, 1.0 / (1.0 + np.exp(log_odds)), 1.0)

        return _chunked(compute, x, tx, t)

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units."""
        import numpy as np
        from scipy.special import hyp2f1

        x, tx, T_ = _rfm_columns(frequency, recency, T, "conditional_expected_purchases")
        check_rfm(x, tx, T_)
        r, alpha, a, b = self._p()
        t = _time("t", t)

        def body(a: float, x: Any, T_: Any) -> Any:
            # the hypergeometric part: a function of (x, T) alone
            z = t / (alpha + T_ + t)
            c = a + b + x - 1
            q = ((alpha + T_) / (alpha + T_ + t)) ** (r + x)
            zero_c = np.abs(c) < 1e-9  # x = 0 and a + b = 1: c * 2F1(..; c; z) has a limit
            c_safe = np.where(zero_c, 1.0, c)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = c_safe / (a - 1) * (1 - q * hyp2f1(r + x, b + x, c_safe, z))
                if np.any(zero_c):  # the limit needs its own 2F1: only when some row has it
                    limit = q * (r + x) * (b + x) * z * hyp2f1(r + x + 1, b + x + 1, 2.0, z)
                    out = np.where(zero_c, -limit / (a - 1), out)
            return out

        def compute(x: Any, tx: Any, T_: Any) -> Any:
            # with one horizon t, customers sharing (x, T) share the 2F1: evaluate it once
            pairs = _distinct_pairs(x, T_) if np.ndim(t) == 0 else None

            def at(a: float) -> Any:
                if pairs is None:
                    value = body(a, x, T_)
                else:
                    xu, tu, inverse = pairs
                    value = body(a, xu, tu)[inverse]
                with np.errstate(divide="ignore", over="ignore"):
                    odds = np.where(
                        x > 0,
                        a / (b + np.maximum(x, 1) - 1) * ((alpha + T_) / (alpha + tx)) ** (r + x),
                        0.0,
                    )
                return value / (1 + odds)

            return _smooth_at_one(a, at)

        return _chunked(compute, x, tx, T_)

    def probability_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """P(no purchase in the next ``t`` | history): dead, or alive and silent."""
        import numpy as np

        x, tx, T_ = _rfm_columns(frequency, recency, T, "probability_no_purchase")
        check_rfm(x, tx, T_)
        alive = self._alive(x, tx, T_)
        r, alpha, _, _ = self._p()
        t = _time("t", t)
        silent = np.exp((r + x) * (np.log(alpha + T_) - np.log(alpha + T_ + t)))
        return (1 - alive) + alive * silent

    def probability_of_purchases(self, t: float, n: Any) -> Any:
        """P(X(t) = n) for a random new customer (FHL 2005 eq. 8)."""
        import numpy as np
        from scipy.special import betaln, gammaln

        r, alpha, a, b = self._p()
        t_arr = _time("t", t)
        n_arr = np.asarray(n, dtype=float)
        if np.any(n_arr < 0) or np.any(n_arr != np.round(n_arr)):
            raise ConfigurationError(f"n must be integers >= 0, got {n!r}")
        lb = betaln(a, b)
        log_q = np.log(alpha) - np.log(alpha + t_arr)
        log_z = np.log(t_arr) - np.log(alpha + t_arr) if np.all(t_arr > 0) else None

        def one(k: int) -> Any:
            # log of Gamma(r+j)/(Gamma(r) j!) z^j, j = 0..k
            if log_z is None:
                return np.where(k == 0, 1.0, 0.0)
            first = (
                betaln(a, b + k)
                - lb
                + gammaln(r + k)
                - gammaln(r)
                - gammaln(k + 1)
                + r * log_q
                + k * log_z
            )
            total = np.exp(first)
            if k > 0:
                j = np.arange(k)
                terms = gammaln(r + j) - gammaln(r) - gammaln(j + 1) + np.multiply.outer(log_z, j)
                partial = np.exp(r * log_q + np.logaddexp.reduce(terms, axis=-1))
                total = total + np.exp(betaln(a + 1, b + k - 1) - lb) * (1 - partial)
            return total

        flat = [one(int(k)) for k in n_arr.ravel()]
        return np.reshape(np.array(flat, dtype=float), n_arr.shape + t_arr.shape)


# -- MBG/NBD ------------------------------------------------------------------------------
class ModifiedBetaGeoModel(_Model):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD with a dropout coin flip at
    the first purchase too, so a customer with no repeat purchase may already be gone (under
    BG/NBD their P(alive) is exactly 1). Parameters ``r, alpha, a, b`` as in BG/NBD.

        m = ModifiedBetaGeoModel().fit(frequency, recency, T)
        m.probability_alive(0, 0, 30)   # < 1, unlike BG/NBD
    """

    PARAM_NAMES = ("r", "alpha", "a", "b")
    KIND = "mbg_nbd"

    @staticmethod
    def _ll_rows(P: Any, x: Any, tx: Any, T: Any) -> Any:
        import numpy as np
        from scipy.special import gammaln

        r, alpha, a, b = _cols(P, 4)
        a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        a2 = gammaln(a + b) + gammaln(b + x + 1) - gammaln(b) - gammaln(a + b + x + 1)
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
        return a1 + a2 + np.logaddexp(a3, a4)

    @staticmethod
    def _grad(p: Any, x: Any, tx: Any, T: Any, w: Any) -> Any:
        import numpy as np
        from scipy.special import digamma

        r, alpha, a, b = p
        a3 = -(r + x) * np.log(alpha + T)
        a4 = np.log(a) - np.log(b + x) - (r + x) * np.log(alpha + tx)
        top = np.logaddexp(a3, a4)
        w3 = np.exp(a3 - top)
        w4 = np.exp(a4 - top)
        d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T)
        d_r -= w4 * np.log(alpha + tx)
        d_alpha = r / alpha - (r + x) * (w3 / (alpha + T) + w4 / (alpha + tx))
        common = digamma(a + b) - digamma(a + b + x + 1)
        d_a = common + w4 / a
        d_b = common + digamma(b + x + 1) - digamma(b) - w4 / (b + x)
        return np.array([np.dot(w, d) for d in (d_r, d_alpha, d_a, d_b)])

    def fit(
        self,
        frequency: Any,
        recency: Any = None,
        T: Any = None,
        *,
        weights: Any = None,
        initial: Mapping[str, float] | None = None,
    ) -> ModifiedBetaGeoModel:
        """Fit by maximum likelihood; ``frequency`` may be a table with the three columns."""
        _fit_bg_family(self, frequency, recency, T, weights, initial, modified=True)
        return self

    def _odds_dead(self, x: Any, tx: Any, T_: Any) -> Any:
        """P(dead) / P(alive) given the history."""
        import numpy as np

        r, alpha, a, b = self._p()
        with np.errstate(over="ignore"):
            return a / (b + x) * np.exp((r + x) * (np.log(alpha + T_) - np.log(alpha + tx)))

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(still active at T | history); below 1 for one-time buyers too."""
        x, tx, t = _rfm_columns(frequency, recency, T, "probability_alive")
        check_rfm(x, tx, t)
        return _chunked(lambda x, tx, t: 1.0 / (1.0 + self._odds_dead(x, tx, t)), x, tx, t)

    def unconditional_expected_purchases(self, t: Any) -> Any:
        """E[X(t)]: repeat purchases of a random new customer in ``t`` (a count)."""
        import numpy as np
        from scipy.special import hyp2f1

        r, alpha, a, b = self._p()
        t = _time("t", t)

        def at(a: float) -> Any:
            q = (alpha / (alpha + t)) ** r
            return b / (a - 1) * (1 - q * hyp2f1(r, b + 1, a + b, t / (alpha + t)))

        return np.where(t == 0, 0.0, _smooth_at_one(a, at))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units."""
        import numpy as np
        from scipy.special import hyp2f1

        x, tx, T_ = _rfm_columns(frequency, recency, T, "conditional_expected_purchases")
        check_rfm(x, tx, T_)
        r, alpha, _, b = self._p()
        a_fit = self._p()[2]
        t = _time("t", t)

        def body(a: float, x: Any, T_: Any) -> Any:
            z = t / (alpha + T_ + t)
            q = ((alpha + T_) / (alpha + T_ + t)) ** (r + x)
            return (a + b + x) / (a - 1) * (1 - q * hyp2f1(r + x, b + x + 1, a + b + x, z))

        def compute(x: Any, tx: Any, T_: Any) -> Any:
            pairs = _distinct_pairs(x, T_) if np.ndim(t) == 0 else None
            odds = self._odds_dead(x, tx, T_)

            def at(a: float) -> Any:
                if pairs is None:
                    return body(a, x, T_)
                xu, tu, inverse = pairs
                return body(a, xu, tu)[inverse]

            return _smooth_at_one(a_fit, at) / (1 + odds)

        return _chunked(compute, x, tx, T_)

    def probability_no_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """P(no purchase in the next ``t`` | history): dead, or alive and silent."""
        import numpy as np

        x, tx, T_ = _rfm_columns(frequency, recency, T, "probability_no_purchase")
        alive = self.probability_alive(x, tx, T_)
        r, alpha, _, _ = self._p()
        t = _time("t", t)
        silent = np.exp((r + x) * (np.log(alpha + T_) - np.log(alpha + T_ + t)))
        return (1 - alive) + alive * silent

    def probability_of_purchases(self, t: float, n: Any) -> Any:
        """P(X(t) = n) for a random new customer: alive after n+1 coin flips with exactly n
        Poisson events, or dropped at the flip after the n-th purchase with >= n events."""
        import numpy as np
        from scipy.special import betainc, betaln, gammaln

        r, alpha, a, b = self._p()
        t_arr = _time("t", t)
        n_arr = np.asarray(n, dtype=float)
        if np.any(n_arr < 0) or np.any(n_arr != np.round(n_arr)):
            raise ConfigurationError(f"n must be integers >= 0, got {n!r}")
        lb = betaln(a, b)
        log_q = np.log(alpha) - np.log(alpha + t_arr)
        positive = t_arr > 0
        safe_t = np.where(positive, t_arr, 1.0)
        log_z = np.log(safe_t) - np.log(alpha + safe_t)

        def nbd_log_pmf(j: Any) -> Any:
            # log P(N(t) = j) under the NBD (gamma-mixed Poisson)
            return gammaln(r + j) - gammaln(r) - gammaln(j + 1) + r * log_q + j * log_z

        z = np.exp(log_z)

        def one(k: int) -> Any:
            stay = np.exp(betaln(a, b + k + 1) - lb + nbd_log_pmf(float(k)))
            # P(N(t) >= k) of the NBD as a regularized incomplete beta: no 1 - CDF cancellation
            at_least = betainc(float(k), r, z) if k > 0 else np.ones_like(z)
            value = stay + np.exp(betaln(a + 1, b + k) - lb) * at_least
            return np.where(positive, value, 1.0 if k == 0 else 0.0)

        flat = [one(int(k)) for k in n_arr.ravel()]
        return np.reshape(np.array(flat, dtype=float), n_arr.shape + t_arr.shape)


# -- Pareto/NBD ---------------------------------------------------------------------------
def _pareto_log_terms(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t: Any) -> Any:
    """log of 2F1(...)/(max(alpha,beta)+t)^(r+s+x), the A0 building block, via Euler's form."""
    import numpy as np
    from scipy.special import hyp2f1

    alpha_big = alpha >= beta
    # Euler: 2F1(a,b;a+1;z) = (1-z)^(1-b) 2F1(1, a+1-b; a+1; z), with 0 <= z < 1 and the
    # right-hand 2F1 between 1 and (r+s+x)/min(r+x, s): no overflow, no underflow
    # alpha >= beta: (alpha+t)^-(r+x) (beta+t)^-s 2F1(1, r+x; r+s+x+1; (a-b)/(a+t))
    # alpha < beta:  (alpha+t)^-(r+x-1) (beta+t)^-(s+1) 2F1(1, s+1; r+s+x+1; (b-a)/(b+t))
    # one hyp2f1 call over both branches (each parameter row picks its own)
    log_a, log_b = np.log(alpha + t), np.log(beta + t)
    b_arg = np.where(alpha_big, r + x, s + 1)
    z_arg = np.where(alpha_big, (alpha - beta) / (alpha + t), (beta - alpha) / (beta + t))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_f = np.log(hyp2f1(1.0, b_arg, r + s + x + 1, z_arg))
    return (
        np.where(
            alpha_big,
            -(r + x) * log_a - s * log_b,
            -(r + x - 1) * log_a - (s + 1) * log_b,
        )
        + log_f
    )


class ParetoNBDModel(_Model):
    """Pareto/NBD (Schmittlein, Morrison & Colombo 1987): Poisson purchases, exponential
    lifetimes, gamma heterogeneity in both rates. Parameters ``r, alpha, s, beta``.

        m = ParetoNBDModel().fit(frequency, recency, T)
        m.conditional_expected_purchases(52, 26, 30.86, 31)
    """

    PARAM_NAMES = ("r", "alpha", "s", "beta")
    KIND = "pareto_nbd"

    @staticmethod
    def _log_a0_parts(r: Any, alpha: Any, s: Any, beta: Any, x: Any, tx: Any, T: Any) -> Any:
        import numpy as np

        lt_x = _pareto_log_terms(r, alpha, s, beta, x, tx)
        lt_T = _pareto_log_terms(r, alpha, s, beta, x, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            return lt_x + np.log(-np.expm1(np.minimum(lt_T - lt_x, 0.0)))

    @classmethod
    def _ll_rows(cls, P: Any, x: Any, tx: Any, T: Any) -> Any:
        import numpy as np
        from scipy.special import gammaln

        r, alpha, s, beta = _cols(P, 4)
        head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        b1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        b2 = np.log(s) - np.log(r + s + x) + cls._log_a0_parts(r, alpha, s, beta, x, tx, T)
        return head + np.logaddexp(b1, b2)

    def fit(
        self,
        frequency: Any,
        recency: Any = None,
        T: Any = None,
        *,
        weights: Any = None,
        initial: Mapping[str, float] | None = None,
    ) -> ParetoNBDModel:
        """Fit by maximum likelihood; ``frequency`` may be a table with the three columns."""
        x, tx, t, w = _fit_rfm(frequency, recency, T, weights, "ParetoNBDModel.fit")
        rows = ParetoRows(x, tx, t, w)
        self.n_customers = round(float(w.sum()))
        mean_t = float(t.mean())
        starts = [[initial[n] for n in self.PARAM_NAMES]] if initial else []
        starts += [
            [0.5, mean_t / 4, 0.5, mean_t / 4],
            [0.3, mean_t, 1.0, mean_t],
            [1.0, 1.0, 1.0, 1.0],
        ]
        self._fit(
            lambda P: self._ll_rows(P, x, tx, t) @ w,
            float(w.sum()),
            starts,
            None,
            lambda p: pareto_value_and_gradient(p, rows, self._ll_rows),
        )
        return self

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive at T | x, t_x, T)."""
        import numpy as np

        x, tx, t = _rfm_columns(frequency, recency, T, "probability_alive")
        check_rfm(x, tx, t)
        r, alpha, s, beta = self._p()

        def compute(x: Any, tx: Any, t: Any) -> Any:
            log_a0 = self._log_a0_parts(r, alpha, s, beta, x, tx, t)
            log_ratio = (
                np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + t) + s * np.log(beta + t)
            ) + log_a0
            with np.errstate(over="ignore"):
                return 1.0 / (1.0 + np.exp(log_ratio))

        return _chunked(compute, x, tx, t)

    def unconditional_expected_purchases(self, t: Any) -> Any:
        """E[X(t)] for a random new customer."""
        r, alpha, s, beta = self._p()
        t = _time("t", t)
        return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))

    def conditional_expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> Any:
        """E[Y(t) | x, t_x, T]: expected purchases in the next ``t`` time units."""
        x, tx, T_ = _rfm_columns(frequency, recency, T, "conditional_expected_purchases")
        alive = self.probability_alive(x, tx, T_)
        r, alpha, s, beta = self._p()
        t = _time("t", t)
        rate = (r + x) * (beta + T_) / ((alpha + T_) * (s - 1))
        return rate * (1 - ((beta + T_) / (beta + T_ + t)) ** (s - 1)) * alive


# -- Gamma-Gamma ---------------------------------------------------------------------------
class GammaGammaModel(_Model):
    """Gamma-Gamma spend model (Fader & Hardie 2013 note): a customer's average transaction
    value given ``frequency`` repeat purchases averaging ``monetary_value``.
    Parameters ``p, q, v``. Customers with frequency 0 are excluded from the fit (counted in
    ``excluded_one_time``); spend must be > 0. The model assumes spend is independent of
    frequency: ``frequency_spend_correlation`` reports how far the data is from that.

        gg = GammaGammaModel().fit(frequency, monetary_value)
        gg.conditional_expected_average_spend(frequency, monetary_value)
    """

    PARAM_NAMES = ("p", "q", "v")
    KIND = "gamma_gamma"

    def __init__(self, *, penalizer: float = 0.0, n_starts: int = 3, max_iter: int = 1000):
        super().__init__(penalizer=penalizer, n_starts=n_starts, max_iter=max_iter)
        self.excluded_one_time = 0
        self.frequency_spend_correlation = float("nan")

    @staticmethod
    def _ll_rows(P: Any, x: Any, m: Any) -> Any:
        import numpy as np
        from scipy.special import gammaln

        p, q, v = _cols(P, 3)
        px = p * x
        return (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(v + m * x)
        )

    @staticmethod
    def _grad(par: Any, x: Any, m: Any, w: Any) -> Any:
        import numpy as np
        from scipy.special import digamma

        p, q, v = par
        px = p * x
        dg = digamma(px + q)
        d_p = x * (dg - digamma(px) + np.log(m) + np.log(x) - np.log(v + m * x))
        d_q = dg - digamma(q) + np.log(v) - np.log(v + m * x)
        d_v = q / v - (px + q) / (v + m * x)
        return np.array([np.dot(w, d) for d in (d_p, d_q, d_v)])

    @staticmethod
    def _inputs(frequency: Any, monetary_value: Any, what: str) -> tuple[Any, Any]:
        if monetary_value is None and is_table(frequency):
            table = frequency
            frequency = column(table, "frequency", what)
            monetary_value = column(table, "monetary_value", what)
        x = as_float_array("frequency", frequency)
        m = as_float_array("monetary_value", monetary_value, length=x.size)
        return x, m

    def fit(
        self, frequency: Any, monetary_value: Any = None, *, weights: Any = None
    ) -> GammaGammaModel:
        """Fit on repeat customers; ``frequency`` may be a table with both columns."""
        import numpy as np

        x, m = self._inputs(frequency, monetary_value, "GammaGammaModel.fit")
        w = _weights(weights, x.size)
        bad = np.flatnonzero((x < 0) | (np.abs(x - np.round(x)) > 1e-9))
        if bad.size:
            raise ConfigurationError(f"frequency must be integers >= 0: {rows_text(bad)}")
        repeat = x > 0
        bad = np.flatnonzero(repeat & (m <= 0))
        if bad.size:
            raise ConfigurationError(
                f"monetary_value must be > 0 for customers with repeat purchases: {rows_text(bad)}"
            )
        self.excluded_one_time = int(np.count_nonzero(~repeat))
        if np.count_nonzero(repeat) < 2:
            raise ConfigurationError("Gamma-Gamma needs at least two customers with frequency > 0")
        x, m, w = x[repeat], m[repeat], w[repeat]
        if np.std(x) > 0 and np.std(m) > 0:
            self.frequency_spend_correlation = float(np.corrcoef(x, m)[0, 1])
        (x, m), w = _compress([x, m], w)
        self.n_customers = round(float(w.sum()))
        mean = float(np.average(m, weights=w))
        starts = [[1.0, 1.0, 1.0], [2.0, 3.0, mean], [5.0, 2.0, mean / 2]]
        self._fit(
            lambda P: self._ll_rows(P, x, m) @ w,
            float(w.sum()),
            starts,
            lambda par: self._grad(par, x, m, w),
        )
        return self

    def summary(self) -> dict[str, Any]:
        """Parameters and diagnostics, the exclusions and the frequency-spend correlation."""
        out = super().summary()
        if self.fit_result is not None:
            corr = self.frequency_spend_correlation
            out["excluded_one_time"] = self.excluded_one_time
            out["frequency_spend_correlation"] = None if math.isnan(corr) else corr
        return out

    def population_mean_spend(self) -> float:
        """E[M] = p v / (q - 1) (infinite when q <= 1)."""
        p, q, v = self._p()
        return p * v / (q - 1) if q > 1 else math.inf

    def conditional_expected_average_spend(self, frequency: Any, monetary_value: Any = None) -> Any:
        """E[M | x, m̄]: shrinks each customer's average toward the population mean."""
        import numpy as np

        x, m = self._inputs(frequency, monetary_value, "conditional_expected_average_spend")
        p, q, v = self._p()
        bad = np.flatnonzero((x > 0) & (m <= 0))
        if bad.size:
            raise ConfigurationError(
                f"monetary_value must be > 0 where frequency > 0: {rows_text(bad)}"
            )
        return np.where(x > 0, p * (v + x * m) / (p * x + q - 1), p * v / (q - 1))


# -- BG/BB ---------------------------------------------------------------------------------
class BetaGeoBetaBinomModel(_Model):
    """BG/BB (Fader, Hardie & Shang 2010) for discrete opportunities (one per period):
    ``frequency`` transactions, the last in period ``recency``, out of ``n_periods``.
    Parameters ``alpha, beta`` (transaction probability) and ``gamma, delta`` (dropout).

        m = BetaGeoBetaBinomModel().fit(frequency, recency, n_periods, weights=counts)
        m.conditional_expected_purchases(5, frequency, recency, n_periods)
    """

    PARAM_NAMES = ("alpha", "beta", "gamma", "delta")
    KIND = "bg_bb"

    @staticmethod
    def _ll_rows(P: Any, x: Any, tx: Any, n: Any) -> Any:
        import numpy as np
        from scipy.special import betaln

        al, be, ga, de = _cols(P, 4)
        base = -betaln(al, be) - betaln(ga, de)
        first = betaln(al + x, be + n - x) + betaln(ga, de + n) + base
        width = int(np.max(n - tx)) if x.size else 0
        if width == 0:
            return first
        i = np.arange(width)
        x3, tx3, n3 = x[:, None], tx[:, None], n[:, None]
        mask = i[None, :] < (n3 - tx3)
        al3, be3, ga3, de3 = (c[:, :, None] for c in (al, be, ga, de))
        terms = betaln(al3 + x3, be3 + tx3 - x3 + i) + betaln(ga3 + 1, de3 + tx3 + i)
        terms = np.where(mask[None, :, :], terms, -np.inf) + base[:, :, None]
        allterms = np.concatenate([first[:, :, None], terms], axis=2)
        return np.logaddexp.reduce(allterms, axis=2)

    @staticmethod
    def _inputs(frequency: Any, recency: Any, n_periods: Any, what: str) -> tuple[Any, Any, Any]:
        if recency is None and n_periods is None and is_table(frequency):
            table = frequency
            frequency = column(table, "frequency", what)
            recency = column(table, "recency", what)
            n_periods = column(table, "n_periods", what)
        x = as_float_array("frequency", frequency)
        tx = as_float_array("recency", recency, length=x.size)
        n = as_float_array("n_periods", n_periods, length=x.size)
        check_rfm(x, tx, n, discrete=True)
        return x, tx, n

    def fit(
        self,
        frequency: Any,
        recency: Any = None,
        n_periods: Any = None,
        *,
        weights: Any = None,
    ) -> BetaGeoBetaBinomModel:
        """Fit by maximum likelihood; ``weights`` counts customers sharing a row."""
        x, tx, n = self._inputs(frequency, recency, n_periods, "BetaGeoBetaBinomModel.fit")
        w = _weights(weights, x.size)
        (x, tx, n), w = _compress([x, tx, n], w)
        self.n_customers = round(float(w.sum()))
        starts = [[1.0, 1.0, 1.0, 1.0], [0.5, 0.5, 0.5, 2.0], [2.0, 1.0, 1.0, 5.0]]
        self._fit(lambda P: self._ll_rows(P, x, tx, n) @ w, float(w.sum()), starts, None)
        return self

    def _row_ll(self, x: Any, tx: Any, n: Any) -> Any:
        import numpy as np

        return self._ll_rows(np.array([self._p()]), x, tx, n)[0]

    def probability_alive(self, frequency: Any, recency: Any, n_periods: Any) -> Any:
        """P(alive in period n+1 | x, t_x, n) (FHS 2010 eq. 11; their Table 6)."""
        import numpy as np
        from scipy.special import betaln

        x, tx, n = self._inputs(frequency, recency, n_periods, "probability_alive")
        al, be, ga, de = self._p()
        log_top = betaln(al + x, be + n - x) - betaln(al, be) + betaln(ga, de + n + 1)
        log_top -= betaln(ga, de)
        return np.exp(log_top - self._row_ll(x, tx, n))

    def conditional_expected_purchases(
        self, m_periods: Any, frequency: Any, recency: Any, n_periods: Any
    ) -> Any:
        """E[X(n, n+m) | x, t_x, n]: expected transactions in the next ``m_periods`` periods."""
        import numpy as np
        from scipy.special import betaln, gammaln

        x, tx, n = self._inputs(frequency, recency, n_periods, "conditional_expected_purchases")
        m = _time("m_periods", m_periods)
        al, be, ga, de = self._p()
        log_head = betaln(al + x + 1, be + n - x) - betaln(al, be) - self._row_ll(x, tx, n)
        scale = de / (ga - 1) * np.exp(gammaln(ga + de) - gammaln(1 + de))
        diff = np.exp(gammaln(1 + de + n) - gammaln(ga + de + n)) - np.exp(
            gammaln(1 + de + n + m) - gammaln(ga + de + n + m)
        )
        return np.exp(log_head) * scale * diff

    def unconditional_expected_purchases(self, n_periods: Any) -> Any:
        """E[X(n)]: transactions of a random new customer in the first ``n_periods`` periods."""
        import numpy as np
        from scipy.special import gammaln

        al, be, ga, de = self._p()
        n = _time("n_periods", n_periods)
        ratio = np.exp(
            gammaln(ga + de) - gammaln(ga + de + n) + gammaln(1 + de + n) - gammaln(1 + de)
        )
        return al / (al + be) * de / (ga - 1) * (1 - ratio)

    def probability_of_purchases(self, n_periods: int, x: Any) -> Any:
        """P(X(n) = x): a random customer makes ``x`` transactions in ``n_periods`` periods."""
        import numpy as np
        from scipy.special import betaln, gammaln

        al, be, ga, de = self._p()
        n = int(n_periods)
        xs = np.atleast_1d(np.asarray(x, dtype=float))
        if np.any(xs < 0) or np.any(xs > n) or np.any(xs != np.round(xs)):
            raise ConfigurationError(f"x must be integers in 0..{n}, got {x!r}")

        def log_comb(a: Any, b: Any) -> Any:
            return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

        base = -betaln(al, be) - betaln(ga, de)
        out = []
        for k in xs:
            terms = [log_comb(n, k) + betaln(al + k, be + n - k) + betaln(ga, de + n) + base]
            for i in range(int(k), n):
                terms.append(
                    log_comb(i, k) + betaln(al + k, be + i - k) + betaln(ga + 1, de + i) + base
                )
            out.append(float(np.exp(np.logaddexp.reduce(terms))))
        result = np.array(out)
        return result if np.ndim(x) else result[0]


# -- lifetime value ------------------------------------------------------------------------
def customer_lifetime_value(
    transaction_model: BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel | BetaGeoBetaBinomModel,
    spend_model: GammaGammaModel,
    frequency: Any,
    recency: Any,
    T: Any,
    monetary_value: Any,
    *,
    periods: int,
    period_length: float,
    discount_rate: float,
) -> Any:
    """Discounted expected spend over ``periods`` periods of ``period_length`` time units each.

    The time unit is the one the transaction model was fitted in (weeks for CDNOW): give
    ``period_length=52/12`` for months on weekly data. Each period's *increment* in expected
    purchases is discounted by ``(1 + discount_rate) ** i``, then priced at the Gamma-Gamma
    expected average spend::

        clv = customer_lifetime_value(bgnbd, gg, f, r, T, m, periods=12,
                                      period_length=52 / 12, discount_rate=0.01)
    """
    import numpy as np

    if not isinstance(periods, int) or isinstance(periods, bool) or periods < 1:
        raise ConfigurationError(f"periods must be an integer >= 1, got {periods!r}")
    length = float(period_length)
    if not (math.isfinite(length) and length > 0):
        raise ConfigurationError(
            f"period_length must be > 0 (in the model's time unit), got {period_length!r}"
        )
    rate = float(discount_rate)
    if not (math.isfinite(rate) and rate > -1):
        raise ConfigurationError(f"discount_rate must be > -1, got {discount_rate!r}")
    if not isinstance(spend_model, GammaGammaModel):
        raise ConfigurationError("spend_model must be a GammaGammaModel")
    x = as_float_array("frequency", frequency)
    spend = spend_model.conditional_expected_average_spend(x, monetary_value)
    total = np.zeros(x.size)
    previous = np.zeros(x.size)
    for i in range(1, periods + 1):
        expected = transaction_model.conditional_expected_purchases(i * length, x, recency, T)
        total += (expected - previous) / (1 + rate) ** i
        previous = expected
    if np.any(~np.isfinite(total)):
        warnings.warn("some lifetime values are not finite", ConvergenceWarning, stacklevel=2)
    return total * spend
