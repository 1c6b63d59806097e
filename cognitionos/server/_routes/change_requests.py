"""``/v1/flags/change-requests``: flag changes that wait for a second person's approval.

Keys of an environment listed in ``COGNITIONOS_PROTECTED_ENVIRONMENTS`` (e.g. ``["live"]``)
cannot change flags directly: their creates, replaces, deletes and toggles answer
``202 Accepted`` with a pending change request instead. Anyone may also open one explicitly.
A key with ``flags:approve`` (admin, owner) other than the requester's (and of another user
when both keys belong to users) approves it, which applies the change, or rejects it. The
change applies only if the flag is still as it was when the request was made (the ETag
recorded then); otherwise the request ends as ``conflict`` and nothing changes. Every step is
written to the audit log.
"""

from __future__ import annotations

import json
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse, Response

from cognitionos.errors import CognitionError
from cognitionos.flags import FlagDefinition
from cognitionos.server._http import (
    Principal,
    content_etag,
    idempotent,
    record,
    require,
    state_of,
)
from cognitionos.server._problems import ApiError, invalid_body
from cognitionos.server._routes._flag_lookup import current_flag, flag_doc

__all__ = ["governed", "open_request", "router"]

router = APIRouter(prefix="/v1/flags/change-requests", tags=["flags"])

#: pending requests one tenant may hold at once
MAX_PENDING = 500

CrId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^cr_[0-9a-f]{16}$")]
Status = Literal["pending", "applied", "rejected", "conflict"]


class ChangeRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["create", "replace", "delete", "toggle"]
    key: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
    definition: dict[str, Any] | None = Field(
        None, description="the new definition (create and replace)"
    )
    enabled: bool | None = Field(None, description="the new state (toggle)")
    comment: Annotated[str, Field(max_length=2000)] = ""


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: Annotated[str, Field(max_length=2000)] = ""


def governed(request: Request, p: Principal) -> bool:
    """Whether the caller's environment needs change requests for flag changes."""
    return p.environment in state_of(request).settings.protected_environments


def _prefix(tenant_id: str) -> str:
    return f"tenants/{tenant_id}/flag-change-requests/"


def _flag_doc(request: Request, p: Principal, key: str) -> dict[str, Any] | None:
    flag = current_flag(request, p, key)
    return None if flag is None else flag_doc(flag)


def _validated(body: ChangeRequestCreate) -> dict[str, Any] | None:
    """The change's definition in its stored form (create/replace), else None."""
    if body.action in ("create", "replace"):
        if body.definition is None:
            raise ApiError(422, f"a {body.action} change request needs a definition")
        if body.definition.get("key", body.key) != body.key:
            raise ApiError(422, "the definition's key differs from the change request's key")
        try:
            flag = FlagDefinition.model_validate({**body.definition, "key": body.key})
        except ValidationError as exc:
            raise invalid_body(exc, "flag definition") from None
        return flag_doc(flag)
    if body.definition is not None:
        raise ApiError(422, f"a {body.action} change request takes no definition")
    if body.action == "toggle" and body.enabled is None:
        raise ApiError(422, "a toggle change request needs enabled")
    return None


