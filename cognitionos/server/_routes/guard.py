"""``/v1/waf`` and ``/v1/ratelimit``: the WAF and the rate limiter as services.

WAF bans are the server's own guard bans (the blacklist the WAF middleware consults), so
managing them is a platform scope. Rate-limit policies, checks, usage and bans are per
tenant: every limiter key is prefixed with ``t:<tenant id>:``.
"""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from cognitionos.errors import CognitionError
from cognitionos.ratelimit import Decision, Limit
from cognitionos.server._directory import Conflict, NotFound, StaleVersion
from cognitionos.server._http import (
    PageParams,
    Principal,
    etag_for,
    idempotent,
    page_params,
    parse_if_match_version,
    record,
    require,
    state_of,
)
from cognitionos.server._problems import ApiError
from cognitionos.waf import Request as WafRequest

__all__ = ["router"]

router = APIRouter(prefix="/v1")

PolicyName = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
LimitKey = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Inspect(Strict):
    method: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z]+$")] = "GET"
    target: Annotated[str, Field(min_length=1, max_length=8192)] = "/"
    headers: Annotated[dict[str, Annotated[str, Field(max_length=8192)]], Field(max_length=100)] = (
        Field(default_factory=dict)
    )
    body: Annotated[str, Field(max_length=262_144)] = ""
    client_ip: Annotated[str, Field(max_length=64)] | None = None


class WafBan(Strict):
    client: Annotated[str, Field(min_length=2, max_length=64)]
    seconds: Annotated[float, Field(gt=0, lt=31_536_000)] = 600.0
    reason: Annotated[str, Field(max_length=200)] = "manual"


class PolicyCreate(Strict):
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    limits: Annotated[str, Field(min_length=1, max_length=200, examples=["100/minute"])]


class PolicyUpdate(Strict):
    limits: Annotated[str, Field(min_length=1, max_length=200)]


class Check(Strict):
    policy: Annotated[str, Field(min_length=1, max_length=100)]
    key: LimitKey
    cost: Annotated[int, Field(ge=1, le=1_000_000)] = 1


class RateBan(Strict):
    key: LimitKey
    seconds: Annotated[float, Field(gt=0, lt=31_536_000)]


# -- WAF ---------------------------------------------------------------------------------------


@router.post("/waf/inspect", tags=["waf"], summary="Inspect an HTTP request, return the verdict")
def inspect(
    request: Request, body: Inspect, p: Annotated[Principal, Depends(require("waf:inspect"))]
) -> dict[str, Any]:
    """Judged by the built-in rules plus your tenant's custom rules and exclusions."""
    from cognitionos.server._routes.waf_rules import tenant_firewall

    try:
        req = WafRequest.from_raw(
            body.method.upper(),
            body.target,
            headers=list(body.headers.items()),
            body=body.body.encode("utf-8", "surrogatepass"),
            client_ip=body.client_ip,
        )
    except (CognitionError, UnicodeEncodeError) as exc:
        raise ApiError(422, f"cannot inspect this request: {exc}") from None
    verdict = tenant_firewall(request, p).inspect(req)
    return {
        "blocked": verdict.blocked,
        "would_block": verdict.would_block,
        "score": verdict.score,
        "threshold": verdict.threshold,
        "matches": [
            {
                "rule_id": m.rule_id,
                "category": m.category,
                "location": m.location,
                "severity": str(m.severity),
                "message": m.message,
            }
            for m in verdict.matches
        ],
    }


