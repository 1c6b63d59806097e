"""KEDA ``ScaledObject`` rendering for the predictive and cost-aware policies.

Mapping (``keda.sh/v1alpha1``):

============================== ==============================================================
policy                         ScaledObject
============================== ==============================================================
min/max replicas               ``minReplicaCount`` / ``maxReplicaCount``
decision interval              ``pollingInterval`` (seconds)
scale-down window              ``advanced.horizontalPodAutoscalerConfig.behavior.scaleDown
                               .stabilizationWindowSeconds``
live recommendation            a ``metrics-api`` trigger reading the recommended replica count
                               from ``url`` (``valueLocation``) with ``metricType: AverageValue``
                               and ``targetValue: 1``, so the HPA KEDA creates runs
                               ceil(value / 1) = the recommended replicas;
                               ``activationTargetValue`` gates scale from zero
seasonal profile               one ``cron`` trigger per hour of the season whose provisioned
                               replicas exceed the minimum (``desiredReplicas``): capacity is
                               in place even when the recommender is unreachable
HPA floor                      a ``cpu`` trigger, ``metricType: Utilization``
============================== ==============================================================

KEDA takes the maximum over triggers, which is the policy's own "max of forecast and floor".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from cognitionos.errors import ConfigurationError

if TYPE_CHECKING:
    from cognitionos.autoscale.predictive import PredictivePolicy

__all__ = ["CronWindow", "KedaScaledObject"]


@attrs.frozen(slots=True)
class CronWindow:
    """Run at least ``replicas`` from ``start`` to ``end`` (cron expressions) in ``timezone``."""

    start: str
    end: str
    replicas: int
    timezone: str = "UTC"


@attrs.frozen(slots=True)
class KedaScaledObject:
    """A KEDA ``ScaledObject`` as a value: render with :meth:`to_manifest`, read back with
    :meth:`from_manifest`."""

    name: str
    target: str
    min_replicas: int
    max_replicas: int
    polling_interval: int = 60
    scale_down_window: int = 900
    metrics_api_url: str | None = None
    value_location: str = "replicas"
    activation_value: int = 0
    cpu_utilization: int | None = None
    cron: tuple[CronWindow, ...] = ()
    namespace: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a dict."""
        triggers: list[dict[str, Any]] = []
        if self.metrics_api_url is not None:
            triggers.append(
                {
                    "type": "metrics-api",
                    "metricType": "AverageValue",
                    "metadata": {
                        "url": self.metrics_api_url,
                        "valueLocation": self.value_location,
                        "targetValue": "1",
                        "activationTargetValue": str(self.activation_value),
                    },
                }
            )
        for w in self.cron:
            triggers.append(
                {
                    "type": "cron",
                    "metadata": {
                        "timezone": w.timezone,
                        "start": w.start,
                        "end": w.end,
                        "desiredReplicas": str(w.replicas),
                    },
                }
            )
        if self.cpu_utilization is not None:
            triggers.append(
                {
                    "type": "cpu",
                    "metricType": "Utilization",
                    "metadata": {"value": str(self.cpu_utilization)},
                }
            )
        meta: dict[str, Any] = {"name": self.name}
        if self.namespace:
            meta["namespace"] = self.namespace
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"name": self.target},
                "pollingInterval": self.polling_interval,
                "minReplicaCount": self.min_replicas,
                "maxReplicaCount": self.max_replicas,
                "advanced": {
                    "horizontalPodAutoscalerConfig": {
                        "behavior": {
                            "scaleDown": {"stabilizationWindowSeconds": self.scale_down_window}
                        }
                    }
                },
                "triggers": triggers,
            },
        }

    def to_manifest(self) -> str:
        """YAML text of the ScaledObject."""
        from cognitionos.autoscale._manifest import dump_yaml

        return dump_yaml(self.to_dict())

    @classmethod
    def from_manifest(cls, manifest: str | Mapping[str, Any]) -> KedaScaledObject:
        """Read a ScaledObject written by :meth:`to_manifest` (or shaped alike)."""
        from cognitionos.autoscale._manifest import _load

        doc = _load(manifest)
        if doc.get("apiVersion") != "keda.sh/v1alpha1" or doc.get("kind") != "ScaledObject":
            raise ConfigurationError(
                "manifest must be apiVersion keda.sh/v1alpha1, kind ScaledObject"
            )
        try:
            spec = doc["spec"]
            meta = doc.get("metadata") or {}
            window = (
                spec.get("advanced", {})
                .get("horizontalPodAutoscalerConfig", {})
                .get("behavior", {})
                .get("scaleDown", {})
                .get("stabilizationWindowSeconds", 300)
            )
            kwargs: dict[str, Any] = {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "target": spec["scaleTargetRef"]["name"],
                "min_replicas": int(spec.get("minReplicaCount", 0)),
                "max_replicas": int(spec.get("maxReplicaCount", 100)),
                "polling_interval": int(spec.get("pollingInterval", 30)),
                "scale_down_window": int(window),
            }
            cron: list[CronWindow] = []
            for i, trig in enumerate(spec.get("triggers") or []):
                md = trig.get("metadata") or {}
                kind = trig.get("type")
                if kind == "metrics-api":
                    kwargs["metrics_api_url"] = md["url"]
                    kwargs["value_location"] = md["valueLocation"]
                    kwargs["activation_value"] = int(md.get("activationTargetValue", 0))
                elif kind == "cron":
                    cron.append(
                        CronWindow(
                            md["start"],
                            md["end"],
                            int(md["desiredReplicas"]),
                            md.get("timezone", "UTC"),
                        )
                    )
                elif kind == "cpu":
                    kwargs["cpu_utilization"] = int(md["value"])
                else:
                    raise ConfigurationError(
                        f"spec.triggers[{i}].type {kind!r} is not one this policy renders"
                    )
            kwargs["cron"] = tuple(cron)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigurationError(f"ScaledObject manifest is malformed: {exc!r}") from None
        return cls(**kwargs)

    @classmethod
    def from_policy(
        cls,
        policy: PredictivePolicy,
        *,
        name: str,
        target: str,
        metrics_api_url: str | None = None,
        timezone: str = "UTC",
        polling_interval: int = 60,
    ) -> KedaScaledObject:
        """Render a (fitted) predictive policy: hourly cron floors from its seasonal profile."""
        cron: list[CronWindow] = []
        profile = policy.seasonal_profile()
        if profile is not None and policy.season == 1440:
            z = policy.headroom_z
            for hour in range(24):
                peak = max(profile[hour * 60 : hour * 60 + 60])
                need = peak + z * math.sqrt(max(peak, 1.0))
                replicas = math.ceil(
                    need / (policy.capacity_per_replica * policy.target_utilization)
                )
                replicas = min(policy.max_replicas, replicas)
                if replicas > policy.min_replicas:
                    cron.append(
                        CronWindow(f"0 {hour} * * *", f"59 {hour} * * *", replicas, timezone)
                    )
        floor_metric = policy.floor.metrics[0] if policy.floor.metrics else None
        cpu = getattr(floor_metric, "target_utilization", None)
        return cls(
            name=name,
            target=target,
            min_replicas=policy.min_replicas,
            max_replicas=policy.max_replicas,
            polling_interval=polling_interval,
            scale_down_window=round(policy.scale_down_window),
            metrics_api_url=metrics_api_url,
            cpu_utilization=cpu,
            cron=tuple(cron),
        )
