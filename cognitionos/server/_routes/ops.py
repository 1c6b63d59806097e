"""``/healthz`` (process alive), ``/readyz`` (stores reachable), ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from cognitionos.errors import CognitionError
from cognitionos.server._http import state_of

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and hot-state stores answer")
def readyz(request: Request) -> Response:
    state = state_of(request)
    checks: dict[str, str] = {}
    for name, store in (("database", state.store), ("hot_state", state.hot)):
        try:
            store.ping()
            checks[name] = "ok"
        except CognitionError as exc:
            checks[name] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get("/metrics", summary="Prometheus metrics of the engines guarding the server")
def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    registry = request.app.state.cognitionos_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
