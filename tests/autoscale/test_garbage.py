"""Garbage in: only a result or cognitionos's own errors come out."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.autoscale import HPAPolicy, KedaScaledObject, PodMetric, PodStatus, ScalingInput
from cognitionos.dr import RetentionPolicy, plan_recovery
from cognitionos.errors import CognitionError

pytest.importorskip("yaml")

leaf = (
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
)
tree = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
keys = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
        "scaleTargetRef",
        "minReplicas",
        "maxReplicas",
        "metrics",
        "behavior",
        "type",
        "resource",
        "target",
        "policies",
        "triggers",
    ]
)
manifest_like = st.dictionaries(keys, tree, max_size=6).map(
    lambda d: {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", **d}
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifest_like)
def test_hpa_manifest_garbage(doc):
    try:
        HPAPolicy.from_manifest(doc)
    except CognitionError:
        pass


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(keys, tree, max_size=6))
def test_keda_manifest_garbage(doc):
    try:
        KedaScaledObject.from_manifest(
            {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", **doc}
        )
    except CognitionError:
        pass


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(0, 6),
    values=st.lists(st.integers(-(10**6), 10**9), min_size=0, max_size=6),
    requests=st.lists(st.none() | st.integers(-1000, 10**6), min_size=6, max_size=6),
    phases=st.lists(
        st.sampled_from(["Running", "Pending", "Failed", "Unknown"]), min_size=6, max_size=6
    ),
    other=tree,
)
def test_decide_never_raises_on_odd_observations(n, values, requests, phases, other):
    hpa = HPAPolicy(min_replicas=0, max_replicas=50, target_utilization=0.6)
    pods = tuple(PodStatus(f"p{i}", phase=phases[i], request=requests[i]) for i in range(n))  # type: ignore[arg-type]
    cpu = {f"p{i}": PodMetric(v) for i, v in enumerate(values)}
    for metrics in ({"cpu": cpu}, {"cpu": other}, {}):
        d = hpa.decide(ScalingInput(current_replicas=n, now=0.0, pods=pods, metrics=metrics))
        assert 0 <= d.replicas <= 50 or d.replicas == n


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["keep_last", "keep_daily", "keep_within", "group_by", "keep_tags"]), tree
    )
)
def test_retention_policy_garbage(kw):
    # found by this test: group_by=None used to raise a raw TypeError
    try:
        RetentionPolicy(**kw)
    except CognitionError:
        pass


@settings(max_examples=50, deadline=None)
@given(st.lists(leaf, min_size=4, max_size=4))
def test_plan_garbage(values):
    try:
        plan_recovery(
            size_bytes=values[0],
            change_rate=values[1],
            backup_throughput=values[2],
            restore_throughput=values[3],
        )
    except CognitionError:
        pass
