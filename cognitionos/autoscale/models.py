"""Value objects of the autoscale engine: HPA spec parts, observations, decisions, state.

Units follow the Kubernetes controller: metric values and targets are integer *milli*-units
(``1500`` = 1.5), utilization targets are integer percents, times are seconds (floats).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from cognitionos.errors import ConfigurationError

__all__ = [
    "Behavior",
    "Decision",
    "ExternalMetric",
    "HPAState",
    "MetricSpec",
    "ObjectMetric",
    "PodMetric",
    "PodStatus",
    "PodsMetric",
    "Recommendation",
    "ResourceMetric",
    "ScaleEvent",
    "ScalingInput",
    "ScalingPolicy",
    "ScalingRules",
    "Tolerances",
]

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]
TargetType = Literal["Utilization", "AverageValue", "Value"]


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ConfigurationError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen(slots=True)
class ScalingPolicy:
    """One HPA scaling policy: change by ``value`` pods or percent per ``period_seconds``."""

    type: PolicyType
    value: int
    period_seconds: int

    def __attrs_post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise ConfigurationError(
                f"scaling policy type must be Pods or Percent, got {self.type!r}"
            )
        if self.value <= 0:
            raise ConfigurationError(f"scaling policy value must be > 0, got {self.value!r}")
        if not 0 < self.period_seconds <= 1800:
            raise ConfigurationError(
                f"scaling policy periodSeconds must be in (0, 1800], got {self.period_seconds!r}"
            )


@attrs.frozen(slots=True)
class ScalingRules:
    """``behavior.scaleUp`` or ``behavior.scaleDown`` of an ``autoscaling/v2`` HPA.

    ``stabilization_window_seconds=None`` means "the controller default" (0 for scale-up,
    the controller's ``--horizontal-pod-autoscaler-downscale-stabilization``, 300 s, for
    scale-down). ``tolerance=None`` means the controller-wide tolerance (0.1).
    """

    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = "Max"
    stabilization_window_seconds: int | None = None
    tolerance: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise ConfigurationError(
                f"selectPolicy must be Max, Min or Disabled, got {self.select_policy!r}"
            )
        w = self.stabilization_window_seconds
        if w is not None and not 0 <= w <= 3600:
            raise ConfigurationError(f"stabilizationWindowSeconds must be in [0, 3600], got {w!r}")
        if self.tolerance is not None and self.tolerance < 0:
            raise ConfigurationError(f"tolerance must be >= 0, got {self.tolerance!r}")

    @classmethod
    def default_scale_up(cls) -> ScalingRules:
        """The API server's default ``scaleUp`` rules (4 pods or 100% per 15 s, the larger)."""
        return cls(
            policies=(ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)),
            select_policy="Max",
            stabilization_window_seconds=0,
        )

    @classmethod
    def default_scale_down(cls) -> ScalingRules:
        """The API server's default ``scaleDown`` rules (100% per 15 s, controller window)."""
        return cls(policies=(ScalingPolicy("Percent", 100, 15),), select_policy="Max")


@attrs.frozen(slots=True)
class Behavior:
    """``spec.behavior``; a missing direction takes the API server's defaults."""

    scale_up: ScalingRules = attrs.field(factory=ScalingRules.default_scale_up)
    scale_down: ScalingRules = attrs.field(factory=ScalingRules.default_scale_down)


@attrs.frozen(slots=True)
class Tolerances:
    """Usage ratios within ``[1 - scale_down, 1 + scale_up]`` do not rescale."""

    scale_down: float = attrs.field(default=0.1, validator=_non_negative)
    scale_up: float = attrs.field(default=0.1, validator=_non_negative)

    def within(self, ratio: float) -> bool:
        """True when ``ratio`` is too close to 1 to act on (both ends inclusive)."""
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


@attrs.frozen(slots=True)
class ResourceMetric:
    """A ``Resource`` (or ``ContainerResource`` when ``container`` is set) metric.

    Give exactly one of ``target_utilization`` (percent of the request) or
    ``target_average_value`` (milli-units per pod).
    """

    name: str = "cpu"
    target_utilization: int | None = None
    target_average_value: int | None = None
    container: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.target_utilization is None) == (self.target_average_value is None):
            raise ConfigurationError(
                f"resource metric {self.name!r} needs exactly one of "
                "target_utilization or target_average_value"
            )
        for field in ("target_utilization", "target_average_value"):
            v = getattr(self, field)
            if v is not None and v <= 0:
                raise ConfigurationError(f"resource metric {self.name!r}: {field} must be > 0")


