"""The Grafana dashboard in docs/ queries only metrics a real process exposes.

One process exercises every engine (WAF, rate limiter, flags, experiments, APM
tracer/export/tail sampling/latency, DR backup/verify/restore and catalog gauges, and the
pricing/autoscale counter sets the reference server keeps), registers their sets on one
``EngineCollector``, and the exposition is parsed with prometheus_client's own parser.
Every metric name and every ``by (...)`` label in the dashboard's queries must be there.
(The reference server's own ``/metrics`` is checked in tests/server/test_metrics_engines.py.)
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


def exposition(tmp_path: Path) -> dict[str, set[str]]:
    """Sample name -> label names, from a process that used every engine."""
    import sqlite3

    from cognitionos.dr import BackupManager
    from cognitionos.experiments import ExperimentEngine
    from cognitionos.metrics import CounterSet
    from cognitionos.server._metrics import AUTOSCALE_COUNTERS, PRICING_COUNTERS

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
    experiments = ExperimentEngine()
    experiments.create({"key": "e1", "arms": [{"key": "a"}, {"key": "b"}], "status": "running"})
    experiments.track_exposure("e1", "u1")
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    manager = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'backups'}")
    manager.verify(manager.backup().id)
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
            experiments.counters,
            manager.counters,
            manager.gauges(rpo=900),
            CounterSet("pricing", PRICING_COUNTERS),
            CounterSet("autoscale", AUTOSCALE_COUNTERS),
        )
    )
    text = generate_latest(registry).decode()
    provider.shutdown()
    manager.close()
    experiments.close()
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


def test_every_queried_metric_and_label_exists(tmp_path):
    found = exposition(tmp_path)
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
    assert len(checked) >= 30


ENGINES = ("waf", "ratelimit", "flags", "experiments", "apm", "pricing", "autoscale", "dr")


def test_one_panel_per_engine():
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    panels_of: dict[str, int] = {}
    for panel in dashboard["panels"]:
        # every query of a panel reads one engine's metrics
        (engine,) = {
            name.split("_")[1] for t in panel["targets"] for name in _METRIC.findall(t["expr"])
        }
        panels_of[engine] = panels_of.get(engine, 0) + 1
    assert set(panels_of) == set(ENGINES)
    # APM has two (request latency in seconds; span rates); every other engine one
    assert {e: n for e, n in panels_of.items() if n != 1} == {"apm": 2}
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
