"""OTLP export, checked with the official opentelemetry-proto messages as the decoder."""

from __future__ import annotations

import base64
import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags, TraceState

from cognitionos.apm import (
    ExportedSpan,
    InMemorySpanExporter,
    OTLPSpanExporter,
    TracerProvider,
    decode_otlp_json,
    encode_otlp_json,
    encode_otlp_protobuf,
)
from cognitionos.errors import ConfigurationError

pb = pytest.importorskip(
    "opentelemetry.proto.collector.trace.v1.trace_service_pb2",
    reason="opentelemetry-proto (peers extra) decodes OTLP here",
)
json_format = pytest.importorskip("google.protobuf.json_format")

pytestmark = pytest.mark.peers


def official_from_json(doc: dict) -> object:
    """OTLP/JSON -> the official message. OTLP/JSON ids are hex where protobuf's JSON
    mapping expects base64, so they are converted first (as the Collector does)."""
    doc = copy.deepcopy(doc)

    def b64(hex_id: str) -> str:
        return base64.b64encode(bytes.fromhex(hex_id)).decode()

    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for field in ("traceId", "spanId", "parentSpanId"):
                    if span.get(field):
                        span[field] = b64(span[field])
                for link in span.get("links", []):
                    link["traceId"] = b64(link["traceId"])
                    link["spanId"] = b64(link["spanId"])
    return json_format.ParseDict(doc, pb.ExportTraceServiceRequest())


def make_spans(exporter=None):
    exporter = exporter if exporter is not None else InMemorySpanExporter()
    provider = TracerProvider(
        exporter=exporter, service_name="shop", resource={"deployment.environment": "test"}
    )
    tracer = provider.get_tracer("shop.orders", "2.0")
    other = SpanContext(
        0x1234,
        0x99,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("k", "v")]),
    )
    with tracer.start_as_current_span(
        "GET /orders/{id}",
        kind=SpanKind.SERVER,
        attributes={"http.status_code": 500, "ratio": 0.5, "ok": False, "tags": ["a", "b"]},
        links=[Link(other, {"why": "retry"})],
    ) as root:
        root.add_event("cache.miss", {"key": "o:1"})
        with tracer.start_as_current_span("db", kind=SpanKind.CLIENT) as db:
            db.set_status(StatusCode.OK)
        with pytest.raises(RuntimeError), tracer.start_as_current_span("fail"):
            raise RuntimeError("nope")
    assert provider.shutdown(timeout=5)
    return getattr(exporter, "spans", None)


def check_against_official(msg, spans):
    (rs,) = msg.resource_spans
    res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
    assert res == {"service.name": "shop", "deployment.environment": "test"}
    (ss,) = rs.scope_spans
    assert (ss.scope.name, ss.scope.version) == ("shop.orders", "2.0")
    by_name = {s.name: s for s in ss.spans}
    assert set(by_name) == {s.name for s in spans}
    for ours in spans:
        theirs = by_name[ours.name]
        assert theirs.trace_id == ours.trace_id.to_bytes(16, "big")
        assert theirs.span_id == ours.span_id.to_bytes(8, "big")
        assert theirs.parent_span_id == (
            ours.parent_id.to_bytes(8, "big") if ours.parent_id else b""
        )
        assert theirs.start_time_unix_nano == ours.start_time
        assert theirs.end_time_unix_nano == ours.end_time
    root = by_name["GET /orders/{id}"]
    # the proto enum: SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3
    assert root.kind == 2 and by_name["db"].kind == 3 and by_name["fail"].kind == 1
    attrs = {kv.key: kv.value for kv in root.attributes}
    assert attrs["http.status_code"].int_value == 500
    assert attrs["ratio"].double_value == 0.5
    assert attrs["ok"].HasField("bool_value") and attrs["ok"].bool_value is False
    assert [v.string_value for v in attrs["tags"].array_value.values] == ["a", "b"]
    (event,) = root.events
    assert event.name == "cache.miss"
    assert event.attributes[0].value.string_value == "o:1"
    (link,) = root.links
    assert link.trace_id == (0x1234).to_bytes(16, "big")
    assert link.trace_state == "k=v"
    assert link.attributes[0].key == "why"
    # STATUS_CODE_OK = 1, STATUS_CODE_ERROR = 2
    assert by_name["db"].status.code == 1
    fail = by_name["fail"]
    assert fail.status.code == 2
    assert fail.status.message == "RuntimeError: nope"
    assert fail.events[0].name == "exception"


