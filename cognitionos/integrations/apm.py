"""APM in web apps: one server span per request, and the composite ``CognitionMiddleware``.

:class:`TracingMiddleware` (pure ASGI) opens a ``SERVER`` span per HTTP request, child of
the caller's W3C ``traceparent`` when one is sent, and makes it current for the app, so
spans the app starts (with our tracer or any OTel-API library) nest under it. The span:

- is named ``"<METHOD> <route template>"`` once routing is done (``scope["route"]`` as set
  by Starlette/FastAPI, or ``scope["cognitionos.route"]`` set by any app); an unmatched
  request is named by its method alone, so raw paths never become span names or series;
- ends at the final ``http.response.body`` message (streaming responses are timed to
  their last byte), or when the app fails before answering;
- records ``http.response.status_code``, an ERROR status for 5xx and escaped exceptions.

Excluded paths (health checks, metrics) are skipped before any span or latency is
recorded. With a :class:`~cognitionos.apm.LatencyRecorder` the duration is recorded per
route template; with an :class:`~cognitionos.apm.ErrorGrouper` escaped exceptions are
grouped with the span's trace id and route.

:class:`CognitionMiddleware` chains WAF -> rate limit -> flags inside one tracing layer
(each stage optional) and puts each stage's answer on the request span:
``cognitionos.waf.blocked``, ``cognitionos.ratelimit.allowed`` (+ ``.remaining``), and
``cognitionos.flag.<key>`` for every flag the request evaluated.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from cognitionos._optional import require
from cognitionos.apm import (
    ErrorGrouper,
    LatencyRecorder,
    LatencySketch,
    Span,
    TraceContextPropagator,
    Tracer,
    read_route_latencies,
)
from cognitionos.apm._tracer import _SPAN_KEY, _VAR, _attach, _detach, _get_current
from cognitionos.errors import ConfigurationError

__all__ = [
    "DEFAULT_EXCLUDED_PATHS",
    "DEFAULT_LATENCY_BUCKETS",
    "CognitionMiddleware",
    "LatencyCollector",
    "TracingMiddleware",
    "TracingWSGIMiddleware",
    "route_template",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Annotate = Callable[[Scope, int | None, list[tuple[bytes, bytes]], otel_trace.Span], None]

_time_ns = time.time_ns
_NO_HEADERS: list[tuple[bytes, bytes]] = []
# the plain version-00 form; anything else (spacing, future versions) goes to the propagator
_TRACEPARENT_00 = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})").fullmatch

DEFAULT_EXCLUDED_PATHS = ("/health", "/healthz", "/livez", "/readyz", "/metrics")
#: Prometheus client's default histogram bounds (seconds)
DEFAULT_LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)


def route_template(scope: Scope) -> str | None:
    """The matched route's template (``/orders/{id}``), or None when nothing matched."""
    explicit = scope.get("cognitionos.route")
    if isinstance(explicit, str):
        return explicit
    route = scope.get("route")
    for attr in ("path_format", "path"):
        value = getattr(route, attr, None)
        if isinstance(value, str):
            return value
    return None


