"""``/v1/audit``: the server's tamper-evident audit log, seen from one tenant.

Every administrative change is an entry (tenant, actor key id, action, target, diff of
before/after) and a leaf of one RFC 6962 Merkle tree kept in the database. A tenant lists its
own entries and gets an inclusion proof for any of them against the current tree head.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from cognitionos.server._http import Principal, require, state_of
from cognitionos.server._problems import ApiError

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Audit entries of your tenant, oldest first")
def list_entries(
    request: Request,
    p: Annotated[Principal, Depends(require("audit:read"))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int, Query(ge=-1, description="`next_cursor` of the previous page")] = -1,
) -> dict[str, Any]:
    log = state_of(request).audit
    items: list[dict[str, Any]] = []
    after = cursor
    more = False
    while len(items) < limit:
        batch = log.entries(after=after, limit=500)
        if not batch:
            break
        for entry in batch:
            after = entry.index
            if entry.tenant == p.tenant_id:
                if len(items) == limit:
                    more = True
                    break
                items.append(entry.to_json())
        if more:
            break
    next_cursor = items[-1]["index"] if more else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/proof/{index}", summary="Inclusion proof of one of your entries (RFC 6962)")
def inclusion_proof(
    request: Request,
    index: Annotated[int, Path(ge=0, le=2**53)],
    p: Annotated[Principal, Depends(require("audit:read"))],
) -> dict[str, Any]:
    log = state_of(request).audit
    found = log.entries(after=index - 1, limit=1)
    if not found or found[0].index != index or found[0].tenant != p.tenant_id:
        raise ApiError(404, f"no audit entry {index} in this tenant")
    size = log.size()
    return {
        "index": index,
        "leaf_hash": found[0].leaf_hash.hex(),
        "tree_size": size,
        "root_hash": log.root_hash(size).hex(),
        "audit_path": [h.hex() for h in log.inclusion_proof(index, size)],
    }
