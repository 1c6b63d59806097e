"""The Kubernetes HPA controller's own test tables (141 cases), replayed through our core."""

from __future__ import annotations

from typing import Any

import pytest

from cognitionos.autoscale import _core
from cognitionos.autoscale.models import (
    Behavior,
    Recommendation,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    Tolerances,
)
from tests.autoscale._hpa_data import NOW, cases, pod_values, pods_of, resource_metrics


def _tol(case: dict[str, Any]) -> Tolerances:
    t = case["tolerances"]
    return Tolerances(scale_down=t["scale_down"], scale_up=t["scale_up"])


def _rules(raw: dict[str, Any] | None, default: ScalingRules) -> ScalingRules:
    if raw is None:
        return default
    return ScalingRules(
        policies=tuple(
            ScalingPolicy(p["type"], p["value"], p["period_seconds"]) for p in raw["policies"]
        ),
        select_policy=raw["select_policy"],
        stabilization_window_seconds=raw["stabilization_window_seconds"],
    )


def _events(raw: list[dict[str, Any]]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(NOW - e["age_seconds"], e["replica_change"]) for e in raw)


@pytest.mark.parametrize("case", cases("replica_calculator_resource_cases"))
def test_resource_replica_calculator(case):
    exp = case["expected"]
    call = lambda: _core.resource_utilization_replicas(  # noqa: E731
        case["current_replicas"],
        case["target_utilization"],
        pods_of(case),
        resource_metrics(case),
        _tol(case),
        now=NOW,
    )
    if exp["error_contains"]:
        with pytest.raises(_core.MetricError, match=exp["error_contains"]):
            call()
        return
    replicas, utilization, raw = call()
    assert (replicas, utilization, raw) == (exp["replicas"], exp["utilization"], exp["raw_value"])


@pytest.mark.parametrize("case", cases("replica_calculator_metric_cases"))
def test_metric_replica_calculator(case):
    exp = case["expected"]
    kind, cur, target, tol = case["kind"], case["current_replicas"], case["target"], _tol(case)
    levels = case["metric_levels_milli"]
    if kind == "pods_average_value":
        got = _core.plain_metric_replicas(
            cur, target, pods_of(case), pod_values(case), tol, now=NOW
        )
    elif kind == "object_value":
        got = _core.object_value_replicas(cur, target, levels[0], tol, pods_of(case))
    elif kind == "object_average_value":
        got = _core.per_pod_value_replicas(cur, target, levels[0], tol)
    elif kind == "external_value":
        got = _core.external_value_replicas(cur, target, levels, tol, pods_of(case))
    else:
        assert kind == "external_per_pod_average_value"
        got = _core.per_pod_value_replicas(cur, target, _core.sum_series(levels), tol)
    assert got == (exp["replicas"], exp["usage"])


@pytest.mark.parametrize("case", cases("scaling_with_rules_cases"))
def test_scaling_with_rules(case):
    behavior = Behavior(
        scale_up=_rules(case.get("scale_up_rules"), ScalingRules.default_scale_up()),
        scale_down=_rules(case.get("scale_down_rules"), ScalingRules.default_scale_down()),
    )
    got = _core.convert_with_behavior(
        case["current_replicas"],
        case["prenormalized_desired_replicas"],
        case["min_replicas"],
        case["max_replicas"],
        behavior,
        _events(case["scale_up_events"]),
        _events(case["scale_down_events"]),
        NOW,
    )
    assert got == (case["expected"]["replicas"], case["expected"]["condition"])


@pytest.mark.parametrize("case", cases("stabilization_with_behavior_cases"))
def test_stabilization_with_behavior(case):
    recs = tuple(
        Recommendation(NOW - r["age_seconds"], r["replicas"]) for r in case["recommendations"]
    )
    replicas, log, _ = _core.stabilize_with_behavior(
        recs,
        case["prenormalized_desired_replicas"],
        case["current_replicas"],
        case["scale_up_stabilization_window_seconds"],
        case["scale_down_stabilization_window_seconds"],
        NOW,
    )
    assert replicas == case["expected"]["replicas"]
    stored = case["expected"]["stored_recommendations"]
    if stored is not None:
        assert [r.replicas for r in log] == stored


@pytest.mark.parametrize("case", cases("legacy_stabilization_cases"))
def test_legacy_stabilization(case):
    recs = tuple(
        Recommendation(NOW - r["age_seconds"], r["replicas"]) for r in case["recommendations"]
    )
    replicas, log = _core.stabilize_legacy(
        recs,
        case["prenormalized_desired_replicas"],
        case["downscale_stabilization_window_seconds"],
        NOW,
    )
    assert (replicas, len(log)) == (case["expected"]["replicas"], case["expected"]["log_length"])


@pytest.mark.parametrize("case", cases("legacy_convert_desired_replicas_cases"))
def test_legacy_convert(case):
    got = _core.convert_legacy(
        case["current_replicas"],
        case["prenormalized_desired_replicas"],
        case["min_replicas"],
        case["max_replicas"],
    )
    assert got == (case["expected"]["replicas"], case["expected"]["condition"])


@pytest.mark.parametrize("case", cases("limit_function_cases"))
def test_limit_functions(case):
    rules = _rules(case["rules"], ScalingRules.default_scale_up())
    fn = _core.scale_up_limit if case["fn"] == "scale_up_limit" else _core.scale_down_limit
    assert fn(case["current_replicas"], (), (), rules, NOW) == case["expected"]
