"""KedaPolicy against KEDA's documented scale-to-zero semantics, and its ScaledObject round trip.

KEDA docs (concepts/scaling-deployments, reference/scaledobject-spec) and the executor
(pkg/scaling/executor/scale_scaledobjects.go): activation when the value is *greater than*
activationTargetValue; from zero to max(minReplicaCount, 1); to zero (or idleReplicaCount) only
after LastActiveTime + cooldownPeriod is strictly in the past; cooldown does not apply before
the first activation; activation has priority over the scaling value.
"""

from __future__ import annotations

import pytest

from cognitionos.autoscale import KedaPolicy, KedaScaledObject, KedaTrigger, ScalingInput, simulate
from cognitionos.errors import ConfigurationError


def _inp(current, now, value, metric="queue"):
    metrics = {} if value is None else {metric: [round(value * 1000)]}
    return ScalingInput(current_replicas=current, now=now, metrics=metrics)


def test_activation_is_strictly_greater_and_scales_from_zero_to_one():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10, activation=5)])
    assert p.decide(_inp(0, 0, 5)).replicas == 0  # equal to the activation: not active
    d = p.decide(_inp(0, 30, 500))  # the metric would ask for 50 replicas...
    assert (d.replicas, d.reason) == (1, "KEDAScaleTargetActivated")  # ...KEDA sets 1
    # from there the HPA (minReplicas 1) scales on ceil(value / target), rate-limited
    d = p.decide(_inp(1, 60, 500))
    assert d.replicas == 5  # default scale-up policy: max(+4 pods, +100 %) per 15 s
    assert p.decide(_inp(5, 90, 500)).replicas == 10


def test_scale_from_zero_goes_to_min_replica_count_when_set():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10)], min_replicas=3, idle_replicas=0)
    assert p.decide(_inp(0, 0, 1)).replicas == 3
    # inactive (0 is not > activation 0): idle after the cooldown since the last activity
    assert p.decide(_inp(3, 100, 0)).replicas == 3
    assert p.decide(_inp(3, 301, 0)).replicas == 0
    assert p.decide(_inp(0, 330, 0)).reason == "ScalerNotActive"


def test_cooldown_counts_from_the_last_active_poll_and_is_strict():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10)], cooldown_period=300)
    p.decide(_inp(0, 0, 20))  # -> 1
    p.decide(_inp(2, 60, 20))  # still active: LastActiveTime = 60
    assert p.decide(_inp(2, 200, 0)).replicas >= 1  # cooling down; the HPA decides meanwhile
    assert p.decide(_inp(2, 360, 0)).replicas >= 1  # 60 + 300 is not *before* 360
    d = p.decide(_inp(2, 361, 0))
    assert (d.replicas, d.reason) == (0, "KEDAScaleTargetDeactivated")


def test_no_cooldown_before_the_first_activation():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10)], cooldown_period=300)
    assert p.decide(_inp(4, 0, 0)).replicas == 0  # created inactive: straight to zero
    q = KedaPolicy(triggers=[KedaTrigger("queue", target=10)], initial_cooldown_period=120)
    # meanwhile KEDA's HPA (minReplicas 1, a fresh controller with no past recommendations)
    # scales down to its floor, never to zero
    assert q.decide(_inp(4, 0, 0)).replicas == 1
    assert q.decide(_inp(1, 120, 0)).replicas == 1
    assert q.decide(_inp(1, 121, 0)).replicas == 0


def test_activation_has_priority_over_the_scaling_value():
    # the docs' example: threshold 10, activation 50, 40 messages: inactive, scaled to zero
    # even though the HPA alone would want 4 replicas
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10, activation=50)])
    d = p.decide(_inp(4, 0, 40))
    assert (d.replicas, d.reason) == (0, "KEDAScaleTargetDeactivated")


def test_any_active_trigger_keeps_it_active():
    p = KedaPolicy(
        triggers=[KedaTrigger("queue", target=10), KedaTrigger("rps", target=5, activation=1)]
    )
    inp = ScalingInput(current_replicas=0, now=0, metrics={"queue": [0], "rps": [1500]})
    assert p.decide(inp).replicas == 1


