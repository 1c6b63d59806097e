"""OTLP trace export: OTLP/JSON and OTLP/protobuf bodies, and an HTTP exporter.

Written from the OTLP specification (opentelemetry-proto ``trace/v1/trace.proto``,
``common/v1/common.proto`` and the OTLP/JSON rules): no dependency on the protobuf runtime.

- JSON: trace and span ids are **lowercase hex** strings (not base64), enums are integers,
  64-bit nanosecond timestamps are JSON integers, keys are lowerCamelCase.
- protobuf: the wire format is written by hand (varints, length-delimited fields, fixed64
  timestamps). Fields at their default value are left out, as protobuf does.

:func:`decode_otlp_json` reads an OTLP/JSON trace body back into :class:`ExportedSpan`
records (what :func:`encode_otlp_json` accepts too), so bodies round-trip.
"""

from __future__ import annotations

import json
import math
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.trace import SpanKind, StatusCode

from cognitionos.errors import ConfigurationError

__all__ = [
    "ExportedSpan",
    "OTLPSpanExporter",
    "decode_otlp_json",
    "encode_otlp_json",
    "encode_otlp_protobuf",
]

# OTLP's SpanKind has UNSPECIFIED = 0, so the API's INTERNAL (0) is 1 on the wire
_KIND_TO_OTLP = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_OTLP_TO_KIND = {v: k for k, v in _KIND_TO_OTLP.items()}
_STATUS_TO_OTLP = {StatusCode.UNSET: 0, StatusCode.OK: 1, StatusCode.ERROR: 2}
_OTLP_TO_STATUS = {v: k for k, v in _STATUS_TO_OTLP.items()}


class ExportedSpan:
    """A finished span as exporters see it (also what :func:`decode_otlp_json` returns).

    Our :class:`~cognitionos.apm.Span` carries the same fields, so either can be encoded.
    """

    __slots__ = (
        "attributes",
        "end_time",
        "events",
        "kind",
        "links",
        "name",
        "parent_id",
        "resource",
        "scope_attributes",
        "scope_name",
        "scope_version",
        "span_id",
        "start_time",
        "status_code",
        "status_message",
        "trace_id",
        "trace_state",
    )

    def __init__(self, **fields: Any) -> None:
        self.trace_id: int = fields.get("trace_id", 0)
        self.span_id: int = fields.get("span_id", 0)
        self.parent_id: int = fields.get("parent_id", 0)
        self.trace_state: str = fields.get("trace_state", "")
        self.name: str = fields.get("name", "")
        self.kind: SpanKind = fields.get("kind", SpanKind.INTERNAL)
        self.start_time: int = fields.get("start_time", 0)
        self.end_time: int = fields.get("end_time", 0)
        self.attributes: dict[str, Any] = fields.get("attributes", {})
        # events: (time, name, attributes); links: (trace_id, span_id, trace_state, attributes)
        self.events: list[tuple[int, str, dict[str, Any]]] = fields.get("events", [])
        self.links: list[tuple[int, int, str, dict[str, Any]]] = fields.get("links", [])
        self.status_code: StatusCode = fields.get("status_code", StatusCode.UNSET)
        self.status_message: str = fields.get("status_message", "")
        self.resource: dict[str, Any] = fields.get("resource", {})
        self.scope_name: str = fields.get("scope_name", "")
        self.scope_version: str = fields.get("scope_version", "")
        self.scope_attributes: dict[str, Any] = fields.get("scope_attributes", {})

    def __repr__(self) -> str:
        return f"ExportedSpan({self.name!r}, span_id={self.span_id:016x})"


def _view(span: Any) -> ExportedSpan:
    """An :class:`ExportedSpan` view of one of our spans (or the record itself)."""
    if isinstance(span, ExportedSpan):
        return span
    try:
        state = span.trace_state.to_header() if span.trace_state else ""
        scope = span.scope
        return ExportedSpan(
            trace_id=span.trace_id,
            span_id=span.span_id,
            parent_id=span.parent_id,
            trace_state=state,
            name=span.name,
            kind=span.kind,
            start_time=span.start_time,
            end_time=span.end_time,
            attributes=span.attributes,
            events=[(e.timestamp, e.name, e.attributes) for e in span.events],
            links=[
                (
                    link.context.trace_id,
                    link.context.span_id,
                    link.context.trace_state.to_header() if link.context.trace_state else "",
                    dict(link.attributes or {}),
                )
                for link in span.links
            ],
            status_code=span.status.status_code,
            status_message=span.status.description or "",
            resource=span.resource,
            scope_name=scope.name,
            scope_version=scope.version or "",
            scope_attributes=scope.attributes,
        )
    except AttributeError as exc:
        raise ConfigurationError(f"cannot export {type(span).__name__}: {exc}") from exc


