"""``/v1/tenants``, ``/v1/users``, ``/v1/keys``, ``/v1/roles``, ``/v1/whoami``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from cognitionos.server._directory import Conflict, NotFound, StaleVersion
from cognitionos.server._http import (
    PageParams,
    Principal,
    authenticate,
    etag_for,
    idempotent,
    page_params,
    parse_if_match_version,
    record,
    require,
    state_of,
)
from cognitionos.server._policy import ROLES
from cognitionos.server._problems import ApiError

__all__ = ["router"]

router = APIRouter(prefix="/v1")

Role = Literal["owner", "admin", "developer", "viewer", "service"]
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


class TenantCreate(Strict):
    name: Name
    owner_email: Email | None = None


class TenantUpdate(Strict):
    name: Name


class UserCreate(Strict):
    email: Email
    role: Role


class UserUpdate(Strict):
    email: Email | None = None
    role: Role | None = None


class KeyRotate(Strict):
    overlap: Annotated[float, Field(ge=0, le=30 * 86400)] = Field(
        86400.0, description="seconds the old key stays valid beside the new one"
    )
    expires_in: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        None, description="seconds until the new key expires (never when absent)"
    )


class KeyCreate(Strict):
    name: Name
    role: Role
    environment: Literal["live", "test"] = "live"
    user_id: Annotated[str, Field(max_length=64)] | None = None
    expires_in: Annotated[float, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        None, description="seconds until the key expires (never when absent)"
    )


def _page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


def _cursor_error(exc: ValueError) -> ApiError:
    return ApiError(400, str(exc))


def _with_etag(row: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    doc = {k: v for k, v in row.items() if k != "version"}
    doc["etag"] = etag_for(row["version"])
    return JSONResponse(doc, status_code=status, headers={"ETag": doc["etag"], **headers})


def _no_stronger(request: Request, principal: Principal, role: str) -> None:
    policy = state_of(request).policy
    if not policy.covers(principal.role, role, principal.tenant_id):
        raise ApiError(403, f"role {principal.role!r} cannot grant the stronger role {role!r}")


# -- whoami, roles -----------------------------------------------------------------------------


@router.get("/whoami", tags=["auth"], summary="The calling key, its tenant, role and scopes")
def whoami(request: Request, p: Annotated[Principal, Depends(authenticate)]) -> dict[str, Any]:
    scopes = state_of(request).policy.scopes(p.role, p.tenant_id)
    return {
        "key_id": p.key_id,
        "tenant_id": p.tenant_id,
        "role": p.role,
        "user_id": p.user_id,
        "environment": p.environment,
        "scopes": sorted(scopes),
    }


@router.get("/roles", tags=["roles"], summary="Every role with its scopes in your tenant")
def list_roles(
    request: Request, p: Annotated[Principal, Depends(require("roles:read"))]
) -> dict[str, Any]:
    matrix = state_of(request).policy.matrix(p.tenant_id)
    return {"items": [{"role": r, "scopes": sorted(matrix[r])} for r in ROLES], "next_cursor": None}


@router.get("/roles/{role}", tags=["roles"], summary="One role's scopes in your tenant")
def get_role(
    request: Request, role: str, p: Annotated[Principal, Depends(require("roles:read"))]
) -> dict[str, Any]:
    if role not in ROLES:
        raise ApiError(404, f"no role {role!r}")
    return {"role": role, "scopes": sorted(state_of(request).policy.scopes(role, p.tenant_id))}


# -- tenants -----------------------------------------------------------------------------------


def _can_manage(request: Request, p: Principal) -> bool:
    return state_of(request).policy.allows(p.role, p.tenant_id, "tenants:manage")


@router.get("/tenants", tags=["tenants"], summary="Tenants you can see")
def list_tenants(
    request: Request,
    p: Annotated[Principal, Depends(require("tenants:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    only = None if _can_manage(request, p) else p.tenant_id
    try:
        rows, nxt = state_of(request).directory.list_tenants(page.limit, page.cursor, only)
    except ValueError as exc:
        raise _cursor_error(exc) from None
    return _page([{**r, "etag": etag_for(r.pop("version"))} for r in rows], nxt)


@router.post("/tenants", tags=["tenants"], status_code=201, summary="Create a tenant")
def create_tenant(
    request: Request,
    body: TenantCreate,
    p: Annotated[Principal, Depends(require("tenants:manage"))],
) -> Response:
    """Creates the tenant and an owner key for it (its token is in the answer, once)."""

    def create() -> Response:
        directory = state_of(request).directory
        tenant = directory.create_tenant(body.name)
        user_id = None
        if body.owner_email:
            user_id = directory.create_user(tenant["tenant_id"], body.owner_email, "owner")[
                "user_id"
            ]
        key, token = directory.create_key(
            tenant["tenant_id"],
            name="owner key",
            role="owner",
            user_id=user_id,
            created_by=p.key_id,
        )
        record(request, p, "tenant.create", f"tenants/{tenant['tenant_id']}", None, body.name)
        record(
            request,
            p,
            "key.create",
            f"keys/{key['key_id']}",
            None,
            {"tenant_id": tenant["tenant_id"], "role": "owner", "user_id": user_id},
        )
        doc = {k: v for k, v in tenant.items() if k != "version"}
        doc["etag"] = etag_for(tenant["version"])
        doc["owner_key"] = {"key_id": key["key_id"], "token": token}
        return JSONResponse(
            doc,
            status_code=201,
            headers={"ETag": doc["etag"], "Location": f"/v1/tenants/{tenant['tenant_id']}"},
        )

    return idempotent(request, p, body.model_dump(), create)


def _visible_tenant(request: Request, p: Principal, tenant_id: str) -> dict[str, Any]:
    if tenant_id != p.tenant_id and not _can_manage(request, p):
        raise ApiError(404, f"no tenant {tenant_id!r}")
    try:
        return state_of(request).directory.get_tenant(tenant_id)
    except NotFound:
        raise ApiError(404, f"no tenant {tenant_id!r}") from None


@router.get("/tenants/{tenant_id}", tags=["tenants"], summary="One tenant")
def get_tenant(
    request: Request, tenant_id: Id, p: Annotated[Principal, Depends(require("tenants:read"))]
) -> Response:
    return _with_etag(_visible_tenant(request, p, tenant_id))


@router.patch("/tenants/{tenant_id}", tags=["tenants"], summary="Rename a tenant (If-Match)")
def update_tenant(
    request: Request,
    tenant_id: Id,
    body: TenantUpdate,
    p: Annotated[Principal, Depends(require("tenants:write"))],
) -> Response:
    before = _visible_tenant(request, p, tenant_id)
    version = parse_if_match_version(request)
    try:
        row = state_of(request).directory.update_tenant(tenant_id, version, body.name)
    except StaleVersion:
        raise ApiError(412, "the tenant changed since it was read; GET it again") from None
    except NotFound:
        raise ApiError(404, f"no tenant {tenant_id!r}") from None
    record(request, p, "tenant.update", f"tenants/{tenant_id}", before["name"], row["name"])
    return _with_etag(row)


# -- users -------------------------------------------------------------------------------------


@router.get("/users", tags=["users"], summary="Users of your tenant")
def list_users(
    request: Request,
    p: Annotated[Principal, Depends(require("users:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    try:
        rows, nxt = state_of(request).directory.list_users(p.tenant_id, page.limit, page.cursor)
    except ValueError as exc:
        raise _cursor_error(exc) from None
    return _page([{**r, "etag": etag_for(r.pop("version"))} for r in rows], nxt)


@router.post("/users", tags=["users"], status_code=201, summary="Add a user to your tenant")
def create_user(
    request: Request, body: UserCreate, p: Annotated[Principal, Depends(require("users:write"))]
) -> Response:
    _no_stronger(request, p, body.role)

    def create() -> Response:
        try:
            row = state_of(request).directory.create_user(p.tenant_id, body.email, body.role)
        except Conflict as exc:
            raise ApiError(409, str(exc)) from None
        record(request, p, "user.create", f"users/{row['user_id']}", None, body.model_dump())
        return _with_etag(row, 201, Location=f"/v1/users/{row['user_id']}")

    return idempotent(request, p, body.model_dump(), create)


def _user(request: Request, p: Principal, user_id: str) -> dict[str, Any]:
    try:
        return state_of(request).directory.get_user(p.tenant_id, user_id)
    except NotFound:
        raise ApiError(404, f"no user {user_id!r} in this tenant") from None


@router.get("/users/{user_id}", tags=["users"], summary="One user")
def get_user(
    request: Request, user_id: Id, p: Annotated[Principal, Depends(require("users:read"))]
) -> Response:
    return _with_etag(_user(request, p, user_id))


@router.patch("/users/{user_id}", tags=["users"], summary="Change a user (If-Match)")
def update_user(
    request: Request,
    user_id: Id,
    body: UserUpdate,
    p: Annotated[Principal, Depends(require("users:write"))],
) -> Response:
    current = _user(request, p, user_id)
    _no_stronger(request, p, current["role"])
    if body.role is not None:
        _no_stronger(request, p, body.role)
    version = parse_if_match_version(request)
    values = body.model_dump(exclude_none=True)
    try:
        row = state_of(request).directory.update_user(p.tenant_id, user_id, version, values)
    except StaleVersion:
        raise ApiError(412, "the user changed since it was read; GET it again") from None
    except Conflict as exc:
        raise ApiError(409, str(exc)) from None
    except NotFound:
        raise ApiError(404, f"no user {user_id!r} in this tenant") from None
    record(
        request,
        p,
        "user.update",
        f"users/{user_id}",
        {k: current[k] for k in values},
        {k: row[k] for k in values},
    )
    return _with_etag(row)


@router.delete("/users/{user_id}", tags=["users"], status_code=204, summary="Remove a user")
def delete_user(
    request: Request, user_id: Id, p: Annotated[Principal, Depends(require("users:write"))]
) -> Response:
    """Removes the user and revokes every key of theirs."""
    current = _user(request, p, user_id)
    _no_stronger(request, p, current["role"])
    try:
        state_of(request).directory.delete_user(p.tenant_id, user_id)
    except NotFound:
        raise ApiError(404, f"no user {user_id!r} in this tenant") from None
    record(
        request,
        p,
        "user.delete",
        f"users/{user_id}",
        {"email": current["email"], "role": current["role"]},
        None,
    )
    return Response(status_code=204)


# -- keys --------------------------------------------------------------------------------------


@router.get("/keys", tags=["keys"], summary="API keys of your tenant (never their secrets)")
def list_keys(
    request: Request,
    p: Annotated[Principal, Depends(require("keys:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    try:
        rows, nxt = state_of(request).directory.list_keys(p.tenant_id, page.limit, page.cursor)
    except ValueError as exc:
        raise _cursor_error(exc) from None
    return _page(rows, nxt)


@router.post("/keys", tags=["keys"], status_code=201, summary="Create an API key (shown once)")
def create_key(
    request: Request, body: KeyCreate, p: Annotated[Principal, Depends(require("keys:write"))]
) -> Response:
    """The token is in this answer only; the server keeps its SHA-256 hash.

    Nobody creates a key stronger than their own, nor one for a user stronger than the key.
    """
    _no_stronger(request, p, body.role)
    state = state_of(request)
    if body.user_id is not None:
        owner = _user(request, p, body.user_id)
        if not state.policy.covers(owner["role"], body.role, p.tenant_id):
            raise ApiError(
                403, f"user {body.user_id!r} ({owner['role']}) cannot hold a {body.role} key"
            )

    def create() -> Response:
        row, token = state.directory.create_key(
            p.tenant_id,
            name=body.name,
            role=body.role,
            environment=body.environment,
            user_id=body.user_id,
            expires_in=body.expires_in,
            created_by=p.key_id,
        )
        record(
            request,
            p,
            "key.create",
            f"keys/{row['key_id']}",
            None,
            {
                "name": body.name,
                "role": body.role,
                "environment": body.environment,
                "user_id": body.user_id,
                "expires_at": row["expires_at"],
            },
        )
        return JSONResponse(
            {**row, "token": token},
            status_code=201,
            headers={"Location": f"/v1/keys/{row['key_id']}"},
        )

    return idempotent(request, p, body.model_dump(), create)


@router.get("/keys/{key_id}", tags=["keys"], summary="One API key")
def get_key(
    request: Request, key_id: Id, p: Annotated[Principal, Depends(require("keys:read"))]
) -> dict[str, Any]:
    try:
        return state_of(request).directory.get_key(p.tenant_id, key_id)
    except NotFound:
        raise ApiError(404, f"no key {key_id!r} in this tenant") from None


@router.delete("/keys/{key_id}", tags=["keys"], summary="Revoke an API key")
def revoke_key(
    request: Request, key_id: Id, p: Annotated[Principal, Depends(require("keys:write"))]
) -> dict[str, Any]:
    directory = state_of(request).directory
    try:
        current = directory.get_key(p.tenant_id, key_id)
    except NotFound:
        raise ApiError(404, f"no key {key_id!r} in this tenant") from None
    _no_stronger(request, p, current["role"])
    revoked = directory.revoke_key(p.tenant_id, key_id)
    if current["revoked_at"] is None:
        record(
            request,
            p,
            "key.revoke",
            f"keys/{key_id}",
            {"revoked_at": None},
            {"revoked_at": revoked["revoked_at"]},
        )
    return revoked


@router.post(
    "/keys/{key_id}/rotate",
    tags=["keys"],
    status_code=201,
    summary="Rotate an API key: a new token now, the old one expires after an overlap",
)
def rotate_key(
    request: Request,
    key_id: Id,
    body: KeyRotate,
    p: Annotated[Principal, Depends(require("keys:write"))],
) -> Response:
    """The new key has the old one's role, environment, user and name; its token is in this
    answer only. Both keys work during ``overlap`` seconds, then only the new one does.
    Nobody rotates a key stronger than their own (that would hand them a stronger token).
    """
    directory = state_of(request).directory
    try:
        current = directory.get_key(p.tenant_id, key_id)
    except NotFound:
        raise ApiError(404, f"no key {key_id!r} in this tenant") from None
    _no_stronger(request, p, current["role"])
    if current["user_id"] is not None:
        # the user may have been given a weaker role since the key was made
        owner = _user(request, p, current["user_id"])
        if not state_of(request).policy.covers(owner["role"], current["role"], p.tenant_id):
            raise ApiError(
                403,
                f"user {current['user_id']!r} ({owner['role']}) can no longer hold a "
                f"{current['role']} key; create a new key instead",
            )

    def create() -> Response:
        try:
            row, token, old = directory.rotate_key(
                p.tenant_id,
                key_id,
                overlap=body.overlap,
                expires_in=body.expires_in,
                created_by=p.key_id,
            )
        except NotFound:
            raise ApiError(404, f"no key {key_id!r} in this tenant") from None
        except Conflict as exc:
            raise ApiError(409, str(exc)) from None
        record(
            request,
            p,
            "key.rotate",
            f"keys/{key_id}",
            {"key_id": key_id, "expires_at": current["expires_at"]},
            {"key_id": row["key_id"], "old_expires_at": old["expires_at"], "role": row["role"]},
        )
        return JSONResponse(
            {
                **row,
                "token": token,
                "rotated_from": key_id,
                "old_key_expires_at": old["expires_at"],
            },
            status_code=201,
            headers={"Location": f"/v1/keys/{row['key_id']}"},
        )

    return idempotent(request, p, {"key_id": key_id, **body.model_dump()}, create)
