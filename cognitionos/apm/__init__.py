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

from cognitionos.apm._export import BatchSpanProcessor, InMemorySpanExporter, SpanExporter
from cognitionos.apm._otlp import (
    ExportedSpan,
    OTLPSpanExporter,
    decode_otlp_json,
    encode_otlp_json,
    encode_otlp_protobuf,
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
from cognitionos.apm._tracer import Span, SpanEvent, Tracer, TracerProvider

__all__ = [
    "ALWAYS_OFF",
    "ALWAYS_ON",
    "AlwaysOff",
    "AlwaysOn",
    "BatchSpanProcessor",
    "ExportedSpan",
    "HeaderGetter",
    "HeaderSetter",
    "InMemorySpanExporter",
    "LatencySketch",
    "OTLPSpanExporter",
    "ParentBased",
    "Sampler",
    "SketchDecodeError",
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
    "parse_traceparent",
]
