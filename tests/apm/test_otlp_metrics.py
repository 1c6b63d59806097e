"""Latency sketches as OTLP exponential histograms, parsed by the official messages."""

from __future__ import annotations

import json
import math
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.proto", reason="the peers extra (opentelemetry-proto)")
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from cognitionos.apm import (
    LatencySketch,
    OTLPMetricExporter,
    encode_otlp_metrics_json,
    sketch_scale,
)
from cognitionos.errors import ConfigurationError


def official(body) -> metrics_service_pb2.ExportMetricsServiceRequest:
    return json_format.Parse(json.dumps(body), metrics_service_pb2.ExportMetricsServiceRequest())


def quantile_from_points(point, q):
    """The lower q-quantile read back from an exponential histogram (bucket midpoints)."""
    base = 2.0 ** (2.0**-point.scale)
    rank = math.floor(q * (point.count - 1))
    seen = point.zero_count
    if rank < seen:
        return 0.0
    for i, n in enumerate(point.positive.bucket_counts):
        seen += n
        if rank < seen:
            index = point.positive.offset + i
            lo, hi = base**index, base ** (index + 1)
            return 2 * lo * hi / (lo + hi)  # the relative-error midpoint of (lo, hi]
    raise AssertionError("rank past the buckets")


def test_scale_follows_the_sketch_accuracy():
    assert sketch_scale(LatencySketch(0.01)) == 6
    assert sketch_scale(LatencySketch(0.05)) == 3  # 2^(1/8) = 1.0905 <= 1.05/0.95
    for accuracy in (0.001, 0.01, 0.02, 0.1):
        sk = LatencySketch(accuracy)
        scale = sketch_scale(sk)
        gamma = (1 + accuracy) / (1 - accuracy)
        assert 2 ** (2**-scale) <= gamma < 2 ** (2 ** -(scale - 1))


def test_exponential_histogram_parses_and_keeps_quantiles_within_the_stated_bound():
    rng = random.Random(11)
    values = [rng.lognormvariate(-4, 1.2) for _ in range(20_000)]
    sketches = {"GET /a": LatencySketch(0.01), "POST /b": LatencySketch(0.01)}
    sketches["GET /a"].add_many(values)
    sketches["POST /b"].add_many([0.0, 0.0, -0.5, 0.25])
    body = encode_otlp_metrics_json(
        sketches, resource={"service.name": "shop"}, start_time_unix_nano=5, time_unix_nano=9
    )
    msg = official(body)
    (rm,) = msg.resource_metrics
    assert rm.resource.attributes[0].value.string_value == "shop"
    (metric,) = rm.scope_metrics[0].metrics
    assert metric.name == "http.server.request.duration" and metric.unit == "s"
    hist = metric.exponential_histogram
    assert hist.aggregation_temporality == 2  # CUMULATIVE
    a, b = hist.data_points
    assert a.attributes[0].key == "http.route" and a.attributes[0].value.string_value == "GET /a"
    assert (a.start_time_unix_nano, a.time_unix_nano) == (5, 9)
    assert a.count == len(values) == a.zero_count + sum(a.positive.bucket_counts)
    assert a.sum == pytest.approx(sum(values))
    assert a.min == min(values) and a.max == max(values)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        exact = ordered[math.floor(q * (len(ordered) - 1))]
        got = quantile_from_points(a, q)
        assert abs(got - exact) / exact <= 0.0166, q  # 1 % sketch + half a 2^(1/64) bucket
    # zeros and negatives have their own places
    assert b.zero_count == 2 and sum(b.negative.bucket_counts) == 1
    assert sum(b.positive.bucket_counts) == 1 and b.min == -0.5


def test_empty_sketches_are_left_out_and_bad_scales_refused():
    body = encode_otlp_metrics_json({"GET /x": LatencySketch()}, time_unix_nano=1)
    points = body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    assert points["exponentialHistogram"]["dataPoints"] == []
    with pytest.raises(ConfigurationError, match="scale"):
        encode_otlp_metrics_json({}, scale=21)


def test_exporter_posts_to_a_receiver_that_decodes_with_the_official_messages():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                (self.path, self.headers["Content-Type"], self.headers["x-tenant"], body)
            )
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
        exporter = OTLPMetricExporter(url, headers={"x-tenant": "t1"})
        sk = LatencySketch()
        sk.add_many([0.01, 0.02, 0.03])
        assert exporter.export({"GET /a": sk})
        assert exporter.last_status == 200
    finally:
        server.shutdown()
        server.server_close()
    ((path, ctype, tenant, body),) = received
    assert (path, ctype, tenant) == ("/v1/metrics", "application/json", "t1")
    msg = metrics_service_pb2.ExportMetricsServiceRequest()
    json_format.Parse(body, msg)
    point = msg.resource_metrics[0].scope_metrics[0].metrics[0].exponential_histogram
    assert point.data_points[0].count == 3


def test_exporter_failure_is_false_never_raised():
    exporter = OTLPMetricExporter("http://127.0.0.1:9/v1/metrics", timeout=0.5)
    sk = LatencySketch()
    sk.add(0.1)
    assert exporter.export({"r": sk}) is False
    assert exporter.last_status is None
    with pytest.raises(ConfigurationError, match="endpoint"):
        OTLPMetricExporter("collector:4318")
