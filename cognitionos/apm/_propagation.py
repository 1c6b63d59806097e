"""W3C Trace Context (``traceparent`` + ``tracestate``) and W3C Baggage, in and out of carriers.

Parsing follows https://www.w3.org/TR/trace-context/ and https://www.w3.org/TR/baggage/:

- ``traceparent`` is ``version-traceid-parentid-flags`` in lowercase hex; version ``ff`` is
  invalid; version ``00`` has exactly four fields; a later version may append ``-...`` fields,
  which are ignored. All-zero ids are invalid. Optional whitespace around the value is allowed.
  Several ``traceparent`` headers make the request's trace context invalid (a new trace starts).
- ``tracestate`` is a comma list across all its headers (empty members allowed). Keys are
  ``simple-key`` or ``tenant@system`` (``tenant`` up to 241 chars, ``system`` up to 14);
  values 0-256 printable chars without ``,`` and ``=``, not ending with a space. A list that is
  malformed, has duplicate keys or more than 32 members is discarded whole.
- ``baggage`` members are ``key=value`` with optional ``;property`` parts, values
  percent-encoded; at most 180 members and 8192 bytes are read.

Malformed input never raises: the context comes back without a (remote) span or baggage.
The context used is the ``opentelemetry-api`` one, so any OTel-instrumented library sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace as otel_trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
)

__all__ = ["HeaderGetter", "HeaderSetter", "TraceContextPropagator", "parse_traceparent"]

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"

_OWS = " \t"
_SIMPLE_KEY = re.compile(r"[a-z][a-z0-9_\-*/]{0,255}")
_TENANT_KEY = re.compile(r"[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13}")
_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MAX_TRACESTATE_MEMBERS = 32
_MAX_BAGGAGE_MEMBERS = 180
_MAX_BAGGAGE_BYTES = 8192


class HeaderGetter(Getter[Any]):
    """Reads headers from a mapping (case-insensitive) or a sequence of ``(name, value)`` pairs.

    A mapping value may be a str or a list of str (one per header line); bytes are decoded
    as latin-1, as ASGI does.
    """

    def get(self, carrier: Any, key: str) -> list[str] | None:
        """Every value of header ``key`` (None when absent)."""
        found: list[str] = []
        kind = type(carrier)
        if kind is list or kind is tuple:
            # the ASGI shape first: [(b"name", b"value"), ...] with lower-case names
            wanted = key.encode("latin-1")
            for pair in carrier:
                if type(pair) is tuple and len(pair) == 2 and type(pair[0]) is bytes:
                    if pair[0] == wanted or pair[0].lower() == wanted:
                        _extend(found, pair[1])
                elif (
                    isinstance(pair, (tuple, list))
                    and len(pair) == 2
                    and _name(pair[0]) == key.lower()
                ):
                    _extend(found, pair[1])
            return found or None
        if kind is dict:
            value = carrier.get(key)
            if value is not None:
                _extend(found, value)
                return found or None
        if isinstance(carrier, Mapping):
            value = carrier.get(key)
            if value is None:
                lowered = key.lower()
                for name, candidate in carrier.items():
                    if _name(name) == lowered:
                        _extend(found, candidate)
            else:
                _extend(found, value)
        elif isinstance(carrier, Iterable) and not isinstance(carrier, (str, bytes)):
            lowered = key.lower()
            for pair in carrier:
                if isinstance(pair, (tuple, list)) and len(pair) == 2 and _name(pair[0]) == lowered:
                    _extend(found, pair[1])
        return found or None

    def keys(self, carrier: Any) -> list[str]:
        """Header names in the carrier."""
        if isinstance(carrier, Mapping):
            return [_name(k) for k in carrier]
        if isinstance(carrier, Iterable) and not isinstance(carrier, (str, bytes)):
            return [_name(p[0]) for p in carrier if isinstance(p, (tuple, list)) and len(p) == 2]
        return []


def _name(name: object) -> str:
    if isinstance(name, bytes):
        return name.decode("latin-1").lower()
    return str(name).lower()


def _extend(found: list[str], value: object) -> None:
    if isinstance(value, bytes):
        found.append(value.decode("latin-1"))
    elif isinstance(value, str):
        found.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _extend(found, item)


class HeaderSetter(Setter[Any]):
    """Writes a header into a mutable mapping, or appends a pair to a list."""

    def set(self, carrier: Any, key: str, value: str) -> None:
        """Set header ``key`` to ``value``."""
        if isinstance(carrier, MutableMapping):
            carrier[key] = value
        elif isinstance(carrier, list):
            carrier[:] = [p for p in carrier if _name(p[0]) != key]
            carrier.append((key, value))


_GETTER = HeaderGetter()
_SETTER = HeaderSetter()


_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """``(trace_id, span_id, flags)`` from one ``traceparent`` value, or None when invalid.

    >>> parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")[2]
    1
    """
    if not isinstance(value, str):
        return None
    text = value.strip(_OWS)
    if len(text) < 55:
        return None
    version = text[:2]
    if version == "ff":
        return None
    if version == "00" and len(text) != 55:
        return None
    if len(text) > 55 and text[55] != "-":
        return None
    match = _TRACEPARENT.match(text)
    if match is None:
        return None
    trace_id = int(match.group(2), 16)
    span_id = int(match.group(3), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return trace_id, span_id, int(match.group(4), 16)


def _valid_key(key: str) -> bool:
    return bool(_SIMPLE_KEY.fullmatch(key) or _TENANT_KEY.fullmatch(key))


def parse_tracestate(headers: Iterable[str]) -> list[tuple[str, str]] | None:
    """Members of the combined ``tracestate`` headers, or None when the list must be discarded."""
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for header in headers:
        for raw in header.split(","):
            member = raw.strip(_OWS)
            if not member:
                continue
            key, eq, val = member.partition("=")
            if not eq or not _valid_key(key) or not _VALUE.fullmatch(val):
                return None
            if key in seen:
                return None
            seen.add(key)
            members.append((key, val))
            if len(members) > _MAX_TRACESTATE_MEMBERS:
                return None
    return members


def parse_baggage(headers: Iterable[str]) -> dict[str, str]:
    """``{key: value}`` from ``baggage`` headers; malformed members are skipped.

    Properties (``;prop=x``) are accepted and not kept (the OTel baggage API has no place
    for them). Reading stops after 180 members or 8192 bytes.
    """
    out: dict[str, str] = {}
    total = 0
    count = 0
    for header in headers:
        total += len(header.encode("utf-8", "replace"))
        if total > _MAX_BAGGAGE_BYTES:
            break
        for raw in header.split(","):
            count += 1
            if count > _MAX_BAGGAGE_MEMBERS:
                return out
            entry = raw.split(";", 1)[0]
            key, eq, val = entry.partition("=")
            key = key.strip(_OWS)
            val = val.strip(_OWS)
            if not eq or not _TOKEN.fullmatch(key):
                continue
            try:
                out[unquote(key, errors="strict")] = unquote(val, errors="strict")
            except UnicodeDecodeError:
                continue
    return out


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    """``00-<32 hex>-<16 hex>-<2 hex>``."""
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


class TraceContextPropagator(TextMapPropagator):
    """W3C ``traceparent``/``tracestate`` and ``baggage`` on an ``opentelemetry-api`` context.

    ::

        ctx = TraceContextPropagator().extract(request_headers)
        with tracer.start_as_current_span("GET /orders/{id}", context=ctx): ...
        TraceContextPropagator().inject(outgoing_headers)

    ``baggage=False`` leaves the ``baggage`` header alone in both directions.
    """

    def __init__(self, *, baggage: bool = True) -> None:
        self.baggage = baggage

    def extract(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        getter: Getter[CarrierT] = _GETTER,  # type: ignore[assignment]
    ) -> Context:
        """A context carrying the remote parent span (and baggage) found in ``carrier``."""
        if context is None:
            context = Context()
        try:
            return self._extract(carrier, context, getter)
        except Exception:
            # a hostile carrier (odd types, broken getter) never breaks the request
            return context

    def _extract(self, carrier: Any, context: Context, getter: Getter[Any]) -> Context:
        if self.baggage:
            values = getter.get(carrier, BAGGAGE)
            if values:
                for key, val in parse_baggage(values).items():
                    context = otel_baggage.set_baggage(key, val, context=context)
        parents = getter.get(carrier, TRACEPARENT)
        if not parents or len(parents) != 1:
            return context
        parsed = parse_traceparent(parents[0])
        if parsed is None:
            return context
        trace_id, span_id, flags = parsed
        states = getter.get(carrier, TRACESTATE)
        members = parse_tracestate(states) if states else []
        state = otel_trace.TraceState(members or [])
        span_context = otel_trace.SpanContext(
            trace_id=trace_id,
            span_id=span_id,
            is_remote=True,
            trace_flags=otel_trace.TraceFlags(flags & 0x01),
            trace_state=state,
        )
        return otel_trace.set_span_in_context(otel_trace.NonRecordingSpan(span_context), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Context | None = None,
        setter: Setter[CarrierT] = _SETTER,  # type: ignore[assignment]
    ) -> None:
        """Write ``traceparent`` (+ ``tracestate``, ``baggage``) for the current/given span."""
        span_context = otel_trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            setter.set(
                carrier,
                TRACEPARENT,
                format_traceparent(
                    span_context.trace_id, span_context.span_id, int(span_context.trace_flags)
                ),
            )
            if span_context.trace_state:
                setter.set(carrier, TRACESTATE, span_context.trace_state.to_header())
        if self.baggage:
            entries = otel_baggage.get_all(context)
            if entries:
                # errors="replace": a lone surrogate must not make inject raise
                header = ",".join(
                    f"{quote(str(k), safe='', errors='replace')}="
                    f"{quote(str(v), safe='', errors='replace')}"
                    for k, v in entries.items()
                )
                setter.set(carrier, BAGGAGE, header)

    @property
    def fields(self) -> set[str]:
        """Header names this propagator reads and writes."""
        return {TRACEPARENT, TRACESTATE, BAGGAGE} if self.baggage else {TRACEPARENT, TRACESTATE}
