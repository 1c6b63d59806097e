"""TracingMiddleware and CognitionMiddleware: span per request, route names, verdicts."""

from __future__ import annotations

import asyncio
import time

import fastapi
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from cognitionos.apm import ErrorGrouper, InMemorySpanExporter, LatencyRecorder, TracerProvider
from cognitionos.errors import ConfigurationError
from cognitionos.flags import FlagEngine
from cognitionos.integrations.apm import CognitionMiddleware, TracingMiddleware
from cognitionos.ratelimit import RateLimiter
from cognitionos.waf import Firewall

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def setup():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(exporter=exporter, service_name="shop")
    yield provider, exporter
    provider.shutdown()


def spans_of(provider, exporter):
    provider.force_flush(5000)
    return list(exporter.spans)


def make_app(provider):
    app = fastapi.FastAPI()
    tracer = trace.get_tracer("shop.orders", tracer_provider=provider)

    @app.get("/orders/{order_id}")
    async def order(order_id: int):
        with tracer.start_as_current_span("load order"):
            return {"id": order_id}

    @app.get("/boom")
    async def boom():
        raise RuntimeError("order 17 exploded")

    @app.get("/health")
    async def health():
        return {"ok": True}

    return app


def test_server_span_named_by_route_template_with_remote_parent(setup):
    provider, exporter = setup
    recorder = LatencyRecorder()
    app = TracingMiddleware(make_app(provider), tracer_provider=provider, recorder=recorder)
    with TestClient(app) as client:
        assert client.get("/orders/42", headers={"traceparent": PARENT}).json() == {"id": 42}
        assert client.get("/orders/43").status_code == 200
    first, child = None, None
    for s in spans_of(provider, exporter):
        if s.name == "GET /orders/{order_id}" and s.parent_id == 0xB7AD6B7169203331:
            first = s
        if s.name == "load order" and s.trace_id == 0x0AF7651916CD43DD8448EB211C80319C:
            child = s
    assert first is not None and child is not None
    assert first.kind is SpanKind.SERVER
    assert first.attributes["http.route"] == "/orders/{order_id}"
    assert first.attributes["http.response.status_code"] == 200
    assert first.attributes["url.path"] == "/orders/42"
    assert child.parent_id == first.span_id
    local = recorder.local()
    assert set(local) == {"GET /orders/{order_id}"}  # the template, never the raw path
    assert local["GET /orders/{order_id}"].count == 2


def test_unmatched_requests_are_named_by_method_only(setup):
    provider, exporter = setup
    app = TracingMiddleware(make_app(provider), tracer_provider=provider)
    with TestClient(app) as client:
        assert client.get("/nope/123").status_code == 404
    (span,) = spans_of(provider, exporter)
    assert span.name == "GET"
    assert span.attributes["http.response.status_code"] == 404
    assert "http.route" not in span.attributes


def test_exceptions_are_recorded_and_grouped(setup):
    provider, exporter = setup
    grouper = ErrorGrouper(in_app=("tests",))
    app = TracingMiddleware(make_app(provider), tracer_provider=provider, grouper=grouper)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/boom").status_code == 500
        assert client.get("/boom").status_code == 500
    server = [s for s in spans_of(provider, exporter) if s.kind is SpanKind.SERVER]
    assert len(server) == 2
    assert server[0].status.status_code is StatusCode.ERROR
    assert any(e.name == "exception" for e in server[0].events)
    (group,) = grouper.groups()
    assert group.count == 2
    assert group.routes == ("GET /boom",)
    assert group.trace_ids[0] == f"{server[0].trace_id:032x}"
    assert group.message == "order <num> exploded"


def test_excluded_paths_record_nothing(setup):
    provider, exporter = setup
    recorder = LatencyRecorder()
    app = TracingMiddleware(make_app(provider), tracer_provider=provider, recorder=recorder)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
    assert spans_of(provider, exporter) == []
    assert recorder.local() == {}


def test_streaming_response_span_ends_at_the_last_body_message(setup):
    provider, exporter = setup
    marks = {}

    async def streaming(scope, receive, send):
        scope["cognitionos.route"] = "/stream"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await asyncio.sleep(0.02)
        marks["before_last"] = time.time_ns()
        await send({"type": "http.response.body", "body": b"b", "more_body": False})
        await asyncio.sleep(0.05)  # work after the response (e.g. a background task)
        marks["after"] = time.time_ns()

    async def run():
        sent = []

        async def send(message):
            sent.append(message)

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        scope = {"type": "http", "method": "GET", "path": "/stream", "headers": []}
        await TracingMiddleware(streaming, tracer_provider=provider)(scope, receive, send)
        return sent

    sent = asyncio.run(run())
    assert [m["type"] for m in sent][-1] == "http.response.body"
    (span,) = spans_of(provider, exporter)
    assert span.name == "GET /stream"
    assert marks["before_last"] <= span.end_time < marks["after"]


def test_non_http_scopes_pass_through(setup):
    provider, exporter = setup
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(TracingMiddleware(app, tracer_provider=provider)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]
    assert spans_of(provider, exporter) == []


PAYLOAD = {
    "features": {
        "new-checkout": {
            "defaultValue": False,
            "rules": [{"condition": {"id": "vip"}, "force": True}],
        }
    }
}


