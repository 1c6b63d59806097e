"""Outgoing HTTP: a ``CLIENT`` span per request, and the W3C trace headers sent with it.

The downstream service continues the trace: the request carries ``traceparent`` (and
``tracestate``/``baggage`` when present) of the client span, which is a child of the span
current in the caller. Three ways in, none of which patches a library globally:

- :class:`TracingTransport` / :class:`AsyncTracingTransport` wrap an httpx transport
  (``httpx.Client(transport=TracingTransport(httpx.HTTPTransport(), tracer_provider=p))``;
  any transport with ``handle_request`` / ``handle_async_request`` works, so do forks);
- :func:`instrument_session` wraps one ``requests.Session``'s ``send``;
- :func:`client_span`, a context manager for anything else (``urllib``, a custom client)::

      headers = {}
      with client_span(provider, "GET", url, headers) as span:
          response = urllib.request.urlopen(urllib.request.Request(url, headers=headers))
          span.set_attribute("http.response.status_code", response.status)

Spans follow the OTel HTTP client conventions: named by the method, with
``http.request.method``, ``url.full`` (user and password removed), ``server.address``,
``server.port``, ``http.response.status_code``; a status of 400 or more, or an exception,
sets an ERROR status and ``error.type``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cognitionos.apm import TraceContextPropagator
from cognitionos.errors import ConfigurationError

__all__ = ["AsyncTracingTransport", "TracingTransport", "client_span", "instrument_session"]

_PROPAGATOR = TraceContextPropagator()


def _tracer(tracer_provider: Any) -> otel_trace.Tracer:
    if isinstance(tracer_provider, otel_trace.Tracer):
        return tracer_provider
    if not isinstance(tracer_provider, otel_trace.TracerProvider):
        raise ConfigurationError(
            f"tracer_provider must be an OpenTelemetry TracerProvider, "
            f"got {type(tracer_provider).__name__}"
        )
    return tracer_provider.get_tracer("cognitionos.integrations.apm_client")


def _url_attributes(method: str, url: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {"http.request.method": method.upper()}
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return attributes
    netloc = parts.netloc.rpartition("@")[2]  # never export credentials
    attributes["url.full"] = urlunsplit(parts._replace(netloc=netloc))
    if host:
        attributes["server.address"] = host
        attributes["server.port"] = port or (443 if parts.scheme in ("https", "wss") else 80)
    return attributes


class _ClientCall:
    """One outgoing request's span: started, headers injected, ended with the outcome."""

    __slots__ = ("span",)

    def __init__(
        self,
        tracer: otel_trace.Tracer,
        method: str,
        url: str,
        headers: MutableMapping[str, str] | Any,
        propagator: TraceContextPropagator,
    ) -> None:
        self.span = tracer.start_span(
            method.upper(), kind=SpanKind.CLIENT, attributes=_url_attributes(method, url)
        )
        propagator.inject(headers, context=otel_trace.set_span_in_context(self.span))

    def response(self, status: int) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if status >= 400:
            self.span.set_attribute("error.type", str(status))
            self.span.set_status(Status(StatusCode.ERROR))

    def failed(self, exc: BaseException) -> None:
        self.span.record_exception(exc, escaped=True)
        self.span.set_attribute("error.type", type(exc).__qualname__)
        self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))

    def end(self) -> None:
        self.span.end()


@contextmanager
def client_span(
    tracer_provider: Any,
    method: str,
    url: str,
    headers: MutableMapping[str, str],
    *,
    propagator: TraceContextPropagator | None = None,
) -> Iterator[otel_trace.Span]:
    """A CLIENT span for one request; trace headers are written into ``headers`` on entry.

    Set ``http.response.status_code`` on the yielded span: 400 and up mark it failed when
    the block ends; an exception in the block is recorded.
    """
    call = _ClientCall(_tracer(tracer_provider), method, url, headers, propagator or _PROPAGATOR)
    try:
        yield call.span
    except BaseException as exc:
        call.failed(exc)
        raise
    finally:
        status = getattr(call.span, "attributes", {}).get("http.response.status_code")
        if isinstance(status, int) and status >= 400:
            call.response(status)
        call.end()


class TracingTransport:
    """An httpx transport that traces each request it sends through ``transport``."""

    def __init__(
        self,
        transport: Any,
        *,
        tracer_provider: Any,
        propagator: TraceContextPropagator | None = None,
    ) -> None:
        if not callable(getattr(transport, "handle_request", None)):
            raise ConfigurationError(
                f"transport must have handle_request(), got {type(transport).__name__}"
            )
        self.transport = transport
        self.tracer = _tracer(tracer_provider)
        self.propagator = propagator or _PROPAGATOR

    def handle_request(self, request: Any) -> Any:
        """Send ``request`` inside a CLIENT span, with its trace headers."""
        call = _ClientCall(
            self.tracer, request.method, str(request.url), request.headers, self.propagator
        )
        try:
            response = self.transport.handle_request(request)
        except BaseException as exc:
            call.failed(exc)
            call.end()
            raise
        call.response(response.status_code)
        call.end()
        return response

    def close(self) -> None:
        """Close the wrapped transport."""
        self.transport.close()

    def __enter__(self) -> TracingTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTracingTransport:
    """The async twin of :class:`TracingTransport` (``httpx.AsyncClient``)."""

    def __init__(
        self,
        transport: Any,
        *,
        tracer_provider: Any,
        propagator: TraceContextPropagator | None = None,
    ) -> None:
        if not callable(getattr(transport, "handle_async_request", None)):
            raise ConfigurationError(
                f"transport must have handle_async_request(), got {type(transport).__name__}"
            )
        self.transport = transport
        self.tracer = _tracer(tracer_provider)
        self.propagator = propagator or _PROPAGATOR

    async def handle_async_request(self, request: Any) -> Any:
        """Send ``request`` inside a CLIENT span, with its trace headers."""
        call = _ClientCall(
            self.tracer, request.method, str(request.url), request.headers, self.propagator
        )
        try:
            response = await self.transport.handle_async_request(request)
        except BaseException as exc:
            call.failed(exc)
            call.end()
            raise
        call.response(response.status_code)
        call.end()
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.transport.aclose()

    async def __aenter__(self) -> AsyncTracingTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def instrument_session(
    session: Any, *, tracer_provider: Any, propagator: TraceContextPropagator | None = None
) -> Any:
    """Trace every request ``session`` (a ``requests.Session``) sends; returns the session.

    Only this session's ``send`` is wrapped (once: a second call changes nothing).
    """
    send = getattr(session, "send", None)
    if not callable(send):
        raise ConfigurationError(f"session must have send(), got {type(session).__name__}")
    if getattr(send, "_cognitionos_traced", False):
        return session
    tracer = _tracer(tracer_provider)
    prop = propagator or _PROPAGATOR

    def traced_send(request: Any, **kwargs: Any) -> Any:
        call = _ClientCall(tracer, request.method or "GET", request.url, request.headers, prop)
        try:
            response = send(request, **kwargs)
        except BaseException as exc:
            call.failed(exc)
            call.end()
            raise
        call.response(response.status_code)
        call.end()
        return response

    traced_send._cognitionos_traced = True  # type: ignore[attr-defined]
    session.send = traced_send
    return session
