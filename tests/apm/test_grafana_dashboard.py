"""The Grafana dashboard in docs/ queries only metrics a real process exposes.

One process exercises every engine that exports metrics (WAF, rate limiter, flags, APM
tracer/export/tail sampling/latency), registers their counter sets on one
``EngineCollector``, and the exposition is parsed with prometheus_client's own parser.
Every metric name and every ``by (...)`` label in the dashboard's queries must be there.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cognitionos.apm import (
    BatchSpanProcessor,
    InMemorySpanExporter,
    LatencyRecorder,
    TailSamplingProcessor,
    TracerProvider,
)
from cognitionos.flags import FlagEngine
from cognitionos.integrations.prometheus import EngineCollector
from cognitionos.ratelimit import RateLimiter
from cognitionos.waf import Firewall, Request

DASHBOARD = Path(__file__).parents[2] / "docs" / "grafana" / "cognitionos-engines.json"
_METRIC = re.compile(r"\bcognitionos_[a-z0-9_]+")
_BY = re.compile(r"\bby \(([^)]*)\)")


def exposition() -> dict[str, set[str]]:
    """Sample name -> label names, from a process that used every engine."""
    firewall = Firewall()
    firewall.inspect(
        Request.from_raw("GET", "/search?q=1%20UNION%20SELECT%20password%20FROM%20users--")
    )
    firewall.inspect(Request.from_raw("GET", "/search?q=hello"))
    limiter = RateLimiter("memory://")
    for _ in range(3):
        limiter.hit("2/minute", "client-1")
    flags = FlagEngine.from_json(
        {"flags": [{"key": "beta", "default_value": True}]}, track_evaluations=True
    )
    flags.is_on("beta", {"id": "u1"})
    exporter = InMemorySpanExporter()
    tail = TailSamplingProcessor(BatchSpanProcessor(exporter), slow=None)
    provider = TracerProvider(processor=tail)
    with provider.get_tracer("t").start_as_current_span("work"):
        pass
    provider.force_flush(5000)
    recorder = LatencyRecorder()
    recorder.record("GET /orders/{id}", 0.012)
    registry = CollectorRegistry()
    processor = provider.processor
    assert isinstance(processor, TailSamplingProcessor)
    registry.register(
        EngineCollector(
            firewall.counters,
            limiter.counters,
            flags.counters,
            provider.counters,
            processor.counters,
            processor.next.counters,
            recorder.counters,
        )
    )
    text = generate_latest(registry).decode()
    provider.shutdown()
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_every_queried_metric_and_label_exists():
    found = exposition()
    checked = set()
    for title, expr in queries():
        names = _METRIC.findall(expr)
        assert names, (title, expr)
        for name in names:
            assert name in found, f"{title}: {name} is not exposed"
            checked.add(name)
            for clause in _BY.findall(expr):
                for label in (part.strip() for part in clause.split(",")):
                    assert label in found[name], f"{title}: {name} has no label {label!r}"
    assert len(checked) >= 15


def test_one_panel_per_engine_that_exports_metrics():
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    metric_prefixes = {
        _METRIC.findall(t["expr"])[0].split("_")[1]
        for p in dashboard["panels"]
        for t in p["targets"]
    }
    assert metric_prefixes == {"waf", "ratelimit", "flags", "apm"}
    titles = [p["title"].split(":")[0] for p in dashboard["panels"]]
    assert titles.count("WAF") == titles.count("Rate limit") == titles.count("Flags") == 1
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
