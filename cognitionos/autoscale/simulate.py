"""Replay a request-rate trace through any policy and account for SLO violations and cost.

Capacity model (stated once, used by every policy alike):

* the trace is requests per minute, one value per minute; time advances in 1-minute steps;
* one replica serves ``capacity_per_replica`` requests per minute once it is ready;
* a replica is ready ``startup_delay`` seconds after the policy asked for it (rounded up to
  whole minutes); removing replicas is immediate;
* a minute violates the SLO when its load exceeds the ready capacity; the excess is unserved;
* the policy decides every ``decision_interval`` seconds; what it sees is ``metric_lag``
  seconds old: per-pod CPU utilization (load / ready pods / capacity, as ``cpu`` milli-values
  against a 1000m request, for pods that were ready then) and the total request rate
  (``requests_per_minute``, milli-requests, an external metric series of one value);
* pods still starting are ``Pending`` (the HPA treats them as unready);
* replica-hours count every provisioned replica, starting or ready; cost is replica-hours x
  ``price_per_replica_hour`` unless the policy prices itself (``CostAwarePolicy``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import attrs

from cognitionos.autoscale.models import Decision, PodMetric, PodStatus, ScalingInput
from cognitionos.errors import ConfigurationError

__all__ = ["Policy", "SimulationReport", "load_trace", "plot_svg", "simulate"]

REQUEST_MILLI = 1000


class Policy(Protocol):
    """Anything with ``decide(ScalingInput) -> Decision`` and replica bounds."""

    @property
    def min_replicas(self) -> int: ...

    @property
    def max_replicas(self) -> int: ...

    def decide(self, inp: ScalingInput) -> Decision: ...


@attrs.frozen(slots=True)
class SimulationReport:
    """What a replay measured. ``replicas`` and ``capacity`` are per-minute series."""

    minutes: int
    violation_minutes: int
    unserved_requests: float
    served_requests: float
    replica_hours: float
    cost: float
    flips: int
    scale_ups: int
    scale_downs: int
    max_replicas: int
    replicas: tuple[int, ...] = attrs.field(repr=False)
    ready: tuple[int, ...] = attrs.field(repr=False)

    def as_dict(self) -> dict[str, float | int]:
        """The scalar results (no series), for JSON output."""
        return {
            "minutes": self.minutes,
            "violation_minutes": self.violation_minutes,
            "unserved_requests": round(self.unserved_requests, 3),
            "served_requests": round(self.served_requests, 3),
            "replica_hours": round(self.replica_hours, 3),
            "cost": round(self.cost, 3),
            "flips": self.flips,
            "scale_ups": self.scale_ups,
            "scale_downs": self.scale_downs,
            "max_replicas": self.max_replicas,
        }


def _check(name: str, value: float, *, positive: bool = False) -> None:
    if (
        not isinstance(value, (int, float))
        or math.isnan(value)
        or value < 0
        or (positive and value == 0)
    ):
        raise ConfigurationError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def simulate(
    policy: Policy,
    trace: Sequence[float],
    *,
    capacity_per_replica: float = 10.0,
    startup_delay: float = 120.0,
    metric_lag: float = 60.0,
    decision_interval: float = 60.0,
    price_per_replica_hour: float = 1.0,
    initial_replicas: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> SimulationReport:
    """Replay ``trace`` (requests per minute) through ``policy``; see the module docstring.

    ``on_progress(done, total)`` is called once per simulated day and at the end.

    >>> report = simulate(HPAPolicy(min_replicas=2, max_replicas=100, target_utilization=0.7),
    ...                   load, capacity_per_replica=10.0, startup_delay=120, metric_lag=60)
    """
    _check("capacity_per_replica", capacity_per_replica, positive=True)
    _check("startup_delay", startup_delay)
    _check("metric_lag", metric_lag)
    _check("decision_interval", decision_interval, positive=True)
    _check("price_per_replica_hour", price_per_replica_hour)
    loads = [float(x) for x in trace]
    if not loads:
        raise ConfigurationError("trace is empty")
    if any(x < 0 or math.isnan(x) for x in loads):
        raise ConfigurationError("trace values must be >= 0 requests per minute")
    startup_min = math.ceil(startup_delay / 60)
    lag_min = math.ceil(metric_lag / 60)
    every = max(1, round(decision_interval / 60))
    start = policy.min_replicas if initial_replicas is None else initial_replicas
    start = max(start, 1) if policy.min_replicas > 0 else start

    # each pod: (name, minute created, minute ready); initial pods are ready from the start
    pods: list[tuple[str, int, int]] = [(f"pod-{i}", -startup_min, 0) for i in range(start)]
    serial = start
    status_cache: dict[tuple[str, bool], PodStatus] = {}
    ready_series: list[int] = []
    replica_series: list[int] = []
    violations = 0
    unserved = 0.0
    served = 0.0
    flips = ups = downs = 0
    last_direction = 0
    price_minutes = 0.0
    pricing = getattr(policy, "price_per_replica_minute", None)

    for t, load in enumerate(loads):
        if on_progress is not None and t % 1440 == 0:
            on_progress(t, len(loads))
        if t % every == 0:
            seen = t - lag_min
            if seen >= 0:
                seen_load = loads[seen]
                ready_then = [p for p in pods if p[2] <= seen]
                sample = PodMetric(
                    value=math.ceil(
                        seen_load / max(1, len(ready_then)) / capacity_per_replica * REQUEST_MILLI
                    ),
                    timestamp=seen * 60.0,
                    window=60.0,
                )
                cpu = {p[0]: sample for p in ready_then}
            else:
                seen_load = loads[0]
                cpu = {p[0]: PodMetric(0, 0.0, 60.0) for p in pods}
            statuses = []
            for name, created, ready_at in pods:
                is_ready = ready_at <= t
                key = (name, is_ready)
                st = status_cache.get(key)
                if st is None:
                    st = PodStatus(
                        name=name,
                        phase="Running" if is_ready else "Pending",
                        ready=is_ready,
                        start_time=created * 60.0,
                        ready_transition_time=ready_at * 60.0 if is_ready else created * 60.0,
                        request=REQUEST_MILLI,
                    )
                    status_cache[key] = st
                statuses.append(st)
            inp = ScalingInput(
                current_replicas=len(pods),
                now=t * 60.0,
                pods=tuple(statuses),
                metrics={
                    "cpu": cpu,
                    "requests_per_minute": [math.ceil(seen_load * 1000)],
                },
            )
            want = policy.decide(inp).replicas
            if want > len(pods):
                for _ in range(want - len(pods)):
                    pods.append((f"pod-{serial}", t, t + startup_min))
                    serial += 1
                direction = 1
                ups += 1
            elif want < len(pods):
                # remove the newest (still starting first), as a ReplicaSet prefers unready pods
                pods.sort(key=lambda p: p[2])
                del pods[want:]
                direction = -1
                downs += 1
            else:
                direction = 0
            if direction:
                if last_direction and direction != last_direction:
                    flips += 1
                last_direction = direction
        ready = sum(1 for p in pods if p[2] <= t)
        capacity = ready * capacity_per_replica
        if load > capacity:
            violations += 1
            unserved += load - capacity
            served += capacity
        else:
            served += load
        ready_series.append(ready)
        replica_series.append(len(pods))
        if pricing is not None:
            price_minutes += pricing(len(pods))
        else:
            price_minutes += len(pods) * price_per_replica_hour / 60
    if on_progress is not None:
        on_progress(len(loads), len(loads))
    replica_hours = sum(replica_series) / 60
    return SimulationReport(
        minutes=len(loads),
        violation_minutes=violations,
        unserved_requests=unserved,
        served_requests=served,
        replica_hours=replica_hours,
        cost=price_minutes,
        flips=flips,
        scale_ups=ups,
        scale_downs=downs,
        max_replicas=max(replica_series),
        replicas=tuple(replica_series),
        ready=tuple(ready_series),
    )


def load_trace(path: str) -> list[float]:
    """Read a ``minute,requests`` CSV (header row, last column the request count)."""
    import csv

    out: list[float] = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh)
            next(rows, None)
            for i, row in enumerate(rows, start=2):
                if not row:
                    continue
                try:
                    out.append(float(row[-1]))
                except ValueError:
                    raise ConfigurationError(f"{path}:{i}: not a number: {row[-1]!r}") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read trace {path!r}: {exc}") from None
    if not out:
        raise ConfigurationError(f"trace {path!r} has no rows")
    return out


def plot_svg(
    trace: Sequence[float],
    ready: Mapping[str, Sequence[int]],
    *,
    capacity_per_replica: float,
    window_minutes: int = 2880,
    width: int = 1200,
    height: int = 400,
) -> str:
    """An SVG of load vs ready capacity per policy over the busiest ``window_minutes``.

    ``ready`` maps a policy name to its per-minute ready replicas (``SimulationReport.ready``)::

        svg = plot_svg(trace, {"hpa": hpa_report.ready}, capacity_per_replica=10.0)
    """
    if not trace:
        raise ConfigurationError("trace is empty")
    for name, series in ready.items():
        if len(series) != len(trace):
            raise ConfigurationError(
                f"ready series {name!r} has {len(series)} points, trace {len(trace)}"
            )
    span = max(2, min(window_minutes, len(trace)))
    step = max(1, min(60, (len(trace) - span) // 100))
    starts = range(0, len(trace) - span + 1, step)
    best = max(starts, key=lambda s: sum(trace[s : s + span : 10]))
    window = range(best, best + span)
    pad = 40
    top = max(
        1.0,
        max(trace[i] for i in window),
        *(max(s[i] for i in window) * capacity_per_replica for s in ready.values()),
    )

    def line(values: list[float], colour: str) -> str:
        pts = " ".join(
            f"{pad + (width - 2 * pad) * k / (len(values) - 1):.1f},"
            f"{height - pad - (height - 2 * pad) * v / top:.1f}"
            for k, v in enumerate(values)
        )
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1" points="{pts}"/>'

    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    parts = [line([trace[i] for i in window], "#888")]
    legend = ['<text x="50" y="20" fill="#888">load (requests/min)</text>']
    for k, (name, series) in enumerate(ready.items()):
        colour = colours[k % len(colours)]
        parts.append(line([series[i] * capacity_per_replica for i in window], colour))
        legend.append(
            f'<text x="{230 + 230 * k}" y="20" fill="{colour}">{name}: ready capacity</text>'
        )
    axis = (
        f'<text x="{pad}" y="{height - 10}" fill="#444">minute {best}</text>'
        f'<text x="{width - pad - 90}" y="{height - 10}" fill="#444">'
        f"minute {best + span - 1}</text>"
        f'<text x="5" y="{pad}" fill="#444">{top:.0f}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        '<rect width="100%" height="100%" fill="white"/>'
        f"{''.join(legend)}{axis}{''.join(parts)}</svg>"
    )
