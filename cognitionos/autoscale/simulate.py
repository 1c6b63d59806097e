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
  ``price_per_replica_hour`` unless the policy prices itself (``CostAwarePolicy``);
* scale from zero: a minute with load and no ready replica is a **cold-start minute** (the
  first request waits for metric lag + start-up); ``scale_from_zero`` counts 0 -> n decisions.

Optional parts of the model (off by default, so the fixed benchmark model is unchanged):

* **nodes** (``pods_per_node``): pods run on nodes of ``pods_per_node`` slots. A pod asked
  for takes a free slot on a node that is up or starting (first fit); when there is none a
  new node is provisioned and is up ``node_startup_delay`` seconds later; the pod's own
  start-up begins once its node is up. A node left empty is released after
  ``node_idle_timeout`` seconds (cluster-autoscaler's scale-down-unneeded-time). Node-hours
  are reported (and priced at ``price_per_node_hour``, added to the cost).
* **spot** (``spot=SpotMarket(...)``): a ``share`` of the pods (default: the policy's
  ``spot_share``) run on spot capacity; each spot pod is interrupted with probability
  ``interruption_rate / 60`` per minute (seeded, reproducible). Its capacity is gone at
  once; the replacement runs on demand and is schedulable only ``fallback_delay`` seconds
  later (noticing the loss, failing over to on-demand), then goes through placement and
  start-up like any pod. Interruptions hit pods independently (no correlated node loss).
  Cost becomes spot pod-minutes x ``spot_price`` + on-demand pod-minutes x
  ``on_demand_price`` (defaults: the policy's prices, else ``price_per_replica_hour``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import attrs

from cognitionos.autoscale.models import Decision, PodMetric, PodStatus, ScalingInput
from cognitionos.errors import ConfigurationError

__all__ = ["Policy", "SimulationReport", "SpotMarket", "load_trace", "plot_svg", "simulate"]

REQUEST_MILLI = 1000


class Policy(Protocol):
    """Anything with ``decide(ScalingInput) -> Decision`` and replica bounds."""

    @property
    def min_replicas(self) -> int: ...

    @property
    def max_replicas(self) -> int: ...

    def decide(self, inp: ScalingInput) -> Decision: ...


@attrs.frozen(slots=True)
class SpotMarket:
    """Spot capacity in :func:`simulate`: share, interruption rate, fallback delay, prices.

    ``interruption_rate``: interruptions per spot pod-hour (0.05 = one in 20 hours);
    ``fallback_delay``: seconds from an interruption until its on-demand replacement can be
    scheduled; ``share``/``spot_price``/``on_demand_price`` None: taken from the policy
    (``CostAwarePolicy``), else share 0 and the simulation's flat price.
    """

    interruption_rate: float = 0.05
    fallback_delay: float = 300.0
    share: float | None = None
    spot_price: float | None = None
    on_demand_price: float | None = None
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not (0 <= self.interruption_rate <= 60) or math.isnan(self.interruption_rate):
            raise ConfigurationError(
                f"interruption_rate must be in [0, 60] per pod-hour, got {self.interruption_rate!r}"
            )
        if not self.fallback_delay >= 0:
            raise ConfigurationError(f"fallback_delay must be >= 0, got {self.fallback_delay!r}")
        if self.share is not None and not 0 <= self.share <= 1:
            raise ConfigurationError(f"spot share must be in [0, 1], got {self.share!r}")
        for name in ("spot_price", "on_demand_price"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ConfigurationError(f"{name} must be >= 0, got {v!r}")


class _Pod:
    __slots__ = ("created", "name", "node", "ready", "spot")

    def __init__(self, name: str, created: int, ready: int, node: int, spot: bool) -> None:
        self.name = name
        self.created = created
        self.ready = ready
        self.node = node
        self.spot = spot


class _Nodes:
    """The node pool: slots per node, start-up and idle release (None: unlimited, always up)."""

    def __init__(self, per_node: int | None, startup: int, idle_timeout: int) -> None:
        self.per_node = per_node
        self.startup = startup
        self.idle_timeout = idle_timeout
        self.up_at: dict[int, int] = {}
        self.used: dict[int, int] = {}
        self.empty_since: dict[int, int] = {}
        self.serial = 0
        self.node_minutes = 0
        self.max_nodes = 0

    def place(self, t: int) -> tuple[int, int]:
        """A slot for a pod schedulable from minute ``t``: (node id, minute the node is up)."""
        if self.per_node is None:
            return -1, t
        for node, used in self.used.items():
            if used < self.per_node:
                self.used[node] = used + 1
                self.empty_since.pop(node, None)
                return node, max(t, self.up_at[node])
        node = self.serial
        self.serial += 1
        self.up_at[node] = t + self.startup
        self.used[node] = 1
        self.max_nodes = max(self.max_nodes, len(self.used))
        return node, self.up_at[node]

    def free(self, node: int, t: int) -> None:
        if node < 0:
            return
        self.used[node] -= 1
        if self.used[node] == 0:
            self.empty_since[node] = t

    def tick(self, t: int) -> None:
        if self.per_node is None:
            return
        for node, since in list(self.empty_since.items()):
            if t - since >= self.idle_timeout:
                del self.empty_since[node], self.used[node], self.up_at[node]
        self.node_minutes += len(self.used)


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
    cold_start_minutes: int = 0
    scale_from_zero: int = 0
    node_hours: float = 0.0
    max_nodes: int = 0
    spot_interruptions: int = 0

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
            "cold_start_minutes": self.cold_start_minutes,
            "scale_from_zero": self.scale_from_zero,
            "node_hours": round(self.node_hours, 3),
            "max_nodes": self.max_nodes,
            "spot_interruptions": self.spot_interruptions,
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
    pods_per_node: int | None = None,
    node_startup_delay: float = 0.0,
    node_idle_timeout: float = 600.0,
    price_per_node_hour: float = 0.0,
    spot: SpotMarket | None = None,
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
    _check("node_startup_delay", node_startup_delay)
    _check("node_idle_timeout", node_idle_timeout)
    _check("price_per_node_hour", price_per_node_hour)
    if pods_per_node is not None and (
        isinstance(pods_per_node, bool) or not isinstance(pods_per_node, int) or pods_per_node < 1
    ):
        raise ConfigurationError(f"pods_per_node must be an int >= 1, got {pods_per_node!r}")
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

    nodes = _Nodes(
        pods_per_node, math.ceil(node_startup_delay / 60), math.ceil(node_idle_timeout / 60)
    )
    prices = _spot_prices(policy, spot, price_per_replica_hour)
    share, spot_price, od_price = prices if prices is not None else (0.0, 0.0, 0.0)
    rng = random.Random(spot.seed if spot is not None else 0)
    p_interrupt = (spot.interruption_rate / 60) if spot is not None else 0.0
    fallback_min = math.ceil(spot.fallback_delay / 60) if spot is not None else 0

    pods: list[_Pod] = []
    serial = 0

    def add(t: int, *, schedulable: int, on_spot: bool, warm: bool = False) -> None:
        nonlocal serial
        node, up = nodes.place(schedulable)
        if warm:  # the initial pods: already running on nodes that are up
            nodes.up_at[node] = min(nodes.up_at.get(node, 0), 0) if node >= 0 else 0
            up = 0
        ready = 0 if warm else up + startup_min
        pods.append(_Pod(f"pod-{serial}", t, ready, node, on_spot))
        serial += 1

    def wants_spot() -> bool:
        return share > 0 and sum(1 for p in pods if p.spot) < round(share * (len(pods) + 1))

    for _ in range(start):
        add(-startup_min, schedulable=-startup_min, on_spot=wants_spot(), warm=True)
    status_cache: dict[tuple[str, bool], PodStatus] = {}
    ready_series: list[int] = []
    replica_series: list[int] = []
    violations = cold = from_zero = interruptions = 0
    unserved = 0.0
    served = 0.0
    flips = ups = downs = 0
    last_direction = 0
    price_minutes = 0.0
    pricing = getattr(policy, "price_per_replica_minute", None)

    for t, load in enumerate(loads):
        if on_progress is not None and t % 1440 == 0:
            on_progress(t, len(loads))
        if p_interrupt:
            for pod in [p for p in pods if p.spot and rng.random() < p_interrupt]:
                pods.remove(pod)
                nodes.free(pod.node, t)
                interruptions += 1
                add(t, schedulable=t + fallback_min, on_spot=False)  # the on-demand fallback
        if t % every == 0:
            seen = t - lag_min
            if seen >= 0:
                seen_load = loads[seen]
                ready_then = [p for p in pods if p.ready <= seen]
                sample = PodMetric(
                    value=math.ceil(
                        seen_load / max(1, len(ready_then)) / capacity_per_replica * REQUEST_MILLI
                    ),
                    timestamp=seen * 60.0,
                    window=60.0,
                )
                cpu = {p.name: sample for p in ready_then}
            else:
                seen_load = loads[0]
                cpu = {p.name: PodMetric(0, 0.0, 60.0) for p in pods}
            statuses = []
            for pod in pods:
                is_ready = pod.ready <= t
                key = (pod.name, is_ready)
                st = status_cache.get(key)
                if st is None:
                    st = PodStatus(
                        name=pod.name,
                        phase="Running" if is_ready else "Pending",
                        ready=is_ready,
                        start_time=pod.created * 60.0,
                        ready_transition_time=pod.ready * 60.0 if is_ready else pod.created * 60.0,
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
                if not pods:
                    from_zero += 1
                for _ in range(want - len(pods)):
                    add(t, schedulable=t, on_spot=wants_spot())
                direction = 1
                ups += 1
            elif want < len(pods):
                # remove the newest (still starting first), as a ReplicaSet prefers unready pods
                pods.sort(key=lambda p: p.ready)
                for pod in pods[want:]:
                    nodes.free(pod.node, t)
                del pods[want:]
                direction = -1
                downs += 1
            else:
                direction = 0
            if direction:
                if last_direction and direction != last_direction:
                    flips += 1
                last_direction = direction
        nodes.tick(t)
        ready = sum(1 for p in pods if p.ready <= t)
        capacity = ready * capacity_per_replica
        if load > capacity:
            violations += 1
            unserved += load - capacity
            served += capacity
            if ready == 0 and load > 0:
                cold += 1
        else:
            served += load
        ready_series.append(ready)
        replica_series.append(len(pods))
        if prices is not None:
            n_spot = sum(1 for p in pods if p.spot)
            price_minutes += (n_spot * spot_price + (len(pods) - n_spot) * od_price) / 60
        elif pricing is not None:
            price_minutes += pricing(len(pods))
        else:
            price_minutes += len(pods) * price_per_replica_hour / 60
    if on_progress is not None:
        on_progress(len(loads), len(loads))
    replica_hours = sum(replica_series) / 60
    node_hours = nodes.node_minutes / 60
    return SimulationReport(
        minutes=len(loads),
        violation_minutes=violations,
        unserved_requests=unserved,
        served_requests=served,
        replica_hours=replica_hours,
        cost=price_minutes + node_hours * price_per_node_hour,
        flips=flips,
        scale_ups=ups,
        scale_downs=downs,
        max_replicas=max(replica_series),
        replicas=tuple(replica_series),
        ready=tuple(ready_series),
        cold_start_minutes=cold,
        scale_from_zero=from_zero,
        node_hours=node_hours,
        max_nodes=nodes.max_nodes,
        spot_interruptions=interruptions,
    )


def _spot_prices(
    policy: Any, spot: SpotMarket | None, flat: float
) -> tuple[float, float, float] | None:
    """(share, spot price, on-demand price) per replica-hour, or None without a spot model."""
    if spot is None:
        return None
    share = spot.share if spot.share is not None else float(getattr(policy, "spot_share", 0.0))
    spot_price = spot.spot_price
    if spot_price is None:
        spot_price = float(getattr(policy, "spot_price", flat))
    od = spot.on_demand_price
    if od is None:
        od = float(getattr(policy, "on_demand_price", flat))
    return share, spot_price, od


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
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"trace {path!r} is not UTF-8 text (offset {exc.start})") from None
    except csv.Error as exc:
        raise ConfigurationError(f"trace {path!r} is not a readable CSV file ({exc})") from None
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