def test_json_encoding_decodes_with_the_official_messages():
    spans = make_spans()
    doc = encode_otlp_json(spans)
    # OTLP/JSON rules: hex ids, integer enums
    first = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first["traceId"]) == 32 and int(first["traceId"], 16) == spans[0].trace_id
    assert isinstance(first["kind"], int)
    check_against_official(official_from_json(json.loads(json.dumps(doc))), spans)


def test_protobuf_encoding_decodes_with_the_official_messages():
    spans = make_spans()
    msg = pb.ExportTraceServiceRequest()
    msg.ParseFromString(encode_otlp_protobuf(spans))
    check_against_official(msg, spans)


def test_official_example_round_trips(data_file):
    raw = json.loads(data_file("apm/otlp_examples_trace.json").read_text("utf-8"))
    decoded = decode_otlp_json(raw)
    assert [s.name for s in decoded] == ["I'm a server span"]
    span = decoded[0]
    assert span.trace_id == 0x5B8EFFF798038103D269B633813FC60C
    assert span.kind is SpanKind.SERVER
    assert span.attributes == {"my.span.attr": "some value"}
    again = encode_otlp_json(decoded)
    assert official_from_json(again) == official_from_json(raw)
    binary = pb.ExportTraceServiceRequest()
    binary.ParseFromString(encode_otlp_protobuf(decoded))
    assert binary == official_from_json(raw)


scalars = st.one_of(
    st.text(max_size=10),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),  # inf included: proto3 JSON spells it "Infinity"
)
attr_values = st.one_of(scalars, st.lists(st.text(max_size=5), max_size=3).map(tuple))


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 2**128 - 1),
    st.integers(1, 2**64 - 1),
    st.integers(0, 2**64 - 1),
    st.text(max_size=20),
    st.dictionaries(st.text(min_size=1, max_size=8), attr_values, max_size=5),
    st.integers(0, 2**63),
    st.sampled_from(list(SpanKind)),
    st.sampled_from(list(StatusCode)),
)
def test_generated_spans_agree_between_json_protobuf_and_our_decoder(
    trace_id, span_id, parent_id, name, attributes, start, kind, status
):
    span = ExportedSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        name=name,
        kind=kind,
        start_time=start,
        end_time=start + 5,
        attributes=attributes,
        status_code=status,
        resource={"service.name": "x"},
        scope_name="s",
    )
    doc = json.loads(json.dumps(encode_otlp_json([span])))
    binary = pb.ExportTraceServiceRequest()
    binary.ParseFromString(encode_otlp_protobuf([span]))
    assert binary == official_from_json(doc)
    (back,) = decode_otlp_json(doc)
    assert (back.trace_id, back.span_id, back.parent_id, back.name, back.kind) == (
        trace_id,
        span_id,
        parent_id,
        name,
        kind,
    )
    assert back.attributes == attributes
    assert back.status_code is status


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"resourceSpans": 3}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "00"}]}]}]}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}',
    ],
)
def test_malformed_otlp_json_raises_the_library_error(body):
    with pytest.raises(ConfigurationError, match="OTLP/JSON"):
        decode_otlp_json(body)


