"""RBAC: every role x every endpoint matches the role matrix printed in docs/server.md.

The matrix is read from the documentation (not from the policy code); each endpoint's scope is
written down here by hand. An allowed call must not answer 403; a denied one must answer 403.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from cognitionos.server._policy import ROLES, AccessPolicy

from .conftest import Server, bearer, make_settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def docs_matrix() -> dict[str, dict[str, set[str]]]:
    """{"any tenant" | "platform": {role: scopes}} from the tables in docs/server.md."""
    text = DOCS.read_text("utf-8")
    section = text.split("## Roles and scopes", 1)[1].split("\n## ", 1)[0]
    matrix: dict[str, dict[str, set[str]]] = {"any": {r: set() for r in ROLES}}
    matrix["platform"] = {r: set() for r in ROLES}
    header: list[str] = []
    for line in section.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "scope":
            header = cells[1:]
            continue
        scope = cells[0].split("`")[1]
        where = "platform" if "platform tenant only" in line else "any"
        for role, mark in zip(header, cells[1:], strict=False):
            if mark == "yes":
                matrix[where][role].add(scope)
                if where == "any":
                    matrix["platform"][role].add(scope)
    return matrix


def test_docs_matrix_is_the_shipped_policy():
    policy = AccessPolicy.default()
    m = docs_matrix()
    for role in ROLES:
        assert policy.scopes(role, "t_some_tenant") == m["any"][role], role
        assert policy.scopes(role, "platform") == m["platform"][role], role


# method, path, scope, body -- {names} are filled with fresh resources made by the owner
ENDPOINTS: list[tuple[str, str, str, Any]] = [
    ("GET", "/v1/roles", "roles:read", None),
    ("GET", "/v1/roles/viewer", "roles:read", None),
    ("GET", "/v1/audit", "audit:read", None),
    ("GET", "/v1/audit/sth", "audit:read", None),
    ("GET", "/v1/audit/proof/consistency?first=1", "audit:read", None),
    ("GET", "/v1/tenants", "tenants:read", None),
    ("POST", "/v1/tenants", "tenants:manage", {"name": "new co"}),
    ("GET", "/v1/tenants/{tenant}", "tenants:read", None),
    ("PATCH", "/v1/tenants/{tenant}", "tenants:write", {"name": "renamed"}),
    ("GET", "/v1/users", "users:read", None),
    ("POST", "/v1/users", "users:write", {"email": "{email}", "role": "viewer"}),
    ("GET", "/v1/users/{user}", "users:read", None),
    ("PATCH", "/v1/users/{user}", "users:write", {"role": "viewer"}),
    ("DELETE", "/v1/users/{user}", "users:write", None),
    ("GET", "/v1/keys", "keys:read", None),
    ("POST", "/v1/keys", "keys:write", {"name": "k", "role": "viewer"}),
    ("GET", "/v1/keys/{key}", "keys:read", None),
    ("DELETE", "/v1/keys/{key}", "keys:write", None),
    ("GET", "/v1/flags", "flags:read", None),
    ("POST", "/v1/flags", "flags:write", {"key": "{flagkey}", "default_value": True}),
    ("GET", "/v1/flags/{flag}", "flags:read", None),
    ("PUT", "/v1/flags/{flag}", "flags:write", {"default_value": False}),
    ("DELETE", "/v1/flags/{flag}", "flags:write", None),
    ("POST", "/v1/flags/{flag}/toggle", "flags:write", {"enabled": False}),
    ("POST", "/v1/flags/{flag}/evaluate", "flags:evaluate", {"attributes": {"id": "u1"}}),
    ("POST", "/v1/flags/evaluate", "flags:evaluate", {"attributes": {"id": "u1"}}),
    ("GET", "/v1/flags/export", "flags:read", None),
    ("POST", "/v1/flags/import", "flags:write", {"document": {"flags": []}}),
    ("GET", "/v1/flags/audit", "flags:read", None),
    ("POST", "/v1/waf/inspect", "waf:inspect", {"target": "/?q=hello"}),
    ("GET", "/v1/waf/rules", "waf:read", None),
    ("GET", "/v1/waf/bans", "waf:bans:read", None),
    ("POST", "/v1/waf/bans", "waf:bans:write", {"client": "{ip}", "seconds": 60}),
    ("DELETE", "/v1/waf/bans/{waf_ban}", "waf:bans:write", None),
    ("GET", "/v1/ratelimit/policies", "ratelimit:read", None),
    (
        "POST",
        "/v1/ratelimit/policies",
        "ratelimit:write",
        {"name": "{pname}", "limits": "5/minute"},
    ),
    ("GET", "/v1/ratelimit/policies/{policy}", "ratelimit:read", None),
    ("PUT", "/v1/ratelimit/policies/{policy}", "ratelimit:write", {"limits": "6/minute"}),
    ("DELETE", "/v1/ratelimit/policies/{policy}", "ratelimit:write", None),
    ("POST", "/v1/ratelimit/check", "ratelimit:check", {"policy": "{policy}", "key": "u1"}),
    ("GET", "/v1/ratelimit/usage?policy={policy}&key=u1", "ratelimit:read", None),
    ("GET", "/v1/ratelimit/bans", "ratelimit:read", None),
    ("POST", "/v1/ratelimit/bans", "ratelimit:write", {"key": "abuser", "seconds": 60}),
    ("DELETE", "/v1/ratelimit/bans/{rl_ban}", "ratelimit:write", None),
]

_counter = itertools.count()


def _fresh(server: Server, owner: str, tenant: str) -> dict[str, str]:
    """New resources of every kind in the owner's tenant, for one call."""
    c, h, n = server.client, bearer(owner), next(_counter)
    user = c.post("/v1/users", json={"email": f"u{n}@x.test", "role": "viewer"}, headers=h)
    key = c.post("/v1/keys", json={"name": "victim", "role": "viewer"}, headers=h)
    flag = c.post("/v1/flags", json={"key": f"f{n}", "default_value": True}, headers=h)
    policy = c.post(
        "/v1/ratelimit/policies", json={"name": f"p{n}", "limits": "9/minute"}, headers=h
    )
    rl_ban = c.post("/v1/ratelimit/bans", json={"key": f"b{n}", "seconds": 60}, headers=h)
    for r in (user, key, flag, policy, rl_ban):
        assert r.status_code == 201, r.text
    ip = f"198.51.{n // 250}.{n % 250 + 1}"
    if tenant == "platform":
        assert (
            c.post("/v1/waf/bans", json={"client": ip, "seconds": 60}, headers=h).status_code == 201
        )
    return {
        "tenant": tenant,
        "user": user.json()["user_id"],
        "key": key.json()["key_id"],
        "flag": f"f{n}",
        "policy": f"p{n}",
        "rl_ban": f"b{n}",
        "waf_ban": ip,
        "email": f"new{n}@x.test",
        "flagkey": f"new{n}",
        "pname": f"new{n}",
        "ip": f"203.0.{n // 250}.{n % 250 + 1}",
    }


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


