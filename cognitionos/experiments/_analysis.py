"""``analyze``: per-arm sufficient statistics in, effects, intervals, p-values and a decision out.

The whole (metrics x arms) grid is computed at once with numpy; Python loops only build the
result objects. Every comparison is a treatment arm against the control arm of the same
metric. numpy/scipy are imported on the first call, never at import time.

Undefined statistics are never NaN in the results: they are ``None`` and the comparison
carries a warning naming the reason (``empty_arm``, ``too_few_units``, ``zero_variance``,
``zero_denominator``, ``control_mean_near_zero``), and the decision ignores them explicitly.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection, Iterable, Mapping, Sequence
from itertools import count, repeat
from typing import Any, Literal

import attrs

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.experiments import _kernels as K
from cognitionos.experiments._corrections import _method as _correction_name
from cognitionos.experiments._corrections import adjust_pvalues, adjusted_alpha
from cognitionos.experiments._summary import RATIO_PRE_FIELDS, ArmSummary

__all__ = [
    "AnalysisResult",
    "ArmResult",
    "Decision",
    "DecisionRules",
    "GaussianPrior",
    "MetricResult",
    "PhaseSRM",
    "PhaseUnits",
    "analyze",
    "srm_check",
    "srm_sequential",
]

Method = Literal["frequentist", "bayesian", "sequential", "msprt"]
_METHODS = ("frequentist", "bayesian", "sequential", "msprt")

# warning flags, in the order they are reported
_EMPTY, _FEW, _ZERO_DEN, _ZERO_VAR, _CONTROL_ZERO, _IMBALANCE = 1, 2, 4, 8, 16, 32
_FLAG_NAMES = (
    (_EMPTY, "empty_arm"),
    (_FEW, "too_few_units"),
    (_ZERO_DEN, "zero_denominator"),
    (_ZERO_VAR, "zero_variance"),
    (_CONTROL_ZERO, "control_mean_near_zero"),
    (_IMBALANCE, "pre_period_imbalance"),
)
_INVALID = _EMPTY | _FEW | _ZERO_DEN | _ZERO_VAR


@attrs.frozen(slots=True)
class GaussianPrior:
    """Normal prior on the effect (on the ``difference`` scale) for the Bayesian method.

    ``proper=False`` (the default) is the flat prior: the posterior is the likelihood.
    """

    mean: float = 0.0
    variance: float = 1.0
    proper: bool = False

    def __attrs_post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.variance) and self.variance > 0):
            raise ConfigurationError(
                f"prior mean={self.mean!r} must be finite and variance={self.variance!r} > 0"
            )


@attrs.frozen(slots=True)
class DecisionRules:
    """The explicit rule set that turns results into a :class:`Decision`.

    Rules, applied in this order:

    1. a sample-ratio mismatch (``srm_p_value < srm_threshold``) makes the result ``invalid``
       when ``block_on_srm``;
    2. an arm *wins* on the ``primary`` metric when it is better under the method: adjusted
       p-value below alpha (frequentist, sequential) or chance to win at least
       ``min_chance_to_win`` and expected loss at most ``max_expected_loss`` (Bayesian);
    3. a winning arm is *blocked* by a guardrail metric that regresses: with margin ``m``
       (a relative fraction, e.g. 0.01 = 1 %), non-inferiority must be shown: the harmful
       end of the guardrail's relative CI is above -m (Bayesian: P(effect < -m) <=
       1 - min_chance_to_win). With margin ``None`` the guardrail only blocks when it is
       significantly worse. A guardrail that cannot be evaluated blocks too;
    4. ``ship`` the unblocked winner with the largest primary effect; else ``keep_control``
       when every evaluable arm is significantly worse on the primary metric; else
       ``continue``.
    """

    primary: str | None = None
    guardrails: Mapping[str, float | None] = attrs.field(factory=dict)
    min_chance_to_win: float = 0.95
    max_expected_loss: float | None = None
    block_on_srm: bool = True


@attrs.frozen(slots=True)
class Decision:
    """What to do: ``ship`` (with ``arm``), ``keep_control``, ``continue`` or ``invalid``."""

    action: Literal["ship", "keep_control", "continue", "invalid"]
    arm: str | None
    reasons: tuple[str, ...]


_ARM_FIELDS = (
    "metric",
    "arm",
    "control",
    "kind",
    "method",
    "n",
    "control_n",
    "mean",
    "control_mean",
    "effect_abs",
    "effect_rel",
    "ci",
    "ci_rel",
    "std_error",
    "std_error_rel",
    "p_value",
    "p_value_adjusted",
    "chance_to_win",
    "expected_loss",
    "expected_loss_scale",
    "significant",
    "direction",
    "cuped_theta",
    "ci_level",
    "inverse",
    "warnings",
    "cuped_coefficients",
)


class ArmResult(tuple):  # type: ignore[type-arg]
    """One treatment arm compared with the control on one metric.

    ``effect_abs`` is treatment mean - control mean (CUPED-adjusted when CUPED applied),
    ``effect_rel`` that difference over |control mean|. ``ci`` is the interval of the
    absolute effect and ``ci_rel`` of the relative one, both at the multiplicity-adjusted
    level. ``p_value`` is raw and ``p_value_adjusted`` corrected; both are for the
    ``difference`` scale chosen in :func:`analyze` and ``None`` for the Bayesian method,
    where ``chance_to_win`` and ``expected_loss`` are filled instead. Anything that cannot be
    computed is ``None``, with the reason in ``warnings``.

    The values live in one immutable row: an ``ArmResult`` is a tuple (in the order of
    :meth:`to_dict`), so :func:`analyze` creates thousands of them in one C-level pass with
    no Python call per comparison; read it through the named properties.
    """

    __slots__ = ()

    @property
    def metric(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def arm(self) -> str:
        return self[1]  # type: ignore[no-any-return]

    @property
    def control(self) -> str:
        return self[2]  # type: ignore[no-any-return]

    @property
    def kind(self) -> str:
        return self[3]  # type: ignore[no-any-return]

    @property
    def method(self) -> str:
        return self[4]  # type: ignore[no-any-return]

    @property
    def n(self) -> int:
        return self[5]  # type: ignore[no-any-return]

    @property
    def control_n(self) -> int:
        return self[6]  # type: ignore[no-any-return]

    @property
    def mean(self) -> float | None:
        return self[7]  # type: ignore[no-any-return]

    @property
    def control_mean(self) -> float | None:
        return self[8]  # type: ignore[no-any-return]

    @property
    def effect_abs(self) -> float | None:
        return self[9]  # type: ignore[no-any-return]

    @property
    def effect_rel(self) -> float | None:
        return self[10]  # type: ignore[no-any-return]

    @property
    def ci(self) -> tuple[float, float] | None:
        return self[11]  # type: ignore[no-any-return]

    @property
    def ci_rel(self) -> tuple[float, float] | None:
        return self[12]  # type: ignore[no-any-return]

    @property
    def std_error(self) -> float | None:
        return self[13]  # type: ignore[no-any-return]

    @property
    def std_error_rel(self) -> float | None:
        return self[14]  # type: ignore[no-any-return]

    @property
    def p_value(self) -> float | None:
        return self[15]  # type: ignore[no-any-return]

    @property
    def p_value_adjusted(self) -> float | None:
        return self[16]  # type: ignore[no-any-return]

    @property
    def chance_to_win(self) -> float | None:
        return self[17]  # type: ignore[no-any-return]

    @property
    def expected_loss(self) -> float | None:
        return self[18]  # type: ignore[no-any-return]

    @property
    def expected_loss_scale(self) -> str | None:
        return self[19]  # type: ignore[no-any-return]

    @property
    def significant(self) -> bool:
        return self[20]  # type: ignore[no-any-return]

    @property
    def direction(self) -> Literal["better", "worse", "none"]:
        return self[21]  # type: ignore[no-any-return]

    @property
    def cuped_theta(self) -> float | None:
        return self[22]  # type: ignore[no-any-return]

    @property
    def ci_level(self) -> float:
        return self[23]  # type: ignore[no-any-return]

    @property
    def inverse(self) -> bool:
        return self[24]  # type: ignore[no-any-return]

    @property
    def warnings(self) -> tuple[str, ...]:
        return self[25]  # type: ignore[no-any-return]

    @property
    def cuped_coefficients(self) -> tuple[float, ...] | None:
        """CUPED coefficients (one per covariate) when CUPED applied, else None."""
        return self[26]  # type: ignore[no-any-return]

    @property
    def summary(self) -> str:
        """One plain-language sentence (or three) about this comparison."""
        return _summarize(self)

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (JSON-ready apart from tuples)."""
        return dict(zip(_ARM_FIELDS, self, strict=True))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in zip(_ARM_FIELDS, self, strict=True))
        return f"ArmResult({inner})"