@attrs.frozen(slots=True)
class PodsMetric:
    """A ``Pods`` metric: per-pod values averaged and compared to ``target_average_value``."""

    name: str
    target_average_value: int
    #: ``metric.selector.matchLabels`` as sorted (key, value) pairs
    selector: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.target_average_value <= 0:
            raise ConfigurationError(f"pods metric {self.name!r}: target must be > 0")


@attrs.frozen(slots=True)
class ObjectMetric:
    """An ``Object`` metric: one value of a described object; ``Value``/``AverageValue`` target."""

    name: str
    target: int
    target_type: Literal["Value", "AverageValue"] = "Value"
    #: ``describedObject`` as (apiVersion, kind, name)
    described_object: tuple[str, str, str] = ("v1", "Service", "app")
    #: ``metric.selector.matchLabels`` as sorted (key, value) pairs
    selector: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.target <= 0 or self.target_type not in ("Value", "AverageValue"):
            raise ConfigurationError(f"object metric {self.name!r}: bad target")


@attrs.frozen(slots=True)
class ExternalMetric:
    """An ``External`` metric (queue length, requests per second...); series values are summed."""

    name: str
    target: int
    target_type: Literal["Value", "AverageValue"] = "AverageValue"
    #: ``metric.selector.matchLabels`` as sorted (key, value) pairs
    selector: tuple[tuple[str, str], ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.target <= 0 or self.target_type not in ("Value", "AverageValue"):
            raise ConfigurationError(f"external metric {self.name!r}: bad target")


MetricSpec = ResourceMetric | PodsMetric | ObjectMetric | ExternalMetric


@attrs.frozen(slots=True)
class PodStatus:
    """What the controller reads of one pod of the scale target.

    ``ready`` is the ``Ready`` condition (None: no condition); ``start_time`` None means the
    pod has no start time yet; ``request`` is the pod's request (milli) for the resource
    metric in question (the named container's request for a container metric; None: no
    request, which makes a utilization metric invalid).
    """

    name: str
    phase: Literal["Running", "Pending", "Failed", "Succeeded", "Unknown"] = "Running"
    ready: bool | None = True
    deleted: bool = False
    start_time: float | None = 0.0
    ready_transition_time: float = 0.0
    request: int | None = None


@attrs.frozen(slots=True)
class PodMetric:
    """One pod's sample: ``value`` (milli) observed at ``timestamp`` over ``window`` seconds."""

    value: int
    timestamp: float = 0.0
    window: float = 60.0


@attrs.frozen(slots=True)
class ScalingInput:
    """Everything one HPA decision reads.

    ``metrics`` maps a metric name to its observation: ``{pod: PodMetric}`` for resource and
    pods metrics, an int for object metrics, a sequence of ints (series) for external metrics.
    A metric absent from the mapping (or mapped to None) could not be fetched: it is invalid.
    """

    current_replicas: int
    now: float
    pods: tuple[PodStatus, ...] = ()
    metrics: Mapping[str, object] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.current_replicas < 0:
            raise ConfigurationError(
                f"current_replicas must be >= 0, got {self.current_replicas!r}"
            )


@attrs.frozen(slots=True)
class Decision:
    """The replica count to run and why (an HPA condition reason such as ``ScaleUpLimit``)."""

    replicas: int
    reason: str
    desired: int | None = None
    metric: str | None = None


@attrs.frozen(slots=True)
class Recommendation:
    """A stored pre-stabilization recommendation."""

    timestamp: float
    replicas: int


@attrs.frozen(slots=True)
class ScaleEvent:
    """A past scale change (size of the change, always positive) in one direction."""

    timestamp: float
    change: int
    outdated: bool = False


@attrs.frozen(slots=True)
class HPAState:
    """The controller's per-HPA memory: recommendations and scale events."""

    recommendations: tuple[Recommendation, ...] = ()
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