@router.get("/waf/rules", tags=["waf"], summary="The built-in and your custom rules in force")
def waf_rules(
    request: Request,
    p: Annotated[Principal, Depends(require("waf:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    """The rules ``POST /v1/waf/inspect`` applies for your tenant."""
    from cognitionos.server._directory import decode_cursor, encode_cursor
    from cognitionos.server._routes.waf_rules import tenant_firewall

    fw = tenant_firewall(request, p)
    rules = [
        {
            "rule_id": r.rule_id,
            "category": r.category,
            "severity": str(r.severity),
            "paranoia": r.paranoia,
            "message": r.message,
            "custom": False,
        }
        for r in fw.rules
    ] + [
        {
            "rule_id": r.id,
            "category": r.category,
            "severity": str(r.severity),
            "paranoia": r.paranoia,
            "message": getattr(r, "message", ""),
            "custom": True,
        }
        for r in fw.custom_rules
    ]
    rules.sort(key=lambda r: r["rule_id"])
    try:
        after = decode_cursor(page.cursor)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    if after is not None:
        rules = [r for r in rules if r["rule_id"] > after]
    chunk = rules[: page.limit]
    more = len(rules) > page.limit
    return {"items": chunk, "next_cursor": encode_cursor(chunk[-1]["rule_id"]) if more else None}


def _ban_doc(ban: Any, now_ns: int) -> dict[str, Any]:
    return {
        "client": ban.client,
        "reason": ban.reason,
        "created_ns": ban.created_ns,
        "until_ns": ban.until_ns,
        "remaining": None if ban.until_ns is None else max(0.0, ban.remaining(now_ns)),
    }


@router.get("/waf/bans", tags=["waf"], summary="Clients the server's WAF has banned")
def waf_bans(
    request: Request, _p: Annotated[Principal, Depends(require("waf:bans:read"))]
) -> dict[str, Any]:
    state = state_of(request)
    now = state.clock.time_ns()
    return {"items": [_ban_doc(b, now) for b in state.blacklist.bans()], "next_cursor": None}


@router.post("/waf/bans", tags=["waf"], status_code=201, summary="Ban a client address")
def waf_ban(
    request: Request, body: WafBan, p: Annotated[Principal, Depends(require("waf:bans:write"))]
) -> Response:
    state = state_of(request)

    def create() -> Response:
        try:
            ban = state.blacklist.ban(body.client, seconds=body.seconds, reason=body.reason)
        except CognitionError as exc:
            raise ApiError(422, str(exc)) from None
        doc = _ban_doc(ban, state.clock.time_ns())
        record(request, p, "waf.ban", f"waf/bans/{ban.client}", None, doc)
        return JSONResponse(doc, status_code=201)

    return idempotent(request, p, body.model_dump(), create)


@router.delete("/waf/bans/{client}", tags=["waf"], status_code=204, summary="Lift a WAF ban")
def waf_unban(
    request: Request,
    client: Annotated[str, Path(min_length=2, max_length=200)],
    p: Annotated[Principal, Depends(require("waf:bans:write"))],
) -> Response:
    if not state_of(request).blacklist.unban(client):
        raise ApiError(404, f"no ban for {client!r}")
    record(request, p, "waf.unban", f"waf/bans/{client}", {"banned": True}, None)
    return Response(status_code=204)


# -- rate limits -------------------------------------------------------------------------------


def _parse_limits(text: str) -> str:
    try:
        Limit.parse_many(text)
    except CognitionError as exc:
        raise ApiError(
            422,
            str(exc),
            extra={
                "errors": [
                    {
                        "pointer": "/limits",
                        "location": "body.limits",
                        "message": str(exc),
                        "type": "value_error",
                    }
                ]
            },
        ) from None
    return text


def _policy_doc(row: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    doc = {k: v for k, v in row.items() if k != "version"}
    doc["etag"] = etag_for(row["version"])
    return JSONResponse(doc, status_code=status, headers={"ETag": doc["etag"], **headers})


def _policy(request: Request, p: Principal, name: str) -> dict[str, Any]:
    try:
        return state_of(request).directory.get_policy(p.tenant_id, name)
    except NotFound:
        raise ApiError(404, f"no rate-limit policy {name!r} in this tenant") from None


@router.get("/ratelimit/policies", tags=["ratelimit"], summary="Rate-limit policies")
def list_policies(
    request: Request,
    p: Annotated[Principal, Depends(require("ratelimit:read"))],
    page: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    try:
        rows, nxt = state_of(request).directory.list_policies(p.tenant_id, page.limit, page.cursor)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    return {"items": [{**r, "etag": etag_for(r.pop("version"))} for r in rows], "next_cursor": nxt}


@router.post("/ratelimit/policies", tags=["ratelimit"], status_code=201, summary="Create a policy")
def create_policy(
    request: Request,
    body: PolicyCreate,
    p: Annotated[Principal, Depends(require("ratelimit:write"))],
) -> Response:
    limits = _parse_limits(body.limits)

    def create() -> Response:
        try:
            row = state_of(request).directory.create_policy(p.tenant_id, body.name, limits)
        except Conflict as exc:
            raise ApiError(409, str(exc)) from None
        record(request, p, "ratelimit.policy.create", f"policies/{body.name}", None, limits)
        return _policy_doc(row, 201, Location=f"/v1/ratelimit/policies/{body.name}")

    return idempotent(request, p, body.model_dump(), create)


@router.get("/ratelimit/policies/{name}", tags=["ratelimit"], summary="One policy")
def get_policy(
    request: Request, name: PolicyName, p: Annotated[Principal, Depends(require("ratelimit:read"))]
) -> Response:
    return _policy_doc(_policy(request, p, name))


@router.put("/ratelimit/policies/{name}", tags=["ratelimit"], summary="Change limits (If-Match)")
def update_policy(
    request: Request,
    name: PolicyName,
    body: PolicyUpdate,
    p: Annotated[Principal, Depends(require("ratelimit:write"))],
) -> Response:
    current = _policy(request, p, name)
    version = parse_if_match_version(request)
    limits = _parse_limits(body.limits)
    try:
        row = state_of(request).directory.update_policy(
            p.tenant_id, name, version, {"limits": limits}
        )
    except StaleVersion:
        raise ApiError(412, "the policy changed since it was read; GET it again") from None
    except NotFound:
        raise ApiError(404, f"no rate-limit policy {name!r} in this tenant") from None
    record(request, p, "ratelimit.policy.update", f"policies/{name}", current["limits"], limits)
    return _policy_doc(row)


@router.delete(
    "/ratelimit/policies/{name}", tags=["ratelimit"], status_code=204, summary="Delete a policy"
)
def delete_policy(
    request: Request,
    name: PolicyName,
    p: Annotated[Principal, Depends(require("ratelimit:write"))],
) -> Response:
    current = _policy(request, p, name)
    try:
        state_of(request).directory.delete_policy(p.tenant_id, name)
    except NotFound:
        raise ApiError(404, f"no rate-limit policy {name!r} in this tenant") from None
    record(request, p, "ratelimit.policy.delete", f"policies/{name}", current["limits"], None)
    return Response(status_code=204)


def _decision_doc(d: Decision) -> dict[str, Any]:
    return {
        "allowed": d.allowed,
        "limit": d.limit,
        "remaining": max(0, d.remaining),
        "reset_after": d.reset_after,
        "retry_after": d.retry_after,
        "banned": d.banned,
    }


def _tenant_key(p: Principal, key: str) -> str:
    return f"t:{p.tenant_id}:{key}"


def _named_limits(row: dict[str, Any]) -> tuple[Limit, ...]:
    """The policy's limits named after it: two policies with equal limits count apart."""
    return _parse_named(row["name"], row["limits"])


@functools.lru_cache(maxsize=4096)
def _parse_named(name: str, limits: str) -> tuple[Limit, ...]:
    # pure: (name, limits text) -> the same immutable Limit objects, parsed once
    import attrs

    return tuple(attrs.evolve(x, name=name) for x in Limit.parse_many(limits))


def _policy_for_checks(request: Request, p: Principal, name: str) -> dict[str, Any]:
    try:
        return state_of(request).directory.policy_for_checks(p.tenant_id, name)
    except NotFound:
        raise ApiError(404, f"no rate-limit policy {name!r} in this tenant") from None


@router.post("/ratelimit/check", tags=["ratelimit"], summary="Count one hit against a policy")
def check(
    request: Request, body: Check, p: Annotated[Principal, Depends(require("ratelimit:check"))]
) -> Response:
    """Answers 200 with ``allowed`` true or false (the call succeeded either way)."""
    policy = _policy_for_checks(request, p, body.policy)
    try:
        decision = state_of(request).limiter.hit(
            _named_limits(policy), _tenant_key(p, body.key), body.cost
        )
    except CognitionError as exc:
        raise ApiError(422 if isinstance(exc, ValueError) else 503, str(exc)) from None
    doc = _decision_doc(decision)
    if not decision.allowed:
        doc["retry_after"] = math.ceil(decision.retry_after or decision.reset_after)
    return JSONResponse(doc)


@router.get("/ratelimit/usage", tags=["ratelimit"], summary="A key's usage of a policy (no hit)")
def usage(
    request: Request,
    p: Annotated[Principal, Depends(require("ratelimit:read"))],
    policy: Annotated[str, Query(min_length=1, max_length=100)],
    key: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    row = _policy_for_checks(request, p, policy)
    try:
        decision = state_of(request).limiter.stats(_named_limits(row), _tenant_key(p, key))
    except CognitionError as exc:
        raise ApiError(503, str(exc)) from None
    return {"policy": policy, "key": key, **_decision_doc(decision)}


@router.get("/ratelimit/bans", tags=["ratelimit"], summary="Banned keys of your tenant")
def rate_bans(
    request: Request, p: Annotated[Principal, Depends(require("ratelimit:read"))]
) -> dict[str, Any]:
    prefix = _tenant_key(p, "")
    items = [
        {
            "key": b.key[len(prefix) :],
            "remaining": b.remaining,
            "offenses": b.offenses,
            "manual": b.manual,
        }
        for b in state_of(request).limiter.bans()
        if b.key.startswith(prefix)
    ]
    return {"items": sorted(items, key=lambda b: b["key"]), "next_cursor": None}


@router.post("/ratelimit/bans", tags=["ratelimit"], status_code=201, summary="Ban a key")
def rate_ban(
    request: Request, body: RateBan, p: Annotated[Principal, Depends(require("ratelimit:write"))]
) -> Response:
    def create() -> Response:
        ban = state_of(request).limiter.ban(_tenant_key(p, body.key), body.seconds)
        record(request, p, "ratelimit.ban", f"ratelimit/bans/{body.key}", None, body.seconds)
        return JSONResponse(
            {
                "key": body.key,
                "remaining": ban.remaining,
                "offenses": ban.offenses,
                "manual": ban.manual,
            },
            status_code=201,
        )

    return idempotent(request, p, body.model_dump(), create)


@router.delete("/ratelimit/bans/{key}", tags=["ratelimit"], status_code=204, summary="Unban a key")
def rate_unban(
    request: Request,
    key: Annotated[str, Path(min_length=1, max_length=200)],
    p: Annotated[Principal, Depends(require("ratelimit:write"))],
) -> Response:
    if not state_of(request).limiter.unban(_tenant_key(p, key)):
        raise ApiError(404, f"no ban for {key!r}")
    record(request, p, "ratelimit.unban", f"ratelimit/bans/{key}", {"banned": True}, None)
    return Response(status_code=204)