class MetricResult(tuple):  # type: ignore[type-arg]
    """All comparisons of one metric: ``metric``, ``kind``, ``control``, ``arms`` (the
    :class:`ArmResult` of each treatment arm) and ``inverse`` (lower is better).

    Like :class:`ArmResult` an immutable row (a tuple in that field order), so
    :func:`analyze` builds one per metric without a Python call each.
    """

    __slots__ = ()

    def __new__(
        cls, metric: str, kind: str, control: str, arms: tuple[ArmResult, ...], inverse: bool
    ) -> MetricResult:
        return tuple.__new__(cls, (metric, kind, control, tuple(arms), bool(inverse)))

    @property
    def metric(self) -> str:
        return self[0]  # type: ignore[no-any-return]

    @property
    def kind(self) -> str:
        return self[1]  # type: ignore[no-any-return]

    @property
    def control(self) -> str:
        return self[2]  # type: ignore[no-any-return]

    @property
    def arms(self) -> tuple[ArmResult, ...]:
        return self[3]  # type: ignore[no-any-return]

    @property
    def inverse(self) -> bool:
        return self[4]  # type: ignore[no-any-return]

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return (
            f"MetricResult(metric={self[0]!r}, kind={self[1]!r}, control={self[2]!r}, "
            f"arms={self[3]!r}, inverse={self[4]!r})"
        )


@attrs.frozen(slots=True)
class PhaseUnits:
    """Input of the per-phase SRM check: the weights a phase ran with (arm -> share) and the
    units first exposed to each arm during it. ``start`` (Unix seconds) is only reported."""

    weights: Mapping[str, float]
    units: Mapping[str, int]
    start: float | None = None


@attrs.frozen(slots=True)
class PhaseSRM:
    """SRM check of one phase: ``p_value`` is None when the phase has fewer units than the
    minimum-N gate (``srm_min_units``)."""

    phase: int
    start: float | None
    weights: Mapping[str, float]
    units: Mapping[str, int]
    p_value: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "start": self.start,
            "weights": dict(self.weights),
            "units": dict(self.units),
            "p_value": self.p_value,
        }


