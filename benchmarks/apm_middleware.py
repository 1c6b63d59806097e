"""What the APM middleware adds per request over the bare ASGI app, against the OTel SDK's.

Run:  python benchmarks/apm_middleware.py [--requests 20000] [--rounds 9] [--only SIDE]

Every side serves the same minimal ASGI app (a 200 with a 2-byte body; it names its route
template the way a router does), called in process with prepared scope/receive/send (no
sockets, no server): what is measured is the middleware's own cost. Equal work on every
traced side: one SERVER span per request, child of the W3C ``traceparent`` header sent
with the request, named from the route template, with method/path/scheme/route/status
attributes, ended at the last body message into a batch span processor whose exporter
does nothing, and the request duration recorded into a latency distribution:

- ``TracingMiddleware``: our server span + a :class:`LatencyRecorder` (sketch per route);
- ``CognitionMiddleware(APM only)``: the composite with no WAF/rate-limit/flags stage;
- ``CognitionMiddleware(all stages)`` and ``CognitionMiddleware(no APM)``: WAF (default
  rules) -> rate limit (memory, a limit never reached) -> flags, with and without the APM
  layer; their difference is what APM adds with every stage on (its span also carries the
  WAF verdict and rate-limit decision as attributes). Only with ``--stages`` (the WAF's
  inspection dominates those two rows);
- ``opentelemetry-instrumentation-asgi``: ``OpenTelemetryMiddleware`` on the SDK's
  ``TracerProvider`` + ``BatchSpanProcessor`` and an SDK ``MeterProvider`` (its
  ``http.server.request.duration`` histogram), ``exclude_spans=["receive", "send"]`` so it
  too makes one span per request (its default adds two internal spans per request).

Medians of ``--rounds``; "added" is the side minus the bare app. ``--only SIDE`` runs one
side once (for ``valgrind --tool=callgrind``, whose instruction counts do not depend on
the machine's load: run it at two ``--requests`` values and divide the difference).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from cognitionos.apm import BatchSpanProcessor, LatencyRecorder, TracerProvider
from cognitionos.integrations.apm import CognitionMiddleware, TracingMiddleware

SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "path": "/orders/42",
    "raw_path": b"/orders/42",
    "root_path": "",
    "query_string": b"",
    "scheme": "http",
    "server": ("127.0.0.1", 8000),
    "client": ("127.0.0.1", 50000),
    "headers": [
        (b"host", b"shop"),
        (b"user-agent", b"bench/1.0"),
        (b"accept", b"*/*"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ],
}
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}
BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}


class _Route:
    path_format = "/orders/{id}"


ROUTE = _Route()


async def app(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = ROUTE  # what Starlette's router sets once it matched
    await send(START)
    await send(BODY)


class Noop:
    def export(self, spans: Sequence[Any]) -> Any:
        return True

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


async def run(target: Any, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the whole process, export threads included)."""
    started = time.perf_counter()
    cpu = time.process_time()
    for _ in range(n):
        await target(dict(SCOPE), receive, send)
    return time.perf_counter() - started, time.process_time() - cpu


def build(queue: int, stages: bool = False) -> tuple[dict[str, Any], list[Callable[[], Any]]]:
    """The sides, and the calls that flush their span queues between rounds."""
    ours = TracerProvider(processor=BatchSpanProcessor(Noop(), max_queue_size=queue))
    composite = TracerProvider(processor=BatchSpanProcessor(Noop(), max_queue_size=queue))
    sides: dict[str, Any] = {
        "bare app": app,
        "TracingMiddleware": TracingMiddleware(
            app, tracer_provider=ours, recorder=LatencyRecorder()
        ),
        "CognitionMiddleware(APM only)": CognitionMiddleware(
            app, tracer_provider=composite, recorder=LatencyRecorder()
        ),
    }
    flushes: list[Callable[[], Any]] = [ours.force_flush, composite.force_flush]
    if stages:
        from cognitionos.flags import FlagEngine
        from cognitionos.ratelimit import RateLimiter
        from cognitionos.waf import Firewall

        def engines() -> dict[str, Any]:
            return {
                "firewall": Firewall(),
                "limiter": RateLimiter("memory://"),
                "limits": "1000000000/minute",
                "flags": FlagEngine.from_json({"flags": [{"key": "beta", "default_value": True}]}),
            }

        full = TracerProvider(processor=BatchSpanProcessor(Noop(), max_queue_size=queue))
        sides["CognitionMiddleware(no APM)"] = CognitionMiddleware(app, **engines())
        sides["CognitionMiddleware(all stages)"] = CognitionMiddleware(
            app, tracer_provider=full, recorder=LatencyRecorder(), **engines()
        )
        flushes.append(full.force_flush)
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor as SdkBatch
    except ImportError as exc:
        print(f"(OTel SDK side skipped: {exc})", file=sys.stderr)
    else:
        sdk = SdkTracerProvider()
        sdk.add_span_processor(SdkBatch(Noop(), max_queue_size=queue))  # type: ignore[arg-type]
        meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        sides["opentelemetry-instrumentation-asgi"] = OpenTelemetryMiddleware(
            app,
            tracer_provider=sdk,
            meter_provider=meters,
            exclude_spans=["receive", "send"],
        )
        flushes.append(sdk.force_flush)
    return sides, flushes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--only", help="run this one side once (for callgrind)")
    parser.add_argument(
        "--stages", action="store_true", help="add the composite with WAF, rate limit and flags"
    )
    args = parser.parse_args(argv)
    sides, flushes = build(args.requests * 2 + 10, args.stages)
    loop = asyncio.new_event_loop()
    if args.only:
        loop.run_until_complete(run(sides[args.only], args.requests))
        for flush in flushes:
            flush()
        return 0
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for target in sides.values():
        loop.run_until_complete(run(target, 500))
    for _ in range(args.rounds):
        for name, target in sides.items():
            gc.collect()
            elapsed, used = loop.run_until_complete(run(target, args.requests))
            for flush in flushes:
                flush()
            wall[name].append(elapsed / args.requests * 1e6)
            cpu[name].append(used / args.requests * 1e6)
    loop.close()
    print(f"{args.requests} requests per round, median of {args.rounds} rounds, µs per request")
    for label, samples in (("wall clock", wall), ("process CPU time", cpu)):
        medians = {name: statistics.median(values) for name, values in samples.items()}
        bare = medians["bare app"]
        peer = medians.get("opentelemetry-instrumentation-asgi")
        print(f"\n{label:36} {'µs/request':>10} {'added':>8} {'added / OTel':>13}")
        for name, value in medians.items():
            ratio = ""
            if peer is not None and name != "bare app":
                ratio = f"{(value - bare) / (peer - bare):12.3f}x"
            print(f"{name:36} {value:10.2f} {value - bare:8.2f} {ratio:>13}")
        if "CognitionMiddleware(all stages)" in medians:
            apm = (
                medians["CognitionMiddleware(all stages)"] - medians["CognitionMiddleware(no APM)"]
            )
            print(f"{'APM added with every stage on':36} {'':10} {apm:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
