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

:class:`KedaPolicy` is KEDA itself as a policy: ``metrics-api`` triggers (queue length,
requests per second) with ``targetValue`` and ``activationTargetValue``, scale to and from
zero with ``cooldownPeriod`` (and ``idleReplicaCount``), the 1..N range left to the HPA KEDA
creates. It renders to and reads from the same ``ScaledObject`` (named ``metrics-api``
triggers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from cognitionos.autoscale.models import (
    Behavior,
    Decision,
    ExternalMetric,
    HPAState,
    ScalingInput,
    ScalingRules,
)
from cognitionos.errors import ConfigurationError

if TYPE_CHECKING:
    from cognitionos.autoscale.predictive import PredictivePolicy

__all__ = ["CronWindow", "KedaPolicy", "KedaScaledObject", "KedaTrigger"]


@attrs.frozen(slots=True)
class CronWindow:
    """Run at least ``replicas`` from ``start`` to ``end`` (cron expressions) in ``timezone``."""

    start: str
    end: str
    replicas: int
    timezone: str = "UTC"


def _number(text: object, field: str) -> float:
    try:
        value = float(str(text))
    except ValueError:
        raise ConfigurationError(f"{field} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{field} must be >= 0 and finite, got {text!r}")
    return value


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@attrs.frozen(slots=True)
class KedaTrigger:
    """A ``metrics-api`` trigger on ``metric``: a value in units (requests/s, messages).

    ``target``: per replica (``AverageValue``: the HPA runs ceil(value / target)) or for the
    whole workload (``Value``). The trigger is **active** when the value is strictly greater
    than ``activation`` (KEDA's ``activationTargetValue``, default 0); activity alone decides
    scaling from and to zero. In a :class:`ScalingInput` the metric is an external series of
    milli-units (``metrics[metric] = [ceil(value x 1000)]``).
    """

    metric: str
    target: float
    activation: float = 0.0
    metric_type: Literal["AverageValue", "Value"] = "AverageValue"
    url: str = "http://metrics.local/value"
    value_location: str = "value"

    def __attrs_post_init__(self) -> None:
        if not self.metric:
            raise ConfigurationError("KEDA trigger needs a metric name")
        if not (math.isfinite(self.target) and self.target > 0):
            raise ConfigurationError(
                f"KEDA trigger {self.metric!r}: target must be > 0, got {self.target!r}"
            )
        if not (math.isfinite(self.activation) and self.activation >= 0):
            raise ConfigurationError(
                f"KEDA trigger {self.metric!r}: activation must be >= 0, got {self.activation!r}"
            )
        if self.metric_type not in ("AverageValue", "Value"):
            raise ConfigurationError(
                f"KEDA trigger {self.metric!r}: metric_type must be AverageValue or Value"
            )


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
    cooldown_period: int = 300
    idle_replicas: int | None = None
    initial_cooldown_period: int = 0
    triggers: tuple[KedaTrigger, ...] = ()

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
        for t in self.triggers:
            triggers.append(
                {
                    "type": "metrics-api",
                    "name": t.metric,
                    "metricType": t.metric_type,
                    "metadata": {
                        "url": t.url,
                        "valueLocation": t.value_location,
                        "targetValue": _fmt(t.target),
                        "activationTargetValue": _fmt(t.activation),
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
        extra: dict[str, Any] = {}
        if self.idle_replicas is not None:
            extra["idleReplicaCount"] = self.idle_replicas
        if self.initial_cooldown_period:
            extra["initialCooldownPeriod"] = self.initial_cooldown_period
        return {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"name": self.target},
                "pollingInterval": self.polling_interval,
                "cooldownPeriod": self.cooldown_period,
                **extra,
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
                "cooldown_period": int(spec.get("cooldownPeriod", 300)),
                "idle_replicas": None
                if spec.get("idleReplicaCount") is None
                else int(spec["idleReplicaCount"]),
                "initial_cooldown_period": int(spec.get("initialCooldownPeriod", 0)),
            }
            cron: list[CronWindow] = []
            named: list[KedaTrigger] = []
            for i, trig in enumerate(spec.get("triggers") or []):
                md = trig.get("metadata") or {}
                kind = trig.get("type")
                if kind == "metrics-api" and trig.get("name"):
                    where = f"spec.triggers[{i}].metadata"
                    named.append(
                        KedaTrigger(
                            metric=str(trig["name"]),
                            target=_number(md["targetValue"], f"{where}.targetValue"),
                            activation=_number(
                                md.get("activationTargetValue", 0),
                                f"{where}.activationTargetValue",
                            ),
                            metric_type=trig.get("metricType", "AverageValue"),
                            url=md["url"],
                            value_location=md["valueLocation"],
                        )
                    )
                elif kind == "metrics-api":
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
            kwargs["triggers"] = tuple(named)
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


class KedaPolicy:
    """KEDA's scale executor plus the HPA it creates, as a policy.

    Every decision (KEDA polls every ``polling_interval``): the workload is **active** when
    any trigger's value is strictly greater than its ``activation``. Then, as KEDA's
    ``scale_scaledobjects.go`` does:

    * active and at 0 replicas (or below ``min_replicas`` with ``idle_replicas`` set): scale
      to ``max(min_replicas, 1)`` — not to what the metric asks; the HPA takes it from there;
    * active otherwise: remember the time (``LastActiveTime``) and let the HPA decide;
    * inactive with replicas above ``idle_replicas`` (if set) or above 0 with
      ``min_replicas == 0``: scale to ``idle_replicas`` / 0 once ``LastActiveTime +
      cooldown_period`` is strictly before now (never active: at once, or
      ``initial_cooldown_period`` after the first decision); until then the HPA decides;
    * inactive below ``min_replicas`` without idle mode: scale to ``min_replicas``;
    * a trigger without a value (metric missing): nothing is active and nothing is scaled
      to zero (KEDA's ``isError`` without ``fallback``); the HPA does not scale down.

    The HPA has ``minReplicas = max(min_replicas, 1)``, one External metric per trigger
    (``AverageValue`` / ``Value`` in milli-units) and ``behavior`` (default: Kubernetes'
    defaults with the scale-down window from ``scale_down_window``)::

        p = KedaPolicy(triggers=[KedaTrigger("queue_length", target=20, activation=5)])
        p.decide(ScalingInput(current_replicas=0, now=0, metrics={"queue_length": [6000]}))
        # Decision(replicas=1, reason='KEDAScaleTargetActivated')
    """

    def __init__(
        self,
        *,
        triggers: Sequence[KedaTrigger],
        min_replicas: int = 0,
        max_replicas: int = 100,
        cooldown_period: int = 300,
        initial_cooldown_period: int = 0,
        idle_replicas: int | None = None,
        polling_interval: int = 30,
        behavior: Behavior | None = None,
        scale_down_window: int = 300,
        name: str = "app",
        target: str = "app",
        namespace: str | None = None,
    ) -> None:
        from cognitionos.autoscale.hpa import HPAPolicy

        self.triggers = tuple(triggers)
        if not self.triggers:
            raise ConfigurationError("KedaPolicy needs at least one trigger")
        if len({t.metric for t in self.triggers}) != len(self.triggers):
            raise ConfigurationError("KedaPolicy triggers must have distinct metric names")
        if min_replicas < 0 or max_replicas < 1 or min_replicas > max_replicas:
            raise ConfigurationError(
                "need 0 <= min_replicas <= max_replicas and max_replicas >= 1, got "
                f"min_replicas={min_replicas!r}, max_replicas={max_replicas!r}"
            )
        if idle_replicas is not None and not 0 <= idle_replicas < min_replicas:
            raise ConfigurationError(
                f"idle_replicas must be >= 0 and < min_replicas ({min_replicas}), "
                f"got {idle_replicas!r}"
            )
        for field, value in (
            ("cooldown_period", cooldown_period),
            ("initial_cooldown_period", initial_cooldown_period),
            ("scale_down_window", scale_down_window),
        ):
            if value < 0:
                raise ConfigurationError(f"{field} must be >= 0 seconds, got {value!r}")
        if polling_interval <= 0:
            raise ConfigurationError(f"polling_interval must be > 0, got {polling_interval!r}")
        self._min = min_replicas
        self._max = max_replicas
        self.cooldown_period = cooldown_period
        self.initial_cooldown_period = initial_cooldown_period
        self.idle_replicas = idle_replicas
        self.polling_interval = polling_interval
        self.scale_down_window = scale_down_window
        self.name = name
        self.target = target
        self.namespace = namespace
        if behavior is None:
            down = ScalingRules.default_scale_down()
            behavior = Behavior(
                scale_up=ScalingRules.default_scale_up(),
                scale_down=attrs.evolve(down, stabilization_window_seconds=scale_down_window),
            )
        self.hpa = HPAPolicy(
            min_replicas=max(min_replicas, 1),
            max_replicas=max_replicas,
            metrics=[
                ExternalMetric(t.metric, max(1, math.ceil(t.target * 1000)), t.metric_type)
                for t in self.triggers
            ],
            behavior=behavior,
            name=name,
            namespace=namespace,
        )
        self.last_active: float | None = None
        self.created: float | None = None

    @property
    def min_replicas(self) -> int:
        """``minReplicaCount`` (0: scale to zero when inactive)."""
        return self._min

    @property
    def max_replicas(self) -> int:
        """``maxReplicaCount``."""
        return self._max

    def reset(self) -> None:
        """Forget ``LastActiveTime`` and the HPA's memory."""
        self.last_active = None
        self.created = None
        self.hpa.state = HPAState()

    def activity(self, inp: ScalingInput) -> tuple[bool, bool]:
        """(active, error): any trigger above its activation; any trigger without a value."""
        active = error = False
        for t in self.triggers:
            series = inp.metrics.get(t.metric)
            if series is None:
                error = True
                continue
            value = sum(series) / 1000  # type: ignore[call-overload]
            if value > t.activation:
                active = True
        return active, error

    def decide(self, inp: ScalingInput) -> Decision:
        """One KEDA poll followed by one HPA reconcile (skipped when KEDA set the count)."""
        if self.created is None:
            self.created = inp.now
        current = inp.current_replicas
        active, error = self.activity(inp)
        floor = max(self._min, 1)
        if active:
            if current == 0 or (self.idle_replicas is not None and current < self._min):
                self.last_active = inp.now
                return Decision(floor, "KEDAScaleTargetActivated")
            self.last_active = inp.now
        elif not error:
            idle = self.idle_replicas
            if (idle is not None and current > idle) or (current > 0 and self._min == 0):
                since = self.last_active
                # KEDA: creation + initialCooldownPeriod before now (a 0 period: at once)
                never = self.initial_cooldown_period == 0 or (
                    self.created + self.initial_cooldown_period < inp.now
                )
                if (since is None and never) or (
                    since is not None and since + self.cooldown_period < inp.now
                ):
                    return Decision(0 if idle is None else idle, "KEDAScaleTargetDeactivated")
            elif current < self._min and idle is None:
                return Decision(self._min, "KEDAMinReplicaCount")
        if current == 0:
            return Decision(0, "ScalerNotActive" if not error else "TriggerError")
        return self.hpa.decide(inp)

    # -- ScaledObject ---------------------------------------------------------------------

    def to_scaled_object(self) -> KedaScaledObject:
        """The ``ScaledObject`` of this policy."""
        return KedaScaledObject(
            name=self.name,
            target=self.target,
            namespace=self.namespace,
            min_replicas=self._min,
            max_replicas=self._max,
            polling_interval=self.polling_interval,
            scale_down_window=self.scale_down_window,
            cooldown_period=self.cooldown_period,
            idle_replicas=self.idle_replicas,
            initial_cooldown_period=self.initial_cooldown_period,
            triggers=self.triggers,
        )

    def to_manifest(self) -> str:
        """YAML of the ``ScaledObject``."""
        return self.to_scaled_object().to_manifest()

    @classmethod
    def from_scaled_object(cls, obj: KedaScaledObject) -> KedaPolicy:
        """The policy of a ScaledObject with named ``metrics-api`` triggers."""
        if not obj.triggers:
            raise ConfigurationError(
                "ScaledObject has no named metrics-api trigger for KedaPolicy to follow"
            )
        return cls(
            triggers=obj.triggers,
            min_replicas=obj.min_replicas,
            max_replicas=obj.max_replicas,
            cooldown_period=obj.cooldown_period,
            initial_cooldown_period=obj.initial_cooldown_period,
            idle_replicas=obj.idle_replicas,
            polling_interval=obj.polling_interval,
            scale_down_window=obj.scale_down_window,
            name=obj.name,
            target=obj.target,
            namespace=obj.namespace,
        )

    @classmethod
    def from_manifest(cls, manifest: str | Mapping[str, Any]) -> KedaPolicy:
        """Read a ``keda.sh/v1alpha1`` ScaledObject (YAML text or dict)."""
        return cls.from_scaled_object(KedaScaledObject.from_manifest(manifest))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KedaPolicy):
            return NotImplemented
        return self.to_scaled_object() == other.to_scaled_object()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KedaPolicy({self.to_scaled_object()!r})"
