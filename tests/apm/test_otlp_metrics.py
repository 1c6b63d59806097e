"""Latency sketches as OTLP exponential histograms, parsed by the official messages."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("opentelemetry.proto", reason="the peers extra (opentelemetry-proto)")
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from cognitionos.apm import (
    LatencySketch,
    OTLPMetricExporter,
    encode_otlp_metrics_json,
    encode_otlp_metrics_protobuf,
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


def test_protobuf_body_is_the_json_request_in_the_wire_format():
    rng = random.Random(5)
    a, b = LatencySketch(0.01), LatencySketch(0.02)
    values = [rng.lognormvariate(-3, 1) for _ in range(5000)] + [0.0, 0.0, -0.25, -1.5]
    a.add_many(values)
    b.add_many([0.5])
    options = {
        "resource": {"service.name": "shop", "pid": 7},
        "start_time_unix_nano": 1_700_000_000_000_000_000,
        "time_unix_nano": 1_700_000_060_000_000_000,
    }
    binary = metrics_service_pb2.ExportMetricsServiceRequest()
    binary.ParseFromString(encode_otlp_metrics_protobuf({"GET /a": a, "GET /b": b}, **options))
    assert binary == official(encode_otlp_metrics_json({"GET /a": a, "GET /b": b}, **options))
    (metric,) = binary.resource_metrics[0].scope_metrics[0].metrics
    pa, pb_ = metric.exponential_histogram.data_points
    # independent of the encoder: what was added to the sketches
    assert [kv.value.string_value for kv in pa.attributes] == ["GET /a"]
    assert (pa.count, pa.zero_count) == (5004, 2)
    assert sum(pa.positive.bucket_counts) == 5000 and sum(pa.negative.bucket_counts) == 2
    assert (pa.min, pa.max) == (-1.5, max(values))
    assert math.isclose(pa.sum, math.fsum(values), rel_tol=1e-9)
    assert pa.start_time_unix_nano == 1_700_000_000_000_000_000
    assert pa.time_unix_nano == 1_700_000_060_000_000_000
    assert pa.scale == 6 and pb_.scale == 5  # base 2^(1/64) <= 1.0202; 2^(1/32) <= 1.0408
    # one value: its one bucket is the one holding 0.5 at scale 5 (within one bucket)
    assert (pb_.count, pb_.sum, pb_.min, pb_.max) == (1, 0.5, 0.5, 0.5)
    assert list(pb_.positive.bucket_counts) == [1]
    assert abs(pb_.positive.offset - (math.ceil(math.log2(0.5) * 32) - 1)) <= 1
    # negative offsets are zigzag-encoded sint32: a value of 1e-6 s sits at index < 0
    tiny = LatencySketch(0.01)
    tiny.add(1e-6)
    msg = metrics_service_pb2.ExportMetricsServiceRequest()
    msg.ParseFromString(encode_otlp_metrics_protobuf({"r": tiny}))
    offset = msg.resource_metrics[0].scope_metrics[0].metrics[0].exponential_histogram
    assert abs(offset.data_points[0].positive.offset - (math.ceil(math.log2(1e-6) * 64) - 1)) <= 1


def test_protobuf_exporter_posts_what_was_recorded():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/metrics"
        exporter = OTLPMetricExporter(url, encoding="protobuf", resource={"service.name": "api"})
        sk = LatencySketch()
        sk.add_many([0.01, 0.02, 0.03])
        before = time.time_ns()
        assert exporter.export({"GET /a": sk})
        after = time.time_ns()
    finally:
        server.shutdown()
        server.server_close()
    ((ctype, body),) = received
    assert ctype == "application/x-protobuf"
    msg = metrics_service_pb2.ExportMetricsServiceRequest()
    msg.ParseFromString(body)
    (rm,) = msg.resource_metrics
    assert {kv.key: kv.value.string_value for kv in rm.resource.attributes} == {
        "service.name": "api"
    }
    (metric,) = rm.scope_metrics[0].metrics
    assert (metric.name, metric.unit) == ("http.server.request.duration", "s")
    hist = metric.exponential_histogram
    assert hist.aggregation_temporality == 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
    (point,) = hist.data_points
    assert point.count == 3 and math.isclose(point.sum, 0.06)
    assert (point.min, point.max) == (0.01, 0.03)
    assert point.start_time_unix_nano == exporter.start_time_unix_nano
    assert before <= point.time_unix_nano <= after
    # three values a factor 1.5-2 apart: three buckets, each holding its value's index
    indices = [point.positive.offset + i for i, n in enumerate(point.positive.bucket_counts) if n]
    assert len(indices) == 3 and sum(point.positive.bucket_counts) == 3
    for index, value in zip(indices, (0.01, 0.02, 0.03), strict=True):
        assert abs(index - (math.ceil(math.log2(value) * 64) - 1)) <= 1
    with pytest.raises(ConfigurationError, match="encoding"):
        OTLPMetricExporter(url, encoding="xml")
