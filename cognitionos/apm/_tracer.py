"""A lean tracer behind the ``opentelemetry-api``: provider, tracer and span.

:class:`TracerProvider` subclasses ``opentelemetry.trace.TracerProvider``; code written
against the OTel API (``tracer.start_as_current_span``, ``trace.get_current_span``,
``span.record_exception``...) reports into it, and the current span lives in the API's own
contextvars context, so OTel-instrumented libraries and our propagator see it.

Why it is cheaper than the SDK: a span is one slotted object whose ``SpanContext`` is built
only when someone asks for it; attributes are a plain dict checked on write; ending a span is
one ``deque.append`` (the batch processor's thread does the rest); there is no per-span lock.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import random
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util import types as otel_types

from cognitionos.apm._export import BatchSpanProcessor, SpanExporter
from cognitionos.apm._sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler
from cognitionos.apm._tail import TailSamplingProcessor
from cognitionos.errors import ConfigurationError
from cognitionos.metrics import CounterSet

__all__ = ["Span", "SpanEvent", "Tracer", "TracerProvider", "in_current_context"]

log = logging.getLogger("cognitionos.apm")

# the key the API itself stores the current span under
_SPAN_KEY: str = otel_trace.propagation._SPAN_KEY


def _runtime_var() -> Any:
    # With the API's default (contextvars) runtime context, read and set its ContextVar
    # directly: the same operations the API performs, minus two Python call layers. Any
    # other runtime context goes through the public functions.
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if type(runtime).__name__ == "ContextVarsRuntimeContext" and hasattr(var, "reset"):
        return var
    return None


_VAR = _runtime_var()
if _VAR is not None:
    _attach: Any = _VAR.set
    _get_current: Any = _VAR.get

    def _detach(token: Any) -> None:
        try:
            _VAR.reset(token)
        except Exception:  # the API logs and carries on; so do we
            log.exception("Failed to detach context")

else:  # pragma: no cover - a custom OTEL_PYTHON_CONTEXT
    _attach = otel_context.attach
    _get_current = otel_context.get_current
    _detach = otel_context.detach


def _with_span(span: otel_trace.Span) -> otel_context.Context:
    values = dict(_get_current())
    values[_SPAN_KEY] = span
    return otel_context.Context(values)


_time_ns = time.time_ns
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)
_EMPTY_STATE = TraceState()
_ALLOWED_SCALARS = (str, bool, int, float)
_UNSET = Status(StatusCode.UNSET)

P = ParamSpec("P")
R = TypeVar("R")

_COUNTER_NAMES = (
    "spans_started",
    "spans_not_sampled",
    "attributes_dropped",
    "attributes_truncated",
    "events_dropped",
)


class SpanEvent:
    """A timestamped event on a span (``exception`` events carry the exception's attributes)."""

    __slots__ = ("attributes", "name", "timestamp")

    def __init__(self, name: str, timestamp: int, attributes: dict[str, Any]) -> None:
        self.name = name
        self.timestamp = timestamp
        self.attributes = attributes

    def __repr__(self) -> str:
        return f"SpanEvent({self.name!r}, {self.timestamp}, {self.attributes!r})"


class Span(otel_trace.Span):
    """A recording span. After ``end()`` it is read by exporters and never changes again."""

    __slots__ = (
        "_context",
        "_ctx_token",
        "_provider",
        "attributes",
        "end_time",
        "events",
        "exception",
        "kind",
        "links",
        "name",
        "parent_id",
        "parent_remote",
        "scope",
        "span_id",
        "start_time",
        "status",
        "trace_id",
        "trace_state",
    )

    def __init__(
        self,
        provider: TracerProvider,
        scope: Tracer,
        name: str,
        trace_id: int,
        span_id: int,
        parent_id: int,
        parent_remote: bool,
        kind: SpanKind,
        start_time: int,
        trace_state: TraceState,
        attributes: dict[str, Any] | None = None,
    ) -> None:
        self._provider = provider
        self.scope = scope
        self.name = name
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.parent_remote = parent_remote
        self.kind = kind
        self.start_time = start_time
        self.end_time = 0
        self.trace_state = trace_state
        # the web middleware hands over the dict it built (within the limits): not copied
        self.attributes: dict[str, Any] = {} if attributes is None else attributes
        # shared empty tuples until the first event/link: most spans have none
        self.events: list[SpanEvent] | tuple[()] = ()
        self.links: list[Link] | tuple[()] = ()
        self.status = _UNSET
        self.exception: BaseException | None = None
        self._context: SpanContext | None = None
        self._ctx_token: object = None

    # -- the API ----------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        """This span's ids (built on first use)."""
        ctx = self._context
        if ctx is None:
            ctx = self._context = SpanContext(
                self.trace_id, self.span_id, False, _SAMPLED, self.trace_state
            )
        return ctx

    def is_recording(self) -> bool:
        """True until the span ends."""
        return self.end_time == 0

    def set_attribute(self, key: str, value: otel_types.AttributeValue) -> None:
        """Set one attribute (ignored after end; over-long strings are truncated and counted)."""
        if self.end_time:
            return
        attrs = self.attributes
        provider = self._provider
        if key not in attrs and len(attrs) >= provider.max_attributes:
            provider._count_dropped_attribute()
            return
        kind = type(value)
        if kind is str:
            if len(value) > provider._str_limit:  # type: ignore[arg-type]
                value = provider._clean(value)
        elif kind is not int and kind is not bool and kind is not float:
            value = provider._clean(value)
        attrs[key] = value

    def set_attributes(self, attributes: Mapping[str, otel_types.AttributeValue]) -> None:
        """Set several attributes."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: otel_types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        """Record an event (capped by the provider's ``max_events``)."""
        if self.end_time:
            return
        if len(self.events) >= self._provider.max_events:
            self._provider._count_dropped_event()
            return
        clean = self._provider._clean_all(attributes) if attributes else {}
        if not self.events:
            self.events = []
        self.events.append(SpanEvent(name, timestamp or _time_ns(), clean))

    def add_link(self, context: SpanContext, attributes: otel_types.Attributes = None) -> None:
        """Link another span's context."""
        if not self.end_time and context.is_valid:
            if not self.links:
                self.links = []
            self.links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        """Rename the span (e.g. once the route template is known)."""
        if not self.end_time:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status; OK is final, UNSET never overwrites."""
        if self.end_time or self.status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            new = status
        else:
            new = Status(status, description if status is StatusCode.ERROR else None)
        if new.status_code is StatusCode.UNSET:
            return
        self.status = new

    def record_exception(
        self,
        exception: BaseException,
        attributes: otel_types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add an ``exception`` event (type, message, stack trace) and keep the exception."""
        if self.end_time:
            return
        self.exception = exception
        attrs: dict[str, Any] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(
                traceback.format_exception(type(exception), exception, exception.__traceback__)
            ),
            "exception.escaped": str(escaped),
        }
        if attributes:
            attrs.update(attributes)
        self.add_event("exception", attrs, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """Finish the span and hand it to the processor (a second call does nothing)."""
        if self.end_time:
            return
        self.end_time = end_time or _time_ns()
        self._provider._on_end(self)

    # -- context manager (``with tracer.start_as_current_span(...) as span``) ---------------

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and self.end_time == 0:
            self.record_exception(exc, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{exc_type.__name__}: {exc}"))  # type: ignore[union-attr]
        self.end()

    @property
    def resource(self) -> dict[str, Any]:
        """The provider's resource attributes (``service.name`` ...)."""
        return self._provider.resource

    @property
    def duration_ns(self) -> int:
        """End minus start (0 while recording)."""
        return self.end_time - self.start_time if self.end_time else 0

    def __repr__(self) -> str:
        return f"Span({self.name!r}, trace_id={self.trace_id:032x}, span_id={self.span_id:016x})"


class _CurrentSpan:
    """``start_as_current_span``: a hand-written context manager (no generator frames)."""

    __slots__ = ("_end", "_record", "_set_status", "_token", "span")

    def __init__(self, span: otel_trace.Span, end: bool, record: bool, set_status: bool) -> None:
        self.span = span
        self._end = end
        self._record = record
        self._set_status = set_status
        self._token: object = None

    def __enter__(self) -> otel_trace.Span:
        self._token = _attach(_with_span(self.span))
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        span = self.span
        try:
            if exc is not None and span.is_recording():
                if self._record:
                    span.record_exception(exc, escaped=True)
                if self._set_status:
                    span.set_status(Status(StatusCode.ERROR, f"{exc_type.__name__}: {exc}"))  # type: ignore[union-attr]
        finally:
            _detach(self._token)  # type: ignore[arg-type]
            if self._end:
                span.end()


class Tracer(otel_trace.Tracer):
    """Makes spans for one instrumentation scope (name, version)."""

    __slots__ = ("_provider", "attributes", "name", "schema_url", "version")

    def __init__(
        self,
        provider: TracerProvider,
        name: str,
        version: str | None,
        schema_url: str | None,
        attributes: otel_types.Attributes,
    ) -> None:
        self._provider = provider
        self.name = name
        self.version = version
        self.schema_url = schema_url
        self.attributes = dict(attributes or {})

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: otel_types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> otel_trace.Span:
        """Start a span, child of the span in ``context`` (else of the current one)."""
        provider = self._provider
        parent: Any = (context if context is not None else _get_current()).get(_SPAN_KEY)
        if parent is None or parent is otel_trace.INVALID_SPAN:
            trace_id = provider._new_trace_id()
            parent_id = 0
            parent_remote = False
            state = _EMPTY_STATE
            sampled = True if provider._root_always else provider._sample(None, trace_id, name)
        elif type(parent) is Span:
            trace_id = parent.trace_id
            parent_id = parent.span_id
            parent_remote = False
            state = parent.trace_state
            sampled = (
                True
                if provider._follow_parent
                else provider._sample(parent.get_span_context(), trace_id, name)
            )
        else:
            pctx = parent.get_span_context()
            if not pctx.is_valid:
                trace_id = provider._new_trace_id()
                parent_id = 0
                parent_remote = False
                state = _EMPTY_STATE
                sampled = provider._sample(None, trace_id, name)
            else:
                trace_id = pctx.trace_id
                parent_id = pctx.span_id
                parent_remote = pctx.is_remote
                state = pctx.trace_state
                sampled = provider._sample(pctx, trace_id, name)
        span_id = provider._new_span_id()
        if not sampled:
            provider._count_not_sampled()
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, _NOT_SAMPLED, state))
        span = Span(
            provider,
            self,
            name,
            trace_id,
            span_id,
            parent_id,
            parent_remote,
            kind,
            start_time or _time_ns(),
            state,
        )
        if attributes:
            span.attributes = provider._clean_all(attributes)
        if links:
            for link in links:
                span.add_link(link.context, link.attributes)
        provider._count_started()
        return span

    def start_server_span(
        self,
        name: str,
        trace_id: int,
        parent_id: int,
        flags: int,
        attributes: dict[str, Any],
        start_time: int,
    ) -> otel_trace.Span:
        """A ``SERVER`` span, child of a parsed remote ``traceparent`` (``trace_id == 0``: root).

        The request path of the web middleware: the sampling decision comes first and
        nothing is built for a span that is not recorded. ``attributes`` is adopted as the
        span's attribute dict (the caller builds a fresh one within the limits).
        """
        provider = self._provider
        if trace_id:
            if provider._remote_follow:
                sampled = bool(flags & 1)
            else:
                pctx = SpanContext(trace_id, parent_id, True, TraceFlags(flags & 1), _EMPTY_STATE)
                sampled = provider._sample(pctx, trace_id, name)
            remote = True
        else:
            trace_id = provider._new_trace_id()
            sampled = True if provider._root_always else provider._sample(None, trace_id, name)
            remote = False
        span_id = provider._getrandbits(64) or provider._new_span_id()
        if not sampled:
            provider._count_not_sampled()
            return NonRecordingSpan(
                SpanContext(trace_id, span_id, False, _NOT_SAMPLED, _EMPTY_STATE)
            )
        span = Span(
            provider,
            self,
            name,
            trace_id,
            span_id,
            parent_id,
            remote,
            SpanKind.SERVER,
            start_time,
            _EMPTY_STATE,
            attributes,
        )
        provider._count_started()
        return span

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: otel_types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> _CurrentSpan:
        """Start a span and make it current for the ``with`` block (the API's contract)."""
        span = self.start_span(name, context, kind, attributes, links, start_time)
        return _CurrentSpan(span, end_on_exit, record_exception, set_status_on_exception)

    def span(self, name: str, attributes: Mapping[str, Any] | None = None) -> _CurrentSpan:
        """Native shortcut: ``with tracer.span("work") as s:`` (current, ended on exit)."""
        return _CurrentSpan(
            self.start_span(name, None, SpanKind.INTERNAL, attributes), True, True, True
        )


class TracerProvider(otel_trace.TracerProvider):
    """Tracers for a service; spans go through a sampler to a batching exporter.

    ::

        provider = TracerProvider(exporter=InMemorySpanExporter(), service_name="shop")
        tracer = provider.get_tracer("shop.orders")
        with tracer.start_as_current_span("GET /orders/{id}") as span:
            span.set_attribute("order.id", 42)
        provider.shutdown()

    Pass ``processor=`` instead of ``exporter=`` for full control of batching, or a
    :class:`TailSamplingProcessor` to keep failed and slow traces only. Nothing is
    global: hand the provider to the code that needs it (``trace.get_tracer(...,
    tracer_provider=provider)`` works too).
    """

    def __init__(
        self,
        exporter: SpanExporter | None = None,
        *,
        sampler: Sampler | None = None,
        service_name: str = "unknown_service",
        resource: Mapping[str, Any] | None = None,
        processor: BatchSpanProcessor | TailSamplingProcessor | None = None,
        max_attributes: int = 128,
        max_attribute_length: int | None = 4096,
        max_events: int = 128,
        seed: int | None = None,
    ) -> None:
        if exporter is not None and processor is not None:
            raise ConfigurationError("give exporter= or processor=, not both")
        if sampler is None:
            sampler = ParentBased(ALWAYS_ON)
        if not isinstance(sampler, Sampler):
            raise ConfigurationError(f"sampler must be a Sampler, got {type(sampler).__name__}")
        for label, limit in (("max_attributes", max_attributes), ("max_events", max_events)):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise ConfigurationError(f"{label} must be an int >= 0, got {limit!r}")
        if max_attribute_length is not None and (
            isinstance(max_attribute_length, bool)
            or not isinstance(max_attribute_length, int)
            or max_attribute_length < 1
        ):
            raise ConfigurationError(
                f"max_attribute_length must be an int >= 1 or None, got {max_attribute_length!r}"
            )
        self.sampler = sampler
        # our own spans are always sampled ones: under a ParentBased sampler whose
        # local-sampled delegate is ALWAYS_ON, their children need no sampler call
        self._follow_parent = (
            isinstance(sampler, ParentBased) and sampler.local_parent_sampled is ALWAYS_ON
        )
        self._root_always = sampler is ALWAYS_ON or (
            isinstance(sampler, ParentBased) and sampler.root is ALWAYS_ON
        )
        # a remote parent's sampled flag decides alone (the default): no sampler call
        self._remote_follow = (
            isinstance(sampler, ParentBased)
            and sampler.remote_parent_sampled is ALWAYS_ON
            and sampler.remote_parent_not_sampled is ALWAYS_OFF
        )
        self.resource: dict[str, Any] = {"service.name": service_name, **(resource or {})}
        self.max_attributes = max_attributes
        self.max_attribute_length = max_attribute_length
        self._str_limit = max_attribute_length if max_attribute_length is not None else 1 << 62
        self.max_events = max_events
        self.counters = CounterSet("apm_tracer", _COUNTER_NAMES)
        self._count_started = self.counters.incrementer("spans_started")
        self._count_not_sampled = self.counters.incrementer("spans_not_sampled")
        self._count_dropped_attribute = self.counters.incrementer("attributes_dropped")
        self._count_truncated = self.counters.incrementer("attributes_truncated")
        self._count_dropped_event = self.counters.incrementer("events_dropped")
        rng = random.Random(seed) if seed is not None else random.SystemRandom()
        # SystemRandom reads os.urandom per call; a seeded Mersenne Twister is much cheaper
        # and, re-seeded from urandom after a fork, never repeats ids across workers
        self._rng = random.Random(rng.getrandbits(128))
        self._getrandbits = self._rng.getrandbits
        if processor is None:
            processor = BatchSpanProcessor(exporter) if exporter is not None else None
        self.processor = processor
        self._on_end = processor.on_end if processor is not None else _discard
        self._tracers: dict[tuple[str, str | None, str | None], Tracer] = {}
        self._shut = False
        from cognitionos._fork import reset_after_fork

        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        import os

        # two workers forked from one parent must not draw the same ids
        self._rng.seed(int.from_bytes(os.urandom(16), "big"))

    # -- ids and sampling -------------------------------------------------------------------

    def _new_trace_id(self) -> int:
        tid: int = self._getrandbits(128)
        while not tid:
            tid = self._getrandbits(128)
        return tid

    def _new_span_id(self) -> int:
        sid: int = self._getrandbits(64)
        while not sid:
            sid = self._getrandbits(64)
        return sid

    def _sample(self, parent: SpanContext | None, trace_id: int, name: str) -> bool:
        return self.sampler.should_sample(parent, trace_id, name)

    def _clean(self, value: Any) -> Any:
        limit = self.max_attribute_length
        if type(value) is str:
            if limit is not None and len(value) > limit:
                self._count_truncated()
                return value[:limit]
            return value
        if isinstance(value, _ALLOWED_SCALARS):
            return value
        if isinstance(value, (list, tuple)):
            return tuple(self._clean(v) for v in value)
        return str(value)

    def _clean_all(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """A checked copy of ``attributes`` (count and length limits applied and counted)."""
        limit = self._str_limit
        out: dict[str, Any] = {}
        room = self.max_attributes
        for key, value in attributes.items():
            if len(out) >= room:
                self._count_dropped_attribute()
                continue
            kind = type(value)
            if kind is str:
                if len(value) > limit:
                    value = self._clean(value)
            elif kind is not int and kind is not bool and kind is not float:
                value = self._clean(value)
            out[key] = value
        return out

    # -- the API ----------------------------------------------------------------------------

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: otel_types.Attributes = None,
    ) -> Tracer:
        """The tracer for one instrumentation scope (cached per name/version/schema)."""
        if not isinstance(instrumenting_module_name, str) or not instrumenting_module_name:
            raise ConfigurationError(
                f"tracer name must be a non-empty str, got {instrumenting_module_name!r}"
            )
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        tracer = self._tracers.get(key)
        if tracer is None:
            tracer = self._tracers.setdefault(
                key,
                Tracer(self, *key, attributes=attributes),  # type: ignore[misc]
            )
        return tracer

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export everything ended so far; False if the deadline passed first."""
        if self.processor is None:
            return True
        return self.processor.force_flush(timeout_millis / 1000)

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush and stop the export thread within ``timeout`` seconds (never hangs)."""
        if self._shut:
            return True
        self._shut = True
        if self.processor is None:
            return True
        return self.processor.shutdown(timeout)

    def stats(self) -> dict[str, int]:
        """Counters: spans started/not sampled, attributes dropped/truncated, export totals."""
        out = self.counters.snapshot()
        processor: Any = self.processor
        while processor is not None:  # a tail sampler's counters, then its exporter's
            out.update(processor.counters.snapshot())
            processor = getattr(processor, "next", None)
        return out

    def __enter__(self) -> TracerProvider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def in_current_context(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` bound to a copy of the caller's context (current span, baggage).

    Thread pools and ``loop.run_in_executor`` run work in a fresh context, so spans started
    there would begin new traces; wrap the callable to keep the parent::

        await loop.run_in_executor(pool, in_current_context(render), order)
        pool.submit(in_current_context(work), item)
    """
    ctx = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.run(func, *args, **kwargs)

    return run


def _discard(span: Span) -> None:
    return None


def current_span_tree(spans: Sequence[Span]) -> Iterator[tuple[int, Span]]:
    """(depth, span) in tree order, for tests and debugging."""
    children: dict[int, list[Span]] = {}
    ids = {s.span_id for s in spans}
    roots = []
    for s in sorted(spans, key=lambda s: s.start_time):
        if s.parent_id and s.parent_id in ids:
            children.setdefault(s.parent_id, []).append(s)
        else:
            roots.append(s)

    def walk(span: Span, depth: int) -> Iterator[tuple[int, Span]]:
        yield depth, span
        for child in children.get(span.span_id, []):
            yield from walk(child, depth + 1)

    for root in roots:
        yield from walk(root, 0)