@attrs.frozen(slots=True)
class AnalysisResult:
    """Result of :func:`analyze`: comparisons, SRM check and the decision.

    ``arms`` lists every comparison (metric by metric, treatment arms in input order);
    ``metric(name)`` and ``arm(metric, arm)`` look one up.
    """

    method: str
    alpha: float
    difference: str
    correction: str
    correction_scope: str
    control: str
    arms: tuple[ArmResult, ...]
    metrics: tuple[MetricResult, ...]
    units: Mapping[str, int]
    srm_p_value: float | None
    srm_detected: bool
    decision: Decision
    warnings: tuple[str, ...]
    srm_phases: tuple[PhaseSRM, ...] = ()

    def metric(self, name: str) -> MetricResult:
        """The comparisons of metric ``name``."""
        for m in self.metrics:
            if m.metric == name:
                return m
        raise ConfigurationError(f"metric {name!r} is not in this result")

    def arm(self, metric: str, arm: str) -> ArmResult:
        """The comparison of ``arm`` against the control on ``metric``."""
        for a in self.metric(metric).arms:
            if a.arm == arm:
                return a
        raise ConfigurationError(f"arm {arm!r} is not a treatment arm of metric {metric!r}")

    @property
    def summary(self) -> str:
        """Plain-language summary: the decision, the SRM check and each comparison."""
        lines = [
            f"Decision: {self.decision.action}"
            + (f" {self.decision.arm}" if self.decision.arm else "")
            + (f" ({'; '.join(self.decision.reasons)})" if self.decision.reasons else "")
            + "."
        ]
        if self.srm_p_value is None:
            lines.append("Sample ratio not checked (too few units).")
        else:
            verdict = "MISMATCH: do not trust these results" if self.srm_detected else "ok"
            where = f" (worst of {len(self.srm_phases)} phases)" if self.srm_phases else ""
            lines.append(f"Sample ratio check{where}: p = {_fmt_p(self.srm_p_value)} ({verdict}).")
        lines.extend(a.summary for a in self.arms)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the whole result."""
        return {
            "method": self.method,
            "alpha": self.alpha,
            "difference": self.difference,
            "correction": self.correction,
            "correction_scope": self.correction_scope,
            "control": self.control,
            "units": dict(self.units),
            "srm_p_value": self.srm_p_value,
            "srm_detected": self.srm_detected,
            "srm_phases": [p.to_dict() for p in self.srm_phases],
            "decision": attrs.asdict(self.decision),
            "warnings": list(self.warnings),
            "arms": [a.to_dict() for a in self.arms],
        }


# --- input --------------------------------------------------------------------------------


_FIELD_GETTERS = tuple(
    map(operator.attrgetter, (
        "n", "sum", "sum_sq", "pre_sum", "pre_sum_sq", "cross_sum", "denom_sum", "denom_sum_sq",
        "num_denom_sum",
    ))
)  # fmt: skip
_NFIELDS = 9
_METRIC = operator.attrgetter("metric")
_ARM = operator.attrgetter("arm")
_KIND = operator.attrgetter("kind")
_COVS = operator.attrgetter("covariate_sums")
_RATIO_PRE = operator.attrgetter("ratio_pre")


def _grid(
    np: Any, summaries: Iterable[ArmSummary], control: str | None
) -> tuple[list[str], list[str], list[str], Any, Any, dict[int, tuple[Any, Any, Any]], Any]:
    """Index the summaries: metric and arm names (control first), kinds, a data cube
    (field x metric x arm; summaries of the same cell are added, as ``merge`` does), the
    mask of cells present, the several-covariate CUPED blocks and the ratio-CUPED sums
    (``ratio_pre`` as (6 x metric x arm, mask of cells that have them), or None).

    Built column by column (C-level ``map`` over the summaries, no per-summary Python
    body), which is most of the fixed cost of a large ``analyze`` call.
    """
    items = summaries if isinstance(summaries, (list, tuple)) else list(summaries)
    if not all(map(isinstance, items, repeat(ArmSummary))):
        bad = next(s for s in items if not isinstance(s, ArmSummary))
        raise ConfigurationError(f"analyze expects ArmSummary objects, got {type(bad).__name__}")
    if not items:
        raise ConfigurationError("analyze needs at least one ArmSummary")
    metric_of = list(map(_METRIC, items))
    arm_of = list(map(_ARM, items))
    kind_of = list(map(_KIND, items))
    metrics = dict(zip(dict.fromkeys(metric_of), count()))
    arms = dict(zip(dict.fromkeys(arm_of), count()))
    m_idx = list(map(metrics.__getitem__, metric_of))
    a_idx = list(map(arms.__getitem__, arm_of))
    kind_by_metric = dict(zip(metric_of, kind_of, strict=True))
    if list(map(kind_by_metric.__getitem__, metric_of)) != kind_of:
        first: dict[str, str] = {}
        for s in items:
            k0 = first.setdefault(s.metric, s.kind)
            if k0 != s.kind:
                raise ConfigurationError(
                    f"metric {s.metric!r} has arms of different kinds: {k0!r} "
                    f"and {s.kind!r} (arm {s.arm!r})"
                )
    kinds = list(map(kind_by_metric.__getitem__, metrics))
    covs = (
        [
            (m, a, s.covariate_sums, s.covariate_products, s.covariate_cross)
            for s, m, a in zip(items, m_idx, a_idx, strict=True)
            if s.covariate_sums
        ]
        if any(map(_COVS, items))
        else []
    )
    arm_names = list(arms)
    if control is None:
        control = arm_names[0]
    elif control not in arms:
        raise ConfigurationError(f"control arm {control!r} is not among the arms {arm_names}")
    if len(arm_names) < 2:
        raise ConfigurationError(f"analyze needs at least two arms, got {arm_names}")
    metric_names = list(metrics)
    # one pass per field: no tuple per summary. The denominator sums (the last three
    # fields) mean something for ratio metrics only: without one they stay 0, unread
    fields = _FIELD_GETTERS if "ratio" in kinds else _FIELD_GETTERS[:6]
    values_t = np.zeros((_NFIELDS, len(items)))
    for j, field in enumerate(fields):
        values_t[j] = np.fromiter(map(field, items), dtype=float, count=len(items))
    values = values_t.T
    idx = np.empty((len(items), 2), dtype=np.intp)
    idx[:, 0] = m_idx
    idx[:, 1] = a_idx
    _check_values(np, values, idx, metric_names, arm_names, kinds)
    # control first, the others in input order
    order = [arms[control]] + [arms[a] for a in arm_names if a != control]
    remap = np.empty(len(order), dtype=np.intp)
    remap[order] = np.arange(len(order))
    cols = remap[idx[:, 1]]
    flat = idx[:, 0] * len(arm_names) + cols
    n_cells = len(metric_names) * len(arm_names)
    if len(items) <= n_cells and np.bincount(flat, minlength=n_cells).max() <= 1:
        # one summary per cell: plain assignment
        cube = np.zeros((_NFIELDS, n_cells))
        cube[:, flat] = values_t
    else:  # summaries of the same cell add up
        cube = np.zeros((_NFIELDS, n_cells))
        np.add.at(cube, (slice(None), flat), values_t)
    cube = cube.reshape(_NFIELDS, len(metric_names), len(arm_names))
    present = np.zeros(n_cells, dtype=bool)
    present[flat] = True
    present = present.reshape(len(metric_names), len(arm_names))
    multi = _covariate_blocks(np, covs, remap, len(metric_names), len(arm_names), metric_names)
    if any(map(_RATIO_PRE, items)):
        rp = np.zeros((len(RATIO_PRE_FIELDS), n_cells))
        rp_has = np.zeros(n_cells, dtype=bool)
        for i, summary in enumerate(items):
            if summary.ratio_pre:
                rp[:, flat[i]] += summary.ratio_pre
                rp_has[flat[i]] = True
        ratio_pre = (rp.reshape(-1, *present.shape), rp_has.reshape(present.shape))
    else:
        ratio_pre = None
    return metric_names, [arm_names[i] for i in order], kinds, cube, present, multi, ratio_pre


def _kind_mask(np: Any, kinds: list[str], kind: str) -> Any:
    """Boolean array: which metrics are of ``kind`` (no per-metric work when none is)."""
    if kind not in kinds:
        return np.zeros(len(kinds), dtype=bool)
    return np.fromiter(map(kind.__eq__, kinds), dtype=bool, count=len(kinds))


def _check_values(
    np: Any, values: Any, idx: Any, metrics: list[str], arms: list[str], kinds: list[str]
) -> None:
    row_kind = idx[:, 0]
    is_bin = _kind_mask(np, kinds, "binomial")[row_kind]
    is_count = _kind_mask(np, kinds, "count")[row_kind]
    n, total = values[:, 0], values[:, 1]
    checks = (
        (is_bin & ((total < 0) | (total > n)), "binomial: conversions outside 0..n"),
        (is_count & (total < 0), "count: negative total"),
        ((values[:, [2, 4, 7]] < 0).any(axis=1), "a sum of squares is negative"),
    )
    for bad, what in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            m, a = idx[i]
            raise ConfigurationError(
                f"metric {metrics[m]!r}, arm {arms[a]!r}: {what} (n={n[i]:g}, sum={total[i]:g})"
            )


# --- the computation -------------------------------------------------------------------------


def analyze(
    summaries: Iterable[ArmSummary],
    method: str = "frequentist",
    *,
    alpha: float = 0.05,
    correction: str | None = "holm",
    correction_scope: str = "all",
    cuped: bool = True,
    control: str | None = None,
    difference: str = "absolute",
    test: str = "welch",
    sequential_tuning: float = 5000.0,
    msprt_tau: float | None = None,
    priors: Mapping[str, GaussianPrior] | None = None,
    binomial_exact: bool = True,
    relative_interval: str = "delta",
    cuped_ridge: float = 0.0,
    balance_threshold: float = 0.001,
    weights: Mapping[str, float] | None = None,
    units: Mapping[str, int] | None = None,
    srm_threshold: float = 0.001,
    srm_min_units: int = 100,
    srm_method: str = "chi2",
    inverse: Collection[str] = (),
    rules: DecisionRules | None = None,
    phases: Sequence[PhaseUnits] | None = None,
) -> AnalysisResult:
    """Compare every arm with the control on every metric, check SRM, decide.

    >>> from cognitionos.experiments import ArmSummary, analyze
    >>> r = analyze([ArmSummary("A", "cv", n=1000, sum=100, sum_sq=100, kind="binomial"),
    ...              ArmSummary("B", "cv", n=1000, sum=130, sum_sq=130, kind="binomial")])
    >>> round(r.arms[0].effect_abs, 3), r.arms[0].p_value < 0.05
    (0.03, True)

    ``method``: ``"frequentist"`` (Welch t-test, or z-test with ``test="z"``),
    ``"sequential"`` (gbstats' asymptotic confidence sequence tuned at
    ``sequential_tuning`` units; always-valid), ``"msprt"`` (mixture SPRT with prior scale
    ``msprt_tau`` on the difference scale; ``None`` picks the same tuning as
    ``"sequential"``) or ``"bayesian"`` (Gaussian on the difference scale, exact
    Beta-Binomial chance to win and expected loss for binomial metrics when
    ``binomial_exact``).

    ``difference`` (``"absolute"`` or ``"relative"``) picks the scale of the p-value, of the
    Bayesian posterior and of the decision; both intervals are always reported.
    ``correction`` (see :func:`adjust_pvalues`) runs over all comparisons
    (``correction_scope="all"``) or per metric across arms (``"metric"``). ``inverse``
    names metrics where lower is better. ``weights`` are the configured traffic split for
    the SRM check (default equal); ``units`` overrides the units per arm it uses (default:
    the largest ``n`` of each arm over its metrics).

    ``relative_interval="fieller"`` replaces the delta-method interval of the relative lift
    by Fieller's (frequentist method; asymmetric, exact for a ratio of normal means).
    Comparisons whose pre-period covariate means differ at p < ``balance_threshold``
    (Welch test) carry the warning ``pre_period_imbalance``.

    ``phases`` (:class:`PhaseUnits`, e.g. from ``ExperimentEngine.phase_units``) checks SRM
    phase by phase against the weights each phase ran with, each phase with the
    ``srm_min_units`` gate; ``srm_phases`` reports every phase and ``srm_p_value`` is the
    worst (smallest) p-value of the phases checked.
    """
    np = require("numpy", purpose="experiment analysis")
    special = require("scipy.special", purpose="experiment analysis")

    if method not in _METHODS:
        raise ConfigurationError(f"method={method!r} is not one of {', '.join(_METHODS)}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigurationError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    if difference not in ("absolute", "relative"):
        raise ConfigurationError(f"difference={difference!r} must be 'absolute' or 'relative'")
    if test not in ("welch", "z"):
        raise ConfigurationError(f"test={test!r} must be 'welch' or 'z'")
    if correction_scope not in ("all", "metric"):
        raise ConfigurationError(f"correction_scope={correction_scope!r} must be 'all' or 'metric'")
    if not (isinstance(sequential_tuning, (int, float)) and sequential_tuning > 0):
        raise ConfigurationError(f"sequential_tuning={sequential_tuning!r} must be > 0")
    if srm_method not in ("chi2", "sequential"):
        raise ConfigurationError(f"srm_method={srm_method!r} must be 'chi2' or 'sequential'")
    if relative_interval not in ("delta", "fieller"):
        raise ConfigurationError(
            f"relative_interval={relative_interval!r} must be 'delta' or 'fieller'"
        )
    if msprt_tau is not None and not (math.isfinite(msprt_tau) and msprt_tau > 0):
        raise ConfigurationError(f"msprt_tau={msprt_tau!r} must be a positive number")
    corr = _correction_name(correction)
    rules = rules or DecisionRules()

    with np.errstate(all="ignore"):  # undefined cells are masked and flagged below
        metric_names, arm_names, kinds, data, present, multi, ratio_pre = _grid(
            np, summaries, control
        )
        control_name = arm_names[0]
        unknown_inverse = set(inverse) - set(metric_names)
        if unknown_inverse:
            raise ConfigurationError(f"inverse names unknown metrics: {sorted(unknown_inverse)}")
        n_metrics, n_arms = len(metric_names), len(arm_names)

        n, s, ss, ps, pss, xs, ds, dss, nds = data
        is_bin = _kind_mask(np, kinds, "binomial")[:, None]
        is_ratio = _kind_mask(np, kinds, "ratio")[:, None]
        inv = (
            np.array([m in inverse for m in metric_names])[:, None]
            if inverse
            else np.zeros((n_metrics, 1), dtype=bool)
        )

        mean_num = s / n
        var_num = np.where(is_bin, mean_num * (1 - mean_num), _sample_var(np, n, s, ss))
        if is_ratio.any():
            mean_den = ds / n
            var_den = _sample_var(np, n, ds, dss)
            cov_nd = (nds - s * ds / n) / (n - 1)
            ratio_mean = s / ds
            ratio_var = (
                var_num / mean_den**2
                - 2 * cov_nd * mean_num / mean_den**3
                + mean_num**2 * var_den / mean_den**4
            )
            mean_u = np.where(is_ratio, ratio_mean, mean_num)
            var_u = np.where(is_ratio, ratio_var, var_num)
        else:
            mean_u, var_u = mean_num, var_num

        # --- pairs: control (column 0) against each treatment ---
        na, nb = n[:, :1], n[:, 1:]
        ma_u, mb_u = mean_u[:, :1], mean_u[:, 1:]
        va_u, vb_u = var_u[:, :1], var_u[:, 1:]

        # CUPED: theta from the pooled sums of the pair (as gbstats), per comparison
        has_pre = np.any(pss != 0, axis=1, keepdims=True) & ~is_ratio
        use_cuped = cuped & has_pre
        pre_mean = ps / n
        pre_var = np.where(is_bin, pre_mean * (1 - pre_mean), _sample_var(np, n, ps, pss))
        if use_cuped.any():
            nj = na + nb
            post_var_j = np.where(
                is_bin,
                _pvar(np, s[:, :1] + s[:, 1:], nj),
                _sample_var(np, nj, s[:, :1] + s[:, 1:], ss[:, :1] + ss[:, 1:]),
            )
            pre_var_j = np.where(
                is_bin,
                _pvar(np, ps[:, :1] + ps[:, 1:], nj),
                _sample_var(np, nj, ps[:, :1] + ps[:, 1:], pss[:, :1] + pss[:, 1:]),
            )
            cov_j = (
                xs[:, :1] + xs[:, 1:] - (s[:, :1] + s[:, 1:]) * (ps[:, :1] + ps[:, 1:]) / nj
            ) / (nj - 1)
            theta_ok = use_cuped & (pre_var_j > 0) & (post_var_j > 0)
            theta = np.where(theta_ok, cov_j / np.where(theta_ok, pre_var_j, 1.0), 0.0)
            cov_arm = (xs - s * ps / n) / (n - 1)
            ma = ma_u - theta * pre_mean[:, :1]
            mb = mb_u - theta * pre_mean[:, 1:]
            va = va_u + theta**2 * pre_var[:, :1] - 2 * theta * cov_arm[:, :1]
            vb = vb_u + theta**2 * pre_var[:, 1:] - 2 * theta * cov_arm[:, 1:]
            va = np.where(theta_ok, va, va_u)
            vb = np.where(theta_ok, vb, vb_u)
        else:
            theta_ok = np.zeros((ma_u.shape[0], n_arms - 1), dtype=bool)
            theta = np.zeros(theta_ok.shape)
            ma, mb, va, vb = ma_u + 0.0, mb_u + 0.0, va_u + 0.0, vb_u + 0.0
        ratio_cuped: Any = None
        if cuped and ratio_pre is not None:
            rc = _ratio_cuped(np, data, ratio_pre[0], ratio_pre[1] & present & is_ratio)
            use_cuped = use_cuped | np.any(ratio_pre[1] & is_ratio, axis=1, keepdims=True)
            if rc[0].any():
                ratio_cuped = rc
                ok, th, ra, rb, rva, rvb, _ = rc
                theta_ok = np.broadcast_to(theta_ok, ok.shape) | ok
                theta = np.where(ok, th, theta)
                ma, mb = np.where(ok, ra, ma), np.where(ok, rb, mb)
                va, vb = np.where(ok, rva, va), np.where(ok, rvb, vb)
        coefficients: dict[int, Any] = {}
        if cuped and multi:
            theta_ok = np.array(theta_ok, copy=True)
            for rows_m, block in _group_by_size(np, multi).values():
                coef, ok, adj = _multi_cuped(np, s, ss, n, rows_m, block, cuped_ridge)
                ma[rows_m] = np.where(ok, adj[0], ma_u[rows_m])
                mb[rows_m] = np.where(ok, adj[1], mb_u[rows_m])
                va[rows_m] = np.where(ok, adj[2], va_u[rows_m])
                vb[rows_m] = np.where(ok, adj[3], vb_u[rows_m])
                theta_ok[rows_m] = ok
                for r_i, row in enumerate(rows_m.tolist()):
                    coefficients[row] = coef[r_i]

        eff_abs = mb - ma
        var_abs = vb / nb + va / na
        eff_rel = eff_abs / np.abs(ma_u)
        var_rel = K.relative_variance(np, va, ma_u, na, vb, mb_u, nb)
        if ratio_cuped is not None:
            var_rel = np.where(ratio_cuped[0], ratio_cuped[6](eff_abs), var_rel)

        # --- flags ---
        shape = eff_abs.shape
        flags = np.zeros(shape, dtype=np.int64)
        flags |= np.where((na == 0) | (nb == 0), _EMPTY, 0)
        flags |= np.where(((na == 1) | (nb == 1)) & (na > 0) & (nb > 0), _FEW, 0)
        flags |= np.where(is_ratio & ((ds[:, :1] == 0) | (ds[:, 1:] == 0)), _ZERO_DEN, 0)
        bad_var = ~(np.isfinite(var_abs) & (var_abs > 0)) | ~np.isfinite(eff_abs)
        flags |= np.where(bad_var & ((flags & (_EMPTY | _FEW | _ZERO_DEN)) == 0), _ZERO_VAR, 0)
        # relative lift means nothing when the control mean is within its own noise of 0
        # (exactly when Fieller's interval for the ratio is unbounded at level alpha)
        z_crit = float(-special.ndtri(alpha / 2))
        se_ctrl = np.sqrt(np.maximum(va_u, 0) / na)
        near_zero = ~(np.abs(ma_u) > z_crit * se_ctrl) | (ma_u == 0)
        flags |= np.where(near_zero & ((flags & _INVALID) == 0), _CONTROL_ZERO, 0)
        # pre-period balance: randomization should leave the covariate means equal
        pre_se2 = pre_var[:, 1:] / nb + pre_var[:, :1] / na
        pre_z = np.abs(pre_mean[:, 1:] - pre_mean[:, :1]) / np.sqrt(pre_se2)
        imbalanced = (
            has_pre
            & (pre_se2 > 0)
            & _pre_imbalanced(np, special, pre_z, pre_var, na, nb, balance_threshold)
        )
        flags |= np.where(imbalanced & ((flags & _INVALID) == 0), _IMBALANCE, 0)
        valid_abs = (flags & _INVALID) == 0
        valid_rel = valid_abs & ((flags & _CONTROL_ZERO) == 0)
        relative = difference == "relative"
        valid = valid_rel if relative else valid_abs
        # harmless placeholders where invalid, so no warning is raised and nothing leaks
        # (valid_abs implies var_abs > 0: a non-positive variance is flagged zero_variance)
        eff_abs_s = np.where(valid_abs, eff_abs, 0.0)
        var_abs_s = np.where(valid_abs, var_abs, 1.0)
        eff_rel_s = np.where(valid_rel, eff_rel, 0.0)
        var_rel_s = np.where(valid_rel & (var_rel > 0), var_rel, 1.0)
        # the chosen scale
        eff_s, var_s = (eff_rel_s, var_rel_s) if relative else (eff_abs_s, var_abs_s)
        n_total = na + nb

        # --- p-values and corrections ---
        p_raw = np.full(shape, np.nan)
        ctw: Any = None
        loss: Any = None
        mu: Any = None
        sigma: Any = None
        exact_mask: Any = None
        loss_scale = difference
        if method == "frequentist":
            df = K.welch_df(np, va, na, vb, nb) if test == "welch" else np.inf
            df_s = np.where(valid_abs & ~np.isnan(df), df, np.inf)
            p_raw = 2 * special.stdtr(df_s, -np.abs(eff_s) / np.sqrt(var_s))
        elif method == "msprt" and msprt_tau is not None:
            p_raw, _ = K.mixture_sequential(np, eff_s, var_s, msprt_tau**2, alpha)
        elif method in ("sequential", "msprt"):
            p_raw = K.confidence_sequence_p_value(
                np, eff_s, var_s, n_total, alpha, sequential_tuning
            )
        else:
            ctw, loss, mu, sigma = _bayes(np, special, metric_names, priors, eff_s, var_s, inv)
            if binomial_exact:
                exact = np.broadcast_to(is_bin & ~theta_ok, shape)
                if exact.any():
                    c_ex, l_ex = _beta_binomial(np, special, s, n, exact, inv)
                    ctw = np.where(exact, c_ex, ctw)
                    loss = np.where(exact, l_ex, loss)
                    loss_scale = "mixed" if not exact.all() else "absolute"
                exact_mask = exact
        p_raw = np.where(valid, p_raw, np.nan)

        p_adj = np.full(shape, np.nan)
        alpha_ci = np.full((n_metrics, 1), float(alpha))
        if method != "bayesian" and corr == "none":
            p_adj = p_raw  # nothing to adjust; intervals keep alpha
        elif method != "bayesian":
            if correction_scope == "all":
                p_adj = adjust_pvalues(p_raw.ravel(), corr).reshape(shape)
                m_tests = int(np.sum(~np.isnan(p_raw)))
                disc = int(np.sum(p_adj < alpha))
                alpha_ci[:] = adjusted_alpha(alpha, m_tests, corr, disc)
            else:
                for i in range(n_metrics):
                    p_adj[i] = adjust_pvalues(p_raw[i], corr)
                    m_tests = int(np.sum(~np.isnan(p_raw[i])))
                    disc = int(np.sum(p_adj[i] < alpha))
                    alpha_ci[i] = adjusted_alpha(alpha, m_tests, corr, disc)

        # --- intervals ---
        if method == "frequentist":
            crit = -special.stdtrit(df_s, alpha_ci / 2)
            half_abs = crit * np.sqrt(var_abs_s)
            half_rel = crit * np.sqrt(var_rel_s)
        elif method in ("sequential", "msprt"):
            if method == "msprt" and msprt_tau is not None:
                t2 = msprt_tau**2
                _, half_abs = K.mixture_sequential(np, eff_abs_s, var_abs_s, t2, alpha_ci)
                _, half_rel = K.mixture_sequential(np, eff_rel_s, var_rel_s, t2, alpha_ci)
            else:
                # one width factor per comparison serves both scales
                factor = K.confidence_sequence_factor(np, n_total, alpha_ci, sequential_tuning)
                half_abs = np.sqrt(var_abs_s) * factor
                half_rel = np.sqrt(var_rel_s) * factor
        else:
            zc = -special.ndtri(alpha_ci / 2)
            half_abs = zc * np.sqrt(var_abs_s)
            half_rel = zc * np.sqrt(var_rel_s)
        center_abs = eff_abs_s
        center_rel = eff_rel_s
        if method == "bayesian":
            # the posterior (with its prior) sits on the chosen scale; the other is flat-prior
            post_half = -special.ndtri(alpha_ci / 2) * sigma
            if relative:
                center_rel, half_rel = mu, post_half
            else:
                center_abs, half_abs = mu, post_half
        rel_lo, rel_hi = center_rel - half_rel, center_rel + half_rel
        if relative_interval == "fieller" and method == "frequentist":
            rel_lo, rel_hi = _fieller(np, ma, mb, va / na, vb / nb, crit, valid_rel)

        # --- significance & direction on the chosen scale ---
        good_sign = np.where(inv, -1.0, 1.0)
        if method == "bayesian":
            better = valid & (ctw >= rules.min_chance_to_win)
            if rules.max_expected_loss is not None:
                better &= loss <= rules.max_expected_loss
            worse = valid & (ctw <= 1 - rules.min_chance_to_win)
        else:
            sig = valid & (p_adj < alpha)
            better = sig & (eff_s * good_sign > 0)
            worse = sig & (eff_s * good_sign < 0)

        # --- SRM ---
        srm_p, srm_units = _srm(
            np, arm_names, n, present, weights, units, srm_min_units, srm_method
        )
        srm_phases: tuple[PhaseSRM, ...] = ()
        if phases is not None:
            srm_phases = _srm_phases(phases, arm_names, srm_min_units, srm_method)
            checked = [ph.p_value for ph in srm_phases if ph.p_value is not None]
            srm_p = min(checked) if checked else None
        srm_detected = srm_p is not None and srm_p < srm_threshold

        # --- objects ---
        all_arms = _build_arms(
            np, locals_for_build(
                metric_names, arm_names, kinds, method, difference, inverse, present, n, mean_u,
                flags, valid_abs, valid_rel, valid, eff_abs_s, eff_rel_s, center_abs, half_abs,
                rel_lo, rel_hi, var_abs_s, var_rel_s, p_raw, p_adj, ctw, loss, exact_mask,
                better, worse, theta, theta_ok, use_cuped, alpha_ci, coefficients,
            ),
        )  # fmt: skip
        width = n_arms - 1
        per_metric = list(zip(*[iter(all_arms)] * width, strict=True))  # width arms a metric
        inv_of = [m in inverse for m in metric_names] if inverse else repeat(False)
        rows = zip(metric_names, kinds, repeat(control_name), per_metric, inv_of)
        metric_results = list(map(_new_row, repeat(MetricResult), rows))

        result_warnings: list[str] = []
        if srm_p is None:
            result_warnings.append(f"srm_not_checked: fewer than {srm_min_units} units")
        elif srm_detected:
            result_warnings.append(f"sample_ratio_mismatch: p = {_fmt_p(srm_p)}")
        if loss_scale == "mixed":
            result_warnings.append("expected_loss is absolute for exact Beta-Binomial metrics")
        decision = _decide(rules, method, alpha, metric_results, srm_detected, metric_names)
        return AnalysisResult(
            method=method,
            alpha=float(alpha),
            difference=difference,
            correction=corr,
            correction_scope=correction_scope,
            control=control_name,
            arms=tuple(all_arms),
            metrics=tuple(metric_results),
            units=srm_units,
            srm_p_value=srm_p,
            srm_detected=bool(srm_detected),
            decision=decision,
            warnings=tuple(result_warnings),
            srm_phases=srm_phases,
        )


def locals_for_build(*values: Any) -> tuple[Any, ...]:
    """Bundle the arrays _build_arms reads (keeps analyze's body readable)."""
    return values


def _build_arms(np: Any, bundle: tuple[Any, ...]) -> list[ArmResult]:
    """ArmResult objects for every comparison, row by row (metric-major)."""
    (metric_names, arm_names, kinds, method, difference, inverse, present, n, mean_u, flags,
     valid_abs, valid_rel, valid, eff_abs, eff_rel, center_abs, half_abs, rel_lo,
     rel_hi, var_abs, var_rel, p_raw, p_adj, ctw, loss, exact_mask, better, worse, theta,
     theta_ok, use_cuped, alpha_ci, coefficients) = bundle  # fmt: skip
    shape = flags.shape
    width = shape[1]

    # ok.all() of each mask, computed once; the mask is kept in the entry, so its id
    # cannot be reused by another (temporary) mask while the cache lives
    all_ok: dict[int, tuple[Any, bool]] = {}

    def opt(values: Any, ok: Any) -> list[Any]:
        hit = all_ok.get(id(ok))
        if hit is None:
            hit = all_ok[id(ok)] = (ok, bool(ok.all()))
        if hit[1]:  # nothing to hide: skip the object array
            if np.shape(values) == ok.shape:
                return values.ravel().tolist()  # type: ignore[no-any-return]
            full = np.broadcast_shapes(np.shape(values), ok.shape)
            return np.broadcast_to(values, full).ravel().tolist()  # type: ignore[no-any-return]
        return np.where(ok, values, None).ravel().tolist()  # type: ignore[no-any-return]

    bayes = method == "bayesian"
    e_abs = opt(eff_abs, valid_abs)
    e_rel = opt(eff_rel, valid_rel)
    lo = opt(center_abs - half_abs, valid_abs)
    hi = (center_abs + half_abs).ravel().tolist()
    lo_r = opt(rel_lo, valid_rel)
    hi_r = rel_hi.ravel().tolist()
    se = opt(np.sqrt(var_abs), valid_abs)
    se_r = opt(np.sqrt(var_rel), valid_rel)
    none = [None] * (shape[0] * width)
    p = none if bayes else opt(p_raw, valid)
    pa = none if bayes else opt(p_adj, valid)
    c_w = opt(ctw, valid) if bayes else none
    l_s = opt(loss, valid) if bayes else none
    exact = np.broadcast_to(exact_mask if exact_mask is not None else False, shape)
    scale = opt(np.where(exact, "absolute", difference), valid) if bayes else none
    theta_ok_b = np.broadcast_to(theta_ok, shape)
    multi_rows = np.zeros(shape, dtype=bool)
    multi_rows[sorted(coefficients)] = True
    th = opt(theta, theta_ok_b & ~multi_rows)
    coefs: list[Any] = (
        [None] * len(th) if not theta_ok_b.any() else [None if t is None else (t,) for t in th]
    )
    for i, per_arm in coefficients.items():
        for j in range(width):
            if theta_ok_b[i, j]:
                coefs[i * width + j] = tuple(per_arm[j].tolist())
    code_dir = (better.astype(np.int8) + 2 * worse.astype(np.int8)).ravel().tolist()
    direction = list(map(("none", "better", "worse").__getitem__, code_dir))
    sig = (better | worse).ravel().tolist()
    n_int = n.astype(np.int64)
    c_n = np.repeat(n_int[:, 0], width).tolist()
    t_n = n_int[:, 1:].ravel().tolist()
    has_mean = (n > 0) & np.isfinite(mean_u)
    c_mean = np.repeat(opt(mean_u[:, 0], has_mean[:, 0]), width).tolist()
    t_mean = opt(mean_u[:, 1:], has_mean[:, 1:])
    level = np.repeat(1.0 - alpha_ci[:, 0], width).tolist()
    metric_col = np.repeat(np.array(metric_names, dtype=object), width).tolist()
    kind_col = np.repeat(np.array(kinds, dtype=object), width).tolist()
    arm_col = arm_names[1:] * shape[0]
    inv_col = [m in inverse for m in metric_col] if inverse else [False] * len(metric_col)
    # warnings: one word tuple per distinct combination of flags (few), looked up per cell
    missing_arm = ~present[:, 1:]
    missing_ctrl = np.broadcast_to(~present[:, :1], shape)
    no_cuped = np.broadcast_to(use_cuped, shape) & ~theta_ok_b & valid_abs
    code = (
        flags.astype(np.int64)
        | (no_cuped.astype(np.int64) << 10)
        | (missing_arm.astype(np.int64) << 11)
        | (missing_ctrl.astype(np.int64) << 12)
    ).ravel()
    words = {int(c): _warning_words(int(c)) for c in np.unique(code).tolist()}
    control = arm_names[0]
    count = len(t_n)
    ci = _pairs(lo, hi, valid_abs)
    ci_r = _pairs(lo_r, hi_r, valid_rel)
    warns = (
        list(map(words.__getitem__, code.tolist()))
        if len(words) > 1
        else [words[int(code[0])]] * count
    )
    columns = (
        metric_col, arm_col, [control] * count, kind_col, [method] * count, t_n, c_n, t_mean,
        c_mean, e_abs, e_rel, ci, ci_r, se, se_r, p, pa, c_w, l_s, scale, sig, direction, th,
        level, inv_col, warns, coefs,
    )  # fmt: skip
    return list(map(_new_row, repeat(ArmResult), zip(*columns, strict=True)))


# builds a result row (ArmResult, MetricResult) from a tuple without a Python-level call
_new_row = tuple.__new__


def _pairs(lo: list[Any], hi: list[Any], ok: Any) -> list[Any]:
    """(lo, hi) tuples, None where ``lo`` is None (``ok`` false)."""
    if ok.all():
        return list(zip(lo, hi, strict=True))
    return [None if x is None else (x, y) for x, y in zip(lo, hi, strict=True)]


def _warning_words(code: int) -> tuple[str, ...]:
    """Warning names of one cell from its code (flags | no_cuped<<10 | missing arm<<11 |
    missing control<<12), in the order they are reported."""
    warn = tuple(name for bit, name in _FLAG_NAMES if code & bit)
    if code & (1 << 10):
        warn += ("cuped_not_applied",)
    if code & (1 << 11):
        warn = ("missing_arm", *warn)
    if code & (1 << 12):
        warn = ("missing_control", *warn)
    return warn


def _covariate_blocks(
    np: Any,
    covs: list[tuple[int, int, tuple[float, ...], tuple[float, ...], tuple[float, ...]]],
    remap: Any,
    n_metrics: int,
    n_arms: int,
    metric_names: list[str],
) -> dict[int, tuple[Any, Any, Any]]:
    """Per metric with several covariates: sums (K, p), products (K, p, p), cross (K, p)."""
    out: dict[int, tuple[Any, Any, Any]] = {}
    for m, a, xs, xx, xy in covs:
        p = len(xs)
        if m not in out:
            out[m] = (np.zeros((n_arms, p)), np.zeros((n_arms, p, p)), np.zeros((n_arms, p)))
        sums, prods, cross = out[m]
        if sums.shape[1] != p:
            raise ConfigurationError(
                f"metric {metric_names[m]!r}: arms report different numbers of covariates"
            )
        col = int(remap[a])
        sums[col] += xs
        iu = np.triu_indices(p)
        full = np.zeros((p, p))
        full[iu] = xx
        full = full + full.T - np.diag(np.diag(full))
        prods[col] += full
        cross[col] += xy
    return out


def _group_by_size(np: Any, multi: dict[int, tuple[Any, Any, Any]]) -> dict[int, tuple[Any, Any]]:
    """Metrics grouped by covariate count: rows and stacked (sums, products, cross)."""
    groups: dict[int, list[int]] = {}
    for m, (sums, _, _) in multi.items():
        groups.setdefault(sums.shape[1], []).append(m)
    out: dict[int, tuple[Any, Any]] = {}
    for p, rows in groups.items():
        block = tuple(np.stack([multi[m][i] for m in rows]) for i in range(3))
        out[p] = (np.array(rows, dtype=np.intp), block)
    return out


def _multi_cuped(
    np: Any, s: Any, ss: Any, n: Any, rows: Any, block: Any, ridge: float
) -> tuple[Any, Any, tuple[Any, Any, Any, Any]]:
    """CUPED with p covariates: theta = (S_xx + ridge tr(S_xx)/p I)^-1 s_xy from the pooled
    sums of each (control, treatment) pair; adjusted means and per-unit variances."""
    xs, xx, xy = block  # (G, K, p), (G, K, p, p), (G, K, p)
    p = xs.shape[-1]
    y, yy, cnt = s[rows], ss[rows], n[rows]  # (G, K)
    nj = cnt[:, :1] + cnt[:, 1:]  # (G, K-1)
    sx = xs[:, :1] + xs[:, 1:]
    sxx = xx[:, :1] + xx[:, 1:]
    sxy = xy[:, :1] + xy[:, 1:]
    sy = y[:, :1] + y[:, 1:]
    cxx = (sxx - sx[..., :, None] * sx[..., None, :] / nj[..., None, None]) / (
        nj[..., None, None] - 1
    )
    cxy = (sxy - sx * (sy / nj)[..., None]) / (nj - 1)[..., None]
    vy = (yy[:, :1] + yy[:, 1:] - sy * sy / nj) / (nj - 1)
    scale = np.trace(cxx, axis1=-2, axis2=-1) / p
    reg = cxx + (ridge * scale)[..., None, None] * np.eye(p)
    finite = np.isfinite(reg).all(axis=(-1, -2)) & np.isfinite(cxy).all(axis=-1)
    safe = np.where(finite[..., None, None], reg, np.eye(p))
    theta = np.einsum("...ij,...j->...i", np.linalg.pinv(safe), np.where(finite[..., None], cxy, 0))
    ok = finite & (scale > 0) & (vy > 0)
    theta = np.where(ok[..., None], theta, 0.0)
    # per arm: means, covariances of the covariates and with y
    xbar = xs / cnt[..., None]
    cov_xx = (xx - xs[..., :, None] * xs[..., None, :] / cnt[..., None, None]) / (
        cnt[..., None, None] - 1
    )
    cov_xy = (xy - xs * (y / cnt)[..., None]) / (cnt - 1)[..., None]
    var_y = (yy - y * y / cnt) / (cnt - 1)
    mean_y = y / cnt

    def adjusted(col: slice) -> tuple[Any, Any]:
        xb, cx, cy = xbar[:, col], cov_xx[:, col], cov_xy[:, col]
        mean = mean_y[:, col] - np.einsum("...i,...i->...", theta, xb)
        quad = np.einsum("...i,...ij,...j->...", theta, cx, theta)
        var = var_y[:, col] + quad - 2 * np.einsum("...i,...i->...", theta, cy)
        return mean, var

    ma, va = adjusted(slice(0, 1))
    mb, vb = adjusted(slice(1, None))
    return theta, ok, (ma, mb, va, vb)


def _ratio_cuped(np: Any, data: Any, rp: Any, rp_ok: Any) -> tuple[Any, ...]:
    """CUPED for ratio metrics: the ratio y/d adjusted by the pre-period ratio x/e.

    Per arm the estimate is R_post - theta R_pre (R = ratio of the arm's sums) and its
    per-unit variance the delta method over the four means (y, d, x, e): with g_post =
    (1/d, -y/d^2), g_pre = (1/e, -x/e^2) and L the per-unit covariance matrix (n - 1),
    V_post = g_post' L g_post, V_pre = g_pre' L g_pre, C = g_post' L g_pre, and
    v = V_post - 2 theta C + theta^2 V_pre. theta = (C_A + C_B) / (V_pre_A + V_pre_B) per
    comparison (the per-unit quantities of the two arms added, as gbstats'
    ``compute_theta_regression_adjusted_ratio``). Returns (ok, theta, adjusted control
    mean, adjusted treatment means, per-unit variances, and a function of the absolute
    effect giving the relative variance).
    """
    n, s, ss, ps, pss, xs, ds, dss, nds = data
    e, ee, de, xe, ye, xd = rp

    def cov(sab: Any, sa: Any, sb: Any) -> Any:
        return (sab - sa * sb / n) / (n - 1)

    y_m, d_m, x_m, e_m = s / n, ds / n, ps / n, e / n
    v_y, v_d, v_x, v_e = cov(ss, s, s), cov(dss, ds, ds), cov(pss, ps, ps), cov(ee, e, e)
    c_yd, c_xe = cov(nds, s, ds), cov(xe, ps, e)
    c_yx, c_ye, c_dx, c_de = cov(xs, s, ps), cov(ye, s, e), cov(xd, ps, ds), cov(de, ds, e)
    gy, gd = 1 / d_m, -y_m / d_m**2
    gx, ge = 1 / e_m, -x_m / e_m**2
    v_post = gy * gy * v_y + 2 * gy * gd * c_yd + gd * gd * v_d
    v_pre = gx * gx * v_x + 2 * gx * ge * c_xe + ge * ge * v_e
    c = gy * gx * c_yx + gy * ge * c_ye + gd * gx * c_dx + gd * ge * c_de
    r_post, r_pre = s / ds, ps / e
    den = v_pre[:, :1] + v_pre[:, 1:]
    theta = (c[:, :1] + c[:, 1:]) / den
    arm_ok = rp_ok & (n > 1) & (ds != 0) & (e != 0)
    ok = (
        arm_ok[:, :1] & arm_ok[:, 1:] & (den > 0) & np.isfinite(theta)
        & np.isfinite(v_post[:, :1]) & np.isfinite(v_post[:, 1:])
    )  # fmt: skip
    theta = np.where(ok, theta, 0.0)
    ma = r_post[:, :1] - theta * r_pre[:, :1]
    mb = r_post[:, 1:] - theta * r_pre[:, 1:]
    va = v_post[:, :1] - 2 * theta * c[:, :1] + theta**2 * v_pre[:, :1]
    vb = v_post[:, 1:] - 2 * theta * c[:, 1:] + theta**2 * v_pre[:, 1:]

    def relative(effect: Any) -> Any:
        # d/d(control means) of effect / |R_post,A|: the scale moves with the control too
        ra = r_post[:, :1]
        k = 1 / np.abs(ra) + effect * np.sign(ra) / ra**2
        ctrl = k * k * v_post[:, :1] - 2 * k * theta * c[:, :1] / np.abs(ra)
        ctrl = ctrl + theta**2 * v_pre[:, :1] / ra**2
        return ctrl / n[:, :1] + vb / (ra**2 * n[:, 1:])

    return ok, theta, ma, mb, va, vb, relative


def _fieller(np: Any, ma: Any, mb: Any, va: Any, vb: Any, crit: Any, ok: Any) -> tuple[Any, Any]:
    """Fieller's interval for mb / ma - 1 (independent arms), as a lift over |ma|.

    Solves (mb - r ma)^2 = crit^2 (vb + r^2 va) for r; bounded exactly when
    ma^2 > crit^2 va, which is the condition under which relative lift is reported at all.
    """
    a = ma * ma - crit * crit * va
    b = -2.0 * ma * mb
    c = mb * mb - crit * crit * vb
    root = np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))
    safe_a = np.where(ok & (a > 0), a, 1.0)
    r1 = (-b - root) / (2.0 * safe_a)
    r2 = (-b + root) / (2.0 * safe_a)
    lo, hi = np.minimum(r1, r2) - 1.0, np.maximum(r1, r2) - 1.0
    # a negative control mean flips the sign of the lift over |ma|
    neg = ma < 0
    return np.where(neg, -hi, lo), np.where(neg, -lo, hi)


