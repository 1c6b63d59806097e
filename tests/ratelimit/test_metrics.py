"""Counters read at scrape time by the kernel's collector on a registry the caller owns."""

from __future__ import annotations

import pytest

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import Limit, RateLimiter


def test_collector_reports_counts_at_scrape_time():
    prometheus_client = pytest.importorskip("prometheus_client")
    from cognitionos.integrations.prometheus import EngineCollector

    registry = prometheus_client.CollectorRegistry()
    limiter = RateLimiter(clock=ManualClock(0))
    registry.register(EngineCollector(limiter.counters, namespace="app"))
    limit = Limit(amount=2, period=60)
    for _ in range(5):
        limiter.hit(limit, "k")

    def value(name: str) -> float | None:
        return registry.get_sample_value(f"app_ratelimit_{name}_total")

    assert value("allowed") == 2
    assert value("refused") == 3
    limiter.hit(Limit(amount=9, period=60), "other")
    assert value("allowed") == 3  # read again at the next scrape, nothing cached
    text = prometheus_client.generate_latest(registry).decode()
    assert "app_ratelimit_refused_total" in text


def test_two_limiters_keep_separate_counts():
    a, b = RateLimiter(), RateLimiter()
    a.hit(Limit(amount=1, period=1), "x")
    assert a.counters.snapshot()["allowed"] == 1
    assert b.counters.snapshot()["allowed"] == 0
