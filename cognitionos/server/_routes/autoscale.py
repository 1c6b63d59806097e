"""``/v1/autoscale``: replay a posted load trace through a policy, one HPA decision, and the
``autoscaling/v2`` manifest round trip. Nothing is stored (nothing to audit).

A trace holds at most :data:`MAX_MINUTES` minutes (two weeks); simulations run off the event
loop under the compute limiter.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cognitionos.server._compute import engine_errors, offload, plain
from cognitionos.server._http import Principal, require, state_of

__all__ = ["MAX_MINUTES", "router"]

router = APIRouter(prefix="/v1/autoscale", tags=["autoscale"])

#: longest trace one simulation may replay (minutes)
MAX_MINUTES = 14 * 1440
Manifest = Annotated[str, Field(min_length=1, max_length=65_536)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PolicySpec(Strict):
    kind: Literal["hpa", "predictive", "cost"] = "hpa"
    manifest: Manifest | None = Field(None, description="an HPA manifest (YAML) for kind=hpa")
    target_utilization: Annotated[float, Field(gt=0, le=1)] = 0.7
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 100

    @model_validator(mode="after")
    def _ordered(self) -> PolicySpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas must not exceed max_replicas")
        if self.manifest is not None and self.kind != "hpa":
            raise ValueError("a manifest describes an HPA: use kind=hpa")
        return self


class Simulate(Strict):
    trace: Annotated[
        list[Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]],
        Field(min_length=1, max_length=MAX_MINUTES, description="requests per minute"),
    ]
    policy: PolicySpec = Field(default_factory=lambda: PolicySpec.model_validate({}))
    capacity_per_replica: Annotated[float, Field(gt=0, le=1e9)] = 10.0
    startup_delay: Annotated[float, Field(ge=0, le=86_400)] = 120.0
    metric_lag: Annotated[float, Field(ge=0, le=86_400)] = 60.0
    decision_interval: Annotated[float, Field(ge=15, le=86_400)] = 60.0
    price_per_replica_hour: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    series: bool = Field(False, description="include the per-minute replica series")


class Recommend(Strict):
    policy: PolicySpec = Field(default_factory=lambda: PolicySpec.model_validate({}))
    current_replicas: Annotated[int, Field(ge=0, le=1000)]
    cpu_utilization: Annotated[float, Field(ge=0, le=10_000)] = Field(
        description="average CPU of the ready pods, percent of their request"
    )


class HPAParams(Strict):
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)]
    target_utilization: Annotated[float, Field(gt=0, le=1)] = 0.7
    name: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9.-]+$")] = "app"
    namespace: (
        Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9-]+$")] | None
    ) = None


class HPAManifest(Strict):
    manifest: Manifest


def _policy(spec: PolicySpec, capacity: float, startup: float, lag: float) -> Any:
    from cognitionos.autoscale import CostAwarePolicy, HPAPolicy, PredictivePolicy

    if spec.kind == "hpa":
        if spec.manifest is not None:
            return HPAPolicy.from_manifest(spec.manifest)
        return HPAPolicy(
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            target_utilization=spec.target_utilization,
        )
    common: dict[str, Any] = {
        "capacity_per_replica": capacity,
        "min_replicas": spec.min_replicas,
        "max_replicas": spec.max_replicas,
        "startup_delay": startup,
        "metric_lag": lag,
    }
    return PredictivePolicy(**common) if spec.kind == "predictive" else CostAwarePolicy(**common)


@router.post("/simulate", summary="Replay a load trace through a policy (off the event loop)")
async def simulate(
    request: Request,
    body: Simulate,
    _p: Annotated[Principal, Depends(require("autoscale:compute"))],
) -> dict[str, Any]:
    """SLO violation minutes, unserved requests, replica-hours, cost and flips."""
    from cognitionos.autoscale import simulate as replay

    def run() -> dict[str, Any]:
        policy = _policy(
            body.policy, body.capacity_per_replica, body.startup_delay, body.metric_lag
        )
        report = replay(
            policy,
            body.trace,
            capacity_per_replica=body.capacity_per_replica,
            startup_delay=body.startup_delay,
            metric_lag=body.metric_lag,
            decision_interval=body.decision_interval,
            price_per_replica_hour=body.price_per_replica_hour,
        )
        doc: dict[str, Any] = {"policy": body.policy.kind, **plain(report.as_dict())}
        if body.series:
            doc["replicas"] = list(report.replicas)
            doc["ready"] = list(report.ready)
        return doc

    result: dict[str, Any] = await offload(request, run)
    state_of(request).engine_counters["autoscale"].inc("simulations")
    return result


@router.post("/recommend", summary="One HPA decision for the current replicas and CPU")
def recommend(
    request: Request,
    body: Recommend,
    _p: Annotated[Principal, Depends(require("autoscale:compute"))],
) -> dict[str, Any]:
    from cognitionos.autoscale import HPAPolicy, PodMetric, PodStatus, ScalingInput

    def run() -> dict[str, Any]:
        spec = body.policy
        if spec.kind != "hpa":
            from cognitionos.errors import ConfigurationError

            raise ConfigurationError("recommend answers for an HPA policy (kind=hpa)")
        hpa: HPAPolicy = _policy(spec, 1.0, 0.0, 0.0)
        pods = tuple(
            PodStatus(f"pod-{i}", start_time=-3600.0, request=1000)
            for i in range(body.current_replicas)
        )
        # utilization is percent of the request: 1000 milli-CPU requested, so x% is 10x milli
        sample = PodMetric(round(body.cpu_utilization * 10), timestamp=-30.0, window=60.0)
        metrics = {m.name: {pod.name: sample for pod in pods} for m in hpa.metrics}
        d = hpa.decide(
            ScalingInput(
                current_replicas=body.current_replicas, now=0.0, pods=pods, metrics=metrics
            )
        )
        return {
            "replicas": d.replicas,
            "reason": d.reason,
            "desired": d.desired,
            "metric": d.metric,
        }

    answer: dict[str, Any] = engine_errors(run)
    state_of(request).engine_counters["autoscale"].inc("decisions")
    return answer


@router.post("/hpa/render", summary="The autoscaling/v2 HPA manifest for these settings")
def render_hpa(
    body: HPAParams, _p: Annotated[Principal, Depends(require("autoscale:compute"))]
) -> dict[str, Any]:
    from cognitionos.autoscale import HPAPolicy

    def run() -> dict[str, Any]:
        hpa = HPAPolicy(
            min_replicas=body.min_replicas,
            max_replicas=body.max_replicas,
            target_utilization=body.target_utilization,
            name=body.name,
            namespace=body.namespace,
        )
        return {"manifest": hpa.to_manifest(), "document": plain(hpa.to_dict())}

    return engine_errors(run)


@router.post("/hpa/normalize", summary="Read an HPA manifest and write it back (round trip)")
def normalize_hpa(
    body: HPAManifest, _p: Annotated[Principal, Depends(require("autoscale:compute"))]
) -> dict[str, Any]:
    """Parses the manifest as the controller would (defaults filled in) and prints it again."""
    from cognitionos.autoscale import HPAPolicy, lint_manifests

    def run() -> dict[str, Any]:
        hpa = HPAPolicy.from_manifest(body.manifest)
        return {
            "manifest": hpa.to_manifest(),
            "document": plain(hpa.to_dict()),
            "min_replicas": hpa.min_replicas,
            "max_replicas": hpa.max_replicas,
            "problems": lint_manifests(body.manifest),
        }

    return engine_errors(run)