class TracingMiddleware:
    """Pure ASGI: a server span per HTTP request (see the module docstring).

    ::

        app = TracingMiddleware(app, tracer_provider=provider, recorder=LatencyRecorder(store))

    With a cognitionos :class:`~cognitionos.apm.TracerProvider` and the default propagator,
    a request whose only trace header is one well-formed version-00 ``traceparent`` (or
    none) takes the fast path: the header is matched in C, the sampling decision is made
    before anything is built, the span is made directly with its attribute dict, and the
    current context is set and reset once. Anything else (``tracestate``, ``baggage``,
    repeated headers, odd spacing, future versions, another provider) goes through the
    propagator and the OTel API; both paths give the same span. Header names are read as
    ASGI sends them: lower case.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: otel_trace.TracerProvider,
        recorder: LatencyRecorder | None = None,
        grouper: ErrorGrouper | None = None,
        propagator: TraceContextPropagator | None = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
        annotate: Annotate | None = None,
        max_span_names: int = 1000,
    ) -> None:
        if not isinstance(tracer_provider, otel_trace.TracerProvider):
            raise ConfigurationError(
                f"tracer_provider must be an OpenTelemetry TracerProvider, "
                f"got {type(tracer_provider).__name__}"
            )
        self.app = app
        self.tracer = tracer_provider.get_tracer("cognitionos.integrations.apm")
        self.recorder = recorder
        self.grouper = grouper
        self.propagator = propagator or TraceContextPropagator()
        self.exclude_paths = frozenset(exclude_paths)
        self.annotate = annotate
        self._tracing = True
        self._fast = type(self.tracer) is Tracer and type(self.propagator) is TraceContextPropagator
        self._str_limit = getattr(tracer_provider, "_str_limit", 0)
        self._max_attributes = getattr(tracer_provider, "max_attributes", 0)
        # "<METHOD> <route>" per (route, method), made once: no string building per request
        self._names: dict[str, dict[str, str]] = {}
        self._max_names = max_span_names

    def _span_name(self, method: str, route: str | None) -> str:
        if route is None:
            return method
        by_method = self._names.get(route)
        if by_method is not None:
            name = by_method.get(method)
            if name is not None:
                return name
        name = f"{method} {route}"
        if by_method is None:
            if len(self._names) >= self._max_names:
                return name
            by_method = self._names.setdefault(route, {})
        by_method[method] = name
        return name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._tracing or scope.get("path") in self.exclude_paths:
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        method = scope.get("method", "GET")
        start_ns = _time_ns()
        span: otel_trace.Span | None = None
        if self._fast:
            try:
                found = dict(headers)
                plain = len(found) == len(headers)  # no header name repeated
            except (TypeError, ValueError):
                plain = False  # not a list of pairs: the propagator copes
            # one traceparent and no other trace header
            if plain and b"tracestate" not in found and b"baggage" not in found:
                value = found.get(b"traceparent")
                if value is None:
                    trace_id = parent_id = flags = 0
                else:
                    match = _TRACEPARENT_00(value)
                    if match is not None:
                        trace_id = int(match[1], 16)
                        parent_id = int(match[2], 16)
                        flags = int(match[3], 16)
                    if match is None or not trace_id or not parent_id:
                        trace_id = -1  # not the plain form: the propagator decides
                if trace_id >= 0:
                    path = scope.get("path", "/")
                    if len(path) > self._str_limit or self._max_attributes < 3:
                        attributes = self.tracer._provider._clean_all(  # type: ignore[attr-defined]
                            {
                                "http.request.method": method,
                                "url.path": path,
                                "url.scheme": scope.get("scheme", "http"),
                            }
                        )
                    else:
                        attributes = {
                            "http.request.method": method,
                            "url.path": path,
                            "url.scheme": scope.get("scheme", "http"),
                        }
                    span = self.tracer.start_server_span(  # type: ignore[attr-defined]
                        method, trace_id, parent_id, flags, attributes, start_ns
                    )
                    current = _get_current()
                    if current:
                        context = dict(current)
                        context[_SPAN_KEY] = span
                        token = _attach(otel_context.Context(context))
                    else:
                        token = _attach(otel_context.Context({_SPAN_KEY: span}))
        if span is None:
            parent = self.propagator.extract(headers)
            span = self.tracer.start_span(
                method,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.path": scope.get("path", "/"),
                    "url.scheme": scope.get("scheme", "http"),
                },
                start_time=start_ns,
            )
            token = _attach(otel_trace.set_span_in_context(span, parent))
        exchange = _Exchange(self, scope, span, send, method, start_ns)
        try:
            await self.app(scope, receive, exchange.send)
        except BaseException as exc:
            exchange.finish(exc)
            raise
        finally:
            if _VAR is not None:
                try:
                    _VAR.reset(token)  # _detach without its call
                except Exception:
                    _detach(token)  # wrong context: let it log as the API does
            else:  # pragma: no cover - a custom OTEL_PYTHON_CONTEXT
                _detach(token)
        if not exchange.done:
            exchange.finish(None)


class _Exchange:
    """One request's state between the app's messages and the end of its span."""

    __slots__ = (
        "done",
        "downstream",
        "end_ns",
        "headers",
        "method",
        "mw",
        "scope",
        "span",
        "start_ns",
        "status",
    )

    def __init__(
        self,
        mw: TracingMiddleware,
        scope: Scope,
        span: otel_trace.Span,
        downstream: Send,
        method: str,
        start_ns: int,
    ) -> None:
        self.mw = mw
        self.scope = scope
        self.span = span
        self.downstream = downstream
        self.method = method
        self.start_ns = start_ns
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = _NO_HEADERS
        self.end_ns = 0
        self.done = False

    def send(self, message: Message) -> Awaitable[None]:
        # A plain function returning the awaitable to await: only the final body message
        # has work to do after the server took it, so only it costs a coroutine of ours.
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            if self.mw.annotate is not None:
                self.headers = list(message.get("headers", ()))
        elif kind == "http.response.body" and not message.get("more_body", False):
            return self._send_last(message)
        return self.downstream(message)

    async def _send_last(self, message: Message) -> None:
        await self.downstream(message)
        self.end_ns = _time_ns()
        # a 5xx is often sent by an error handler before the exception escapes:
        # wait for it so the span and the error group get the exception
        status = self.status
        if status is None or status < 500:
            self.finish(None)

    def finish(self, exc: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        mw = self.mw
        span = self.span
        scope = self.scope
        end_ns = self.end_ns or _time_ns()
        route = scope.get("cognitionos.route")
        if type(route) is not str:
            matched = scope.get("route")  # Starlette/FastAPI's matched route
            route = getattr(matched, "path_format", None) if matched is not None else None
            if type(route) is not str:
                route = route_template(scope)
        by_method = mw._names.get(route) if route is not None else None
        name = by_method.get(self.method) if by_method is not None else None
        if name is None:
            name = mw._span_name(self.method, route)
        status = self.status
        if type(span) is Span and exc is None and not span.end_time:
            # the common case, written straight into the span (same checks as set_attribute)
            span.name = name
            attrs = span.attributes
            if len(attrs) + 2 <= mw._max_attributes:
                if route is not None:
                    attrs["http.route"] = route
                if status is not None:
                    attrs["http.response.status_code"] = status
            else:
                if route is not None:
                    span.set_attribute("http.route", route)
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
            if status is not None and status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        else:
            span.update_name(name)
            if route is not None:
                span.set_attribute("http.route", route)
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if exc is not None:
                span.record_exception(exc, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                if mw.grouper is not None:
                    trace_id = span.get_span_context().trace_id
                    mw.grouper.record(exc, trace_id=trace_id or None, route=name)
            elif status is not None and status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        if mw.annotate is not None:
            mw.annotate(scope, status, self.headers, span)
        if type(span) is Span and not span.end_time:
            span.end_time = end_ns  # Span.end without its call: the span is ours, not ended
            span._provider._on_end(span)
        else:
            span.end(end_ns)
        recorder = mw.recorder
        if recorder is not None:
            elapsed = end_ns - self.start_ns
            # wall-clock stamps, as the span's: a clock stepped back must not go negative
            seconds = elapsed / 1e9 if elapsed > 0 else 0.0
            recorder.record(name, seconds)


class TracingWSGIMiddleware:
    """The WSGI twin of :class:`TracingMiddleware` (Flask, Django, any WSGI app).

    The route template comes from ``environ["cognitionos.route"]`` (set it in the app, e.g.
    from Flask's ``request.url_rule.rule``) or from ``route_of(environ)``. The span ends
    when the server closes the response iterable, so streamed bodies are timed to the end.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        tracer_provider: otel_trace.TracerProvider,
        recorder: LatencyRecorder | None = None,
        grouper: ErrorGrouper | None = None,
        propagator: TraceContextPropagator | None = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
        route_of: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        if not isinstance(tracer_provider, otel_trace.TracerProvider):
            raise ConfigurationError(
                f"tracer_provider must be an OpenTelemetry TracerProvider, "
                f"got {type(tracer_provider).__name__}"
            )
        self.app = app
        self.tracer = tracer_provider.get_tracer("cognitionos.integrations.apm")
        self.recorder = recorder
        self.grouper = grouper
        self.propagator = propagator or TraceContextPropagator()
        self.exclude_paths = frozenset(exclude_paths)
        self.route_of = route_of

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "/")
        if path in self.exclude_paths:
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        carrier = {
            name: environ[key]
            for name, key in (
                ("traceparent", "HTTP_TRACEPARENT"),
                ("tracestate", "HTTP_TRACESTATE"),
                ("baggage", "HTTP_BAGGAGE"),
            )
            if key in environ
        }
        parent = self.propagator.extract(carrier)
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        started = time.perf_counter()
        status: list[int] = []
        done = False

        def finish(exc: BaseException | None = None) -> None:
            nonlocal done
            if done:
                return
            done = True
            route = environ.get("cognitionos.route")
            if route is None and self.route_of is not None:
                route = self.route_of(environ)
            name = f"{method} {route}" if route else method
            span.update_name(name)
            if route:
                span.set_attribute("http.route", route)
            if status:
                span.set_attribute("http.response.status_code", status[0])
            if exc is not None:
                span.record_exception(exc, escaped=True)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                if self.grouper is not None:
                    trace_id = span.get_span_context().trace_id
                    self.grouper.record(exc, trace_id=trace_id or None, route=name)
            elif status and status[0] >= 500:
                span.set_status(Status(StatusCode.ERROR))
            span.end()
            if self.recorder is not None:
                self.recorder.record(name, time.perf_counter() - started)

        def traced_start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            try:
                status[:] = [int(status_line.split(" ", 1)[0])]
            except ValueError:
                pass
            return start_response(status_line, headers, exc_info)

        token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        try:
            result = self.app(environ, traced_start)
        except BaseException as exc:
            finish(exc)
            raise
        finally:
            otel_context.detach(token)
        return _TracedBody(result, finish)


