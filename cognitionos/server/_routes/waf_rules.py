"""``/v1/waf/custom-rules``, ``/v1/waf/exclusions``: a tenant's own WAF rules and exclusions, and
``/v1/waf/incidents``: the server guard's recent refusals (platform tenant).

A tenant's rules and exclusions (validated by the WAF engine's own models, stored under
``tenants/<id>/waf/``, audited) apply to that tenant's ``POST /v1/waf/inspect``; the guard in
front of the server keeps its own configuration. Updates and deletions need ``If-Match``.

Tenant regular expressions run on the server, so a pattern must be short and must not nest
unbounded repetition (``(a+)+``, the shape of catastrophic backtracking).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from cognitionos.server._http import (
    Principal,
    check_if_match,
    content_etag,
    idempotent,
    record,
    require,
    state_of,
)
from cognitionos.server._problems import ApiError, invalid_body

__all__ = ["MAX_PATTERN", "MAX_PER_TENANT", "router", "tenant_firewall"]

router = APIRouter(prefix="/v1/waf", tags=["waf"])

#: most custom rules, and most exclusions, one tenant may have
MAX_PER_TENANT = 200
#: longest pattern of a tenant's rule (characters)
MAX_PATTERN = 512

RuleId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]

_KINDS = {"rules": "custom rule", "exclusions": "exclusion"}


def _prefix(tenant_id: str, kind: str) -> str:
    return f"tenants/{tenant_id}/waf/{kind}/"


def _nested_repeat(pattern: str) -> bool:
    """Whether ``pattern`` repeats (without bound) something that itself repeats."""
    import importlib

    sre = importlib.import_module("re._parser")  # the stdlib's own regex parser

    def walk(items: Any, inside: bool) -> bool:
        for op, arg in items:
            name = str(op)
            found = False
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                _low, high, sub = arg
                if inside and high > 1:
                    return True
                if walk(sub, inside or high == sre.MAXREPEAT or high > 100):
                    return True
            elif name == "SUBPATTERN":
                found = walk(arg[-1], inside)
            elif name == "ATOMIC_GROUP":
                found = walk(arg, inside)
            elif name == "BRANCH":
                found = any(walk(alt, inside) for alt in arg[1])
            elif name in ("ASSERT", "ASSERT_NOT"):
                found = walk(arg[1], inside)
            if found:
                return True
        return False

    return walk(sre.parse(pattern), False)


def _parse_rule(document: dict[str, Any]) -> dict[str, Any]:
    from cognitionos.waf import CustomRule

    try:
        rule = CustomRule.model_validate(document)
    except ValidationError as exc:
        raise invalid_body(exc, "WAF rule") from None
    if rule.operator == "regex":
        if len(rule.pattern) > MAX_PATTERN:
            raise ApiError(422, f"pattern is longer than {MAX_PATTERN} characters")
        if _nested_repeat(rule.pattern):
            raise ApiError(
                422,
                f"pattern {rule.pattern[:80]!r} repeats a repetition (like (a+)+): "
                "it could backtrack for ever; rewrite it without the nesting",
            )
    doc: dict[str, Any] = rule.model_dump(mode="json")
    return doc


def _parse_exclusion(document: dict[str, Any]) -> dict[str, Any]:
    from cognitionos.waf import Exclusion

    fields = {k: v for k, v in document.items() if k != "id"}
    ident = document.get("id")
    if (
        not isinstance(ident, str)
        or not 1 <= len(ident) <= 64
        or not all(ch.isalnum() or ch in "_.:-" for ch in ident)
    ):
        raise ApiError(
            422,
            "invalid exclusion",
            extra={
                "errors": [
                    {
                        "pointer": "/id",
                        "location": "body.id",
                        "message": "id must be 1-64 letters, digits or _.:-",
                        "type": "value_error",
                    }
                ]
            },
        )
    try:
        exclusion = Exclusion.model_validate(fields)
    except ValidationError as exc:
        raise invalid_body(exc, "WAF exclusion") from None
    return {"id": ident, **exclusion.model_dump(mode="json")}


def _stored(request: Request, p: Principal, kind: str) -> list[dict[str, Any]]:
    from cognitionos.server._compute import engine_errors

    store = state_of(request).store
    entries = engine_errors(lambda: store.scan(_prefix(p.tenant_id, kind), limit=1000))
    docs = [json.loads(e.value) for e in entries]
    return sorted(docs, key=lambda d: d["id"])


def _one(request: Request, p: Principal, kind: str, ident: str) -> tuple[dict[str, Any], int]:
    entry = state_of(request).store.get(_prefix(p.tenant_id, kind) + ident)
    if entry is None:
        raise ApiError(404, f"no {_KINDS[kind]} {ident!r} in this tenant")
    doc: dict[str, Any] = json.loads(entry.value)
    return doc, int(entry.version)


def _respond(doc: dict[str, Any], status: int = 200, **headers: str) -> JSONResponse:
    tag = content_etag(doc)
    return JSONResponse({**doc, "etag": tag}, status_code=status, headers={"ETag": tag, **headers})


def _create(request: Request, p: Principal, kind: str, doc: dict[str, Any], raw: Any) -> Response:
    state = state_of(request)
    prefix = _prefix(p.tenant_id, kind)

    def create() -> Response:
        if len(state.store.scan(prefix, limit=MAX_PER_TENANT + 1)) >= MAX_PER_TENANT:
            raise ApiError(409, f"a tenant has at most {MAX_PER_TENANT} WAF {kind}")
        written = state.store.compare_and_set(
            prefix + doc["id"], json.dumps(doc).encode(), version=0
        )
        if written is None:
            raise ApiError(409, f"{_KINDS[kind]} {doc['id']!r} exists; PUT it with If-Match")
        record(request, p, f"waf.{kind[:-1]}.create", f"waf/{kind}/{doc['id']}", None, doc)
        return _respond(doc, 201, Location=f"/v1/waf/{_PATHS[kind]}/{doc['id']}")

    return idempotent(request, p, raw, create)


def _replace(
    request: Request, p: Principal, kind: str, ident: str, doc: dict[str, Any]
) -> Response:
    current, version = _one(request, p, kind, ident)
    check_if_match(request, content_etag(current))
    if doc["id"] != ident:
        raise ApiError(422, f"the body's id {doc['id']!r} differs from the path's {ident!r}")
    store = state_of(request).store
    if (
        store.compare_and_set(
            _prefix(p.tenant_id, kind) + ident, json.dumps(doc).encode(), version=version
        )
        is None
    ):
        raise ApiError(412, f"the {_KINDS[kind]} changed since it was read; GET it again")
    record(request, p, f"waf.{kind[:-1]}.update", f"waf/{kind}/{ident}", current, doc)
    return _respond(doc)


def _delete(request: Request, p: Principal, kind: str, ident: str) -> Response:
    current, _version = _one(request, p, kind, ident)
    check_if_match(request, content_etag(current))
    state_of(request).store.delete(_prefix(p.tenant_id, kind) + ident)
    record(request, p, f"waf.{kind[:-1]}.delete", f"waf/{kind}/{ident}", current, None)
    return Response(status_code=204)


_PATHS = {"rules": "custom-rules", "exclusions": "exclusions"}


def tenant_firewall(request: Request, p: Principal) -> Any:
    """The firewall that inspects for this tenant: built-in rules plus its rules and exclusions."""
    from cognitionos.waf import Firewall

    state = state_of(request)
    rules = _stored(request, p, "rules")
    exclusions = [
        {k: v for k, v in e.items() if k != "id"} for e in _stored(request, p, "exclusions")
    ]
    digest = hashlib.sha256(json.dumps([rules, exclusions], sort_keys=True).encode()).hexdigest()

    def build() -> Firewall:
        return Firewall(
            paranoia=state.settings.waf_paranoia,
            mode="block",
            rules=rules,
            exclusions=exclusions,
        )

    return state.tenant_firewall(p.tenant_id, digest, build)


# -- custom rules ------------------------------------------------------------------------------


@router.get("/custom-rules", summary="Your tenant's own WAF rules")
def list_rules(
    request: Request, p: Annotated[Principal, Depends(require("waf:read"))]
) -> dict[str, Any]:
    items = [{**d, "etag": content_etag(d)} for d in _stored(request, p, "rules")]
    return {"items": items, "next_cursor": None}


@router.post("/custom-rules", status_code=201, summary="Add a WAF rule to your tenant's inspection")
def create_rule(
    request: Request,
    p: Annotated[Principal, Depends(require("waf:rules:write"))],
    rule: Annotated[dict[str, Any], Body(description="A custom rule (id, pattern, operator, ...)")],
) -> Response:
    return _create(request, p, "rules", _parse_rule(rule), rule)


@router.get("/custom-rules/{rule_id}", summary="One of your tenant's WAF rules")
def get_rule(
    request: Request, rule_id: RuleId, p: Annotated[Principal, Depends(require("waf:read"))]
) -> Response:
    return _respond(_one(request, p, "rules", rule_id)[0])


@router.put("/custom-rules/{rule_id}", summary="Replace a WAF rule (If-Match)")
def replace_rule(
    request: Request,
    rule_id: RuleId,
    p: Annotated[Principal, Depends(require("waf:rules:write"))],
    rule: Annotated[dict[str, Any], Body(description="The new rule")],
) -> Response:
    return _replace(request, p, "rules", rule_id, _parse_rule({"id": rule_id, **rule}))


@router.delete("/custom-rules/{rule_id}", status_code=204, summary="Remove a WAF rule (If-Match)")
def delete_rule(
    request: Request, rule_id: RuleId, p: Annotated[Principal, Depends(require("waf:rules:write"))]
) -> Response:
    return _delete(request, p, "rules", rule_id)


# -- exclusions --------------------------------------------------------------------------------


@router.get("/exclusions", summary="Your tenant's WAF exclusions")
def list_exclusions(
    request: Request, p: Annotated[Principal, Depends(require("waf:read"))]
) -> dict[str, Any]:
    items = [{**d, "etag": content_etag(d)} for d in _stored(request, p, "exclusions")]
    return {"items": items, "next_cursor": None}


@router.post("/exclusions", status_code=201, summary="Switch WAF rules off where they misfire")
def create_exclusion(
    request: Request,
    p: Annotated[Principal, Depends(require("waf:rules:write"))],
    exclusion: Annotated[
        dict[str, Any], Body(description="id, path glob, methods, locations, rule_ids, categories")
    ],
) -> Response:
    return _create(request, p, "exclusions", _parse_exclusion(exclusion), exclusion)


@router.get("/exclusions/{exclusion_id}", summary="One of your tenant's WAF exclusions")
def get_exclusion(
    request: Request, exclusion_id: RuleId, p: Annotated[Principal, Depends(require("waf:read"))]
) -> Response:
    return _respond(_one(request, p, "exclusions", exclusion_id)[0])


@router.put("/exclusions/{exclusion_id}", summary="Replace a WAF exclusion (If-Match)")
def replace_exclusion(
    request: Request,
    exclusion_id: RuleId,
    p: Annotated[Principal, Depends(require("waf:rules:write"))],
    exclusion: Annotated[dict[str, Any], Body(description="The new exclusion")],
) -> Response:
    doc = _parse_exclusion({"id": exclusion_id, **exclusion})
    return _replace(request, p, "exclusions", exclusion_id, doc)


@router.delete(
    "/exclusions/{exclusion_id}", status_code=204, summary="Remove a WAF exclusion (If-Match)"
)
def delete_exclusion(
    request: Request,
    exclusion_id: RuleId,
    p: Annotated[Principal, Depends(require("waf:rules:write"))],
) -> Response:
    return _delete(request, p, "exclusions", exclusion_id)


# -- incidents ---------------------------------------------------------------------------------


@router.get("/incidents", summary="Requests the server's WAF refused lately (this process)")
def incidents(
    request: Request,
    _p: Annotated[Principal, Depends(require("waf:bans:read"))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first: the incident id the client was told, when, who (peer address), what was
    asked, and why (the rule categories); with the current bans beside them."""
    state = state_of(request)
    recent = list(state.incidents)[-limit:][::-1]
    now = state.clock.time_ns()
    bans = [
        {
            "client": b.client,
            "reason": b.reason,
            "until_ns": b.until_ns,
            "remaining": None if b.until_ns is None else max(0.0, b.remaining(now)),
        }
        for b in state.blacklist.bans()
    ]
    return {"items": recent, "bans": bans, "next_cursor": None}
