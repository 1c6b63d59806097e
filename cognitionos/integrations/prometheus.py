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
from cognitionos.metrics import CounterSet, GaugeSet, HistogramFamily

__all__ = ["EngineCollector"]


class EngineCollector:
    """Exposes :class:`~cognitionos.metrics.CounterSet` totals as Prometheus counters
    and :class:`~cognitionos.metrics.GaugeSet` values as gauges.

    Metric names are ``<namespace>_<set name>_<counter>_total`` and
    ``<namespace>_<set name>_<gauge>``. Histogram families
    (:meth:`CounterSet.histogram`) become a Prometheus histogram ``<namespace>_<set
    name>_<name>`` (cumulative ``le`` buckets, ``_sum``, ``_count``) and a gauge of its
    quantiles, ``..._quantile_seconds{quantile="0.99"}`` for a name ending in
    ``_seconds`` (else ``<name>_quantile``), all computed from the sketches when scraped.
    """

    def __init__(
        self, *counter_sets: CounterSet | GaugeSet, namespace: str = "cognitionos"
    ) -> None:
        require("prometheus_client", purpose="Prometheus metrics")
        self.counter_sets = counter_sets
        self.namespace = namespace

    def collect(self) -> Iterator[Any]:
        """Called by prometheus_client at scrape time."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        for cs in self.counter_sets:
            base = f"{self.namespace}_{cs.name}"
            if isinstance(cs, GaugeSet):
                for name, value in cs.snapshot().items():
                    yield GaugeMetricFamily(f"{base}_{name}", cs.help_for(name) or name, value)
                continue
            # distributions first: reading them folds buffered values, which the plain
            # counters of the same set then include
            histograms = [
                self._histogram(f"{base}_{name}", hist, HistogramMetricFamily, GaugeMetricFamily)
                for name, hist in cs.histograms().items()
            ]
            for name, value in cs.snapshot().items():
                yield CounterMetricFamily(f"{base}_{name}", cs.help_for(name) or name, value=value)
            for name, family in cs.families().items():
                metric = CounterMetricFamily(
                    f"{base}_{name}", family.help or name, labels=list(family.labels)
                )
                for values, value in family.snapshot().items():
                    metric.add_metric(list(values), value)
                yield metric
            for pair in histograms:
                yield from pair

    @staticmethod
    def _histogram(full: str, hist: HistogramFamily, hist_cls: Any, gauge_cls: Any) -> list[Any]:
        labels = list(hist.labels)
        quantile_name = (
            f"{full.removesuffix('_seconds')}_quantile_seconds"
            if full.endswith("_seconds")
            else f"{full}_quantile"
        )
        help_text = hist.help or full
        histogram = hist_cls(full, help_text, labels=labels)
        gauge = gauge_cls(
            quantile_name, f"{help_text} (quantiles from the sketch)", labels=[*labels, "quantile"]
        )
        for values, dist in sorted(hist.snapshot().items()):
            points = [(_le(b), float(dist.count_at_most(b))) for b in hist.buckets]
            points.append(("+Inf", float(dist.count)))
            histogram.add_metric(list(values), points, sum_value=dist.sum)
            for q in hist.quantiles:
                gauge.add_metric([*values, f"{q:g}"], dist.quantile(q))
        return [histogram, gauge]

    def describe(self) -> Iterator[Any]:
        """Nothing up front: names depend on the counter sets, checked at scrape time."""
        return iter(())


def _le(bound: float) -> str:
    # the text format prometheus_client writes for its own buckets ("1.0", "0.25")
    return repr(float(bound))