class _TracedBody:
    """Yields the app's body; ends the span when the server closes it (or iteration fails)."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[BaseException | None], None]):
        self._body = body
        self._finish = finish

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException as exc:
            self._finish(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(None)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    size = len(name)
    for key, value in headers:
        # a length check first: only a name of the right length is lowered and compared
        if len(key) == size and key.lower() == name:
            return value
    return None


# the ``r`` (remaining) parameter of an RFC draft ``RateLimit`` header: "policy";r=5;t=30
_REMAINING = re.compile(rb"(?:^|;)[ \t]*r=([0-9]+)[ \t]*(?=;|$)").findall


class CognitionMiddleware(TracingMiddleware):
    """WAF -> rate limit -> flags -> app, in one request span (every stage optional).

    ::

        app = CognitionMiddleware(
            app,
            tracer_provider=provider,
            firewall=Firewall(paranoia=1),
            limiter=RateLimiter("memory://"), limits="100/minute",
            flags=FlagEngine(store="sqlite:///flags.db"),
        )

    Without ``tracer_provider`` the stages run without a span. With tracing on it is itself
    the tracing layer (no extra call per request), the stages chained inside it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer_provider: otel_trace.TracerProvider | None = None,
        recorder: LatencyRecorder | None = None,
        grouper: ErrorGrouper | None = None,
        firewall: Any = None,
        limiter: Any = None,
        limits: Any = None,
        rate_key: Any = None,
        flags: Any = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
    ) -> None:
        if (limiter is None) != (limits is None):
            raise ConfigurationError("give limiter= and limits= together")
        chain: ASGIApp = app
        if flags is not None:
            from cognitionos.integrations.flags import FlagsMiddleware

            chain = FlagsMiddleware(chain, flags)
        if limiter is not None:
            from cognitionos.integrations.ratelimit import RateLimitMiddleware

            chain = RateLimitMiddleware(chain, limiter=limiter, limits=limits, key=rate_key)
        if firewall is not None:
            from cognitionos.integrations.waf import FirewallMiddleware

            chain = FirewallMiddleware(chain, firewall)
        self.stages = {
            "waf": firewall is not None,
            "ratelimit": limiter is not None,
            "flags": flags is not None,
        }
        self._waf_on, self._limit_on, self._flags_on = self.stages.values()
        if tracer_provider is not None:
            super().__init__(
                chain,
                tracer_provider=tracer_provider,
                recorder=recorder,
                grouper=grouper,
                exclude_paths=exclude_paths,
                annotate=self._annotate if any(self.stages.values()) else None,
            )
        else:
            self.app = chain
            self._tracing = False

    def _annotate(
        self,
        scope: Scope,
        status: int | None,
        headers: list[tuple[bytes, bytes]],
        span: otel_trace.Span,
    ) -> None:
        found: dict[str, Any] = {}
        if self._waf_on:
            found["cognitionos.waf.blocked"] = (
                status == 403 and _header(headers, b"x-waf-incident") is not None
            )
        if self._limit_on:
            found["cognitionos.ratelimit.allowed"] = status != 429
            value = _header(headers, b"ratelimit")
            if value is not None:
                remaining = _REMAINING(value)
                if remaining:
                    found["cognitionos.ratelimit.remaining"] = int(remaining[-1])
        if self._flags_on:
            flags = scope.get("state", {}).get("flags")
            if flags is not None:
                for key, evaluation in flags.evaluations().items():
                    found[f"cognitionos.flag.{key}"] = str(evaluation.value)
        if not found:
            return
        if type(span) is Span and not span.end_time:
            provider = span._provider
            attrs = span.attributes
            if len(attrs) + len(found) <= provider.max_attributes:
                # set_attribute's checks in bulk: room for all; only strings need a look
                limit = provider._str_limit
                for key, value in found.items():
                    if type(value) is str and len(value) > limit:
                        found[key] = provider._clean(value)
                attrs.update(found)
                return
        for key, value in found.items():
            span.set_attribute(key, value)


