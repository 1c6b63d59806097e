"""Latency histogram families in the kernel metrics, read by Prometheus at scrape time."""

from __future__ import annotations

import math
import random
import sys

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cognitionos.apm import LatencyRecorder
from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.integrations.prometheus import EngineCollector
from cognitionos.metrics import CounterSet, HistogramFamily


def scrape(*counter_sets):
    registry = CollectorRegistry()
    registry.register(EngineCollector(*counter_sets, namespace="app"))
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_recorder_durations_become_a_histogram_and_quantiles_at_scrape_time():
    rng = random.Random(3)
    # values kept away from the bucket bounds by more than the sketch's 1 %
    values = [b * f for b in (0.01, 0.1, 1.0) for f in (0.6, 0.7, 0.9)]
    values = [v for v in values for _ in range(rng.randint(1, 40))]
    rng.shuffle(values)
    recorder = LatencyRecorder(clock=ManualClock(1_700_000_000))
    for v in values:
        recorder.record("GET /orders/{id}", v)
    recorder.record("GET /health-ish", 0.2)
    families = scrape(recorder.counters)

    hist = families["app_apm_latency_request_duration_seconds"]
    assert hist.type == "histogram"
    samples = {
        (s.name, s.labels.get("le")): s.value
        for s in hist.samples
        if s.labels["route"] == "GET /orders/{id}"
    }
    bounds = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
    for bound in bounds:
        key = ("app_apm_latency_request_duration_seconds_bucket", repr(bound))
        assert samples[key] == sum(1 for v in values if v <= bound), bound
    inf = ("app_apm_latency_request_duration_seconds_bucket", "+Inf")
    assert samples[inf] == len(values)
    count = ("app_apm_latency_request_duration_seconds_count", None)
    assert samples[count] == len(values)
    total = samples[("app_apm_latency_request_duration_seconds_sum", None)]
    assert total == pytest.approx(sum(values))

    quantiles = families["app_apm_latency_request_duration_quantile_seconds"]
    assert quantiles.type == "gauge"
    got = {
        s.labels["quantile"]: s.value
        for s in quantiles.samples
        if s.labels["route"] == "GET /orders/{id}"
    }
    ordered = sorted(values)
    for q in ("0.5", "0.9", "0.99", "0.999"):
        exact = ordered[math.floor(float(q) * (len(ordered) - 1))]
        assert abs(got[q] - exact) <= 0.01 * exact * (1 + 1e-9), q
    assert families["app_apm_latency_recorded"].samples[0].value == len(values) + 1


def test_histograms_only_grow_across_flushes_and_windows(tmp_path):
    clock = ManualClock(1_700_000_000)
    recorder = LatencyRecorder(f"sqlite:///{tmp_path / 'lat.db'}", clock=clock, window=60)
    for _ in range(10):
        recorder.record("r", 0.02)
    recorder.flush()  # the windows go to the store; the process totals stay
    clock.advance(120)
    for _ in range(5):
        recorder.record("r", 0.2)
    families = scrape(recorder.counters)
    by_le = {
        s.labels["le"]: s.value
        for s in families["app_apm_latency_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert by_le["0.025"] == 10 and by_le["0.25"] == 15 and by_le["+Inf"] == 15
    recorder.close()


def test_any_distribution_and_label_set_works_and_empty_ones_are_left_out():
    class Exact:
        def __init__(self, values):
            self.values = sorted(values)

        @property
        def count(self):
            return len(self.values)

        @property
        def sum(self):
            return float(sum(self.values))

        def count_at_most(self, bound):
            return sum(1 for v in self.values if v <= bound)

        def quantile(self, q):
            return self.values[math.floor(q * (len(self.values) - 1))]

    cs = CounterSet("jobs", ())
    cs.histogram(
        "queue_wait",
        "queue",
        "kind",
        read=lambda: {("a", "x"): Exact([1, 2, 3, 4]), ("b", "y"): Exact([])},
        buckets=(2, 3.5),
        quantiles=(0.5,),
        help="Queue wait",
    )
    families = scrape(cs)
    hist = families["app_jobs_queue_wait"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets == {"2.0": 2, "3.5": 3, "+Inf": 4}
    assert {s.labels["queue"] for s in hist.samples} == {"a"}
    (median,) = families["app_jobs_queue_wait_quantile"].samples
    assert median.labels == {"queue": "a", "kind": "x", "quantile": "0.5"}
    assert median.value == 2


def test_histogram_family_refuses_bad_settings():
    with pytest.raises(ConfigurationError, match="read"):
        HistogramFamily(("r",), read=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="quantiles"):
        HistogramFamily(("r",), read=dict, quantiles=(1.5,))
    with pytest.raises(ConfigurationError, match="buckets"):
        HistogramFamily(("r",), read=dict, buckets=(float("inf"),))


def test_buffered_recording_loses_nothing_across_threads():
    import threading

    recorder = LatencyRecorder()
    barrier = threading.Barrier(4)

    def work(k):
        barrier.wait()
        for i in range(5_000):
            recorder.record(f"r{i % 3}", 0.001 * (k + 1))
            if i % 997 == 0:
                recorder.local()  # readers fold while writers append

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    local = recorder.local()
    assert sum(sk.count for sk in local.values()) == 20_000
    assert sum(sk.count for sk in recorder.totals().values()) == 20_000
    assert recorder.counters.snapshot()["recorded"] == 20_000
    assert abs(sum(sk.sum for sk in local.values()) - 5_000 * 0.01) < 1e-6
