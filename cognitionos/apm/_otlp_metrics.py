"""Latency sketches as OTLP exponential histograms (OTLP/JSON or OTLP/protobuf over HTTP).

A DDSketch bucket ``k`` holds values within ``relative_accuracy`` of its answer value
``2 gamma^k / (gamma + 1)``. OTLP's exponential histogram at ``scale`` has buckets
``(base^i, base^(i+1)]`` with ``base = 2^(2^-scale)``. Each sketch bucket's count goes to
the exponential bucket holding its answer value; the scale defaults to the coarsest whose
``base`` does not exceed the sketch's ``gamma`` (scale 6 at 1 %), so a quantile read from
the exported histogram stays within the sketch's error plus half an exponential bucket
(about 1.6 % at the defaults). Counts, zero count, sum, min and max are carried exactly.

The JSON follows the OTLP/JSON mapping (integer enums, camelCase fields). The protobuf body
is the same request written in the wire format by hand (as the trace encoder in ``_otlp``
does), so neither encoding needs the protobuf runtime; the official ``opentelemetry-proto``
messages parse both (``tests/apm/test_otlp_metrics.py``).
"""

from __future__ import annotations

import json
import math
import struct
import time
from collections.abc import Mapping
from typing import Any

from cognitionos.apm._otlp import (
    _any_from_json,
    _attrs_json,
    _attrs_pb,
    _key,
    _len_field,
    _post,
    _str_field,
    _varint,
    _varint_field,
)
from cognitionos.apm._sketch import LatencySketch
from cognitionos.errors import ConfigurationError

__all__ = [
    "OTLPMetricExporter",
    "encode_otlp_metrics_json",
    "encode_otlp_metrics_protobuf",
    "sketch_scale",
]

_CUMULATIVE = 2
_MIN_SCALE, _MAX_SCALE = -10, 20


def sketch_scale(sketch: LatencySketch) -> int:
    """The coarsest OTLP scale whose bucket base is no wider than the sketch's ``gamma``."""
    scale = math.ceil(-math.log2(math.log2(sketch._gamma)))
    return max(_MIN_SCALE, min(_MAX_SCALE, scale))


def _side(bins: Mapping[int, int], sketch: LatencySketch, scale: int) -> dict[str, Any]:
    if not bins:
        return {"offset": 0, "bucketCounts": []}
    gamma = sketch._gamma
    factor = 2.0**scale
    out: dict[int, int] = {}
    for k, n in bins.items():
        value = 2.0 * gamma**k / (gamma + 1.0)
        index = math.ceil(math.log2(value) * factor) - 1
        out[index] = out.get(index, 0) + n
    lo, hi = min(out), max(out)
    return {"offset": lo, "bucketCounts": [out.get(i, 0) for i in range(lo, hi + 1)]}


def _point(
    sketch: LatencySketch,
    attributes: Mapping[str, Any],
    start_ns: int,
    now_ns: int,
    scale: int | None,
) -> dict[str, Any]:
    sketch._settle()  # buffered single values are folded in before the buckets are read
    use = sketch_scale(sketch) if scale is None else scale
    point: dict[str, Any] = {
        "attributes": _attrs_json(attributes),
        "startTimeUnixNano": start_ns,
        "timeUnixNano": now_ns,
        "count": sketch.count,
        "sum": sketch.sum,
        "scale": use,
        "zeroCount": sketch._zero,
        "positive": _side(sketch._pos, sketch, use),
        "negative": _side(sketch._neg, sketch, use),
    }
    if sketch.count:
        point["min"] = sketch.min
        point["max"] = sketch.max
    return point


def encode_otlp_metrics_json(
    sketches: Mapping[str, LatencySketch],
    *,
    name: str = "http.server.request.duration",
    attribute: str = "http.route",
    unit: str = "s",
    resource: Mapping[str, Any] | None = None,
    start_time_unix_nano: int = 0,
    time_unix_nano: int | None = None,
    scale: int | None = None,
) -> dict[str, Any]:
    """An OTLP ``ExportMetricsServiceRequest`` (JSON) with one exponential histogram.

    One data point per key of ``sketches`` (a route template, labelled ``attribute``),
    cumulative from ``start_time_unix_nano``.
    """
    if scale is not None and (
        isinstance(scale, bool) or not isinstance(scale, int) or not -10 <= scale <= 20
    ):
        raise ConfigurationError(f"scale must be an int in [-10, 20], got {scale!r}")
    now = time.time_ns() if time_unix_nano is None else time_unix_nano
    points = [
        _point(sk, {attribute: key}, start_time_unix_nano, now, scale)
        for key, sk in sorted(sketches.items())
        if sk.count
    ]
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": _attrs_json(dict(resource or {"service.name": "unknown_service"}))
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "cognitionos.apm"},
                        "metrics": [
                            {
                                "name": name,
                                "unit": unit,
                                "description": "Duration per route (DDSketch, 1 % relative "
                                "error) as an exponential histogram",
                                "exponentialHistogram": {
                                    "aggregationTemporality": _CUMULATIVE,
                                    "dataPoints": points,
                                },
                            }
                        ],
                    }
                ],
            }
        ]
    }


# -- protobuf ----------------------------------------------------------------------------------