def _headers(server: Server, method: str, path: str, token: str, owner: str) -> dict[str, str]:
    headers = bearer(token)
    if method in ("PUT", "PATCH", "DELETE") and "/keys/" not in path and "/bans/" not in path:
        # updates need the current ETag (read by the tenant's owner)
        got = server.client.get(path, headers=bearer(owner))
        if "etag" in got.headers:
            headers["If-Match"] = got.headers["etag"]
    return headers


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from starlette.testclient import TestClient

    from cognitionos.server import create_app

    app = create_app(make_settings(tmp_path_factory.mktemp("rbac")), announce=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        server = Server(client, app)
        tenant, owner = server.new_tenant("acme")
        yield {
            "server": server,
            "tenants": {
                "any": (tenant, server.role_keys(owner)),
                "platform": ("platform", server.role_keys(server.root)),
            },
        }


@pytest.mark.parametrize("where", ["any", "platform"])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "scope", "body"), ENDPOINTS, ids=[f"{e[0]} {e[1]}" for e in ENDPOINTS]
)
def test_role_matrix(world, where, role, method, path, scope, body):
    server: Server = world["server"]
    tenant, keys = world["tenants"][where]
    expected = scope in docs_matrix()[where][role]
    names = _fresh(server, keys["owner"], tenant)
    url = _fill(path, names)
    if tenant != "platform" and "{tenant}" in path:
        url = url.replace("platform", tenant)
    headers = (
        _headers(server, method, url, keys[role], keys["owner"]) if expected else bearer(keys[role])
    )
    r = server.client.request(method, url, json=_fill(body, names), headers=headers)
    if expected:
        assert r.status_code < 400, (r.status_code, r.text)
    else:
        assert r.status_code == 403, (r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("tenant", ["t_other", "platform"])
def test_enforcer_decisions_agree_with_listed_scopes(tenant):
    """``allows`` (the Casbin enforcer) and ``scopes`` (implicit permissions) give one answer."""
    from cognitionos.server._policy import SCOPES

    policy = AccessPolicy.default()
    for role in (*ROLES, "nobody"):
        listed = policy.scopes(role, tenant)
        assert listed <= set(SCOPES)
        for scope in SCOPES:
            assert policy.allows(role, tenant, scope) == (scope in listed), (role, scope)