def _groups(
    spans: Iterable[Any],
) -> list[tuple[dict[str, Any], list[tuple[tuple[str, str, dict[str, Any]], list[ExportedSpan]]]]]:
    """Spans grouped by resource, then by instrumentation scope (insertion order kept)."""
    resources: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for raw in spans:
        span = _view(raw)
        rkey = json.dumps(span.resource, sort_keys=True, default=str)
        _, scopes = resources.setdefault(rkey, (span.resource, {}))
        skey = json.dumps(
            [span.scope_name, span.scope_version, span.scope_attributes],
            sort_keys=True,
            default=str,
        )
        scopes.setdefault(skey, ((span.scope_name, span.scope_version, span.scope_attributes), []))[
            1
        ].append(span)
    return [(res, list(scopes.values())) for res, scopes in resources.values()]


# -- JSON --------------------------------------------------------------------------------------


def _any_json(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": value}
    if isinstance(value, float):
        # proto3 JSON spells non-finite doubles as strings
        if value != value or value in (math.inf, -math.inf):
            return {
                "doubleValue": "NaN"
                if value != value
                else ("Infinity" if value > 0 else "-Infinity")
            }
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes):
        import base64

        return {"bytesValue": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_json(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _attrs_json(value)}}
    return {"stringValue": str(value)}


def _attrs_json(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_json(v)} for k, v in attributes.items()]


def _span_json(span: ExportedSpan) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": f"{span.trace_id:032x}",
        "spanId": f"{span.span_id:016x}",
    }
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_id:
        out["parentSpanId"] = f"{span.parent_id:016x}"
    out["name"] = span.name
    out["kind"] = _KIND_TO_OTLP.get(span.kind, 0)
    out["startTimeUnixNano"] = span.start_time
    out["endTimeUnixNano"] = span.end_time
    if span.attributes:
        out["attributes"] = _attrs_json(span.attributes)
    if span.events:
        out["events"] = [
            {"timeUnixNano": t, "name": n, **({"attributes": _attrs_json(a)} if a else {})}
            for t, n, a in span.events
        ]
    if span.links:
        out["links"] = [
            {
                "traceId": f"{tid:032x}",
                "spanId": f"{sid:016x}",
                **({"traceState": ts} if ts else {}),
                **({"attributes": _attrs_json(a)} if a else {}),
            }
            for tid, sid, ts, a in span.links
        ]
    if span.status_code is not StatusCode.UNSET or span.status_message:
        status: dict[str, Any] = {"code": _STATUS_TO_OTLP[span.status_code]}
        if span.status_message:
            status["message"] = span.status_message
        out["status"] = status
    return out