class LatencyCollector:
    """Prometheus collector: per-route latency histograms and quantiles read from sketches.

    Nothing happens on the request path; at scrape time the sketches are read and turned
    into a histogram family ``<namespace>_apm_request_duration_seconds{route}`` (cumulative
    ``le`` buckets at sketch resolution) and a gauge family
    ``<namespace>_apm_request_duration_quantile_seconds{route,quantile}``. With a store the
    sketches of every worker process and host are merged first, so one scrape of any
    worker shows the fleet::

        registry.register(LatencyCollector.from_store(store, since_seconds=300))
    """

    def __init__(
        self,
        source: Callable[[], Mapping[str, LatencySketch]],
        *,
        namespace: str = "cognitionos",
        buckets: Iterable[float] = DEFAULT_LATENCY_BUCKETS,
        quantiles: Iterable[float] = (0.5, 0.9, 0.99, 0.999),
    ) -> None:
        require("prometheus_client", purpose="Prometheus metrics")
        if not callable(source):
            raise ConfigurationError("source must be a callable returning {route: sketch}")
        self.source = source
        self.namespace = namespace
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self.quantiles = tuple(float(q) for q in quantiles)
        for q in self.quantiles:
            if not 0 <= q <= 1:
                raise ConfigurationError(f"quantiles must be in [0, 1], got {q!r}")

    @classmethod
    def from_store(
        cls,
        store: Any,
        *,
        since_seconds: float | None = None,
        apm_namespace: str = "apm",
        **options: Any,
    ) -> LatencyCollector:
        """Read the fleet-wide windows kept in ``store`` (the last ``since_seconds``, or all)."""

        def read() -> Mapping[str, LatencySketch]:
            since = None if since_seconds is None else time.time() - since_seconds
            return read_route_latencies(store, since=since, namespace=apm_namespace)

        return cls(read, **options)

    @classmethod
    def from_recorder(cls, recorder: LatencyRecorder, **options: Any) -> LatencyCollector:
        """Read what ``recorder`` holds in this process and has not flushed."""
        return cls(recorder.local, **options)

    def collect(self) -> Iterator[Any]:
        """Called by prometheus_client at scrape time."""
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        base = f"{self.namespace}_apm_request_duration"
        hist = HistogramMetricFamily(
            f"{base}_seconds", "Request duration per route template", labels=["route"]
        )
        gauge = GaugeMetricFamily(
            f"{base}_quantile_seconds",
            "Request duration quantiles per route template (1 % relative error)",
            labels=["route", "quantile"],
        )
        for route, sketch in sorted(self.source().items()):
            if not sketch.count:
                continue
            points = [(_le(b), float(sketch.count_at_most(b))) for b in self.buckets]
            points.append(("+Inf", float(sketch.count)))
            hist.add_metric([route], points, sum_value=sketch.sum)
            for q in self.quantiles:
                gauge.add_metric([route, f"{q:g}"], sketch.quantile(q))
        yield hist
        yield gauge


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{bound:.1f}"
