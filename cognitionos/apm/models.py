"""Value objects the APM engine reports: error groups, slow statements, route latencies."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["ErrorGroup", "RouteLatency", "SlowQuery"]


@attrs.frozen(slots=True)
class ErrorGroup:
    """Exceptions sharing one fingerprint (type + in-app frames + normalized message)."""

    fingerprint: str
    type: str
    message: str
    culprit: str
    count: int
    first_seen_ns: int
    last_seen_ns: int
    trace_ids: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self, recurse=False) | {
            "trace_ids": list(self.trace_ids),
            "routes": list(self.routes),
        }


@attrs.frozen(slots=True)
class SlowQuery:
    """One normalized SQL statement: how often it ran, how slow, and where it was flagged."""

    sql: str
    count: int
    slow_count: int
    n_plus_one_count: int
    p50: float
    p99: float
    max: float
    locations: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self, recurse=False) | {
            "locations": list(self.locations),
            "routes": list(self.routes),
        }


@attrs.frozen(slots=True)
class RouteLatency:
    """Latency percentiles of one route template over a time range (seconds)."""

    route: str
    count: int
    p50: float
    p95: float
    p99: float
    p999: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return attrs.asdict(self)
