"""HPAPolicy end to end: state threading, behavior over time, invalid metrics, manifests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.autoscale import (
    Behavior,
    ExternalMetric,
    HPAPolicy,
    HPAState,
    ObjectMetric,
    PodMetric,
    PodsMetric,
    PodStatus,
    ResourceMetric,
    ScalingInput,
    ScalingPolicy,
    ScalingRules,
)
from cognitionos.errors import ConfigurationError

pytest.importorskip("yaml")


def _inp(n: int, milli_per_pod: int, now: float, **extra: object) -> ScalingInput:
    # pods started long ago (outside the CPU initialization period), each requesting 1 CPU
    pods = tuple(PodStatus(f"p{i}", start_time=-1000.0, request=1000) for i in range(n))
    metrics: dict[str, object] = {
        "cpu": {f"p{i}": PodMetric(milli_per_pod, timestamp=now - 30, window=60) for i in range(n)}
    }
    metrics.update(extra)
    return ScalingInput(current_replicas=n, now=now, pods=pods, metrics=metrics)


def test_default_behavior_rate_limits_over_time():
    hpa = HPAPolicy(min_replicas=1, max_replicas=100, target_utilization=0.5, behavior=Behavior())
    # 10 pods at 100% of a 50% target: ratio 2 -> 20; default limit max(10+4, 2*10) = 20
    d = hpa.decide(_inp(10, 1000, now=0.0))
    assert (d.replicas, d.reason) == (20, "DesiredWithinRange")
    # 10 s later, 20 pods at 100%: desired 40, but the +10 event (10 s old, inside 15 s)
    # makes the period start at 10 -> limit max(14, 20) = 20
    d = hpa.decide(_inp(20, 1000, now=10.0))
    assert (d.replicas, d.reason) == (20, "ScaleUpLimit")
    # 20 s after the event it left every 15 s period: limit max(24, 40) = 40
    d = hpa.decide(_inp(20, 1000, now=20.0))
    assert (d.replicas, d.reason) == (40, "DesiredWithinRange")
    # the t=0 event is older than the longest policy period (15 s): its slot is reused
    assert [(e.timestamp, e.change) for e in hpa.state.scale_up_events] == [(20.0, 20)]


def test_scale_down_waits_for_the_stabilization_window():
    hpa = HPAPolicy(min_replicas=1, max_replicas=100, target_utilization=0.5, behavior=Behavior())
    assert hpa.decide(_inp(10, 500, now=0.0)).replicas == 10  # ratio 1: within tolerance
    # load halves: desired 5, but the 10 recommended at t=0 holds for 300 s (the default)
    d = hpa.decide(_inp(10, 250, now=60.0))
    assert (d.replicas, d.reason) == (10, "ScaleDownStabilized")
    d = hpa.decide(_inp(10, 250, now=301.0))
    assert d.replicas == 5


def test_step_is_pure_and_state_is_explicit():
    hpa = HPAPolicy(min_replicas=1, max_replicas=100, target_utilization=0.5, behavior=Behavior())
    d1, s1 = hpa.step(HPAState(), _inp(10, 1000, now=0.0))
    d2, s2 = hpa.step(HPAState(), _inp(10, 1000, now=0.0))
    assert d1 == d2
    assert s1 == s2
    assert hpa.state == HPAState()  # step() never touches the policy's own state


def test_invalid_metric_blocks_scale_down_but_not_scale_up():
    hpa = HPAPolicy(
        min_replicas=1,
        max_replicas=100,
        target_utilization=0.5,
        metrics=[PodsMetric("qps", 10_000)],
    )
    # cpu says scale down (25% of 50%), qps is missing: no scaling at all
    d = hpa.decide(_inp(10, 250, now=0.0))
    assert d.replicas == 10
    assert d.reason.startswith("FailedGetMetrics")
    # cpu says scale up (100% of 50% -> 20): proceeds; legacy limit max(2*10, 4) = 20
    d = hpa.decide(_inp(10, 1000, now=60.0))
    assert d.replicas == 20


def test_per_metric_max():
    hpa = HPAPolicy(
        min_replicas=1,
        max_replicas=100,
        target_utilization=0.5,
        metrics=[ExternalMetric("queue", 5_000, "AverageValue")],
    )
    # cpu: ratio 0.6/0.5 = 1.2 -> ceil(1.2 * 4) = 5; queue: 40 msgs / 5 per pod = 8 -> 8
    d = hpa.decide(_inp(4, 600, now=0.0, queue=[40_000]))
    assert (d.replicas, d.metric) == (8, "queue")


def test_separate_up_and_down_tolerances():
    up_tight = Behavior(
        scale_up=ScalingRules(
            policies=(ScalingPolicy("Percent", 100, 15),),
            stabilization_window_seconds=0,
            tolerance=0.01,
        ),
        scale_down=ScalingRules(
            policies=(ScalingPolicy("Percent", 100, 15),), stabilization_window_seconds=0
        ),
    )
    # utilization 52% of 50%: ratio 1.04, outside 1% up-tolerance, inside default 10%
    assert (
        HPAPolicy(max_replicas=50, target_utilization=0.5, behavior=up_tight)
        .decide(_inp(10, 520, now=0.0))
        .replicas
        == 11
    )
    assert (
        HPAPolicy(max_replicas=50, target_utilization=0.5, behavior=Behavior())
        .decide(_inp(10, 520, now=0.0))
        .replicas
        == 10
    )
    # 46%: ratio 0.92 is inside the 10% down-tolerance of both
    assert (
        HPAPolicy(max_replicas=50, target_utilization=0.5, behavior=up_tight)
        .decide(_inp(10, 460, now=0.0))
        .replicas
        == 10
    )


def test_disabled_scale_down_and_bounds():
    frozen = Behavior(
        scale_down=ScalingRules(policies=(ScalingPolicy("Pods", 1, 60),), select_policy="Disabled")
    )
    hpa = HPAPolicy(min_replicas=2, max_replicas=30, target_utilization=0.5, behavior=frozen)
    assert hpa.decide(_inp(10, 100, now=0.0)).replicas == 10
    # current above max: the controller goes straight to max without reading metrics
    assert hpa.decide(_inp(40, 100, now=1.0)).replicas == 30
    assert hpa.decide(_inp(1, 100, now=2.0)).replicas == 2
    assert hpa.decide(_inp(0, 100, now=3.0)).reason == "ScalingDisabled"


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    milli=st.integers(0, 5000),
    target=st.integers(10, 150),
    lo=st.integers(1, 10),
    span=st.integers(0, 60),
)
def test_decisions_stay_within_bounds(n, milli, target, lo, span):
    hi = lo + span
    hpa = HPAPolicy(min_replicas=lo, max_replicas=hi, target_utilization=target / 100)
    d = hpa.decide(_inp(n, milli, now=0.0))
    assert lo <= d.replicas <= hi


MANIFEST = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
  namespace: shop
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
  minReplicas: 2
  maxReplicas: 100
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 70
  - type: ContainerResource
    containerResource:
      name: memory
      container: app
      target:
        type: AverageValue
        averageValue: 512Mi
  - type: Pods
    pods:
      metric:
        name: packets-per-second
      target:
        type: AverageValue
        averageValue: 1k
  - type: Object
    object:
      metric:
        name: requests-per-second
      describedObject:
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        name: main-route
      target:
        type: Value
        value: 2500m
  - type: External
    external:
      metric:
        name: queue_messages_ready
        selector:
          matchLabels:
            queue: worker_tasks
      target:
        type: AverageValue
        averageValue: 30
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 600
      selectPolicy: Min
      tolerance: 0.05
      policies:
      - type: Pods
        value: 4
        periodSeconds: 60
      - type: Percent
        value: 10
        periodSeconds: 60
"""