def _zigzag(n: int) -> int:
    """sint32/sint64 on the wire: 0, -1, 1, -2 ... -> 0, 1, 2, 3 ..."""
    return n * 2 if n >= 0 else -n * 2 - 1


def _fixed64(field: int, n: int) -> bytes:
    return _key(field, 1) + struct.pack("<Q", n) if n else b""


def _double(field: int, x: float, *, always: bool = False) -> bytes:
    # proto3 ``optional double`` (sum, min, max) has presence: written even when 0.0
    return _key(field, 1) + struct.pack("<d", x) if (always or x) else b""


def _kv_pb(field: int, items: list[dict[str, Any]]) -> bytes:
    return _attrs_pb(field, {str(kv["key"]): _any_from_json(kv["value"]) for kv in items})


def _buckets_pb(side: Mapping[str, Any]) -> bytes:
    # Buckets: offset 1 (sint32), bucket_counts 2 (packed uint64)
    counts = b"".join(_varint(n) for n in side["bucketCounts"])
    return _varint_field(1, _zigzag(side["offset"])) + (_len_field(2, counts) if counts else b"")


def _point_pb(point: Mapping[str, Any]) -> bytes:
    # ExponentialHistogramDataPoint: attributes 1, start 2, time 3, count 4 (fixed64),
    # sum 5 (optional double), scale 6 (sint32), zero_count 7 (fixed64), positive 8,
    # negative 9, min 12, max 13 (optional doubles)
    parts = [
        _kv_pb(1, point["attributes"]),
        _fixed64(2, point["startTimeUnixNano"]),
        _fixed64(3, point["timeUnixNano"]),
        _fixed64(4, point["count"]),
        _double(5, point["sum"], always=True),
        _varint_field(6, _zigzag(point["scale"])),
        _fixed64(7, point["zeroCount"]),
        _len_field(8, _buckets_pb(point["positive"])),
        _len_field(9, _buckets_pb(point["negative"])),
    ]
    if "min" in point:
        parts.append(_double(12, point["min"], always=True))
        parts.append(_double(13, point["max"], always=True))
    return b"".join(parts)


def encode_otlp_metrics_protobuf(sketches: Mapping[str, LatencySketch], **options: Any) -> bytes:
    """The request of :func:`encode_otlp_metrics_json` as a serialized
    ``ExportMetricsServiceRequest`` (``application/x-protobuf``); same keyword options."""
    doc = encode_otlp_metrics_json(sketches, **options)
    out = []
    for rm in doc["resourceMetrics"]:
        scope_parts = []
        for sm in rm["scopeMetrics"]:
            metrics = []
            for metric in sm["metrics"]:
                hist = metric["exponentialHistogram"]
                # ExponentialHistogram: data_points 1, aggregation_temporality 2
                body = b"".join(_len_field(1, _point_pb(p)) for p in hist["dataPoints"])
                body += _varint_field(2, hist["aggregationTemporality"])
                # Metric: name 1, description 2, unit 3, exponential_histogram 10
                metrics.append(
                    _len_field(
                        2,
                        _str_field(1, metric["name"])
                        + _str_field(2, metric["description"])
                        + _str_field(3, metric["unit"])
                        + _len_field(10, body),
                    )
                )
            # ScopeMetrics: scope 1 (InstrumentationScope: name 1), metrics 2
            scope = _len_field(1, _str_field(1, sm["scope"]["name"]))
            scope_parts.append(_len_field(2, scope + b"".join(metrics)))
        # ResourceMetrics: resource 1 (Resource: attributes 1), scope_metrics 2
        resource = _len_field(1, _kv_pb(1, rm["resource"]["attributes"]))
        out.append(_len_field(1, resource + b"".join(scope_parts)))
    return b"".join(out)


class OTLPMetricExporter:
    """POSTs per-route latency sketches to an OTLP/HTTP metrics endpoint (stdlib HTTP).

    ``encoding="json"`` (default) sends OTLP/JSON, ``encoding="protobuf"`` the binary
    request with ``Content-Type: application/x-protobuf``. ::

        exporter = OTLPMetricExporter("http://collector:4318/v1/metrics", encoding="protobuf")
        exporter.export(recorder.totals())          # e.g. every 60 s from a background task

    A failure returns False (``last_status`` says why) and is never raised.
    """

    def __init__(
        self,
        endpoint: str = "http://localhost:4318/v1/metrics",
        *,
        encoding: str = "json",
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        resource: Mapping[str, Any] | None = None,
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
        self.resource = dict(resource or {"service.name": "unknown_service"})
        self.start_time_unix_nano = time.time_ns()
        self.last_status: int | None = None

    def export(self, sketches: Mapping[str, LatencySketch]) -> bool:
        """Send the sketches as one cumulative exponential histogram; True on a 2xx answer."""
        options: dict[str, Any] = {
            "resource": self.resource,
            "start_time_unix_nano": self.start_time_unix_nano,
        }
        if self.encoding == "json":
            body = encode_otlp_metrics_json(sketches, **options)
            payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
            ctype = "application/json"
        else:
            payload = encode_otlp_metrics_protobuf(sketches, **options)
            ctype = "application/x-protobuf"
        self.last_status = _post(self.endpoint, payload, ctype, self.headers, self.timeout)
        return self.last_status is not None and 200 <= self.last_status < 300
