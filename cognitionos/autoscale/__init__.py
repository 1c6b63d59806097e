"""Autoscale engine: how many replicas to run (HPA-exact, predictive, cost-aware) and a simulator.

from cognitionos.autoscale import HPAPolicy, ScalingInput, simulate
hpa = HPAPolicy(min_replicas=2, max_replicas=100, target_utilization=0.7)
report = simulate(hpa, trace, capacity_per_replica=10.0, startup_delay=120, metric_lag=60)
"""

from __future__ import annotations

from cognitionos.autoscale._manifest import lint_manifests
from cognitionos.autoscale.hpa import HPAPolicy
from cognitionos.autoscale.keda import CronWindow, KedaPolicy, KedaScaledObject, KedaTrigger
from cognitionos.autoscale.models import (
    Behavior,
    Decision,
    ExternalMetric,
    HPAState,
    ObjectMetric,
    PodMetric,
    PodsMetric,
    PodStatus,
    Recommendation,
    ResourceMetric,
    ScaleEvent,
    ScalingInput,
    ScalingPolicy,
    ScalingRules,
    Tolerances,
)
from cognitionos.autoscale.predictive import CostAwarePolicy, PredictivePolicy
from cognitionos.autoscale.simulate import (
    SimulationReport,
    SpotMarket,
    load_trace,
    plot_svg,
    simulate,
)

__all__ = [
    "Behavior",
    "CostAwarePolicy",
    "CronWindow",
    "Decision",
    "ExternalMetric",
    "HPAPolicy",
    "HPAState",
    "KedaPolicy",
    "KedaScaledObject",
    "KedaTrigger",
    "ObjectMetric",
    "PodMetric",
    "PodStatus",
    "PodsMetric",
    "PredictivePolicy",
    "Recommendation",
    "ResourceMetric",
    "ScaleEvent",
    "ScalingInput",
    "ScalingPolicy",
    "ScalingRules",
    "SimulationReport",
    "SpotMarket",
    "Tolerances",
    "lint_manifests",
    "load_trace",
    "plot_svg",
    "simulate",
]