def _pre_imbalanced(
    np: Any, special: Any, z: Any, pre_var: Any, na: Any, nb: Any, threshold: float
) -> Any:
    """Welch test of the pre-period covariate means: two-sided p < ``threshold``.

    Student's t has heavier tails than the normal for every df, so the t p-value is at
    least the normal one: cells whose normal p-value is already >= ``threshold`` are
    balanced without evaluating the t distribution (the expensive part), which only runs
    on the few candidates left (the margin 1e-9 keeps rounding of the two special
    functions at the threshold from deciding). :func:`_pre_imbalanced_full` is the
    reference the tests compare this with.
    """
    out = np.zeros(z.shape, dtype=bool)
    # NaN z compares False: not a candidate, and NaN p < threshold is False as well
    cand = 2 * special.ndtr(-z) < threshold * (1 + 1e-9)
    if cand.any():
        idx = np.nonzero(cand)
        out[idx] = _pre_imbalanced_full(np, special, z, pre_var, na, nb, threshold)[idx]
    return out


def _pre_imbalanced_full(
    np: Any, special: Any, z: Any, pre_var: Any, na: Any, nb: Any, threshold: float
) -> Any:
    """The Welch test of :func:`_pre_imbalanced` on every cell (no shortcut)."""
    df = K.welch_df(np, pre_var[:, :1], na, pre_var[:, 1:], nb)
    p = 2 * special.stdtr(np.where(np.isnan(df), np.inf, df), -z)
    return np.broadcast_to(p < threshold, z.shape)


