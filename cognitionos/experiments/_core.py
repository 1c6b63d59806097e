"""Sans-I/O experiment logic: compiled definitions, assignment and per-unit statistics deltas.

Assignment uses the kernel's bucketing (:mod:`cognitionos.bucketing`), the same code the
flags engine runs, so ``ExperimentEngine.assign`` and ``FlagEngine.run`` agree per unit.

Incremental statistics
----------------------
The statistics of a metric are sums over *units*, while events arrive one at a time and a
unit may have many. Each store therefore keeps, per ``(unit, metric)``, the unit's running
totals ``(num, den, x)``: the sum of its values (numerator), of its denominators (ratio
metrics) and its pre-period covariate (CUPED). A unit contributes

    y = value(kind, num)  (0/1 for binomial, capped total otherwise),  d = capped den,
    (y, y², x, x², x·y, d, d², y·d)

to the eight sums of :class:`~cognitionos.experiments.ArmSummary`. An event changes the
unit's totals from ``old`` to ``new``; the store adds ``contribution(new) -
contribution(old)`` to the arm's sums. That keeps every sum exact (up to float rounding)
for any kind and cap, in O(1) per event, and analysis reads O(arms x metrics) rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cognitionos.bucketing import bucket_ranges, choose_variation, in_namespace
from cognitionos.errors import ConfigurationError
from cognitionos.experiments.models import (
    Assignment,
    AssignmentReason,
    Experiment,
    ExperimentStatus,
    Metric,
)
from cognitionos.hashing import growthbook_hash

__all__ = [
    "KIND_CODES",
    "N_SUMS",
    "CompiledExperiment",
    "MetricSpec",
    "TrackedEvent",
    "apply_events",
    "compile_experiment",
    "contribution",
]

#: the eight sums, in ArmSummary field order
SUM_FIELDS = (
    "sum",
    "sum_sq",
    "pre_sum",
    "pre_sum_sq",
    "cross_sum",
    "denom_sum",
    "denom_sum_sq",
    "num_denom_sum",
)
N_SUMS = len(SUM_FIELDS)
#: metric kinds as small integers (the Redis script receives these)
KIND_CODES = {"binomial": 0, "count": 1, "continuous": 2, "ratio": 3}
_INF = float("inf")

#: one metric event after validation: (unit, metric, value, denominator, covariate or None)
TrackedEvent = tuple[str, str, float, float, "float | None"]


class MetricSpec:
    """What the delta computation needs of a metric: its kind code and caps."""

    __slots__ = ("code", "den_hi", "den_lo", "hi", "kind", "lo", "name")

    def __init__(self, metric: Metric) -> None:
        self.name = metric.name
        self.kind = metric.kind
        self.code = KIND_CODES[metric.kind]
        self.lo = -_INF if metric.cap_lower is None else float(metric.cap_lower)
        self.hi = _INF if metric.cap_upper is None else float(metric.cap_upper)
        self.den_lo = (
            -_INF if metric.denominator_cap_lower is None else metric.denominator_cap_lower
        )
        self.den_hi = _INF if metric.denominator_cap_upper is None else metric.denominator_cap_upper


def _clip(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def contribution(spec: MetricSpec, num: float, den: float, x: float) -> tuple[float, ...]:
    """The eight sums one unit with totals ``(num, den, x)`` adds to its arm."""
    y = (1.0 if num > 0 else 0.0) if spec.code == 0 else _clip(num, spec.lo, spec.hi)
    d = _clip(den, spec.den_lo, spec.den_hi) if spec.code == 3 else 0.0
    return (y, y * y, x, x * x, x * y, d, d * d, y * d)


def apply_events(
    events: Iterable[TrackedEvent],
    specs: Mapping[str, MetricSpec],
    arm_of: Mapping[str, str],
    state: dict[tuple[str, str], list[float]],
) -> dict[tuple[str, str], list[float]]:
    """Fold events into per-unit ``state`` and return the sums to add per ``(arm, metric)``.

    ``state[(unit, metric)]`` is ``[num, den, x]`` and is updated in place (created at
    zero). Events of units without an arm in ``arm_of`` (never exposed) are skipped by
    the caller; here every event's unit must have one.
    """
    deltas: dict[tuple[str, str], list[float]] = {}
    for unit, metric, value, den, cov in events:
        spec = specs[metric]
        slot = state.get((unit, metric))
        if slot is None:
            slot = state[(unit, metric)] = [0.0, 0.0, 0.0]
        num0, den0, x0 = slot
        num1 = num0 + value
        den1 = den0 + den
        x1 = x0 if cov is None else cov
        slot[0] = num1
        slot[1] = den1
        slot[2] = x1
        # inlined contribution(): this loop is the ingestion hot path
        if spec.code == 0:
            y0 = 1.0 if num0 > 0 else 0.0
            y1 = 1.0 if num1 > 0 else 0.0
        else:
            lo, hi = spec.lo, spec.hi
            y0 = lo if num0 < lo else hi if num0 > hi else num0
            y1 = lo if num1 < lo else hi if num1 > hi else num1
        key = (arm_of[unit], metric)
        acc = deltas.get(key)
        if acc is None:
            acc = deltas[key] = [0.0] * N_SUMS
        acc[0] += y1 - y0
        acc[1] += y1 * y1 - y0 * y0
        if x0 or x1:
            acc[2] += x1 - x0
            acc[3] += x1 * x1 - x0 * x0
            acc[4] += x1 * y1 - x0 * y0
        if spec.code == 3:
            dlo, dhi = spec.den_lo, spec.den_hi
            d0 = dlo if den0 < dlo else dhi if den0 > dhi else den0
            d1 = dlo if den1 < dlo else dhi if den1 > dhi else den1
            acc[5] += d1 - d0
            acc[6] += d1 * d1 - d0 * d0
            acc[7] += y1 * d1 - y0 * d0
    return deltas


class CompiledExperiment:
    """An experiment ready to assign: bucket ranges, seed and targeting computed once."""

    __slots__ = (
        "definition",
        "holdout",
        "key",
        "keys",
        "namespace",
        "predicate",
        "ranges",
        "seed",
        "specs",
        "values",
        "version",
    )

    def __init__(self, exp: Experiment, predicate: Callable[[Any], Any] | None) -> None:
        self.definition = exp
        self.key = exp.key
        self.keys = tuple(a.key for a in exp.arms)
        self.values = tuple(a.value for a in exp.arms)
        self.ranges = tuple(bucket_ranges(len(exp.arms), exp.coverage, exp.weights))
        self.seed = exp.seed if exp.seed is not None else exp.key
        self.version = exp.hash_version
        self.namespace = (
            None
            if exp.namespace is None
            else (exp.namespace.name, exp.namespace.start, exp.namespace.end)
        )
        self.holdout = None if exp.holdout is None else (exp.holdout.key, exp.holdout.fraction)
        self.predicate = predicate
        self.specs = {m.name: MetricSpec(m) for m in exp.metrics}

    def _out(self, reason: AssignmentReason, bucket: float | None = None) -> Assignment:
        return Assignment(self.keys[0], False, bucket, self.key, reason, self.values[0])

    def assign(self, unit_id: str, attributes: Mapping[str, Any], sticky: Any = None) -> Assignment:
        """The arm of ``unit_id`` (attributes already carry it under the hash attribute)."""
        exp = self.definition
        if exp.status is not ExperimentStatus.RUNNING:
            if exp.shipped is not None:
                i = self.keys.index(exp.shipped)
                return Assignment(
                    exp.shipped, False, None, self.key, AssignmentReason.SHIPPED, self.values[i]
                )
            return self._out(AssignmentReason.NOT_RUNNING)
        if not unit_id:
            return self._out(AssignmentReason.NO_UNIT_ID)
        slot = f"{self.key}__{exp.bucket_version}"
        if sticky is not None:
            got = sticky.get_assignments(exp.hash_attribute, unit_id) or {}
            chosen = got.get(slot)
            if chosen in self.keys:
                i = self.keys.index(chosen)
                return Assignment(
                    chosen, True, None, self.key, AssignmentReason.STICKY, self.values[i]
                )
        if self.holdout is not None:
            held = growthbook_hash(f"__holdout_{self.holdout[0]}", unit_id, 1)
            if held is not None and held < self.holdout[1]:
                return self._out(AssignmentReason.HOLDOUT)
        if self.namespace is not None and not in_namespace(unit_id, self.namespace):
            return self._out(AssignmentReason.NAMESPACE)
        if self.predicate is not None:
            try:
                ok = self.predicate(attributes)
            except Exception:  # a hostile attribute never breaks the caller: not targeted
                ok = False
            if not ok:
                return self._out(AssignmentReason.TARGETING)
        n = growthbook_hash(self.seed, unit_id, self.version)
        if n is None:  # pragma: no cover - the model only allows versions 1 and 2
            return self._out(AssignmentReason.NO_UNIT_ID)
        i = choose_variation(n, self.ranges)
        if i < 0:
            return self._out(AssignmentReason.COVERAGE, n)
        if sticky is not None:
            current = dict(sticky.get_assignments(exp.hash_attribute, unit_id) or {})
            current[slot] = self.keys[i]
            sticky.save_assignments(exp.hash_attribute, unit_id, current)
        return Assignment(
            self.keys[i], True, n, self.key, AssignmentReason.ASSIGNED, self.values[i]
        )


def compile_condition(condition: Mapping[str, Any] | None, where: str) -> Any:
    """Compile a targeting condition with the flags engine's public condition compiler."""
    if condition is None:
        return None
    # the flags package is imported through its public API only (see docs/experiments.md)
    from cognitionos.flags import compile_condition as compile_flag_condition

    return compile_flag_condition(condition, where=where)


def compile_experiment(exp: Experiment) -> CompiledExperiment:
    """Compile ``exp``; a bad condition raises ConfigurationError naming the experiment."""
    return CompiledExperiment(exp, compile_condition(exp.condition, f"experiment {exp.key!r}"))


def check_value(value: Any, what: str) -> float:
    """A finite float from ``value`` or ConfigurationError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigurationError(f"{what} must be a number, got {value!r:.60}")
    v = float(value)
    if v != v or v in (_INF, -_INF):
        raise ConfigurationError(f"{what} must be finite, got {value!r}")
    return v


def empty_sums() -> list[float]:
    """Eight zero sums."""
    return [0.0] * N_SUMS


def sums_of(rows: Sequence[float]) -> dict[str, float]:
    """The eight sums as ArmSummary keyword arguments."""
    return dict(zip(SUM_FIELDS, (float(v) for v in rows), strict=True))