def test_manifest_reads_every_field():
    hpa = HPAPolicy.from_manifest(MANIFEST)
    assert (hpa.name, hpa.namespace) == ("web", "shop")
    assert hpa.scale_target == ("apps/v1", "Deployment", "web")
    assert (hpa.min_replicas, hpa.max_replicas) == (2, 100)
    cpu, mem, pods, obj, ext = hpa.metrics
    assert cpu == ResourceMetric("cpu", target_utilization=70)
    # 512Mi = 512 * 2**20 bytes, in milli-units
    assert mem == ResourceMetric("memory", target_average_value=512 * 2**20 * 1000, container="app")
    assert pods == PodsMetric("packets-per-second", 1_000_000)
    assert obj == ObjectMetric(
        "requests-per-second", 2500, "Value", ("networking.k8s.io/v1", "Ingress", "main-route")
    )
    assert ext == ExternalMetric(
        "queue_messages_ready", 30_000, "AverageValue", (("queue", "worker_tasks"),)
    )
    assert hpa.behavior is not None
    down = hpa.behavior.scale_down
    assert (down.stabilization_window_seconds, down.select_policy, down.tolerance) == (
        600,
        "Min",
        0.05,
    )
    assert down.policies == (ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60))
    # scaleUp was absent: the API server's defaults
    assert hpa.behavior.scale_up == ScalingRules.default_scale_up()


def test_manifest_round_trip():
    import yaml

    hpa = HPAPolicy.from_manifest(MANIFEST)
    text = hpa.to_manifest()
    again = HPAPolicy.from_manifest(text)
    assert again == hpa
    assert again.to_manifest() == text
    doc = yaml.safe_load(text)
    original = yaml.safe_load(MANIFEST)
    assert doc["spec"]["metrics"][0] == original["spec"]["metrics"][0]
    assert doc["spec"]["metrics"][4] == original["spec"]["metrics"][4]
    assert (
        doc["spec"]["behavior"]["scaleDown"]["policies"]
        == original["spec"]["behavior"]["scaleDown"]["policies"]
    )


def test_manifest_defaults():
    hpa = HPAPolicy.from_manifest(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "x"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 5},
        }
    )
    assert hpa.min_replicas == 1
    assert hpa.metrics == (ResourceMetric("cpu", target_utilization=80),)
    assert hpa.behavior is None


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda m: m.replace("autoscaling/v2", "autoscaling/v1"), "autoscaling/v2"),
        (lambda m: m.replace("averageValue: 1k", "averageValue: lots"), "averageValue"),
        (lambda m: m.replace("value: 4\n", "value: -4\n"), "value must be > 0"),
        (lambda m: m.replace("selectPolicy: Min", "selectPolicy: Most"), "selectPolicy"),
        (lambda m: m.replace("maxReplicas: 100", "maxReplicas: 1"), "min_replicas"),
        (lambda m: "[1, 2", "YAML"),
    ],
)
def test_manifest_errors_name_the_field(edit, needle):
    with pytest.raises(ConfigurationError, match=needle):
        HPAPolicy.from_manifest(edit(MANIFEST))