def _sample_var(np: Any, n: Any, s: Any, ss: Any) -> Any:
    """Sample variance with n - 1, clamped at 0 against rounding (NaN for n <= 1)."""
    v = (ss - s * s / n) / (n - 1)
    return np.where(n > 1, np.maximum(v, 0.0), np.nan)


def _pvar(np: Any, s: Any, n: Any) -> Any:
    p = s / n
    return p * (1 - p)


def _bayes(
    np: Any,
    special: Any,
    metric_names: list[str],
    priors: Mapping[str, GaussianPrior] | None,
    eff: Any,
    var: Any,
    inv: Any,
) -> tuple[Any, Any, Any, Any]:
    priors = priors or {}
    unknown = set(priors) - set(metric_names)
    if unknown:
        raise ConfigurationError(f"priors name unknown metrics: {sorted(unknown)}")
    for name, prior in priors.items():
        if not isinstance(prior, GaussianPrior):
            raise ConfigurationError(f"prior of {name!r} must be a GaussianPrior")
    pm = np.array([[priors[m].mean if m in priors else 0.0] for m in metric_names])
    pv = np.array([[priors[m].variance if m in priors else 1.0] for m in metric_names])
    proper = np.array([[bool(m in priors and priors[m].proper)] for m in metric_names])
    prec = 1 / var + np.where(proper, 1 / pv, 0.0)
    mu = np.where(proper, (eff / var + pm / pv) / prec, eff)
    sigma = np.sqrt(1 / prec)
    win = special.ndtr(mu / sigma)
    ctw = np.where(inv, 1 - win, win)
    loss = np.where(
        inv, K.normal_risk(np, special, -mu, sigma), K.normal_risk(np, special, mu, sigma)
    )
    return ctw, loss, mu, sigma