def test_missing_metric_never_scales_to_zero():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10)])
    d = p.decide(_inp(3, 0, None))
    assert d.replicas == 3  # KEDA isError without fallback: no change
    assert p.decide(_inp(0, 30, None)).reason == "TriggerError"


def test_min_replicas_without_idle_mode_is_restored_when_inactive():
    p = KedaPolicy(triggers=[KedaTrigger("queue", target=10)], min_replicas=2)
    d = p.decide(_inp(0, 0, 0))
    assert (d.replicas, d.reason) == (2, "KEDAMinReplicaCount")


def test_scaled_object_round_trip_and_keda_defaults():
    p = KedaPolicy(
        triggers=[
            KedaTrigger("queue", target=20, activation=2.5, url="http://q/metrics"),
            KedaTrigger("rps", target=100, metric_type="Value", value_location="data.rps"),
        ],
        min_replicas=2,
        max_replicas=40,
        cooldown_period=120,
        idle_replicas=0,
        polling_interval=15,
        scale_down_window=60,
        name="worker",
        target="worker-deploy",
        namespace="jobs",
    )
    text = p.to_manifest()
    assert "activationTargetValue: '2.5'" in text and "idleReplicaCount: 0" in text
    back = KedaPolicy.from_manifest(text)
    assert back == p
    seq = [(0, 0, 3), (2, 15, 90), (3, 30, 400), (8, 45, 10), (8, 300, 0), (8, 500, 0)]
    assert [back.decide(_inp(c, t, v)).replicas for c, t, v in seq] == [
        p.decide(_inp(c, t, v)).replicas for c, t, v in seq
    ]
    # a ScaledObject written by hand with KEDA's defaults left out
    minimal = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "w"},
        "spec": {
            "scaleTargetRef": {"name": "w"},
            "triggers": [
                {
                    "type": "metrics-api",
                    "name": "queue",
                    "metadata": {"url": "http://q", "valueLocation": "v", "targetValue": "5"},
                }
            ],
        },
    }
    q = KedaPolicy.from_manifest(minimal)
    assert (q.min_replicas, q.max_replicas, q.cooldown_period, q.polling_interval) == (
        0,
        100,
        300,
        30,
    )
    assert q.triggers[0].activation == 0 and q.triggers[0].metric_type == "AverageValue"
    # the predictive rendering (unnamed recommender trigger) still reads back as before
    so = KedaScaledObject.from_manifest(text)
    assert so.triggers == p.triggers and so.cooldown_period == 120


def test_bad_configurations_are_refused():
    with pytest.raises(ConfigurationError, match="idle_replicas"):
        KedaPolicy(triggers=[KedaTrigger("q", target=1)], min_replicas=1, idle_replicas=1)
    with pytest.raises(ConfigurationError, match="target"):
        KedaTrigger("q", target=0)
    with pytest.raises(ConfigurationError, match="activation"):
        KedaTrigger("q", target=1, activation=-1)
    with pytest.raises(ConfigurationError, match="at least one trigger"):
        KedaPolicy(triggers=[])
    with pytest.raises(ConfigurationError, match="targetValue"):
        KedaPolicy.from_manifest(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": "w"},
                "spec": {
                    "scaleTargetRef": {"name": "w"},
                    "triggers": [
                        {
                            "type": "metrics-api",
                            "name": "q",
                            "metadata": {"url": "u", "valueLocation": "v", "targetValue": "x"},
                        }
                    ],
                },
            }
        )


def test_scale_to_zero_in_the_simulator_pays_a_cold_start():
    # 2 hours idle, 1 hour of 50 requests/min, 2 hours idle
    trace = [0.0] * 120 + [50.0] * 60 + [0.0] * 120
    p = KedaPolicy(triggers=[KedaTrigger("requests_per_minute", target=7)], cooldown_period=300)
    report = simulate(p, trace, capacity_per_replica=10.0, startup_delay=120, metric_lag=60)
    assert report.replicas[:120] == (0,) * 120  # nothing runs while idle
    assert report.replicas[-60:] == (0,) * 60  # back to zero after the cooldown
    # the load is seen a minute late, and the first pod needs 2 minutes to start
    assert report.cold_start_minutes == 3
    assert report.scale_from_zero == 1
    assert report.violation_minutes >= report.cold_start_minutes
