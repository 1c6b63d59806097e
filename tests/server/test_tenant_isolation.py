"""Tenant isolation, generated from the OpenAPI document.

Every operation is called with tenant A's owner key against tenant B's resources (B's ids in
the path, in the query and in bodies that name resources). Each answer must be 403 or 404,
B's resources must be unchanged afterwards, and no listing A can make shows any of B's ids.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Server, bearer, otlp_trace

# operations that name a resource in their body or query rather than their path
BODY_REFERENCES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/ratelimit/check"): {"json": {"policy": "{policy}", "key": "u1"}},
    ("GET", "/v1/ratelimit/usage"): {"params": {"policy": "{policy}", "key": "u1"}},
    ("POST", "/v1/keys"): {"json": {"name": "x", "role": "viewer", "user_id": "{user}"}},
    ("POST", "/v1/flags/change-requests"): {
        "json": {"action": "toggle", "key": "{flag}", "enabled": False}
    },
}

# a body good enough to pass validation, per operation with path parameters
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/v1/tenants/{tenant_id}"): {"name": "hijacked"},
    ("PATCH", "/v1/users/{user_id}"): {"role": "viewer"},
    ("PUT", "/v1/flags/{key}"): {"default_value": "hijacked"},
    ("POST", "/v1/flags/{key}/toggle"): {"enabled": False},
    ("POST", "/v1/flags/{key}/evaluate"): {"attributes": {"id": "u1"}},
    ("PUT", "/v1/ratelimit/policies/{name}"): {"limits": "1/day"},
    ("POST", "/v1/keys/{key_id}/rotate"): {"overlap": 0},
    ("PUT", "/v1/waf/custom-rules/{rule_id}"): {"pattern": "hijacked"},
    ("PUT", "/v1/waf/exclusions/{exclusion_id}"): {"path": "/hijacked/*"},
    ("PATCH", "/v1/experiments/{key}"): {"description": "hijacked"},
    ("POST", "/v1/experiments/{key}/assign"): {"unit_id": "u1"},
    ("POST", "/v1/experiments/{key}/exposures"): {"exposures": [{"unit_id": "u9", "variant": "A"}]},
    ("POST", "/v1/experiments/{key}/events"): {"events": [{"unit_id": "u1", "metric": "buy"}]},
    ("POST", "/v1/experiments/{key}/analyze"): {},
    ("POST", "/v1/experiments/{key}/ship"): {"variant": "B"},
    ("POST", "/v1/flags/change-requests/{cr_id}/approve"): {},
    ("POST", "/v1/flags/change-requests/{cr_id}/reject"): {},
}


def _param_values(path: str, b: dict[str, str]) -> dict[str, str]:
    """B's resource for each path parameter (by path shape)."""
    values = {}
    for name in re.findall(r"\{(\w+)\}", path):
        if name == "tenant_id":
            values[name] = b["tenant"]
        elif name == "user_id":
            values[name] = b["user"]
        elif name == "key_id":
            values[name] = b["key"]
        elif name == "key" and path.startswith("/v1/flags/"):
            values[name] = b["flag"]
        elif name == "key" and path.startswith("/v1/experiments/"):
            values[name] = b["experiment"]
        elif name == "rule_id":
            values[name] = b["waf_rule"]
        elif name == "exclusion_id":
            values[name] = b["waf_exclusion"]
        elif name == "backup_id":
            values[name] = "b-backup"  # backups are the platform's, never a tenant's
        elif name == "key" and path.startswith("/v1/ratelimit/bans/"):
            values[name] = b["rl_ban"]
        elif name == "name" and path.startswith("/v1/ratelimit/policies/"):
            values[name] = b["policy"]
        elif name == "index":
            values[name] = b["audit_index"]
        elif name == "cr_id":
            values[name] = b["change_request"]
        elif name == "client":
            values[name] = "198.51.100.77"  # a ban of the platform, not of tenant B
        else:
            raise AssertionError(f"new path parameter {name!r} in {path}: map it to B's resource")
    return values


