"""Latency sketches as OTLP exponential histograms (OTLP/JSON over HTTP).

A DDSketch bucket ``k`` holds values within ``relative_accuracy`` of its answer value
``2 gamma^k / (gamma + 1)``. OTLP's exponential histogram at ``scale`` has buckets
``(base^i, base^(i+1)]`` with ``base = 2^(2^-scale)``. Each sketch bucket's count goes to
the exponential bucket holding its answer value; the scale defaults to the coarsest whose
``base`` does not exceed the sketch's ``gamma`` (scale 6 at 1 %), so a quantile read from
the exported histogram stays within the sketch's error plus half an exponential bucket
(about 1.6 % at the defaults). Counts, zero count, sum, min and max are carried exactly.

The JSON follows the OTLP/JSON mapping (integer enums, camelCase fields); the official
``opentelemetry-proto`` messages parse it (``tests/apm/test_otlp_metrics.py``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import Any

from cognitionos.apm._otlp import _attrs_json, _post
from cognitionos.apm._sketch import LatencySketch
from cognitionos.errors import ConfigurationError

__all__ = ["OTLPMetricExporter", "encode_otlp_metrics_json", "sketch_scale"]

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


class OTLPMetricExporter:
    """POSTs per-route latency sketches to an OTLP/HTTP metrics endpoint (JSON, stdlib).

    ::

        exporter = OTLPMetricExporter("http://collector:4318/v1/metrics")
        exporter.export(recorder.totals())          # e.g. every 60 s from a background task

    A failure returns False (``last_status`` says why) and is never raised.
    """

    def __init__(
        self,
        endpoint: str = "http://localhost:4318/v1/metrics",
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        resource: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
            raise ConfigurationError(f"OTLP endpoint must be an http(s) URL, got {endpoint!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number, got {timeout!r}")
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.timeout = float(timeout)
        self.resource = dict(resource or {"service.name": "unknown_service"})
        self.start_time_unix_nano = time.time_ns()
        self.last_status: int | None = None

    def export(self, sketches: Mapping[str, LatencySketch]) -> bool:
        """Send the sketches as one cumulative exponential histogram; True on a 2xx answer."""
        body = encode_otlp_metrics_json(
            sketches, resource=self.resource, start_time_unix_nano=self.start_time_unix_nano
        )
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        self.last_status = _post(
            self.endpoint, payload, "application/json", self.headers, self.timeout
        )
        return self.last_status is not None and 200 <= self.last_status < 300