def encode_otlp_json(spans: Iterable[Any]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` (as a dict; ``json.dumps`` it to send)."""
    resource_spans = []
    for resource, scopes in _groups(spans):
        scope_spans = []
        for (name, version, attrs), members in scopes:
            scope: dict[str, Any] = {"name": name}
            if version:
                scope["version"] = version
            if attrs:
                scope["attributes"] = _attrs_json(attrs)
            scope_spans.append({"scope": scope, "spans": [_span_json(s) for s in members]})
        resource_spans.append(
            {"resource": {"attributes": _attrs_json(resource)}, "scopeSpans": scope_spans}
        )
    return {"resourceSpans": resource_spans}


def _any_from_json(value: Mapping[str, Any]) -> Any:
    if "stringValue" in value:
        return str(value["stringValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return tuple(_any_from_json(v) for v in value["arrayValue"].get("values", []))
    if "kvlistValue" in value:
        return _attrs_from_json(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        import base64

        return base64.b64decode(value["bytesValue"])
    return None


def _attrs_from_json(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {str(kv["key"]): _any_from_json(kv.get("value", {})) for kv in items}


def _hex_id(text: object, width: int, what: str) -> int:
    if not isinstance(text, str) or len(text) != width:
        raise ConfigurationError(f"OTLP/JSON {what} must be {width} hex digits, got {text!r}")
    try:
        return int(text, 16)
    except ValueError:
        raise ConfigurationError(f"OTLP/JSON {what} is not hex: {text!r}") from None


def decode_otlp_json(body: str | bytes | Mapping[str, Any]) -> list[ExportedSpan]:
    """The spans of an OTLP/JSON trace body; raises ConfigurationError naming what is wrong."""
    try:
        doc = json.loads(body) if isinstance(body, (str, bytes)) else body
    except ValueError as exc:
        raise ConfigurationError(f"OTLP/JSON body is not JSON: {exc}") from exc
    if not isinstance(doc, Mapping) or not isinstance(doc.get("resourceSpans"), list):
        raise ConfigurationError("OTLP/JSON body has no resourceSpans list")
    out: list[ExportedSpan] = []
    try:
        for rs in doc["resourceSpans"]:
            resource = _attrs_from_json(rs.get("resource", {}).get("attributes", []))
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {})
                for sp in ss.get("spans", []):
                    parent = sp.get("parentSpanId") or ""
                    status = sp.get("status", {})
                    out.append(
                        ExportedSpan(
                            trace_id=_hex_id(sp.get("traceId"), 32, "traceId"),
                            span_id=_hex_id(sp.get("spanId"), 16, "spanId"),
                            parent_id=_hex_id(parent, 16, "parentSpanId") if parent else 0,
                            trace_state=sp.get("traceState", ""),
                            name=sp.get("name", ""),
                            kind=_OTLP_TO_KIND.get(int(sp.get("kind", 1)), SpanKind.INTERNAL),
                            start_time=int(sp.get("startTimeUnixNano", 0)),
                            end_time=int(sp.get("endTimeUnixNano", 0)),
                            attributes=_attrs_from_json(sp.get("attributes", [])),
                            events=[
                                (
                                    int(e.get("timeUnixNano", 0)),
                                    e.get("name", ""),
                                    _attrs_from_json(e.get("attributes", [])),
                                )
                                for e in sp.get("events", [])
                            ],
                            links=[
                                (
                                    _hex_id(link.get("traceId"), 32, "link traceId"),
                                    _hex_id(link.get("spanId"), 16, "link spanId"),
                                    link.get("traceState", ""),
                                    _attrs_from_json(link.get("attributes", [])),
                                )
                                for link in sp.get("links", [])
                            ],
                            status_code=_OTLP_TO_STATUS.get(
                                int(status.get("code", 0)), StatusCode.UNSET
                            ),
                            status_message=status.get("message", ""),
                            resource=resource,
                            scope_name=scope.get("name", ""),
                            scope_version=scope.get("version", ""),
                            scope_attributes=_attrs_from_json(scope.get("attributes", [])),
                        )
                    )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"malformed OTLP/JSON trace body: {exc!r}") from exc
    return out


# -- protobuf ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 negatives are ten-byte varints
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _len_field(field: int, payload: bytes) -> bytes:
    return _key(field, 2) + _varint(len(payload)) + payload


def _str_field(field: int, text: str) -> bytes:
    return _len_field(field, text.encode("utf-8")) if text else b""


def _fixed64_field(field: int, n: int) -> bytes:
    return _key(field, 1) + struct.pack("<Q", n) if n else b""


def _varint_field(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(n) if n else b""


def _any_pb(value: Any) -> bytes:
    # AnyValue: string 1, bool 2, int64 3, double 4, ArrayValue 5, KeyValueList 6, bytes 7
    if isinstance(value, bool):
        return _key(2, 0) + _varint(int(value))
    if isinstance(value, int):
        return _key(3, 0) + _varint(value)
    if isinstance(value, float):
        return _key(4, 1) + struct.pack("<d", value)
    if isinstance(value, str):
        return _len_field(1, value.encode("utf-8"))
    if isinstance(value, bytes):
        return _len_field(7, value)
    if isinstance(value, (list, tuple)):
        return _len_field(5, b"".join(_len_field(1, _any_pb(v)) for v in value))
    if isinstance(value, Mapping):
        return _len_field(6, _attrs_pb(1, value))
    return _len_field(1, str(value).encode("utf-8"))


def _attrs_pb(field: int, attributes: Mapping[str, Any]) -> bytes:
    # KeyValue: key 1, value 2
    return b"".join(
        _len_field(field, _str_field(1, k) + _len_field(2, _any_pb(v)))
        for k, v in attributes.items()
    )


def _span_pb(span: ExportedSpan) -> bytes:
    parts = [
        _len_field(1, span.trace_id.to_bytes(16, "big")),
        _len_field(2, span.span_id.to_bytes(8, "big")),
        _str_field(3, span.trace_state),
        _len_field(4, span.parent_id.to_bytes(8, "big")) if span.parent_id else b"",
        _str_field(5, span.name),
        _varint_field(6, _KIND_TO_OTLP.get(span.kind, 0)),
        _fixed64_field(7, span.start_time),
        _fixed64_field(8, span.end_time),
        _attrs_pb(9, span.attributes),
    ]
    for t, name, attrs in span.events:  # Event: time 1, name 2, attributes 3
        parts.append(
            _len_field(11, _fixed64_field(1, t) + _str_field(2, name) + _attrs_pb(3, attrs))
        )
    for tid, sid, state, attrs in span.links:  # Link: trace 1, span 2, state 3, attrs 4
        parts.append(
            _len_field(
                13,
                _len_field(1, tid.to_bytes(16, "big"))
                + _len_field(2, sid.to_bytes(8, "big"))
                + _str_field(3, state)
                + _attrs_pb(4, attrs),
            )
        )
    if span.status_code is not StatusCode.UNSET or span.status_message:
        # Status: message 2, code 3
        parts.append(
            _len_field(
                15,
                _str_field(2, span.status_message)
                + _varint_field(3, _STATUS_TO_OTLP[span.status_code]),
            )
        )
    return b"".join(parts)


def encode_otlp_protobuf(spans: Iterable[Any]) -> bytes:
    """A serialized ``ExportTraceServiceRequest`` (``application/x-protobuf``)."""
    body = []
    for resource, scopes in _groups(spans):
        scope_parts = []
        for (name, version, attrs), members in scopes:
            scope = _str_field(1, name) + _str_field(2, version) + _attrs_pb(3, attrs)
            spans_pb = b"".join(_len_field(2, _span_pb(s)) for s in members)
            scope_parts.append(_len_field(2, _len_field(1, scope) + spans_pb))
        resource_pb = _len_field(1, _attrs_pb(1, resource))
        body.append(_len_field(1, resource_pb + b"".join(scope_parts)))
    return b"".join(body)


# -- HTTP exporter -----------------------------------------------------------------------------


def _post(
    endpoint: str, body: bytes, ctype: str, headers: Mapping[str, str], timeout: float
) -> int | None:
    """POST ``body``; the HTTP status, or None when no answer came (never raises)."""
    request = urllib.request.Request(
        endpoint, data=body, method="POST", headers={"Content-Type": ctype, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
            response.read()
            return status
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


class OTLPSpanExporter:
    """Sends batches to an OTLP/HTTP endpoint (a Collector, Jaeger, Tempo) with the stdlib.

    ::

        exporter = OTLPSpanExporter("http://collector:4318/v1/traces", encoding="protobuf")
        provider = TracerProvider(exporter=exporter, service_name="shop")

    Each request is bounded by ``timeout`` seconds; a failure is reported to the batch
    processor (which counts it) and never raised into the application.
    """

    def __init__(
        self,
        endpoint: str = "http://localhost:4318/v1/traces",
        *,
        encoding: str = "json",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"OTLP endpoint must be an http(s) URL, got {endpoint!r}")
        if encoding not in ("json", "protobuf"):
            raise ConfigurationError(
                f"OTLP encoding must be 'json' or 'protobuf', got {encoding!r}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number, got {timeout!r}")
        self.endpoint = endpoint
        self.encoding = encoding
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.last_status: int | None = None
        self.last_duration = 0.0
        self._shut = False

    def export(self, spans: Sequence[Any]) -> bool:
        """POST one batch; True on a 2xx answer."""
        if self._shut or not spans:
            return not self._shut
        if self.encoding == "json":
            body = json.dumps(encode_otlp_json(spans), separators=(",", ":")).encode("utf-8")
            ctype = "application/json"
        else:
            body = encode_otlp_protobuf(spans)
            ctype = "application/x-protobuf"
        started = time.monotonic()
        try:
            self.last_status = _post(self.endpoint, body, ctype, self.headers, self.timeout)
        finally:
            self.last_duration = time.monotonic() - started
        return self.last_status is not None and 200 <= self.last_status < 300

    def shutdown(self) -> None:
        """Refuse further exports."""
        self._shut = True
