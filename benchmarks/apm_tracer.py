"""Span start+end cost: cognitionos.apm against the opentelemetry-sdk in the same run.

Run:  python benchmarks/apm_tracer.py [--spans 20000] [--rounds 15]

Equal work on both sides, per span:
- the default sampler (parent-based, always on), a 128-bit trace id and 64-bit span id;
- three attributes set at start (str, int, bool) and one set afterwards;
- ``end()`` hands the span to a batch processor with a queue big enough that nothing is
  dropped, exporting to an exporter that discards the batch (a no-op);
- the queue is drained (``force_flush``) after each timed round, outside the timing.

Scenarios:
1. OTel API drop-in: ``with tracer.start_as_current_span(name, attributes=...) as s`` - the
   span becomes current in the API's contextvars context and is detached at exit.
2. start/end: ``s = tracer.start_span(name, attributes=...); s.end()`` (no current span).
3. nested: a root span with one current child (two spans per iteration).

Medians of ``--rounds`` rounds; the ratio is sdk / ours (higher is better for us).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import TracerProvider as SdkProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor as SdkBatch
from opentelemetry.sdk.trace.export import SpanExporter as SdkExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from cognitionos.apm import BatchSpanProcessor, TracerProvider

ATTRS = {"http.method": "GET", "http.status_code": 200, "cache.hit": False}


class SdkNoop(SdkExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class OursNoop:
    def export(self, spans: Sequence[Any]) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def build(n: int) -> dict[str, tuple[Any, Any]]:
    sdk = SdkProvider()
    sdk.add_span_processor(
        SdkBatch(SdkNoop(), max_queue_size=n * 2 + 10, max_export_batch_size=512)
    )
    ours = TracerProvider(
        processor=BatchSpanProcessor(
            OursNoop(), max_queue_size=n * 2 + 10, max_export_batch_size=512
        )
    )
    return {
        "opentelemetry-sdk": (sdk, sdk.get_tracer("bench")),
        "cognitionos": (ours, ours.get_tracer("bench")),
    }


def scenario_current(tracer: Any, n: int) -> None:
    start = tracer.start_as_current_span
    for _ in range(n):
        with start("GET /orders/{id}", attributes=ATTRS) as span:
            span.set_attribute("order.id", 42)


def scenario_start_end(tracer: Any, n: int) -> None:
    start = tracer.start_span
    for _ in range(n):
        span = start("GET /orders/{id}", attributes=ATTRS)
        span.set_attribute("order.id", 42)
        span.end()


def scenario_nested(tracer: Any, n: int) -> None:
    start = tracer.start_as_current_span
    for _ in range(n // 2):
        with start("parent", attributes=ATTRS) as span:
            span.set_attribute("order.id", 42)
            with start("child", attributes=ATTRS) as child:
                child.set_attribute("order.id", 43)


def measure(
    providers: dict[str, tuple[Any, Any]],
    scenario: Callable[[Any, int], None],
    n: int,
    rounds: int,
) -> dict[str, float]:
    """Median microseconds per span for each side; sides alternate every round."""
    samples: dict[str, list[float]] = {name: [] for name in providers}
    for _ in range(rounds):
        for name, (provider, tracer) in providers.items():
            gc.collect()
            started = time.perf_counter()
            scenario(tracer, n)
            elapsed = time.perf_counter() - started
            provider.force_flush(30_000)
            samples[name].append(elapsed / n * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    providers = build(args.spans)
    scenarios = {
        "OTel API start_as_current_span": scenario_current,
        "start_span + end": scenario_start_end,
        "nested (parent + current child)": scenario_nested,
    }
    print(f"{args.spans} spans per round, median of {args.rounds} rounds, µs per span")
    print(f"{'scenario':<34} {'opentelemetry-sdk':>18} {'cognitionos':>12} {'sdk/ours':>9}")
    for label, scenario in scenarios.items():
        scenario(providers["cognitionos"][1], 1000)  # warm up both
        scenario(providers["opentelemetry-sdk"][1], 1000)
        result = measure(providers, scenario, args.spans, args.rounds)
        sdk, ours = result["opentelemetry-sdk"], result["cognitionos"]
        print(f"{label:<34} {sdk:>18.2f} {ours:>12.2f} {sdk / ours:>8.2f}x")
    for provider, _ in providers.values():
        provider.shutdown()
    stats = providers["cognitionos"][0].stats()
    print(f"cognitionos dropped spans: {stats['spans_dropped']} (must be 0 for equal work)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
