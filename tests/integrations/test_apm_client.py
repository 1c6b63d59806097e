"""Outgoing HTTP: CLIENT spans, and the downstream server sees their traceparent."""

from __future__ import annotations

import asyncio
import http.server
import socket
import threading
import urllib.request
from typing import ClassVar

import httpx2
import pytest
import requests
from opentelemetry.trace import SpanKind, StatusCode

from cognitionos.apm import InMemorySpanExporter, TracerProvider, parse_traceparent
from cognitionos.errors import ConfigurationError
from cognitionos.integrations.apm_client import (
    AsyncTracingTransport,
    TracingTransport,
    client_span,
    instrument_session,
)


class _Echo(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self):
        type(self).seen.append(self.headers.get("traceparent"))
        status = 503 if self.path.startswith("/fail") else 200
        self.send_response(status)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        return None


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(exporter=exporter)
    _Echo.seen.clear()
    yield provider, exporter
    provider.shutdown()


def client_spans(provider, exporter):
    assert provider.force_flush(5000)
    return [s for s in exporter.spans if s.kind is SpanKind.CLIENT]


def check_propagated(provider, exporter, parent):
    (span,) = client_spans(provider, exporter)
    (header,) = _Echo.seen
    trace_id, span_id, flags = parse_traceparent(header)
    assert (trace_id, span_id, flags) == (span.trace_id, span.span_id, 1)
    assert span.parent_id == parent.span_id and span.trace_id == parent.trace_id
    return span


def test_httpx_transport_sends_the_client_span_as_parent(server, traced):
    provider, exporter = traced
    tracer = provider.get_tracer("app")
    transport = TracingTransport(httpx2.HTTPTransport(), tracer_provider=provider)
    with httpx2.Client(transport=transport) as client, tracer.start_as_current_span("job") as job:
        assert client.get(f"{server}/items?id=3").status_code == 200
    span = check_propagated(provider, exporter, job)
    assert span.name == "GET"
    assert span.attributes["url.full"] == f"{server}/items?id=3"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


def test_async_httpx_transport(server, traced):
    provider, exporter = traced
    tracer = provider.get_tracer("app")

    async def main():
        transport = AsyncTracingTransport(httpx2.AsyncHTTPTransport(), tracer_provider=provider)
        async with httpx2.AsyncClient(transport=transport) as client:
            with tracer.start_as_current_span("job") as job:
                response = await client.get(f"{server}/fail")
        return job, response.status_code

    job, status = asyncio.run(main())
    assert status == 503
    span = check_propagated(provider, exporter, job)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "503"


def test_requests_session_and_credentials_never_exported(server, traced):
    provider, exporter = traced
    tracer = provider.get_tracer("app")
    session = instrument_session(requests.Session(), tracer_provider=provider)
    assert instrument_session(session, tracer_provider=provider) is session  # once
    with session, tracer.start_as_current_span("job") as job:
        url = server.replace("http://", "http://user:secret@")
        assert session.get(f"{url}/x").status_code == 200
    span = check_propagated(provider, exporter, job)
    assert "secret" not in span.attributes["url.full"]
    assert span.attributes["url.full"] == f"{server}/x"


def test_client_span_for_urllib(server, traced):
    provider, exporter = traced
    tracer = provider.get_tracer("app")
    with tracer.start_as_current_span("job") as job:
        headers: dict[str, str] = {}
        with client_span(provider, "GET", f"{server}/fail", headers) as span:
            request = urllib.request.Request(f"{server}/fail", headers=headers)
            try:
                urllib.request.urlopen(request, timeout=5)
            except urllib.error.HTTPError as exc:
                span.set_attribute("http.response.status_code", exc.code)
    span = check_propagated(provider, exporter, job)
    assert span.status.status_code is StatusCode.ERROR


def test_connection_failures_are_recorded_and_the_span_ends(traced):
    provider, exporter = traced
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = TracingTransport(httpx2.HTTPTransport(), tracer_provider=provider)
    with httpx2.Client(transport=transport) as client, pytest.raises(httpx2.ConnectError):
        client.get(f"http://127.0.0.1:{port}/")
    (span,) = client_spans(provider, exporter)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ConnectError"
    assert [e.name for e in span.events] == ["exception"]


def test_refuses_what_cannot_be_wrapped(traced):
    provider, _ = traced
    with pytest.raises(ConfigurationError, match="handle_request"):
        TracingTransport(object(), tracer_provider=provider)
    with pytest.raises(ConfigurationError, match="handle_async_request"):
        AsyncTracingTransport(httpx2.HTTPTransport(), tracer_provider=provider)
    with pytest.raises(ConfigurationError, match="TracerProvider"):
        instrument_session(requests.Session(), tracer_provider="nope")
