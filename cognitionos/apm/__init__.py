"""Application performance monitoring: tracing behind the OpenTelemetry API, latency sketches.

::

    from cognitionos.apm import TracerProvider, LatencySketch, TraceContextPropagator
    provider = TracerProvider(exporter=InMemorySpanExporter(), service_name="shop")
    tracer = provider.get_tracer("shop.orders")
    with tracer.start_as_current_span("GET /orders/{id}") as span:
        span.set_attribute("order.id", 42)
    sk = LatencySketch(relative_accuracy=0.01); sk.add(0.0123); sk.quantile(0.99)
"""

from __future__ import annotations

from cognitionos.apm._errors import ErrorGrouper, normalize_message, read_error_groups
from cognitionos.apm._export import BatchSpanProcessor, InMemorySpanExporter, SpanExporter
from cognitionos.apm._latency import (
    OVERFLOW_ROUTE,
    LatencyRecorder,
    read_route_latencies,
    summarize,
)
from cognitionos.apm._otlp import (
    ExportedSpan,
    OTLPSpanExporter,
    decode_otlp_json,
    encode_otlp_json,
    encode_otlp_protobuf,
)
from cognitionos.apm._otlp_metrics import (
    OTLPMetricExporter,
    encode_otlp_metrics_json,
    encode_otlp_metrics_protobuf,
    sketch_scale,
)
from cognitionos.apm._propagation import (
    HeaderGetter,
    HeaderSetter,
    TraceContextPropagator,
    parse_traceparent,
)
from cognitionos.apm._sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    AlwaysOff,
    AlwaysOn,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from cognitionos.apm._sketch import LatencySketch, SketchDecodeError
from cognitionos.apm._sql import SlowQueryDetector, normalize_sql, read_slow_queries
from cognitionos.apm._tail import TailSamplingProcessor
from cognitionos.apm._tracer import Span, SpanEvent, Tracer, TracerProvider, in_current_context
from cognitionos.apm.models import ErrorGroup, RouteLatency, SlowQuery

__all__ = [
    "ALWAYS_OFF",
    "ALWAYS_ON",
    "OVERFLOW_ROUTE",
    "AlwaysOff",
    "AlwaysOn",
    "BatchSpanProcessor",
    "TailSamplingProcessor",
    "OTLPMetricExporter",
    "encode_otlp_metrics_json",
    "encode_otlp_metrics_protobuf",
    "sketch_scale",
    "ErrorGroup",
    "ErrorGrouper",
    "ExportedSpan",
    "HeaderGetter",
    "HeaderSetter",
    "InMemorySpanExporter",
    "LatencyRecorder",
    "LatencySketch",
    "OTLPSpanExporter",
    "ParentBased",
    "RouteLatency",
    "Sampler",
    "SketchDecodeError",
    "SlowQuery",
    "SlowQueryDetector",
    "Span",
    "SpanEvent",
    "SpanExporter",
    "TraceContextPropagator",
    "TraceIdRatioBased",
    "Tracer",
    "TracerProvider",
    "decode_otlp_json",
    "encode_otlp_json",
    "encode_otlp_protobuf",
    "in_current_context",
    "normalize_message",
    "normalize_sql",
    "parse_traceparent",
    "read_error_groups",
    "read_route_latencies",
    "read_slow_queries",
    "summarize",
]