class Receiver:
    """An OTLP/HTTP receiver on a loopback port that decodes with the official messages."""

    def __init__(self, status: int = 200):
        received = self.received = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers["Content-Type"] == "application/json":
                    msg = official_from_json(json.loads(body))
                else:
                    msg = pb.ExportTraceServiceRequest()
                    msg.ParseFromString(body)
                received.append((self.path, self.headers["Content-Type"], msg))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_exporter_posts_to_a_receiver(receiver, encoding):
    exporter = OTLPSpanExporter(receiver.url, encoding=encoding, headers={"x-tenant": "t1"})
    provider = TracerProvider(exporter=exporter, service_name="shop")
    tracer = provider.get_tracer("shop.orders")
    with tracer.start_as_current_span("GET /x"), tracer.start_as_current_span("child"):
        pass
    assert provider.shutdown(timeout=5)
    assert exporter.last_status == 200
    (path, ctype, msg) = receiver.received[0]
    assert path == "/v1/traces"
    assert ctype == ("application/json" if encoding == "json" else "application/x-protobuf")
    spans = msg.resource_spans[0].scope_spans[0].spans
    assert sorted(s.name for s in spans) == ["GET /x", "child"]
    child = next(s for s in spans if s.name == "child")
    parent = next(s for s in spans if s.name == "GET /x")
    assert child.parent_span_id == parent.span_id
    assert provider.stats()["spans_exported"] == 2


class _Tee:
    """Passes batches to the HTTP exporter and keeps the spans (what was recorded)."""

    def __init__(self, inner):
        self.inner = inner
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return self.inner.export(spans)

    def shutdown(self):
        self.inner.shutdown()


def test_protobuf_over_http_carries_every_field_to_the_official_decoder(receiver):
    tee = _Tee(OTLPSpanExporter(receiver.url, encoding="protobuf"))
    make_spans(tee)
    assert tee.inner.last_status == 200
    ((path, ctype, msg),) = receiver.received
    assert (path, ctype) == ("/v1/traces", "application/x-protobuf")
    # ids, names, timestamps, kinds, attributes, events, links and status as recorded
    check_against_official(msg, tee.spans)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_exporter_failure_is_counted_and_shutdown_is_bounded(encoding):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exporter = OTLPSpanExporter(
        f"http://127.0.0.1:{port}/v1/traces", encoding=encoding, timeout=0.5
    )
    provider = TracerProvider(exporter=exporter)
    provider.get_tracer("t").start_span("s").end()
    assert provider.shutdown(timeout=2) is True  # flushed: the batch was tried and failed
    assert provider.stats()["spans_failed"] == 1


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_a_hanging_collector_neither_blocks_exit_nor_hides_drops(encoding):
    import socket
    import time

    from cognitionos.apm import BatchSpanProcessor

    listener = socket.socket()  # accepts connections (backlog) and never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/traces"
        exporter = OTLPSpanExporter(url, encoding=encoding, timeout=30)
        processor = BatchSpanProcessor(
            exporter, max_queue_size=4, max_export_batch_size=1, schedule_delay=0.01
        )
        provider = TracerProvider(processor=processor)
        tracer = provider.get_tracer("t")
        tracer.start_span("first").end()
        deadline = time.monotonic() + 5
        while processor._queue and time.monotonic() < deadline:
            time.sleep(0.01)  # the export thread took "first" and is stuck on the socket
        for i in range(10):
            tracer.start_span(f"s{i}").end()
        started = time.monotonic()
        assert provider.shutdown(timeout=0.5) is False
        assert time.monotonic() - started < 2.0  # the 30 s HTTP timeout did not hold exit
        stats = provider.stats()
        # 4 queued, 6 refused by the full queue; the 4 left at the deadline are dropped too
        assert stats["spans_dropped"] == 10
        assert stats["spans_exported"] == 0
    finally:
        listener.close()


def test_http_error_status_is_a_failure():
    r = Receiver(status=503)
    try:
        exporter = OTLPSpanExporter(r.url)
        assert exporter.export(make_spans()) is False
        assert exporter.last_status == 503
    finally:
        r.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"endpoint": "ftp://x"}, "endpoint"),
        ({"encoding": "xml"}, "encoding"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_exporter_configuration_is_checked(kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        OTLPSpanExporter(**kwargs)
