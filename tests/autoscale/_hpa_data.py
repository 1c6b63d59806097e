"""Load the Kubernetes HPA conformance cases and turn them into controller inputs.

The mapping follows the file's own ``harness_semantics`` (pods, start times, readiness,
per-container metrics), which describe the fixtures of the upstream Go tests.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from cognitionos.autoscale.models import PodMetric, PodStatus
from cognitionos.testing import SharedDataMissing, shared_data
from tests.conftest import missing_data_reason

CASES_FILE = "infra/hpa_cases.json"
SECTION_SIZES = {
    "replica_calculator_resource_cases": 47,
    "replica_calculator_metric_cases": 29,
    "scaling_with_rules_cases": 42,
    "stabilization_with_behavior_cases": 11,
    "legacy_stabilization_cases": 5,
    "legacy_convert_desired_replicas_cases": 5,
    "limit_function_cases": 2,
}
NOW = 1_000_000.0


def _load() -> dict[str, Any] | None:
    try:
        return json.loads(shared_data(CASES_FILE).read_text("utf-8"))  # type: ignore[no-any-return]
    except SharedDataMissing:
        if os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1":
            raise
        return None


_CASES = _load()


def cases(section: str) -> list[Any]:
    if _CASES is None:
        skip = pytest.mark.skip(reason=missing_data_reason(CASES_FILE))
        return [
            pytest.param(None, marks=skip, id=f"{i:03d}") for i in range(SECTION_SIZES[section])
        ]
    return [pytest.param(c, id=f"{i:03d}-{c['name']}") for i, c in enumerate(_CASES[section])]


def pods_of(case: dict[str, Any]) -> tuple[PodStatus, ...]:
    phases = case.get("pod_phase") or []
    readiness = case.get("pod_readiness") or []
    deleted = case.get("pod_deleted") or []
    starts = case.get("pod_start") or []
    requests = case.get("requests_milli_per_container") or []
    per_pod = 2 if case.get("container", "") == "" else 1
    n = max(case["current_replicas"], len(phases))
    out = []
    for i in range(n):
        start = starts[i] if i < len(starts) else None
        start_time = {"hot": NOW - 60, "cool": NOW - 180}.get(start or "", 0.0)
        out.append(
            PodStatus(
                name=f"test-pod-{i}",
                phase=phases[i] if i < len(phases) else "Running",
                ready=(readiness[i] == "True") if i < len(readiness) else True,
                deleted=bool(deleted[i]) if i < len(deleted) else False,
                start_time=start_time,
                ready_transition_time=0.0,
                request=(requests[i] * per_pod) if i < len(requests) else None,
            )
        )
    return tuple(out)


def resource_metrics(case: dict[str, Any]) -> dict[str, PodMetric]:
    names = case.get("metric_pod_names") or []
    container = case.get("container", "")
    out = {}
    for i, levels in enumerate(case["metric_levels_milli"]):
        name = names[i] if i < len(names) else f"test-pod-{i}"
        if container == "":
            if len(levels) < 2:
                continue  # a pod reporting fewer containers than it has is missing
            value = sum(levels)
        else:
            j = {"container1": 0, "container2": 1}[container]
            if j >= len(levels):
                continue
            value = levels[j]
        out[name] = PodMetric(value=value, timestamp=0.0, window=60.0)
    return out


def pod_values(case: dict[str, Any]) -> dict[str, PodMetric]:
    return {
        f"test-pod-{i}": PodMetric(value=v, timestamp=0.0, window=60.0)
        for i, v in enumerate(case["metric_levels_milli"])
    }
