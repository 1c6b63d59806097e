"""``/v1/flags``: definitions (CRUD, toggle, import/export, audit) and evaluation.

Each tenant's flags live under its own store namespace; the flags engine validates,
compiles and audits every change (actor = the calling key id).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from cognitionos.errors import CognitionError
from cognitionos.flags import ErrorCode, FlagDefinition, FlagSet
from cognitionos.server._directory import decode_cursor, encode_cursor
from cognitionos.server._http import (
    PageParams,
    Principal,
    check_if_match,
    content_etag,
    idempotent,
    page_params,
    record,
    require,
    state_of,
)
from cognitionos.server._problems import ApiError, invalid_body
from cognitionos.server._routes._flag_lookup import current_flag, flag_doc
from cognitionos.server._routes.change_requests import (
    ChangeRequestCreate,
    governed,
    open_request,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/flags", tags=["flags"])

FlagKey = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Attributes = Annotated[dict[str, Any], Field(default_factory=dict, max_length=200)]


class Evaluate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: Attributes
    default: Any = None


class EvaluateAll(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: Attributes


class Toggle(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool


class Import(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["native", "growthbook", "unleash"] = "native"
    document: dict[str, Any]


_doc = flag_doc


def _find(request: Request, p: Principal, key: str) -> FlagDefinition:
    flag = current_flag(request, p, key)
    if flag is None:
        raise ApiError(404, f"no flag {key!r} in this tenant")
    return flag


def _respond(flag: FlagDefinition, status: int = 200, **headers: str) -> JSONResponse:
    doc = _doc(flag)
    tag = content_etag(doc)
    return JSONResponse({**doc, "etag": tag}, status_code=status, headers={"ETag": tag, **headers})


def _accepted(request: Request, p: Principal, action: str, key: str, **change: Any) -> JSONResponse:
    """202 with the pending change request that replaces a direct change (protected keys)."""
    created = open_request(
        request, p, ChangeRequestCreate.model_validate({"action": action, "key": key, **change})
    )
    created.status_code = 202
    return created


def _engine_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except CognitionError as exc:
        raise ApiError(422 if isinstance(exc, ValueError) else 503, str(exc)) from None


@router.get("", summary="Flags of your tenant")
def list_flags(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    try:
        after = decode_cursor(page.cursor)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    flags = sorted(state_of(request).flags(p.tenant_id).definitions.flags, key=lambda f: f.key)
    if after is not None:
        flags = [f for f in flags if f.key > after]
    chunk = flags[: page.limit]
    items = [{**_doc(f), "etag": content_etag(_doc(f))} for f in chunk]
    more = len(flags) > page.limit
    return {"items": items, "next_cursor": encode_cursor(chunk[-1].key) if more else None}


@router.post("", status_code=201, summary="Create a flag")
def create_flag(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:write"))],
    definition: Annotated[dict[str, Any], Body(description="A flag definition")],
) -> Response:
    try:
        flag = FlagDefinition.model_validate(definition)
    except ValidationError as exc:
        raise invalid_body(exc, "flag definition") from None
    engine = state_of(request).flags(p.tenant_id)

    def create() -> Response:
        if governed(request, p):
            return _accepted(request, p, "create", flag.key, definition=definition)
        engine.refresh()
        if any(f.key == flag.key for f in engine.definitions.flags):
            raise ApiError(409, f"flag {flag.key!r} exists; PUT it with If-Match to change it")
        _engine_call(engine.set_flag, flag, actor=p.key_id)
        record(request, p, "flag.create", f"flags/{flag.key}", None, _doc(flag))
        return _respond(flag, 201, Location=f"/v1/flags/{flag.key}")

    return idempotent(request, p, definition, create)


@router.get("/export", summary="Every definition of your tenant (import reads it back)")
def export_flags(
    request: Request, p: Annotated[Principal, Depends(require("flags:read"))]
) -> dict[str, Any]:
    engine = state_of(request).flags(p.tenant_id)
    engine.refresh()
    exported: dict[str, Any] = engine.export()
    return exported


@router.post("/import", summary="Import definitions (native, GrowthBook or Unleash)")
def import_flags(
    request: Request, body: Import, p: Annotated[Principal, Depends(require("flags:write"))]
) -> dict[str, Any]:
    from cognitionos.flags._growthbook import flag_set_from_growthbook
    from cognitionos.flags._unleash import flag_set_from_unleash

    try:
        if body.format == "growthbook":
            fs = _engine_call(flag_set_from_growthbook, body.document)
        elif body.format == "unleash":
            fs = _engine_call(flag_set_from_unleash, body.document)
        else:
            fs = FlagSet.model_validate(body.document)
    except ValidationError as exc:
        raise invalid_body(exc, "flag set") from None
    if governed(request, p):
        raise ApiError(
            409,
            f"flag changes from {p.environment!r} keys need approval: request each change "
            "at POST /v1/flags/change-requests (imports are not governed one by one)",
        )
    engine = state_of(request).flags(p.tenant_id)
    changed = _engine_call(engine.import_flags, fs, actor=p.key_id)
    record(
        request,
        p,
        "flag.import",
        "flags",
        None,
        {"format": body.format, "flags": sorted(f.key for f in fs.flags), "changed": changed},
    )
    return {"imported": len(fs.flags), "changed": changed}


@router.get("/audit", summary="Who changed which flag (the flags engine's audit trail)")
def flag_audit(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:read"))],
    key: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    events = state_of(request).flags(p.tenant_id).audit(key, limit=limit)
    return {"items": events, "next_cursor": None}


@router.get("/stale", summary="Flags unchanged, unevaluated or answering one value for N days")
def stale_flags(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:read"))],
    days: Annotated[float, Query(gt=0, le=3650, description="the N in 'for N days'")] = 30.0,
) -> dict[str, Any]:
    """Reasons per flag: ``unchanged`` (no definition change for ``days``), ``unevaluated``
    (no evaluation for ``days``) and ``single-value`` (every evaluation so far answered the
    same value: fully rolled out, or never reaching its rules). Evaluations count from every
    server process (each writes its statistics at most every 30 s, this one now)."""
    state = state_of(request)
    engine = state.flags(p.tenant_id)
    _engine_call(lambda: state.flush_flag_stats(p.tenant_id, every=0.0))
    engine.refresh()
    report = _engine_call(engine.stale_flags, unchanged_days=days, unevaluated_days=days)
    return {"days": days, "items": report, "next_cursor": None}


@router.post("/evaluate", summary="Evaluate every flag for one user")
def evaluate_all(
    request: Request,
    body: EvaluateAll,
    p: Annotated[Principal, Depends(require("flags:evaluate"))],
) -> dict[str, Any]:
    state = state_of(request)
    engine = state.flags(p.tenant_id)
    results = engine.evaluate_all(body.attributes)
    state.flush_flag_stats(p.tenant_id)
    return {
        "items": {
            key: {"value": ev.value, "variant": ev.variant, "reason": str(ev.reason)}
            for key, ev in results.items()
        }
    }


@router.get("/{key}", summary="One flag (with its ETag)")
def get_flag(
    request: Request, key: FlagKey, p: Annotated[Principal, Depends(require("flags:read"))]
) -> Response:
    return _respond(_find(request, p, key))


@router.put("/{key}", summary="Replace a flag (If-Match)")
def replace_flag(
    request: Request,
    key: FlagKey,
    p: Annotated[Principal, Depends(require("flags:write"))],
    definition: Annotated[dict[str, Any], Body(description="The new definition")],
) -> Response:
    current = _find(request, p, key)
    check_if_match(request, content_etag(_doc(current)))
    try:
        flag = FlagDefinition.model_validate({**definition, "key": key})
    except ValidationError as exc:
        raise invalid_body(exc, "flag definition") from None
    if definition.get("key", key) != key:
        raise ApiError(422, f"the body's key {definition['key']!r} differs from the path's {key!r}")
    if governed(request, p):
        return _accepted(request, p, "replace", key, definition=definition)
    engine = state_of(request).flags(p.tenant_id)
    _engine_call(engine.set_flag, flag, actor=p.key_id)
    record(request, p, "flag.update", f"flags/{key}", _doc(current), _doc(flag))
    return _respond(flag)


@router.delete("/{key}", status_code=204, summary="Delete a flag (If-Match)")
def delete_flag(
    request: Request, key: FlagKey, p: Annotated[Principal, Depends(require("flags:write"))]
) -> Response:
    current = _find(request, p, key)
    check_if_match(request, content_etag(_doc(current)))
    if governed(request, p):
        return _accepted(request, p, "delete", key)
    _engine_call(state_of(request).flags(p.tenant_id).delete_flag, key, actor=p.key_id)
    record(request, p, "flag.delete", f"flags/{key}", _doc(current), None)
    return Response(status_code=204)


@router.post("/{key}/toggle", summary="Switch a flag on or off (the kill switch)")
def toggle_flag(
    request: Request,
    key: FlagKey,
    body: Toggle,
    p: Annotated[Principal, Depends(require("flags:write"))],
) -> Response:
    before = _find(request, p, key)
    if governed(request, p):
        return _accepted(request, p, "toggle", key, enabled=body.enabled)
    engine = state_of(request).flags(p.tenant_id)
    _engine_call(engine.toggle, key, body.enabled, actor=p.key_id)
    record(
        request,
        p,
        "flag.toggle",
        f"flags/{key}",
        {"enabled": before.enabled},
        {"enabled": body.enabled},
    )
    return _respond(_find(request, p, key))


@router.post("/{key}/evaluate", summary="Evaluate one flag for one user")
def evaluate(
    request: Request,
    key: FlagKey,
    body: Evaluate,
    p: Annotated[Principal, Depends(require("flags:evaluate"))],
) -> dict[str, Any]:
    """404 for a flag the tenant does not have (bulk evaluation never names unknown flags)."""
    state = state_of(request)
    ev = state.flags(p.tenant_id).evaluate(key, body.attributes, default=body.default)
    state.flush_flag_stats(p.tenant_id)
    if ev.error_code == ErrorCode.FLAG_NOT_FOUND:
        raise ApiError(404, f"no flag {key!r} in this tenant")
    return {
        "key": key,
        "value": ev.value,
        "variant": ev.variant,
        "reason": str(ev.reason),
        "error_code": str(ev.error_code) if ev.error_code is not None else None,
    }
