"""Prometheus: a custom collector that reads engine counters at scrape time.

Nothing is registered globally: register the collector on the registry you own.

    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry()
    registry.register(EngineCollector(limiter.counters, waf.counters))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cognitionos._optional import require
from cognitionos.metrics import CounterSet, GaugeSet

__all__ = ["EngineCollector"]


class EngineCollector:
    """Exposes :class:`~cognitionos.metrics.CounterSet` totals as Prometheus counters
    and :class:`~cognitionos.metrics.GaugeSet` values as gauges.

    Metric names are ``<namespace>_<set name>_<counter>_total`` and
    ``<namespace>_<set name>_<gauge>``.
    """

    def __init__(
        self, *counter_sets: CounterSet | GaugeSet, namespace: str = "cognitionos"
    ) -> None:
        require("prometheus_client", purpose="Prometheus metrics")
        self.counter_sets = counter_sets
        self.namespace = namespace

    def collect(self) -> Iterator[Any]:
        """Called by prometheus_client at scrape time."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for cs in self.counter_sets:
            base = f"{self.namespace}_{cs.name}"
            if isinstance(cs, GaugeSet):
                for name, value in cs.snapshot().items():
                    yield GaugeMetricFamily(f"{base}_{name}", cs.help_for(name) or name, value)
                continue
            for name, value in cs.snapshot().items():
                yield CounterMetricFamily(f"{base}_{name}", cs.help_for(name) or name, value=value)
            for name, family in cs.families().items():
                metric = CounterMetricFamily(
                    f"{base}_{name}", family.help or name, labels=list(family.labels)
                )
                for values, value in family.snapshot().items():
                    metric.add_metric(list(values), value)
                yield metric

    def describe(self) -> Iterator[Any]:
        """Nothing up front: names depend on the counter sets, checked at scrape time."""
        return iter(())
