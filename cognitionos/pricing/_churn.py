"""Churn prediction: a scikit-learn pipeline over typed columns, calibrated, cross-validated.

    model = ChurnModel(estimator="logistic").fit(table, target="Churn", positive="Yes")
    model.predict_proba(table)                       # calibrated P(churn)
    report = ChurnModel().cross_validate(table, target="Churn", positive="Yes", folds=5)
    report.auc_mean, report.calibration_error

Everything that learns from data (imputation, scaling, one-hot levels, the classifier and its
calibrator) sits inside one pipeline, so cross-validation refits all of it on each training
fold: no statistic of a test fold leaks into its own prediction. ``table`` is a mapping of
columns (a dict of lists, a DataFrame, an :class:`RFMSummary`).
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._inputs import column

__all__ = ["ChurnModel", "ChurnReport", "RevenueAtRisk", "revenue_at_risk"]

ESTIMATORS = ("logistic", "gradient_boosting")
_MAGIC = "cognitionos.pricing.churn"
_FORMAT = 1


@attrs.frozen(slots=True, eq=False)
class ChurnReport:
    """Cross-validated quality: ROC AUC per fold, Brier score, expected calibration error."""

    auc_per_fold: tuple[float, ...]
    auc_mean: float
    brier: float
    calibration_error: float
    out_of_fold: Any
    folds: int
    seed: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data (without the out-of-fold probabilities)."""
        return {
            "auc_per_fold": list(self.auc_per_fold),
            "auc_mean": self.auc_mean,
            "brier": self.brier,
            "calibration_error": self.calibration_error,
            "folds": self.folds,
            "seed": self.seed,
        }