def _beta_binomial(np: Any, special: Any, s: Any, n: Any, mask: Any, inv: Any) -> tuple[Any, Any]:
    """Exact P(p_B > p_A) and E[max(p_A - p_B, 0)] under Beta(1, 1) priors."""
    shape = mask.shape
    a_a = np.broadcast_to(1 + s[:, :1], shape)
    b_a = np.broadcast_to(1 + n[:, :1] - s[:, :1], shape)
    a_b = 1 + s[:, 1:]
    b_b = 1 + n[:, 1:] - s[:, 1:]
    out_ctw = np.full(shape, 0.5)
    out_loss = np.zeros(shape)
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return out_ctw, out_loss
    aa, ba, ab, bb = a_a[idx], b_a[idx], a_b[idx], b_b[idx]
    inv_i = np.broadcast_to(inv, shape)[idx]
    p_b_gt_a, loss_b, loss_inv = K.beta_binomial_decision(np, special, aa, ba, ab, bb)
    out_ctw[idx] = np.where(inv_i, 1 - p_b_gt_a, p_b_gt_a)
    out_loss[idx] = np.where(inv_i, loss_inv, loss_b)
    return out_ctw, out_loss


def _srm(
    np: Any,
    arm_names: list[str],
    n: Any,
    present: Any,
    weights: Mapping[str, float] | None,
    units: Mapping[str, int] | None,
    min_units: int,
    method: str,
) -> tuple[float | None, dict[str, int]]:
    if units is not None:
        unknown = set(units) - set(arm_names)
        if unknown:
            raise ConfigurationError(f"units name unknown arms: {sorted(unknown)}")
        observed = [units.get(a, 0) for a in arm_names]
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 0 for u in observed):
            raise ConfigurationError("units must be non-negative integers")
    else:
        observed = [int(v) for v in np.max(np.where(present, n, 0), axis=0)]
    if weights is None:
        w = [1.0] * len(arm_names)
    else:
        unknown = set(weights) - set(arm_names)
        missing = set(arm_names) - set(weights)
        if unknown or missing:
            raise ConfigurationError(
                f"weights must name exactly the arms {arm_names}: "
                f"unknown {sorted(unknown)}, missing {sorted(missing)}"
            )
        w = [weights[a] for a in arm_names]
        if any(not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0) for x in w):
            raise ConfigurationError("every arm weight must be a positive number")
    counts = dict(zip(arm_names, observed, strict=True))
    total = sum(observed)
    if total < max(min_units, 1):
        return None, counts
    p_value = srm_sequential(observed, w) if method == "sequential" else srm_check(observed, w)
    return p_value, counts


