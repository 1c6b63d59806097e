"""Sans-I/O HPA controller: replica calculation, stabilization, scaling rules, clamping.

Follows the Kubernetes HPA controller (pkg/controller/podautoscaler, replica_calculator.go and
horizontal.go) step for step, including its integer truncations and the order of its checks.
Every function is a pure function of its arguments; the caller owns the state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import attrs

from cognitionos.autoscale.models import (
    Behavior,
    Decision,
    ExternalMetric,
    HPAState,
    MetricSpec,
    ObjectMetric,
    PodMetric,
    PodsMetric,
    PodStatus,
    Recommendation,
    ResourceMetric,
    ScaleEvent,
    ScalingInput,
    ScalingRules,
    Tolerances,
)

MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)
MAX_INT64 = 2**63 - 1

#: controller flag defaults
CPU_INITIALIZATION_PERIOD = 120.0
DELAY_OF_INITIAL_READINESS_STATUS = 10.0
DOWNSCALE_STABILIZATION_WINDOW = 300


class MetricError(Exception):
    """One metric could not produce a recommendation (the controller's per-metric error)."""


def _int32(x: float) -> int:
    """Go's int32(float64) for in-range values: truncation toward zero."""
    return int(x)


def _ceil32(x: float) -> int:
    return math.ceil(x)


# --------------------------------------------------------------------------- replica calculator


@attrs.frozen(slots=True)
class _Groups:
    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(
    pods: Sequence[PodStatus],
    metrics: Mapping[str, PodMetric],
    *,
    cpu: bool,
    now: float,
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
    delay_of_initial_readiness_status: float = DELAY_OF_INITIAL_READINESS_STATUS,
) -> _Groups:
    """Sort pods into ready / unready / missing-metric / ignored as the controller does."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleted or pod.phase == "Failed":
            ignored.add(pod.name)
            continue
        if pod.phase == "Pending":
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if cpu:
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            elif pod.start_time + cpu_initialization_period > now:
                # inside the initialization period: ignore unready pods and samples taken
                # before one full metric window passed since the last readiness change
                is_unready = (pod.ready is False) or (
                    metric.timestamp < pod.ready_transition_time + metric.window
                )
            else:
                # after it: ignore only pods that are unready and have never been ready
                is_unready = (pod.ready is False) and (
                    pod.start_time + delay_of_initial_readiness_status > pod.ready_transition_time
                )
            if is_unready:
                unready.add(pod.name)
                continue
        ready += 1
    return _Groups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target: int
) -> tuple[float, int, int]:
    total = 0
    total_requests = 0
    n = 0
    for name, value in metrics.items():
        request = requests.get(name)
        if request is None:
            continue  # a metric for a pod we do not know
        total += value
        total_requests += request
        n += 1
    if total_requests == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = _int32((total * 100) // total_requests)
    return utilization / target, utilization, total // n


def _usage_ratio(metrics: Mapping[str, int], target: int) -> tuple[float, int]:
    usage = sum(metrics.values()) // len(metrics)
    return usage / target, usage


def _replicas_with_corrections(
    *,
    current: int,
    ratio: float,
    ready_count: int,
    values: dict[str, int],
    groups: _Groups,
    tolerances: Tolerances,
    missing_value_on_scale_down: Mapping[str, int],
    recompute: object,
) -> int:
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tolerances.within(ratio):
            return current
        return _ceil32(ratio * ready_count)
    if groups.missing:
        if ratio < 1.0:
            for name in groups.missing:
                values[name] = missing_value_on_scale_down[name]
        elif ratio > 1.0:
            for name in groups.missing:
                values[name] = 0
    if scale_up_with_unready:
        for name in groups.unready:
            values[name] = 0
    new_ratio: float = recompute(values)  # type: ignore[operator]
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new = _ceil32(new_ratio * len(values))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def resource_utilization_replicas(
    current: int,
    target_utilization: int,
    pods: Sequence[PodStatus],
    metrics: Mapping[str, PodMetric],
    tolerances: Tolerances,
    *,
    now: float,
    resource: str = "cpu",
) -> tuple[int, int, int]:
    """``GetResourceReplicas``: (replicas, utilization %, raw average milli-value)."""
    cpu = resource == "cpu"
    if not metrics:
        raise MetricError(
            f"unable to get metrics for resource {resource}: "
            "no metrics returned from resource metrics API"
        )
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, cpu=cpu, now=now)
    values = {
        k: m.value
        for k, m in metrics.items()
        if k not in groups.ignored and k not in groups.unready
    }
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests: dict[str, int] = {}
    for p in pods:
        if p.request is None:
            raise MetricError(f"missing request for {resource} in pod {p.name}")
        requests[p.name] = p.request
    ratio, utilization, raw = _utilization_ratio(values, requests, target_utilization)
    fallback = max(100, target_utilization)
    replicas = _replicas_with_corrections(
        current=current,
        ratio=ratio,
        ready_count=groups.ready_count,
        values=values,
        groups=groups,
        tolerances=tolerances,
        missing_value_on_scale_down={n: requests[n] * fallback // 100 for n in groups.missing},
        recompute=lambda v: _utilization_ratio(v, requests, target_utilization)[0],
    )
    return replicas, utilization, raw


def plain_metric_replicas(
    current: int,
    target: int,
    pods: Sequence[PodStatus],
    metrics: Mapping[str, PodMetric],
    tolerances: Tolerances,
    *,
    now: float,
    cpu: bool = False,
) -> tuple[int, int]:
    """``calcPlainMetricReplicas`` (pods metrics, raw resource values): (replicas, usage)."""
    if not metrics:
        raise MetricError("unable to get metric: no metrics returned")
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, metrics, cpu=cpu, now=now)
    values = {
        k: m.value
        for k, m in metrics.items()
        if k not in groups.ignored and k not in groups.unready
    }
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = _usage_ratio(values, target)
    replicas = _replicas_with_corrections(
        current=current,
        ratio=ratio,
        ready_count=groups.ready_count,
        values=values,
        groups=groups,
        tolerances=tolerances,
        missing_value_on_scale_down=dict.fromkeys(groups.missing, target),
        recompute=lambda v: _usage_ratio(v, target)[0],
    )
    return replicas, usage


def _ready_running(pods: Sequence[PodStatus]) -> int:
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    return sum(1 for p in pods if p.phase == "Running" and p.ready is True)


def _usage_ratio_replicas(
    current: int, ratio: float, tolerances: Tolerances, pods: Sequence[PodStatus]
) -> int:
    if current != 0:
        if tolerances.within(ratio):
            return current
        raw = ratio * _ready_running(pods)
        return MAX_INT32 if raw > MAX_INT32 else _ceil32(raw)
    return min(MAX_INT32, _ceil32(ratio))  # scale from zero ignores ready pods and tolerance


def object_value_replicas(
    current: int, target: int, usage: int, tolerances: Tolerances, pods: Sequence[PodStatus]
) -> tuple[int, int]:
    """``GetObjectMetricReplicas`` (``Value`` target): (replicas, usage)."""
    return _usage_ratio_replicas(current, usage / target, tolerances, pods), usage


def per_pod_value_replicas(
    status_replicas: int, target: int, usage: int, tolerances: Tolerances
) -> tuple[int, int]:
    """``Get{Object,External}PerPodMetricReplicas`` (``AverageValue`` target)."""
    replicas = status_replicas
    ratio = usage / (target * status_replicas) if status_replicas else math.inf
    if not tolerances.within(ratio):
        raw = math.ceil(usage / target)
        replicas = MAX_INT32 if raw > MAX_INT32 else raw
    if float(usage) >= float(MAX_INT64):
        per_pod = MAX_INT64
    else:
        per_pod = math.ceil(usage / status_replicas) if status_replicas else usage
    return replicas, per_pod


def sum_series(values: Sequence[int]) -> int:
    """Sum external metric series, saturating at MaxInt64 as the controller does."""
    usage = 0
    for v in values:
        if v > 0 and usage > MAX_INT64 - v:
            return MAX_INT64
        usage += v
    return usage


def external_value_replicas(
    current: int,
    target: int,
    series: Sequence[int],
    tolerances: Tolerances,
    pods: Sequence[PodStatus],
) -> tuple[int, int]:
    """``GetExternalMetricReplicas`` (``Value`` target): (replicas, usage)."""
    usage = sum_series(series)
    return _usage_ratio_replicas(current, usage / target, tolerances, pods), usage


# --------------------------------------------------------------------------- per-metric max


def metric_replicas(spec: MetricSpec, inp: ScalingInput, tolerances: Tolerances) -> int:
    """Replica proposal of one metric; raises :class:`MetricError` when it is invalid."""
    observed = inp.metrics.get(spec.name)
    if observed is None:
        raise MetricError(f"unable to get metric {spec.name}")
    current = inp.current_replicas
    if isinstance(spec, ResourceMetric):
        pod_metrics = _pod_metrics(spec.name, observed)
        if spec.target_utilization is not None:
            return resource_utilization_replicas(
                current,
                spec.target_utilization,
                inp.pods,
                pod_metrics,
                tolerances,
                now=inp.now,
                resource=spec.name,
            )[0]
        assert spec.target_average_value is not None
        return plain_metric_replicas(
            current,
            spec.target_average_value,
            inp.pods,
            pod_metrics,
            tolerances,
            now=inp.now,
            cpu=spec.name == "cpu",
        )[0]
    if isinstance(spec, PodsMetric):
        return plain_metric_replicas(
            current,
            spec.target_average_value,
            inp.pods,
            _pod_metrics(spec.name, observed),
            tolerances,
            now=inp.now,
        )[0]
    if isinstance(spec, ObjectMetric):
        if not isinstance(observed, int):
            raise MetricError(f"object metric {spec.name} must be one integer")
        if spec.target_type == "Value":
            return object_value_replicas(current, spec.target, observed, tolerances, inp.pods)[0]
        return per_pod_value_replicas(current, spec.target, observed, tolerances)[0]
    if isinstance(spec, ExternalMetric):
        series = _series(spec.name, observed)
        if spec.target_type == "Value":
            return external_value_replicas(current, spec.target, series, tolerances, inp.pods)[0]
        return per_pod_value_replicas(current, spec.target, sum_series(series), tolerances)[0]
    raise MetricError(f"unknown metric spec {spec!r}")


def _pod_metrics(name: str, observed: object) -> Mapping[str, PodMetric]:
    if not isinstance(observed, Mapping) or not all(
        isinstance(m, PodMetric) and isinstance(m.value, int) for m in observed.values()
    ):
        raise MetricError(f"metric {name} must map pod names to PodMetric")
    return observed


def _series(name: str, observed: object) -> Sequence[int]:
    if isinstance(observed, int) and not isinstance(observed, bool):
        return (observed,)
    if isinstance(observed, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in observed
    ):
        return observed
    raise MetricError(f"external metric {name} must be an integer or a sequence of integers")


def replicas_for_metrics(
    metrics: Sequence[MetricSpec], inp: ScalingInput, tolerances: Tolerances
) -> tuple[int, str | None, str | None]:
    """``computeReplicasForMetrics``: the largest proposal, or -1 with the first error.

    Returns (replicas, metric that won, first error). Replicas is -1 when every metric is
    invalid, or when some metric is invalid and the valid ones would scale down.
    """
    replicas = 0
    winner: str | None = None
    first_error: str | None = None
    invalid = 0
    for spec in metrics:
        try:
            proposal = metric_replicas(spec, inp, tolerances)
        except MetricError as exc:
            if invalid == 0:
                first_error = f"{spec.name}: {exc}"
            invalid += 1
            continue
        if replicas == 0 or proposal > replicas:
            replicas = proposal
            winner = spec.name
    if invalid >= len(metrics) or (invalid > 0 and replicas < inp.current_replicas):
        return (
            -1,
            None,
            f"invalid metrics ({invalid} invalid out of {len(metrics)}), "
            f"first error is: {first_error}",
        )
    return replicas, winner, None


# --------------------------------------------------------------------------- behavior


def change_in_period(period_seconds: float, events: Sequence[ScaleEvent], now: float) -> int:
    """Replicas added (or removed) by events strictly younger than the period."""
    cutoff = now - period_seconds
    return sum(e.change for e in events if e.timestamp > cutoff)


def _period_start(
    current: int,
    period_seconds: float,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now: float,
) -> int:
    """Replicas at the start of a policy's period: ``current`` with its changes undone."""
    return (
        current
        - change_in_period(period_seconds, up_events, now)
        + change_in_period(period_seconds, down_events, now)
    )


def scale_up_limit(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    if rules.select_policy == "Disabled":
        return current
    pick = min if rules.select_policy == "Min" else max
    result = MAX_INT32 if rules.select_policy == "Min" else MIN_INT32
    for policy in rules.policies:
        start = _period_start(current, policy.period_seconds, up_events, down_events, now)
        if policy.type == "Pods":
            proposed = start + policy.value
        else:
            # rounded up so a small percentage can still add one pod
            proposed = math.ceil(start * (1 + policy.value / 100))
        result = pick(result, proposed)
    return result


def scale_down_limit(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: Max selects the largest change (lowest count)."""
    if rules.select_policy == "Disabled":
        return current
    pick = max if rules.select_policy == "Min" else min
    result = MIN_INT32 if rules.select_policy == "Min" else MAX_INT32
    for policy in rules.policies:
        start = _period_start(current, policy.period_seconds, up_events, down_events, now)
        if policy.type == "Pods":
            proposed = start - policy.value
        else:
            proposed = _int32(start * (1 - policy.value / 100))
        result = pick(result, proposed)
    return result


def stabilize_with_behavior(
    recommendations: Sequence[Recommendation],
    desired: int,
    current: int,
    up_window: float,
    down_window: float,
    now: float,
) -> tuple[int, tuple[Recommendation, ...], str]:
    """``stabilizeRecommendationWithBehaviors``: (stabilized, new log, reason)."""
    up_rec = desired
    down_rec = desired
    up_cutoff = now - up_window
    down_cutoff = now - down_window
    old_index: int | None = None
    for i, rec in enumerate(recommendations):
        if rec.timestamp > up_cutoff:
            up_rec = min(rec.replicas, up_rec)
        if rec.timestamp > down_cutoff:
            down_rec = max(rec.replicas, down_rec)
        if rec.timestamp < up_cutoff and rec.timestamp < down_cutoff:
            old_index = i
    log = list(recommendations)
    new = Recommendation(now, desired)
    if old_index is not None:
        log[old_index] = new
    else:
        log.append(new)
    result = min(max(current, up_rec), down_rec)
    reason = "ReadyForNewScale"
    if result != desired:
        reason = "ScaleUpStabilized" if result < desired else "ScaleDownStabilized"
    return result, tuple(log), reason


def stabilize_legacy(
    recommendations: Sequence[Recommendation], desired: int, window: float, now: float
) -> tuple[int, tuple[Recommendation, ...]]:
    """``stabilizeRecommendation`` (no ``behavior``): the max over the downscale window."""
    cutoff = now - window
    best = desired
    old_index: int | None = None
    for i, rec in enumerate(recommendations):
        if rec.timestamp < cutoff:
            old_index = i
        elif rec.replicas > best:
            best = rec.replicas
    log = list(recommendations)
    new = Recommendation(now, desired)
    if old_index is not None:
        log[old_index] = new
    else:
        log.append(new)
    return best, tuple(log)


def convert_with_behavior(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str]:
    """``convertDesiredReplicasWithBehaviorRate``: rate limits, then min/max."""
    if desired > current:
        limit = scale_up_limit(current, up_events, down_events, behavior.scale_up, now)
        limit = max(limit, current)  # no further scale-up until old events age out
        if max_replicas > limit:
            allowed, reason = limit, "ScaleUpLimit"
        else:
            allowed, reason = max_replicas, "TooManyReplicas"
        if allowed < desired:
            return allowed, reason
    elif desired < current:
        limit = scale_down_limit(current, up_events, down_events, behavior.scale_down, now)
        limit = min(limit, current)
        if min_replicas < limit:
            allowed, reason = limit, "ScaleDownLimit"
        else:
            allowed, reason = min_replicas, "TooFewReplicas"
        if allowed > desired:
            return allowed, reason
    return desired, "DesiredWithinRange"


def convert_legacy(
    current: int, desired: int, min_replicas: int, max_replicas: int
) -> tuple[int, str]:
    """``convertDesiredReplicasWithRules``: scale-up limit max(2*current, 4), then min/max."""
    up_limit = max(2 * current, 4)
    if max_replicas > up_limit:
        maximum, limiting = up_limit, "ScaleUpLimit"
    else:
        maximum, limiting = max_replicas, "TooManyReplicas"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > maximum:
        return maximum, limiting
    return desired, "DesiredWithinRange"


def _longest_period(rules: ScalingRules) -> int:
    return max((p.period_seconds for p in rules.policies), default=0)


def record_scale_event(
    state: HPAState, behavior: Behavior | None, previous: int, new: int, now: float
) -> HPAState:
    """``storeScaleEvent``: reuse the slot of an event older than the longest policy period."""
    if behavior is None or new == previous:
        return state
    up = new > previous
    rules = behavior.scale_up if up else behavior.scale_down
    events = state.scale_up_events if up else state.scale_down_events
    cutoff = now - _longest_period(rules)
    marked = [attrs.evolve(e, outdated=True) if e.timestamp < cutoff else e for e in events]
    old_index: int | None = None
    for i, e in enumerate(marked):
        if e.outdated:
            old_index = i
    event = ScaleEvent(now, abs(new - previous))
    if old_index is not None:
        marked[old_index] = event
    else:
        marked.append(event)
    if up:
        return attrs.evolve(state, scale_up_events=tuple(marked))
    return attrs.evolve(state, scale_down_events=tuple(marked))


# --------------------------------------------------------------------------- one reconcile


@attrs.frozen(slots=True)
class HPASpec:
    """What :func:`reconcile` needs of an HPA spec."""

    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Behavior | None
    tolerance: float = 0.1
    downscale_stabilization_window: int = DOWNSCALE_STABILIZATION_WINDOW

    def tolerances(self) -> Tolerances:
        up = self.tolerance
        down = self.tolerance
        if self.behavior is not None:
            if self.behavior.scale_up.tolerance is not None:
                up = self.behavior.scale_up.tolerance
            if self.behavior.scale_down.tolerance is not None:
                down = self.behavior.scale_down.tolerance
        return Tolerances(scale_down=down, scale_up=up)


def normalize(
    spec: HPASpec, state: HPAState, current: int, desired: int, now: float
) -> tuple[int, str, HPAState]:
    """Stabilize then rate-limit/clamp a desired count (``normalizeDesiredReplicas*``)."""
    if spec.behavior is None:
        stabilized, log = stabilize_legacy(
            state.recommendations, desired, spec.downscale_stabilization_window, now
        )
        replicas, reason = convert_legacy(current, stabilized, spec.min_replicas, spec.max_replicas)
        if reason == "DesiredWithinRange" and stabilized != desired:
            reason = "ScaleDownStabilized"
        return replicas, reason, attrs.evolve(state, recommendations=log)
    b = spec.behavior
    down_window = b.scale_down.stabilization_window_seconds
    if down_window is None:
        down_window = spec.downscale_stabilization_window
    up_window = b.scale_up.stabilization_window_seconds or 0
    stabilized, log, stab_reason = stabilize_with_behavior(
        state.recommendations, desired, current, up_window, down_window, now
    )
    replicas, reason = convert_with_behavior(
        current,
        stabilized,
        spec.min_replicas,
        spec.max_replicas,
        b,
        state.scale_up_events,
        state.scale_down_events,
        now,
    )
    if reason == "DesiredWithinRange" and stab_reason != "ReadyForNewScale":
        reason = stab_reason
    return replicas, reason, attrs.evolve(state, recommendations=log)


def reconcile(spec: HPASpec, state: HPAState, inp: ScalingInput) -> tuple[Decision, HPAState]:
    """One pass of ``reconcileAutoscaler``: the decision and the controller's new memory."""
    current = inp.current_replicas
    if current == 0 and spec.min_replicas != 0:
        return Decision(0, "ScalingDisabled"), state
    if current > spec.max_replicas:
        desired, reason, metric = spec.max_replicas, "AboveMaxReplicas", None
        new_state = state
    elif current < spec.min_replicas:
        desired, reason, metric = spec.min_replicas, "BelowMinReplicas", None
        new_state = state
    else:
        proposal, metric, error = replicas_for_metrics(spec.metrics, inp, spec.tolerances())
        if proposal == -1:
            return Decision(current, "FailedGetMetrics: " + (error or "")), state
        desired = max(0, proposal)
        desired, reason, new_state = normalize(spec, state, current, desired, inp.now)
        return (
            Decision(desired, reason, desired=proposal, metric=metric),
            record_scale_event(new_state, spec.behavior, current, desired, inp.now),
        )
    return (
        Decision(desired, reason, desired=desired, metric=metric),
        record_scale_event(new_state, spec.behavior, current, desired, inp.now),
    )