def _single_thread() -> Any:
    """BLAS/OpenMP threads fight over small matrices (and other tenants' cores): use one."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _to_float(x: Any) -> Any:
    import numpy as np

    return np.asarray(x, dtype=float)


def _numeric_column(values: Any) -> Any | None:
    """The column as floats (blanks -> NaN) if at least 95% of it parses, else None."""
    import numpy as np

    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        return arr.astype(float)
    out = np.empty(arr.size)
    bad = 0
    for i, v in enumerate(arr.tolist()):
        text = str(v).strip()
        if text == "" or text.lower() in ("nan", "none", "null"):
            out[i] = np.nan
            continue
        try:
            out[i] = float(text)
        except ValueError:
            bad += 1
            if bad > 0.05 * arr.size:
                return None
            out[i] = np.nan
    return out if bad <= 0.05 * arr.size else None


def expected_calibration_error(y: Any, prob: Any, bins: int = 10) -> float:
    """Weighted mean |observed rate - mean predicted| over equal-width probability bins."""
    import numpy as np

    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += mask.mean() * abs(float(y[mask].mean()) - float(prob[mask].mean()))
    return total


class ChurnModel:
    """Calibrated churn classifier over numeric and categorical columns.

    ``estimator`` is ``"logistic"`` (default) or ``"gradient_boosting"``; ``calibration`` is
    ``"isotonic"``, ``"sigmoid"`` or ``None``. Columns are typed automatically (numeric when
    95% of values parse as numbers) unless ``numeric`` / ``categorical`` name them.
    """

    def __init__(
        self,
        *,
        estimator: str = "logistic",
        calibration: str | None = "sigmoid",
        numeric: Sequence[str] | None = None,
        categorical: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        seed: int = 42,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ConfigurationError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if calibration not in ("isotonic", "sigmoid", None):
            raise ConfigurationError("calibration must be 'isotonic', 'sigmoid' or None")
        self.estimator = estimator
        self.calibration = calibration
        self.numeric = list(numeric) if numeric is not None else None
        self.categorical = list(categorical) if categorical is not None else None
        self.exclude = list(exclude)
        self.seed = seed
        self.pipeline: Any = None
        self.columns: tuple[list[str], list[str]] | None = None

    # -- data ------------------------------------------------------------------------------
    def _target(self, table: Any, target: Any, positive: Any) -> Any:
        import numpy as np

        if isinstance(target, str):
            raw = np.asarray(column(table, target, "churn data"))
        else:
            raw = np.asarray(target)
            target = "target"
            first = next(iter(table.keys()), None)
            rows = np.asarray(table[first]).shape[0] if first is not None else 0
            if raw.ndim != 1 or raw.size != rows:
                raise ConfigurationError(f"target array must have one label per row ({rows})")
        if positive is None:
            try:
                y = raw.astype(float)
            except ValueError:
                raise ConfigurationError(
                    f"target {target!r} is not 0/1: pass positive= (the churned label)"
                ) from None
            if not np.all(np.isin(y, (0.0, 1.0))):
                raise ConfigurationError(f"target {target!r} must be 0/1 or give positive=")
            y = y.astype(int)
        else:
            y = (raw == positive).astype(int)
        if y.min() == y.max():
            raise ConfigurationError(f"target {target!r} has a single class: nothing to learn")
        return y

    def _type_columns(self, table: Any, target: Any) -> tuple[list[str], list[str]]:
        skip = {*self.exclude, target} if isinstance(target, str) else set(self.exclude)
        names = [str(k) for k in table.keys() if k not in skip]  # noqa: SIM118 (RFMSummary)
        if self.numeric is not None or self.categorical is not None:
            return list(self.numeric or []), list(self.categorical or [])
        numeric: list[str] = []
        categorical: list[str] = []
        for name in names:
            (numeric if _numeric_column(table[name]) is not None else categorical).append(name)
        return numeric, categorical

    def _matrix(self, table: Any) -> Any:
        import numpy as np

        if self.columns is None:
            raise ConfigurationError("ChurnModel is not fitted: call fit() first")
        numeric, categorical = self.columns
        cols = []
        for name in numeric:
            values = _numeric_column(column(table, name, "churn data"))
            if values is None:
                raise ConfigurationError(f"column {name!r} is not numeric")
            cols.append(values.astype(object))
        for name in categorical:
            cols.append(np.asarray(column(table, name, "churn data")).astype(str).astype(object))
        if not cols:
            raise ConfigurationError("no feature columns")
        return np.column_stack(cols)

    def _build(self) -> Any:
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

        assert self.columns is not None
        numeric, categorical = self.columns
        k = len(numeric)
        parts = []
        if numeric:
            parts.append(
                (
                    "numeric",
                    Pipeline(
                        [
                            ("float", FunctionTransformer(_to_float)),
                            ("impute", SimpleImputer(strategy="median")),
                            ("scale", StandardScaler()),
                        ]
                    ),
                    list(range(k)),
                )
            )
        if categorical:
            parts.append(
                (
                    "categorical",
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                    list(range(k, k + len(categorical))),
                )
            )
        if self.estimator == "logistic":
            clf: Any = LogisticRegression(max_iter=5000, C=1.0)
        else:
            clf = HistGradientBoostingClassifier(
                random_state=self.seed, learning_rate=0.05, max_iter=200, max_leaf_nodes=15
            )
        pipe = Pipeline([("prep", ColumnTransformer(parts)), ("clf", clf)])
        if self.calibration is None:
            return pipe
        return CalibratedClassifierCV(pipe, method=self.calibration, cv=3)

    # -- API -------------------------------------------------------------------------------
    def fit(self, table: Any, target: Any, *, positive: Any = None) -> ChurnModel:
        """Fit the whole pipeline on ``table``; ``positive`` is the churned label if not 0/1.

        ``target`` names a column of ``table``, or is an array of labels (one per row), e.g.
        "no purchase in the holdout" next to an :class:`RFMSummary`.
        """
        y = self._target(table, target, positive)
        self.columns = self._type_columns(table, target)
        X = self._matrix(table)
        with _single_thread():
            self.pipeline = self._build().fit(X, y)
        return self

    def predict_proba(self, table: Any) -> Any:
        """Calibrated churn probability per row."""
        if self.pipeline is None:
            raise ConfigurationError("ChurnModel is not fitted: call fit() first")
        with _single_thread():
            return self.pipeline.predict_proba(self._matrix(table))[:, 1]

    def cross_validate(
        self,
        table: Any,
        target: Any,
        *,
        positive: Any = None,
        folds: int = 5,
        seed: int = 42,
        on_fold: Callable[[int], None] | None = None,
    ) -> ChurnReport:
        """Stratified k-fold: the pipeline is refitted from scratch on each training fold.

        ``on_fold(i)`` is called after fold ``i`` (1-based) is scored, e.g. for progress."""
        import numpy as np
        from sklearn.base import clone
        from sklearn.metrics import brier_score_loss, roc_auc_score
        from sklearn.model_selection import StratifiedKFold

        y = self._target(table, target, positive)
        self.columns = self._type_columns(table, target)
        X = self._matrix(table)
        template = self._build()
        oof = np.empty(y.size)
        aucs = []
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)
        with _single_thread():
            for train, test in splits:
                fitted = clone(template).fit(X[train], y[train])
                oof[test] = fitted.predict_proba(X[test])[:, 1]
                aucs.append(float(roc_auc_score(y[test], oof[test])))
                if on_fold is not None:
                    on_fold(len(aucs))
        return ChurnReport(
            auc_per_fold=tuple(aucs),
            auc_mean=float(np.mean(aucs)),
            brier=float(brier_score_loss(y, oof)),
            calibration_error=expected_calibration_error(y, oof),
            out_of_fold=oof,
            folds=folds,
            seed=seed,
        )

    def permutation_importance(
        self, table: Any, target: Any, *, positive: Any = None, repeats: int = 5
    ) -> dict[str, float]:
        """Mean drop in ROC AUC when each column is shuffled (on the data given)."""
        from sklearn.inspection import permutation_importance

        if self.pipeline is None or self.columns is None:
            raise ConfigurationError("ChurnModel is not fitted: call fit() first")
        y = self._target(table, target, positive)
        with _single_thread():
            result = permutation_importance(
                self.pipeline,
                self._matrix(table),
                y,
                scoring="roc_auc",
                n_repeats=repeats,
                random_state=self.seed,
            )
        names = [*self.columns[0], *self.columns[1]]
        return dict(zip(names, (float(v) for v in result.importances_mean), strict=True))

    def save(self, path: str | Path) -> None:
        """Pickle the fitted pipeline with the library versions it needs to load."""
        import sklearn

        from cognitionos import __version__

        if self.pipeline is None:
            raise ConfigurationError("ChurnModel is not fitted: nothing to save")
        payload = {
            "format": _MAGIC,
            "version": _FORMAT,
            "cognitionos": __version__,
            "sklearn": sklearn.__version__,
            "model": self,
        }
        Path(path).write_bytes(pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL))

    @classmethod
    def load(cls, path: str | Path) -> ChurnModel:
        """Load a model saved by :meth:`save` (trusted files only: this unpickles).

        Refuses files written by another scikit-learn version (pickles do not carry across).
        """
        import sklearn

        try:
            payload = pickle.loads(Path(path).read_bytes())
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            raise ConfigurationError(f"{path}: not a saved ChurnModel ({exc})") from None
        if not isinstance(payload, dict) or payload.get("format") != _MAGIC:
            raise ConfigurationError(f"{path}: not a saved ChurnModel")
        if payload.get("version", math.inf) > _FORMAT:
            raise ConfigurationError(f"{path}: written by a newer cognitionos")
        if payload.get("sklearn") != sklearn.__version__:
            raise ConfigurationError(
                f"{path}: saved with scikit-learn {payload.get('sklearn')}, this is "
                f"{sklearn.__version__}; retrain the model"
            )
        model = payload["model"]
        if not isinstance(model, cls):
            raise ConfigurationError(f"{path}: not a saved ChurnModel")
        return model


@attrs.frozen(slots=True, eq=False)
class RevenueAtRisk:
    """Expected lifetime value lost to churn: ``churn_probability * clv`` per customer.

    ``rows`` are sorted by value at risk, largest first. Customers found in only one input
    are not dropped silently: ``only_churn`` / ``only_clv`` list them.
    """

    rows: tuple[dict[str, Any], ...]
    total_clv: float
    total_at_risk: float
    only_churn: tuple[Any, ...]
    only_clv: tuple[Any, ...]

    @property
    def share_at_risk(self) -> float:
        """Value at risk as a share of the total lifetime value (NaN when that is 0)."""
        return self.total_at_risk / self.total_clv if self.total_clv else math.nan

    def as_dict(self, top: int | None = None) -> dict[str, Any]:
        """Totals, the unmatched customers and the ``top`` rows (all when None)."""
        share = self.share_at_risk
        return {
            "customers": len(self.rows),
            "total_clv": self.total_clv,
            "total_at_risk": self.total_at_risk,
            "share_at_risk": None if math.isnan(share) else share,
            "only_in_churn": list(self.only_churn),
            "only_in_clv": list(self.only_clv),
            "rows": list(self.rows if top is None else self.rows[:top]),
        }


def _keyed(table: Any, key: str, name: str, what: str) -> dict[Any, float]:
    import numpy as np

    from cognitionos.pricing._inputs import as_float_array, rows_text

    keys = [k.item() if hasattr(k, "item") else k for k in np.asarray(column(table, key, what))]
    values = as_float_array(f"{what} column {name!r}", column(table, name, what), length=len(keys))
    seen: dict[Any, float] = {}
    dupes = []
    for i, k in enumerate(keys):
        if k in seen:
            dupes.append(i)
        seen[k] = float(values[i])
    if dupes:
        raise ConfigurationError(f"{what}: customer {key!r} repeats at {rows_text(dupes)}")
    return seen


def revenue_at_risk(
    churn: Any,
    clv: Any,
    *,
    customer: str = "customer",
    probability: str = "churn_probability",
    value: str = "clv",
) -> RevenueAtRisk:
    """Join churn probabilities with lifetime values on ``customer`` and rank the value at
    risk. ``churn`` and ``clv`` are tables (dicts of columns, DataFrames)::

        risk = revenue_at_risk({"customer": ids, "churn_probability": model.predict_proba(t)},
                               {"customer": ids, "clv": customer_lifetime_value(...)})
        risk.total_at_risk, risk.rows[:10]
    """
    from cognitionos.pricing._inputs import rows_text

    p = _keyed(churn, customer, probability, "churn")
    v = _keyed(clv, customer, value, "clv")
    bad = [i for i, x in enumerate(p.values()) if not 0.0 <= x <= 1.0]
    if bad:
        raise ConfigurationError(f"churn: {probability!r} must be in [0, 1]: {rows_text(bad)}")
    bad = [i for i, x in enumerate(v.values()) if x < 0]
    if bad:
        raise ConfigurationError(f"clv: {value!r} must be >= 0: {rows_text(bad)}")
    both = [k for k in p if k in v]
    rows = sorted(
        (
            {
                "customer": k,
                "churn_probability": p[k],
                "clv": v[k],
                "at_risk": p[k] * v[k],
            }
            for k in both
        ),
        key=lambda r: -r["at_risk"],
    )
    return RevenueAtRisk(
        rows=tuple(rows),
        total_clv=float(sum(r["clv"] for r in rows)),
        total_at_risk=float(sum(r["at_risk"] for r in rows)),
        only_churn=tuple(k for k in p if k not in v),
        only_clv=tuple(k for k in v if k not in p),
    )
