"""What every route shares: the caller (API key -> principal), scopes, ETags, pages, idempotency."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

import attrs
from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse, Response

from cognitionos.server._problems import ApiError
from cognitionos.server._state import ServerState

__all__ = [
    "PageParams",
    "Principal",
    "etag_for",
    "idempotent",
    "page_params",
    "parse_if_match_version",
    "record",
    "require",
    "check_if_match",
    "state_of",
]

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer cos_live_…`")


@attrs.frozen(slots=True)
class Principal:
    """Who is calling: the key, its tenant and its role."""

    key_id: str
    tenant_id: str
    role: str
    user_id: str | None
    environment: str


def state_of(request: Request) -> ServerState:
    """The app's :class:`ServerState`."""
    state: ServerState = request.app.state.cognitionos
    return state


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """401 unless the request carries a valid, unexpired, unrevoked API key."""
    token = credentials.credentials if credentials is not None else None
    if not token:
        raise ApiError(
            401,
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": 'Bearer realm="cognitionos"'},
        )
    state = state_of(request)
    row = state.directory.authenticate(token)
    if row is None:
        raise ApiError(
            401,
            "the API key is invalid, expired or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="cognitionos", error="invalid_token"'},
        )
    state.remember_key(row["key_id"], row["tenant_id"])
    return Principal(
        row["key_id"], row["tenant_id"], row["role"], row["user_id"], row["environment"]
    )


def require(scope: str) -> Callable[..., Principal]:
    """Dependency: the caller, if its role has ``scope`` in its tenant; else 403."""

    def dependency(
        request: Request, principal: Annotated[Principal, Depends(authenticate)]
    ) -> Principal:
        if not state_of(request).policy.allows(principal.role, principal.tenant_id, scope):
            raise ApiError(403, f"role {principal.role!r} lacks the scope {scope!r}")
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


@attrs.frozen(slots=True)
class PageParams:
    """``limit`` (1-200) and the opaque ``cursor`` of the next page."""

    limit: int
    cursor: str | None


def page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=400, description="`next_cursor` of the previous page")
    ] = None,
) -> PageParams:
    """Pagination query parameters."""
    return PageParams(limit, cursor)


def record(
    request: Request, p: Principal, action: str, target: str, before: Any, after: Any
) -> None:
    """Append an administrative change to the audit log (actor = the calling key id)."""
    state_of(request).audit.append(
        p.tenant_id, p.key_id, action, target, {"before": before, "after": after}
    )


def etag_for(version: int | str) -> str:
    """A strong ETag: the row version, or a content digest for documents without one."""
    return f'"{version}"'


def _if_match(request: Request) -> list[str]:
    value = request.headers.get("if-match")
    if value is None:
        raise ApiError(428, "this update needs an If-Match header with the ETag from a GET")
    return [tag.strip().removeprefix("W/") for tag in value.split(",") if tag.strip()]


def check_if_match(request: Request, current: str) -> None:
    """428 without If-Match; 412 when no tag matches ``current`` (``*`` matches anything)."""
    tags = _if_match(request)
    if "*" not in tags and current not in tags:
        raise ApiError(412, "the resource changed since it was read; GET it again")


def parse_if_match_version(request: Request) -> int:
    """The row version named by If-Match (428 missing, 412 unreadable)."""
    tags = _if_match(request)
    if len(tags) != 1 or not tags[0].startswith('"') or not tags[0].endswith('"'):
        raise ApiError(412, "If-Match must be one ETag from a GET of this resource")
    try:
        return int(tags[0][1:-1])
    except ValueError:
        raise ApiError(412, "the resource changed since it was read; GET it again") from None


def content_etag(document: Any) -> str:
    """ETag of a JSON document (canonical form, SHA-256, 20 hex digits)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return etag_for(hashlib.sha256(text.encode()).hexdigest()[:20])


def idempotent(
    request: Request,
    principal: Principal,
    payload: Any,
    create: Callable[[], Response],
) -> Response:
    """Run a creating POST at most once per ``Idempotency-Key`` (per API key).

    A repeat with the same body replays the stored response; with a different body: 422;
    while the first is still running: 409 with ``Retry-After``. Without the header the
    request simply runs.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return create()
    if not key or len(key) > 200:
        raise ApiError(400, "Idempotency-Key must be 1-200 characters")
    state = state_of(request)
    scope = f"{principal.key_id}:{request.method}:{request.url.path}:{key}"
    digest = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
    ttl_ns = int(state.settings.idempotency_ttl * 1e9)
    existing = state.directory.idempotency_begin(principal.tenant_id, scope, digest, ttl_ns)
    if existing is not None:
        if existing["request_hash"] != digest:
            raise ApiError(422, "this Idempotency-Key was used with a different request body")
        if existing["status"] is None:
            raise ApiError(
                409,
                "a request with this Idempotency-Key is still running",
                headers={"Retry-After": "1"},
            )
        stored = json.loads(existing["response"])
        return JSONResponse(
            stored["body"],
            status_code=existing["status"],
            headers={**stored["headers"], "Idempotent-Replayed": "true"},
        )
    try:
        response = create()
    except BaseException:
        state.directory.idempotency_finish(principal.tenant_id, scope, None, None)
        raise
    body = json.loads(bytes(response.body)) if response.body else None
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "location")}
    state.directory.idempotency_finish(
        principal.tenant_id,
        scope,
        response.status_code,
        json.dumps({"body": body, "headers": headers}).encode(),
    )
    return response
