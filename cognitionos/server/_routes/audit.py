"""``/v1/audit``: the server's tamper-evident audit log, seen from one tenant.

Every administrative change is an entry (tenant, actor key id, action, target, diff of
before/after) and a leaf of one RFC 6962 Merkle tree kept in the database. A tenant lists its
own entries and gets an inclusion proof for any of them against the current tree head; the
signed tree head (``/sth``) and consistency proofs between two tree sizes cover the whole
log, so a client that kept an older head can check that nothing before it was rewritten.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from cognitionos.errors import CognitionError, ConfigurationError
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


@router.get("/sth", summary="The latest signed tree head of the whole log (RFC 6962, Ed25519)")
def signed_tree_head(
    request: Request, p: Annotated[Principal, Depends(require("audit:read"))]
) -> dict[str, Any]:
    """A new head is signed when entries were added and the last one is older than
    ``COGNITIONOS_AUDIT_STH_INTERVAL`` (60 s) or 1,000 entries behind; else the last one.
    ``public_key`` (hex) is the key that `cognitionos audit verify --public-key` checks."""
    state = state_of(request)
    signer = _engine(state.audit_signer)
    log = state.audit
    sth = (
        _engine(log.sign_if_due, max_age=state.settings.audit_sth_interval, max_entries=1000)
        or log.latest_tree_head()
    )
    if sth is None:  # nothing signed yet (an empty log, or the first call)
        sth = _engine(log.sign_tree_head)
    return {**sth.to_json(), "public_key": signer.public_bytes().hex()}


@router.get(
    "/proof/consistency",
    summary="Consistency proof: the tree of `first` entries is a prefix of the tree of `second`",
)
def consistency_proof(
    request: Request,
    p: Annotated[Principal, Depends(require("audit:read"))],
    first: Annotated[int, Query(ge=1, le=2**53, description="the older tree size")],
    second: Annotated[
        int | None, Query(ge=1, le=2**53, description="the newer tree size [the whole log]")
    ] = None,
) -> dict[str, Any]:
    log = state_of(request).audit
    size = log.size()
    newer = size if second is None else second
    if not first <= newer <= size:
        raise ApiError(
            422, f"need 1 <= first <= second <= {size} (the log's size); got {first}, {newer}"
        )
    return {
        "kind": "consistency",
        "first": first,
        "second": newer,
        "first_root": log.root_hash(first).hex(),
        "second_root": log.root_hash(newer).hex(),
        "proof": [h.hex() for h in log.consistency_proof(first, newer)],
    }


def _engine(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ConfigurationError as exc:
        raise ApiError(503, f"the audit log cannot sign: {exc}") from None
    except CognitionError as exc:
        raise ApiError(503, str(exc)) from None


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