def _srm_phases(
    phases: Sequence[PhaseUnits], arm_names: list[str], min_units: int, method: str
) -> tuple[PhaseSRM, ...]:
    """SRM per phase against that phase's weights (arms it did not weight must have no units:
    any unit there is a mismatch, p = 0)."""
    out: list[PhaseSRM] = []
    for i, ph in enumerate(phases):
        if not isinstance(ph, PhaseUnits):
            raise ConfigurationError(f"phases[{i}] must be a PhaseUnits, got {type(ph).__name__}")
        unknown = (set(ph.weights) | set(ph.units)) - set(arm_names)
        if unknown:
            raise ConfigurationError(f"phases[{i}] names unknown arms: {sorted(unknown)}")
        counts = {a: ph.units.get(a, 0) for a in arm_names}
        if any(isinstance(u, bool) or not isinstance(u, int) or u < 0 for u in counts.values()):
            raise ConfigurationError(f"phases[{i}]: units must be non-negative integers")
        weighted = [a for a in arm_names if ph.weights.get(a, 0) > 0]
        p: float | None
        if sum(counts.values()) < max(min_units, 1):
            p = None
        elif any(counts[a] for a in arm_names if a not in weighted):
            p = 0.0
        elif len(weighted) < 2:
            p = 1.0
        else:
            obs = [counts[a] for a in weighted]
            w = [float(ph.weights[a]) for a in weighted]
            p = srm_sequential(obs, w) if method == "sequential" else srm_check(obs, w)
        out.append(PhaseSRM(i, ph.start, dict(ph.weights), counts, p))
    return tuple(out)