def test_cognition_middleware_puts_every_verdict_on_the_span(setup):
    provider, exporter = setup
    inner = fastapi.FastAPI()

    @inner.get("/items/{item_id}")
    async def item(item_id: int, request: fastapi.Request):
        return {"checkout": request.state.flags.is_on("new-checkout")}

    app = CognitionMiddleware(
        inner,
        tracer_provider=provider,
        firewall=Firewall(paranoia=1),
        limiter=RateLimiter("memory://"),
        limits="2/minute",
        flags=FlagEngine.from_growthbook(PAYLOAD),
    )
    with TestClient(app) as client:
        ok = client.get("/items/1", headers={"x-user-id": "vip"})
        assert ok.json() == {"checkout": True}
        attack = client.get("/items/1", params={"q": "' or 1=1--"})
        assert attack.status_code == 403
        client.get("/items/2")
        limited = client.get("/items/3")
        assert limited.status_code == 429
    spans = [s for s in spans_of(provider, exporter) if s.kind is SpanKind.SERVER]
    assert len(spans) == 4
    first, blocked, third, refused = spans
    assert first.attributes["cognitionos.waf.blocked"] is False
    assert first.attributes["cognitionos.ratelimit.allowed"] is True
    assert first.attributes["cognitionos.ratelimit.remaining"] == 1
    assert first.attributes["cognitionos.flag.new-checkout"] == "True"
    assert first.name == "GET /items/{item_id}"
    assert blocked.attributes["cognitionos.waf.blocked"] is True
    assert blocked.attributes["http.response.status_code"] == 403
    assert third.attributes["cognitionos.ratelimit.allowed"] is True
    assert refused.attributes["cognitionos.ratelimit.allowed"] is False
    assert refused.attributes["http.response.status_code"] == 429
    assert refused.name == "GET"  # refused before routing: no template


def test_cognition_middleware_checks_its_arguments():
    with pytest.raises(ConfigurationError, match="together"):
        CognitionMiddleware(lambda *a: None, limiter=RateLimiter("memory://"))
    with pytest.raises(ConfigurationError, match="TracerProvider"):
        TracingMiddleware(lambda *a: None, tracer_provider="x")  # type: ignore[arg-type]


def test_prometheus_collector_merges_worker_sketches_from_the_store(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from cognitionos.integrations.apm import DEFAULT_LATENCY_BUCKETS, LatencyCollector
    from cognitionos.storage import open_store

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    rng = __import__("random").Random(5)
    values = {"GET /a": [], "POST /b": []}
    for _ in range(3):  # three worker processes
        rec = LatencyRecorder(store)
        for route, seen in values.items():
            for _ in range(300):
                # keep clear of bucket bounds by more than the 1 % accuracy
                v = rng.choice([0.003, 0.02, 0.04, 0.2, 0.6, 3.0]) * rng.uniform(0.97, 0.98)
                seen.append(v)
                rec.record(route, v)
        rec.flush()
    registry = CollectorRegistry()
    registry.register(LatencyCollector.from_store(store, since_seconds=3600))
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    hist = families["cognitionos_apm_request_duration_seconds"]
    for route, seen in values.items():
        buckets = {
            s.labels["le"]: s.value
            for s in hist.samples
            if s.name.endswith("_bucket") and s.labels["route"] == route
        }
        for bound in DEFAULT_LATENCY_BUCKETS:
            le = next(k for k in buckets if k != "+Inf" and float(k) == bound)
            assert buckets[le] == sum(1 for v in seen if v <= bound), (route, bound)
        assert buckets["+Inf"] == len(seen) == 900
        ordered = sorted(seen)
        quant = {
            s.labels["quantile"]: s.value
            for s in families["cognitionos_apm_request_duration_quantile_seconds"].samples
            if s.labels["route"] == route
        }
        exact = ordered[int(0.99 * (len(ordered) - 1))]
        assert abs(quant["0.99"] - exact) <= 0.01 * exact * (1 + 1e-9)
    store.close()


def test_wsgi_twin_spans_end_when_the_body_is_closed(setup):
    from cognitionos.integrations.apm import TracingWSGIMiddleware

    provider, exporter = setup
    recorder = LatencyRecorder()
    grouper = ErrorGrouper(in_app=("tests",))

    def wsgi_app(environ, start_response):
        environ["cognitionos.route"] = "/orders/{id}"
        if environ["PATH_INFO"] == "/orders/boom":
            raise ValueError("order 9 failed")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"a", b"b"])

    app = TracingWSGIMiddleware(
        wsgi_app, tracer_provider=provider, recorder=recorder, grouper=grouper
    )
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/orders/1", "HTTP_TRACEPARENT": PARENT}
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert b"".join(body) == b"ab"
    assert spans_of(provider, exporter) == []  # not closed yet: still streaming
    body.close()
    (span,) = spans_of(provider, exporter)
    assert span.name == "GET /orders/{id}"
    assert span.parent_id == 0xB7AD6B7169203331
    assert span.attributes["http.response.status_code"] == 200
    with pytest.raises(ValueError, match="order 9"):
        app({"REQUEST_METHOD": "GET", "PATH_INFO": "/orders/boom"}, lambda *a: None)
    assert grouper.groups()[0].routes == ("GET /orders/{id}",)
    assert recorder.local()["GET /orders/{id}"].count == 2
    app({"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz"}, lambda *a: None)
    assert len(spans_of(provider, exporter)) == 2
