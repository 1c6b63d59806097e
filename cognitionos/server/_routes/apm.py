"""``/v1/apm``: trace ingest (OTLP/JSON) and what the APM engine derives from it, per tenant.

Ingested spans feed the engine's own recorders under the tenant's namespace (``apm.<tenant>``):
server spans become route latencies (mergeable sketches, so every process's share adds up),
spans with a ``db.statement`` feed the slow-query and N+1 detector (per trace), and
``exception`` span events are grouped by the error grouper. Ingest is data, like metric
events (not audited); the reads are the fleet-wide views ``cognitionos apm`` prints.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from cognitionos.server._compute import engine_errors, offload, plain
from cognitionos.server._http import Principal, require, state_of
from cognitionos.server._problems import ApiError

__all__ = ["MAX_SPANS", "router"]

router = APIRouter(prefix="/v1/apm", tags=["apm"])

#: most spans one ingest request may carry
MAX_SPANS = 5000
#: statements at least this slow (seconds) are kept as slow queries
SLOW_QUERY_SECONDS = 0.1


def namespace(tenant_id: str) -> str:
    """The APM key namespace of a tenant."""
    return f"apm.{tenant_id}"


def _route(span: Any) -> str:
    route = span.attributes.get("http.route")
    method = span.attributes.get("http.request.method") or span.attributes.get("http.method")
    if isinstance(route, str) and route:
        return f"{method} {route}" if isinstance(method, str) and method else route
    return span.name or "<unnamed>"


def _exception_class(name: str) -> type[Exception]:
    # the grouper fingerprints an exception by its type's module and name, frames and
    # message; a reported exception has no Python frames, so a class named like it stands in
    module, _, qualname = name.rpartition(".")
    cls = type(qualname or "Exception", (Exception,), {})
    cls.__qualname__ = qualname or "Exception"
    cls.__module__ = module or "reported"
    return cls


def _ingest(store: Any, tenant_id: str, document: dict[str, Any]) -> dict[str, int]:
    from opentelemetry.trace import SpanKind

    from cognitionos.apm import ErrorGrouper, LatencyRecorder, SlowQueryDetector, decode_otlp_json

    spans = decode_otlp_json(document)
    if len(spans) > MAX_SPANS:
        raise ApiError(413, f"{len(spans)} spans in one request; at most {MAX_SPANS}")
    ns = namespace(tenant_id)
    recorder = LatencyRecorder(store, namespace=ns)
    detector = SlowQueryDetector(store, threshold=SLOW_QUERY_SECONDS, namespace=ns)
    grouper = ErrorGrouper(store, namespace=ns)
    counts = {"spans": len(spans), "latencies": 0, "statements": 0, "errors": 0}
    by_trace: dict[int, list[Any]] = defaultdict(list)
    roots: dict[int, str] = {}
    for span in spans:
        seconds = max(0, span.end_time - span.start_time) / 1e9
        by_trace[span.trace_id].append(span)
        if span.kind == SpanKind.SERVER:
            recorder.record(_route(span), seconds)
            counts["latencies"] += 1
            roots.setdefault(span.trace_id, _route(span))
        for _at, name, attributes in span.events:
            if name == "exception":
                kind = str(attributes.get("exception.type") or "Exception")
                message = str(attributes.get("exception.message") or "")
                grouper.record(
                    _exception_class(kind)(message),
                    trace_id=f"{span.trace_id:032x}",
                    route=_route(span),
                )
                counts["errors"] += 1
    for trace_id, members in by_trace.items():
        with detector.request(roots.get(trace_id)):
            for span in members:
                statement = span.attributes.get("db.statement") or span.attributes.get(
                    "db.query.text"
                )
                if isinstance(statement, str) and statement:
                    seconds = max(0, span.end_time - span.start_time) / 1e9
                    detector.observe(statement, seconds, location=span.name or "span")
                    counts["statements"] += 1
    recorder.flush()
    detector.flush()
    return counts


@router.post("/traces", summary="Ingest spans (OTLP/JSON, up to 5000 per request)")
async def ingest(
    request: Request,
    p: Annotated[Principal, Depends(require("apm:ingest"))],
    document: Annotated[dict[str, Any], Body(description="An OTLP/JSON ExportTraceServiceRequest")],
) -> dict[str, int]:
    """Answers how many spans, latencies, statements and exceptions were taken in."""
    store = state_of(request).store
    counts: dict[str, int] = await offload(request, _ingest, store, p.tenant_id, document)
    return counts


@router.get("/latency", summary="Route latency percentiles over the fleet (slowest p99 first)")
def latency(
    request: Request,
    p: Annotated[Principal, Depends(require("apm:read"))],
    minutes: Annotated[float, Query(gt=0, le=7 * 1440)] = 60.0,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> dict[str, Any]:
    """Seconds; every process's and every ingest's sketches merged per route."""
    from cognitionos.apm import read_route_latencies, summarize

    state = state_of(request)
    since = state.clock.time() - minutes * 60
    sketches = engine_errors(
        lambda: read_route_latencies(state.store, since=since, namespace=namespace(p.tenant_id))
    )
    rows = summarize(sketches)[:limit]
    return {"minutes": minutes, "items": [plain(_latency_doc(r)) for r in rows]}


def _latency_doc(row: Any) -> dict[str, Any]:
    return {
        "route": row.route,
        "count": row.count,
        "p50": row.p50,
        "p95": row.p95,
        "p99": row.p99,
        "p999": row.p999,
        "max": row.max,
    }


@router.get("/errors", summary="Error groups, most frequent first")
def errors(
    request: Request,
    p: Annotated[Principal, Depends(require("apm:read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    from cognitionos.apm import read_error_groups

    store = state_of(request).store
    groups = engine_errors(lambda: read_error_groups(store, namespace=namespace(p.tenant_id)))
    groups.sort(key=lambda g: (-g.count, -g.last_seen_ns))
    return {"items": [plain(g.to_dict()) for g in groups[:limit]]}


@router.get("/slow-queries", summary="Slow and N+1 statements, slowest p99 first")
def slow_queries(
    request: Request,
    p: Annotated[Principal, Depends(require("apm:read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    from cognitionos.apm import read_slow_queries

    store = state_of(request).store
    rows = engine_errors(lambda: read_slow_queries(store, namespace=namespace(p.tenant_id)))
    return {"items": [plain(r.to_dict()) for r in rows[:limit]]}
