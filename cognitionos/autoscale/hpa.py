"""HPAPolicy: the Kubernetes HorizontalPodAutoscaler controller as a Python object.

``decide()`` runs one reconcile of the controller (replica calculation over every metric,
stabilization, behavior rate limits, min/max) and remembers what the controller remembers
(recommendations, scale events). The memory is an explicit :class:`HPAState` that can be
read, replaced, or threaded by hand through :meth:`HPAPolicy.step`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from cognitionos.autoscale import _core
from cognitionos.autoscale.models import (
    Behavior,
    Decision,
    HPAState,
    MetricSpec,
    ResourceMetric,
    ScalingInput,
)
from cognitionos.errors import ConfigurationError

__all__ = ["HPAPolicy"]


class HPAPolicy:
    """A Kubernetes ``autoscaling/v2`` HPA, evaluated exactly as the controller does.

    ``target_utilization`` (a fraction, 0.7 = 70 %) is shorthand for one CPU utilization
    metric; pass ``metrics`` for anything else. ``behavior=None`` is an HPA without
    ``spec.behavior`` (the controller's legacy path: 5-minute downscale stabilization and a
    scale-up limit of max(2 x current, 4))::

        hpa = HPAPolicy(min_replicas=2, max_replicas=10, target_utilization=0.7)
        d = hpa.decide(ScalingInput(current_replicas=2, now=0.0, pods=pods, metrics=m))
        d.replicas, d.reason
    """

    def __init__(
        self,
        *,
        min_replicas: int = 1,
        max_replicas: int,
        target_utilization: float | None = None,
        metrics: Sequence[MetricSpec] = (),
        behavior: Behavior | None = None,
        tolerance: float = 0.1,
        downscale_stabilization_window: int = _core.DOWNSCALE_STABILIZATION_WINDOW,
        name: str = "app",
        namespace: str | None = None,
        scale_target: tuple[str, str, str] = ("apps/v1", "Deployment", "app"),
        state: HPAState | None = None,
    ) -> None:
        specs = list(metrics)
        if target_utilization is not None:
            if not target_utilization > 0:
                raise ConfigurationError(
                    "target_utilization must be > 0 (a fraction, 0.7 = 70%), "
                    f"got {target_utilization!r}"
                )
            specs.insert(
                0, ResourceMetric("cpu", target_utilization=round(target_utilization * 100))
            )
        if not specs:
            raise ConfigurationError("an HPA needs target_utilization or at least one metric")
        if min_replicas < 0 or max_replicas < 1 or min_replicas > max_replicas:
            raise ConfigurationError(
                f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1, "
                f"got min_replicas={min_replicas!r}, max_replicas={max_replicas!r}"
            )
        if tolerance < 0:
            raise ConfigurationError(f"tolerance must be >= 0, got {tolerance!r}")
        self.spec = _core.HPASpec(
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            metrics=tuple(specs),
            behavior=behavior,
            tolerance=tolerance,
            downscale_stabilization_window=downscale_stabilization_window,
        )
        self.name = name
        self.namespace = namespace
        self.scale_target = scale_target
        self.state = state if state is not None else HPAState()

    @property
    def min_replicas(self) -> int:
        """``spec.minReplicas``."""
        return self.spec.min_replicas

    @property
    def max_replicas(self) -> int:
        """``spec.maxReplicas``."""
        return self.spec.max_replicas

    @property
    def metrics(self) -> tuple[MetricSpec, ...]:
        """``spec.metrics``."""
        return self.spec.metrics

    @property
    def behavior(self) -> Behavior | None:
        """``spec.behavior`` (None: the legacy path)."""
        return self.spec.behavior

    def step(self, state: HPAState, inp: ScalingInput) -> tuple[Decision, HPAState]:
        """Pure: one reconcile from ``state``; returns the decision and the new state."""
        return _core.reconcile(self.spec, state, inp)

    def decide(self, inp: ScalingInput) -> Decision:
        """One reconcile; updates :attr:`state` (recommendations and scale events)."""
        decision, self.state = _core.reconcile(self.spec, self.state, inp)
        return decision

    def reset(self) -> None:
        """Forget recommendations and scale events (a freshly started controller)."""
        self.state = HPAState()

    @classmethod
    def from_manifest(cls, manifest: str | dict[str, Any]) -> HPAPolicy:
        """Build from an ``autoscaling/v2`` HorizontalPodAutoscaler (YAML text or parsed dict)."""
        from cognitionos.autoscale._manifest import hpa_kwargs_from_manifest

        return cls(**hpa_kwargs_from_manifest(manifest))

    def to_manifest(self) -> str:
        """The ``autoscaling/v2`` HorizontalPodAutoscaler YAML of this policy."""
        from cognitionos.autoscale._manifest import dump_yaml, hpa_to_dict

        return dump_yaml(hpa_to_dict(self))

    def to_dict(self) -> dict[str, Any]:
        """The manifest as a plain dict (what :meth:`to_manifest` serializes)."""
        from cognitionos.autoscale._manifest import hpa_to_dict

        return hpa_to_dict(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HPAPolicy):
            return NotImplemented
        return (
            self.spec == other.spec
            and self.name == other.name
            and self.namespace == other.namespace
            and self.scale_target == other.scale_target
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"HPAPolicy({attrs.asdict(self.spec, recurse=False)!r})"