def _respond(doc: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    tag = content_etag(doc)
    return JSONResponse({**doc, "etag": tag}, status_code=status, headers={"ETag": tag, **headers})


def open_request(request: Request, p: Principal, body: ChangeRequestCreate) -> JSONResponse:
    """Store a pending change request (validated now, applied on approval)."""
    definition = _validated(body)
    current = _flag_doc(request, p, body.key)
    if body.action == "create" and current is not None:
        raise ApiError(409, f"flag {body.key!r} exists; request a replace instead")
    if body.action != "create" and current is None:
        raise ApiError(404, f"no flag {body.key!r} in this tenant")
    state = state_of(request)
    prefix = _prefix(p.tenant_id)
    pending = [
        e for e in state.store.scan(prefix, limit=10_000) if b'"status": "pending"' in e.value
    ]
    if len(pending) >= MAX_PENDING:
        raise ApiError(409, f"a tenant has at most {MAX_PENDING} pending change requests")
    cr_id = f"cr_{secrets.token_hex(8)}"
    doc: dict[str, Any] = {
        "id": cr_id,
        "action": body.action,
        "key": body.key,
        "definition": definition,
        "enabled": body.enabled if body.action == "toggle" else None,
        "base_etag": content_etag(current) if current is not None else None,
        "status": "pending",
        "comment": body.comment,
        "requested_by": p.key_id,
        "requested_by_user": p.user_id,
        "requested_at": state.clock.time(),
        "decided_by": None,
        "decided_at": None,
        "decision_comment": None,
    }
    if state.store.compare_and_set(prefix + cr_id, json.dumps(doc).encode(), version=0) is None:
        raise ApiError(409, "change request id collision; retry")
    record(request, p, "flag.change_request.open", f"flags/{body.key}", None, doc)
    return _respond(doc, 201, Location=f"/v1/flags/change-requests/{cr_id}")


@router.post("", status_code=201, summary="Request a flag change (applied on approval)")
def create_change_request(
    request: Request,
    body: ChangeRequestCreate,
    p: Annotated[Principal, Depends(require("flags:write"))],
) -> Response:
    return idempotent(request, p, body.model_dump(), lambda: open_request(request, p, body))


@router.get("", summary="Change requests of your tenant (newest first)")
def list_change_requests(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:read"))],
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    entries = state_of(request).store.scan(_prefix(p.tenant_id), limit=10_000)
    docs = [json.loads(e.value) for e in entries]
    if status is not None:
        docs = [d for d in docs if d["status"] == status]
    docs.sort(key=lambda d: (-d["requested_at"], d["id"]))
    items = [{**d, "etag": content_etag(d)} for d in docs[:limit]]
    return {"items": items, "next_cursor": None}


def _one(request: Request, p: Principal, cr_id: str) -> tuple[dict[str, Any], int]:
    entry = state_of(request).store.get(_prefix(p.tenant_id) + cr_id)
    if entry is None:
        raise ApiError(404, f"no change request {cr_id!r} in this tenant")
    doc: dict[str, Any] = json.loads(entry.value)
    return doc, int(entry.version)


@router.get("/{cr_id}", summary="One change request")
def get_change_request(
    request: Request, cr_id: CrId, p: Annotated[Principal, Depends(require("flags:read"))]
) -> Response:
    return _respond(_one(request, p, cr_id)[0])


def _decide(
    request: Request, p: Principal, cr_id: str, status: Status, comment: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Move a pending request to ``status`` exactly once: (before, after)."""
    state = state_of(request)
    doc, version = _one(request, p, cr_id)
    if doc["status"] != "pending":
        raise ApiError(409, f"change request {cr_id!r} is already {doc['status']}")
    same_key = doc["requested_by"] == p.key_id
    same_user = p.user_id is not None and doc["requested_by_user"] == p.user_id
    if same_key or same_user:
        raise ApiError(
            403, "a change request needs a second person: the requester cannot decide it"
        )
    after = {
        **doc,
        "status": status,
        "decided_by": p.key_id,
        "decided_at": state.clock.time(),
        "decision_comment": comment,
    }
    written = state.store.compare_and_set(
        _prefix(p.tenant_id) + cr_id, json.dumps(after).encode(), version=version
    )
    if written is None:  # another decision won the race: this one changes nothing
        raise ApiError(409, f"change request {cr_id!r} was decided concurrently")
    return doc, after


def _apply(request: Request, p: Principal, doc: dict[str, Any]) -> None:
    engine = state_of(request).flags(p.tenant_id)
    key = doc["key"]
    if doc["action"] in ("create", "replace"):
        engine.set_flag(FlagDefinition.model_validate(doc["definition"]), actor=p.key_id)
    elif doc["action"] == "delete":
        engine.delete_flag(key, actor=p.key_id)
    else:
        engine.toggle(key, bool(doc["enabled"]), actor=p.key_id)


@router.post("/{cr_id}/approve", summary="Approve and apply a change request (second person)")
def approve_change_request(
    request: Request,
    cr_id: CrId,
    body: Decision,
    p: Annotated[Principal, Depends(require("flags:approve"))],
) -> Response:
    doc, _version = _one(request, p, cr_id)
    current = _flag_doc(request, p, doc["key"])
    now_etag = content_etag(current) if current is not None else None
    if now_etag != doc["base_etag"]:
        # the flag changed since the request: applying it would silently undo that change
        _before, after = _decide(request, p, cr_id, "conflict", body.comment)
        record(request, p, "flag.change_request.conflict", f"flags/{doc['key']}", doc, after)
        raise ApiError(
            409,
            f"flag {doc['key']!r} changed since change request {cr_id!r} was made; "
            "it was not applied (status conflict): open a new one",
        )
    before, after = _decide(request, p, cr_id, "applied", body.comment)
    try:
        _apply(request, p, doc)
    except CognitionError as exc:
        state = state_of(request)
        failed = {**after, "status": "conflict", "decision_comment": f"not applied: {exc}"}
        state.store.set(_prefix(p.tenant_id) + cr_id, json.dumps(failed).encode())
        raise ApiError(409, f"change request {cr_id!r} could not be applied: {exc}") from None
    new = _flag_doc(request, p, doc["key"])
    action = {"create": "flag.create", "replace": "flag.update", "delete": "flag.delete"}.get(
        doc["action"], "flag.toggle"
    )
    record(request, p, action, f"flags/{doc['key']}", current, new)
    record(request, p, "flag.change_request.approve", f"flags/{doc['key']}", before, after)
    return _respond(after)


@router.post("/{cr_id}/reject", summary="Reject a change request (second person)")
def reject_change_request(
    request: Request,
    cr_id: CrId,
    body: Decision,
    p: Annotated[Principal, Depends(require("flags:approve"))],
) -> Response:
    before, after = _decide(request, p, cr_id, "rejected", body.comment)
    record(request, p, "flag.change_request.reject", f"flags/{before['key']}", before, after)
    return _respond(after)