@pytest.fixture
def two_tenants(server: Server) -> dict[str, Any]:
    c = server.client
    a_id, a_owner = server.new_tenant("tenant a")
    b_id, b_owner = server.new_tenant("tenant b")
    hb = bearer(b_owner)
    user = c.post("/v1/users", json={"email": "bob@b.test", "role": "viewer"}, headers=hb).json()
    key = c.post("/v1/keys", json={"name": "b key", "role": "viewer"}, headers=hb).json()
    c.post("/v1/flags", json={"key": "b-secret-flag", "default_value": "b"}, headers=hb)
    c.post("/v1/ratelimit/policies", json={"name": "b-policy", "limits": "5/minute"}, headers=hb)
    c.post("/v1/ratelimit/bans", json={"key": "b-banned", "seconds": 600}, headers=hb)
    experiment = {
        "key": "b-secret-exp",
        "arms": [{"key": "A"}, {"key": "B"}],
        "metrics": [{"name": "buy", "kind": "binomial"}],
    }
    assert c.post("/v1/experiments", json=experiment, headers=hb).status_code == 201
    assert c.post("/v1/experiments/b-secret-exp/start", headers=hb).status_code == 200
    exposed = {"exposures": [{"unit_id": "u1", "variant": "A"}]}
    assert c.post("/v1/experiments/b-secret-exp/exposures", json=exposed, headers=hb).is_success
    rule = {"id": "b-secret-rule", "pattern": "b-secret-pattern"}
    assert c.post("/v1/waf/custom-rules", json=rule, headers=hb).status_code == 201
    exclusion = {"id": "b-secret-exclusion", "path": "/b-secret-path/*"}
    assert c.post("/v1/waf/exclusions", json=exclusion, headers=hb).status_code == 201
    trace = otlp_trace(
        "GET /b-secret-route",
        0.5,
        error=("BSecretError", "b secret failure"),
        statements=(("SELECT b_secret_column FROM t", 0.4),),
    )
    assert c.post("/v1/apm/traces", json=trace, headers=hb).status_code == 200
    assert "b-secret-route" in c.get("/v1/apm/latency", headers=hb).text
    assert (
        c.post(
            "/v1/waf/bans",
            json={"client": "198.51.100.77", "seconds": 600},
            headers=bearer(server.root),
        ).status_code
        == 201
    )
    dev = c.post("/v1/keys", json={"name": "b dev", "role": "developer"}, headers=hb).json()
    opened = c.post(
        "/v1/flags/change-requests",
        json={"action": "toggle", "key": "b-secret-flag", "enabled": False},
        headers=bearer(dev["token"]),
    )
    assert opened.status_code == 201, opened.text
    audit = c.get("/v1/audit", headers=hb).json()["items"]
    assert audit and all(e["entry"]["tenant"] == b_id for e in audit)
    return {
        "a": {"tenant": a_id, "owner": a_owner},
        "b": {
            "tenant": b_id,
            "owner": b_owner,
            "user": user["user_id"],
            "key": key["key_id"],
            "flag": "b-secret-flag",
            "policy": "b-policy",
            "rl_ban": "b-banned",
            "experiment": "b-secret-exp",
            "waf_rule": "b-secret-rule",
            "waf_exclusion": "b-secret-exclusion",
            "audit_index": str(audit[0]["index"]),
            "change_request": opened.json()["id"],
        },
    }


def _b_snapshot(server: Server, b: dict[str, str]) -> dict[str, Any]:
    c, h = server.client, bearer(b["owner"])
    return {
        "tenant": c.get(f"/v1/tenants/{b['tenant']}", headers=h).json(),
        "user": c.get(f"/v1/users/{b['user']}", headers=h).json(),
        "key": c.get(f"/v1/keys/{b['key']}", headers=h).json().get("revoked_at"),
        "flag": c.get(f"/v1/flags/{b['flag']}", headers=h).json(),
        "policy": c.get(f"/v1/ratelimit/policies/{b['policy']}", headers=h).json(),
        "bans": [ban["key"] for ban in c.get("/v1/ratelimit/bans", headers=h).json()["items"]],
        "experiment": c.get(f"/v1/experiments/{b['experiment']}", headers=h).json(),
        "experiment_sums": c.get(f"/v1/experiments/{b['experiment']}/summary", headers=h).json(),
        "flags": sorted(f["key"] for f in c.get("/v1/flags", headers=h).json()["items"]),
        "waf_rules": c.get("/v1/waf/custom-rules", headers=h).json(),
        "waf_exclusions": c.get("/v1/waf/exclusions", headers=h).json(),
        "change_requests": c.get("/v1/flags/change-requests", headers=h).json(),
        "usage": c.get(
            "/v1/ratelimit/usage", params={"policy": b["policy"], "key": "u1"}, headers=h
        ).json()["remaining"],
    }


def _fill(value: Any, b: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: b[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, b) for k, v in value.items()}
    return value


def test_tenant_a_cannot_reach_tenant_b(server, two_tenants):
    a, b = two_tenants["a"], two_tenants["b"]
    c = server.client
    before = _b_snapshot(server, b)
    schema = server.app.openapi()
    checked = []
    for path, item in schema["paths"].items():
        for method in item:
            method = method.upper()
            has_params = "{" in path
            reference = BODY_REFERENCES.get((method, path))
            if (not has_params and reference is None) or "{role}" in path:
                continue  # nothing of B's to name; roles are the same in every tenant
            url = path.format(**_param_values(path, b)) if has_params else path
            headers = bearer(a["owner"])
            # a valid If-Match from B's own view, so only tenancy can refuse the call
            got = c.get(url, headers=bearer(b["owner"]))
            if "etag" in got.headers:
                headers["If-Match"] = got.headers["etag"]
            kwargs = _fill(reference, b) if reference else {}
            if (method, path) in BODIES:
                kwargs["json"] = BODIES[(method, path)]
            r = c.request(method, url, headers=headers, **kwargs)
            assert r.status_code in (403, 404), (method, url, r.status_code, r.text)
            checked.append((method, path))
    assert len(checked) >= 20, checked
    assert _b_snapshot(server, b) == before


def test_listings_show_none_of_b(server, two_tenants):
    a, b = two_tenants["a"], two_tenants["b"]
    c = server.client
    secrets = [
        b["tenant"],
        b["user"],
        b["key"],
        b["flag"],
        b["policy"],
        b["rl_ban"],
        b["experiment"],
        b["change_request"],
        "bob@b.test",
        "b-secret-route",
        "BSecretError",
        "b_secret_column",
        "b-secret-rule",
        "b-secret-pattern",
        "b-secret-path",
    ]
    schema = server.app.openapi()
    listed = 0
    for path, item in schema["paths"].items():
        if "get" not in item or "{" in path or not path.startswith("/v1/"):
            continue
        if ("GET", path) in BODY_REFERENCES:
            continue  # names B's resource itself: checked (404) by the test above
        r = c.get(path, headers=bearer(a["owner"]))
        listed += 1
        for secret in secrets:
            assert secret not in r.text, (path, secret)
    assert listed >= 10