def _srm_inputs(observed: Sequence[int], weights: Sequence[float]) -> tuple[list[int], list[float]]:
    obs = list(observed)
    w = list(weights)
    if len(obs) < 2 or len(obs) != len(w):
        raise ConfigurationError("SRM needs at least two arms and one weight per arm")
    if any(isinstance(o, bool) or not isinstance(o, int) or o < 0 for o in obs):
        raise ConfigurationError(f"SRM counts must be non-negative integers, got {obs}")
    if any(not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0) for x in w):
        raise ConfigurationError(f"SRM weights must be positive numbers, got {w}")
    total = sum(w)
    return obs, [x / total for x in w]


def srm_check(observed: Sequence[int], weights: Sequence[float]) -> float:
    """Chi-squared goodness-of-fit p-value of the units per arm against the weights.

    >>> round(srm_check([1000, 1100], [0.5, 0.5]), 4)
    0.0291
    """
    special = require("scipy.special")
    obs, w = _srm_inputs(observed, weights)
    total = sum(obs)
    if total == 0:
        return 1.0
    x = sum((o - total * p) ** 2 / (total * p) for o, p in zip(obs, w, strict=True))
    return float(special.chdtrc(len(obs) - 1, x))


def srm_sequential(
    observed: Sequence[int], weights: Sequence[float], *, concentration: float = 100.0
) -> float:
    """Always-valid SRM p-value (Lindon & Malek 2022): 1 / Bayes factor of a
    Dirichlet-multinomial alternative (prior Dirichlet(concentration x weights)) against the
    configured weights, capped at 1.

    Valid at every look: check it as often as you like; keep the smallest value seen (the
    running minimum is still a valid p-value).
    """
    special = require("scipy.special")
    obs, w = _srm_inputs(observed, weights)
    if not (math.isfinite(concentration) and concentration > 0):
        raise ConfigurationError(f"concentration={concentration!r} must be a positive number")
    alpha = [concentration * p for p in w]
    total = sum(obs)
    log_bf = float(special.gammaln(sum(alpha)) - special.gammaln(sum(alpha) + total))
    for x, a, p in zip(obs, alpha, w, strict=True):
        log_bf += float(special.gammaln(a + x) - special.gammaln(a)) - x * math.log(p)
    return min(1.0, math.exp(-log_bf)) if log_bf > -700 else 1.0


# --- decision ---------------------------------------------------------------------------------


def _decide(
    rules: DecisionRules,
    method: str,
    alpha: float,
    metrics: list[MetricResult],
    srm_detected: bool,
    names: list[str],
) -> Decision:
    primary = rules.primary or names[0]
    if primary not in names:
        raise ConfigurationError(f"primary metric {primary!r} is not among {names}")
    unknown = set(rules.guardrails) - set(names)
    if unknown:
        raise ConfigurationError(f"guardrails name unknown metrics: {sorted(unknown)}")
    if srm_detected and rules.block_on_srm:
        return Decision("invalid", None, ("sample ratio mismatch: the assignment is broken",))
    by_name = dict(zip(names, metrics, strict=True))
    reasons: list[str] = []
    winners: list[ArmResult] = []
    evaluable = 0
    worse = 0
    for arm in by_name[primary].arms:
        p_ok = arm.chance_to_win is not None if method == "bayesian" else arm.p_value is not None
        if not p_ok:
            reasons.append(f"{arm.arm}: {primary} not evaluable ({', '.join(arm.warnings)})")
            continue
        evaluable += 1
        if arm.direction == "worse":
            worse += 1
            continue
        if arm.direction != "better":
            continue
        blocked = [
            msg
            for g, margin in rules.guardrails.items()
            if g != primary
            for msg in [_guardrail(by_name[g], arm.arm, margin, method, rules)]
            if msg
        ]
        if blocked:
            reasons.extend(f"{arm.arm} wins on {primary} but {b}" for b in blocked)
        else:
            winners.append(arm)
    if winners:
        scale = [(a.effect_rel if a.effect_rel is not None else 0.0, a) for a in winners]
        key = [(-(e if not a.inverse else -e), a.arm) for e, a in scale]
        best = min(zip(key, winners, strict=True), key=lambda kv: kv[0])[1]
        return Decision("ship", best.arm, (f"{best.arm} wins on {primary}", *reasons))
    if evaluable and worse == evaluable:
        return Decision("keep_control", None, (f"every arm is worse on {primary}", *reasons))
    if not reasons:
        reasons.append(f"no arm is conclusively better on {primary} yet")
    return Decision("continue", None, tuple(reasons))


def _guardrail(
    metric: MetricResult, arm: str, margin: float | None, method: str, rules: DecisionRules
) -> str | None:
    """Why ``arm`` fails guardrail ``metric`` (None when it passes)."""
    found = [a for a in metric.arms if a.arm == arm]
    if not found:
        return f"guardrail {metric.metric} has no data for it"
    g = found[0]
    sign = -1.0 if g.inverse else 1.0
    if margin is None:
        return (
            f"guardrail {metric.metric} is significantly worse"
            if g.direction == "worse"
            else (
                None
                if (g.p_value is not None or g.chance_to_win is not None)
                else f"guardrail {metric.metric} is not evaluable"
            )
        )
    if g.ci_rel is None or g.effect_rel is None or g.std_error_rel is None:
        return f"guardrail {metric.metric} is not evaluable ({', '.join(g.warnings) or 'no data'})"
    if method == "bayesian":
        # P(harmful relative effect beyond the margin) from the normal posterior of the lift
        z = (sign * g.effect_rel + margin) / g.std_error_rel
        p_harm = 0.5 * math.erfc(z / math.sqrt(2))
        if p_harm > 1 - rules.min_chance_to_win:
            return (
                f"guardrail {metric.metric} may regress by more than {margin:.2%} "
                f"(probability {p_harm:.1%})"
            )
        return None
    harmful_end = g.ci_rel[0] if sign > 0 else -g.ci_rel[1]
    if harmful_end <= -margin:
        return (
            f"guardrail {metric.metric} is not shown non-inferior within {margin:.2%} "
            f"(CI reaches {harmful_end:+.2%})"
        )
    return None


# --- words ------------------------------------------------------------------------------------


def _fmt_p(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _fmt_effect(a: ArmResult) -> str:
    parts = []
    if a.effect_rel is not None and a.ci_rel is not None:
        parts.append(
            f"{a.effect_rel:+.2%} relative ({a.ci_level:.4g} interval {a.ci_rel[0]:+.2%} to "
            f"{a.ci_rel[1]:+.2%})"
        )
    if a.effect_abs is not None and a.ci is not None:
        parts.append(f"{a.effect_abs:+.4g} absolute ({a.ci[0]:+.4g} to {a.ci[1]:+.4g})")
    return "; ".join(parts)


def _summarize(a: ArmResult) -> str:
    head = f"{a.metric}: {a.arm} vs {a.control}"
    if a.effect_abs is None:
        return f"{head}: not computable ({', '.join(a.warnings)})."
    text = f"{head}: {_fmt_effect(a)}."
    if "control_mean_near_zero" in a.warnings:
        text += " Relative lift hidden: the control mean is indistinguishable from zero."
    if a.method == "bayesian":
        if a.chance_to_win is not None:
            text += (
                f" Chance to win {a.chance_to_win:.1%}: the posterior probability that "
                f"{a.arm} is better than {a.control} given the data and the prior "
                "(not a p-value)."
            )
        if a.expected_loss is not None:
            text += (
                f" Expected loss if {a.arm} ships: {a.expected_loss:.4g} "
                f"({a.expected_loss_scale} scale)."
            )
    elif a.p_value is not None:
        adj = (
            f", {a.p_value_adjusted:.4f} after correction"
            if a.p_value_adjusted is not None and a.p_value_adjusted != a.p_value
            else ""
        )
        kind = "always-valid p" if a.method in ("sequential", "msprt") else "p"
        text += (
            f" {kind} = {_fmt_p(a.p_value)}{adj}: "
            + (f"significantly {a.direction}." if a.significant else "no significant difference.")
            + " (The p-value is how surprising a difference this large would be if the arms "
            "were truly equal, not the probability that the arm is better.)"
        )
    elif "control_mean_near_zero" in a.warnings:
        text += " No relative test possible."
    return text
