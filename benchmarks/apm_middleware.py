"""What TracingMiddleware adds per request over the bare ASGI app, in the same run.

Run:  python benchmarks/apm_middleware.py [--requests 20000] [--rounds 9]

Both sides serve the same minimal ASGI app (a 200 with a 2-byte body), called in process
with prepared scope/receive/send (no sockets, no server): what is measured is the
middleware's own cost. The traced side starts a SERVER span per request (W3C
``traceparent`` header parsed, route template read, status recorded), ends it at the last
body message into a batch processor with a no-op exporter, and records the duration into a
LatencyRecorder. Medians of ``--rounds``; the difference is the cost added per request.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from cognitionos.apm import BatchSpanProcessor, LatencyRecorder, TracerProvider
from cognitionos.integrations.apm import TracingMiddleware

SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/orders/42",
    "scheme": "http",
    "headers": [
        (b"host", b"shop"),
        (b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ],
}
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain")],
}
BODY = {"type": "http.response.body", "body": b"ok", "more_body": False}


async def app(scope: Any, receive: Any, send: Any) -> None:
    scope["cognitionos.route"] = "/orders/{id}"
    await send(START)
    await send(BODY)


class Noop:
    def export(self, spans: Sequence[Any]) -> bool:
        return True

    def shutdown(self) -> None:
        return None


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def send(message: Any) -> None:
    return None


async def run(target: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await target(dict(SCOPE), receive, send)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    provider = TracerProvider(
        processor=BatchSpanProcessor(Noop(), max_queue_size=args.requests * 2 + 10)
    )
    traced = TracingMiddleware(app, tracer_provider=provider, recorder=LatencyRecorder())
    sides = {"bare app": app, "TracingMiddleware(app)": traced}
    samples: dict[str, list[float]] = {k: [] for k in sides}
    loop = asyncio.new_event_loop()
    for target in sides.values():
        loop.run_until_complete(run(target, 500))
    for _ in range(args.rounds):
        for name, target in sides.items():
            gc.collect()
            elapsed = loop.run_until_complete(run(target, args.requests))
            provider.force_flush(30_000)
            samples[name].append(elapsed / args.requests * 1e6)
    loop.close()
    bare = statistics.median(samples["bare app"])
    traced_us = statistics.median(samples["TracingMiddleware(app)"])
    print(f"{args.requests} requests per round, median of {args.rounds} rounds, µs per request")
    print(f"bare app                 {bare:8.2f}")
    print(f"TracingMiddleware(app)   {traced_us:8.2f}")
    print(f"added per request        {traced_us - bare:8.2f}")
    print(f"dropped spans: {provider.stats()['spans_dropped']} (must be 0)")
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
