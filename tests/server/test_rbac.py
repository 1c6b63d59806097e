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


EXPERIMENT = {
    "key": "{expkey}",
    "arms": [{"key": "A"}, {"key": "B"}],
    "metrics": [{"name": "buy", "kind": "binomial"}],
}
RFM_ROWS = [
    {"frequency": f, "recency": r, "T": 40.0}
    for f, r in [(0, 0.0), (1, 10.0), (2, 30.0), (3, 35.0), (0, 0.0), (5, 38.0), (1, 5.0)] * 3
]
#: published BG/NBD parameters of the CDNOW sample (Fader, Hardie & Lee 2005)
BG_NBD = {
    "format": "cognitionos.pricing.model",
    "version": 1,
    "model": "bg_nbd",
    "params": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
}
HPA_YAML = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 8
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
"""

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
    ("POST", "/v1/keys/{key}/rotate", "keys:write", {"overlap": 60}),
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
    ("GET", "/v1/experiments", "experiments:read", None),
    ("POST", "/v1/experiments", "experiments:write", EXPERIMENT),
    ("GET", "/v1/experiments/{exp}", "experiments:read", None),
    ("PATCH", "/v1/experiments/{exp}", "experiments:write", {"description": "changed"}),
    ("DELETE", "/v1/experiments/{exp}", "experiments:write", None),
    ("POST", "/v1/experiments/{exp}/start", "experiments:write", None),
    ("POST", "/v1/experiments/{exp}/stop", "experiments:write", None),
    ("POST", "/v1/experiments/{exp}/assign", "experiments:assign", {"unit_id": "u1"}),
    (
        "POST",
        "/v1/experiments/{exp}/exposures",
        "experiments:assign",
        {"exposures": [{"unit_id": "u1", "variant": "A"}]},
    ),
    (
        "POST",
        "/v1/experiments/{exp}/events",
        "experiments:assign",
        {"events": [{"unit_id": "u1", "metric": "buy"}]},
    ),
    ("GET", "/v1/experiments/{exp}/summary", "experiments:read", None),
    ("POST", "/v1/experiments/{exp}/analyze", "experiments:read", {}),
    ("POST", "/v1/experiments/{exp}/ship", "experiments:write", {"variant": "B"}),
    (
        "POST",
        "/v1/pricing/elasticity",
        "pricing:compute",
        {"prices": [1, 2, 3, 4], "quantities": [10, 6, 4, 3]},
    ),
    ("POST", "/v1/pricing/optimal-price", "pricing:compute", {"elasticity": -2, "unit_cost": 1}),
    ("POST", "/v1/pricing/clv/fit", "pricing:compute", {"rows": RFM_ROWS}),
    (
        "POST",
        "/v1/pricing/clv/predict",
        "pricing:compute",
        {"transaction_model": BG_NBD, "rows": RFM_ROWS[:2]},
    ),
    ("POST", "/v1/apm/traces", "apm:ingest", {"resourceSpans": []}),
    ("GET", "/v1/apm/latency", "apm:read", None),
    ("GET", "/v1/apm/errors", "apm:read", None),
    ("GET", "/v1/apm/slow-queries", "apm:read", None),
    ("POST", "/v1/autoscale/simulate", "autoscale:compute", {"trace": [10, 20, 30]}),
    (
        "POST",
        "/v1/autoscale/recommend",
        "autoscale:compute",
        {"current_replicas": 2, "cpu_utilization": 90},
    ),
    ("POST", "/v1/autoscale/hpa/render", "autoscale:compute", {"max_replicas": 5}),
    ("POST", "/v1/autoscale/hpa/normalize", "autoscale:compute", {"manifest": HPA_YAML}),
    (
        "POST",
        "/v1/dr/plan",
        "dr:plan",
        {
            "size_bytes": 1e9,
            "change_rate": 1e5,
            "backup_throughput": 1e8,
            "restore_throughput": 1e8,
        },
    ),
    (
        "POST",
        "/v1/dr/retention/preview",
        "dr:plan",
        {"snapshots": [{"id": "s1", "time": "2026-01-01T00:00:00Z"}], "policy": {"keep_last": 1}},
    ),
    ("GET", "/v1/dr/backups", "dr:backups:read", None),
    ("GET", "/v1/dr/backups/{backup}", "dr:backups:read", None),
    ("GET", "/v1/dr/status", "dr:backups:read", None),
    ("GET", "/v1/waf/custom-rules", "waf:read", None),
    ("POST", "/v1/waf/custom-rules", "waf:rules:write", {"id": "{rulekey}", "pattern": "^/adm"}),
    ("GET", "/v1/waf/custom-rules/{wafrule}", "waf:read", None),
    ("PUT", "/v1/waf/custom-rules/{wafrule}", "waf:rules:write", {"pattern": "^/root"}),
    ("DELETE", "/v1/waf/custom-rules/{wafrule}", "waf:rules:write", None),
    ("GET", "/v1/waf/exclusions", "waf:read", None),
    (
        "POST",
        "/v1/waf/exclusions",
        "waf:rules:write",
        {"id": "{exclkey}", "path": "/wiki/*", "categories": ["xss"]},
    ),
    ("GET", "/v1/waf/exclusions/{wafexcl}", "waf:read", None),
    ("PUT", "/v1/waf/exclusions/{wafexcl}", "waf:rules:write", {"path": "/docs/*"}),
    ("DELETE", "/v1/waf/exclusions/{wafexcl}", "waf:rules:write", None),
    ("GET", "/v1/waf/incidents", "waf:bans:read", None),
    ("GET", "/v1/flags/stale?days=7", "flags:read", None),
    (
        "POST",
        "/v1/flags/change-requests",
        "flags:write",
        {"action": "toggle", "key": "{flag}", "enabled": False},
    ),
    ("GET", "/v1/flags/change-requests", "flags:read", None),
    ("GET", "/v1/flags/change-requests/{cr}", "flags:read", None),
    ("POST", "/v1/flags/change-requests/{cr}/approve", "flags:approve", {"comment": "ok"}),
    ("POST", "/v1/flags/change-requests/{cr}/reject", "flags:approve", {}),
]

#: operations the matrix leaves out, with the reason
NOT_IN_MATRIX = {
    ("GET", "/v1/whoami"): "any valid key, whatever its role",
    ("GET", "/v1/flags/stream"): "flags:read; a stream (tests/server/test_sse.py)",
    (
        "GET",
        "/v1/audit/proof/{index}",
    ): "audit:read; needs an entry of the tenant (test_audit_trail)",
    ("GET", "/v1/roles/{role}"): "listed above with a concrete role",
}


def _shape(path: str) -> str:
    """A path with its query dropped and every {parameter} written ``{}``."""
    return re.sub(r"\{\w+\}", "{}", path.split("?", 1)[0])


def test_every_operation_is_in_the_matrix():
    """A new operation fails here until its scope is written into ENDPOINTS."""
    from cognitionos.server import Settings, create_app

    app = create_app(Settings(database_url="sqlite://", bootstrap=False), announce=False)
    listed = {(m, _shape(p)) for m, p, _s, _b in ENDPOINTS}
    missing = [
        (method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in item
        if (method.upper(), path) not in NOT_IN_MATRIX
        and (method.upper(), _shape(path)) not in listed
    ]
    assert not missing, missing


_counter = itertools.count()


class _Fresh(dict):  # type: ignore[type-arg]
    """New resources in the owner's tenant, made when a call first names them."""

    def __init__(self, server: Server, owner: str, tenant: str, backup: str | None) -> None:
        n = next(_counter)
        super().__init__(
            tenant=tenant,
            email=f"new{n}@x.test",
            flagkey=f"new{n}",
            pname=f"new{n}",
            expkey=f"newexp{n}",
            rulekey=f"newrule{n}",
            exclkey=f"newexcl{n}",
            ip=f"203.0.{n // 250}.{n % 250 + 1}",
        )
        self.server, self.h, self.n, self.tenant = server, bearer(owner), n, tenant
        if backup is not None:
            self["backup"] = backup

    def _made(self, path: str, body: dict[str, Any]) -> Any:
        r = self.server.client.post(path, json=body, headers=self.h)
        assert r.status_code == 201, r.text
        return r.json()

    def __missing__(self, name: str) -> str:
        n = self.n
        if name == "user":
            value = self._made("/v1/users", {"email": f"u{n}@x.test", "role": "viewer"})["user_id"]
        elif name == "key":
            value = self._made("/v1/keys", {"name": "victim", "role": "viewer"})["key_id"]
        elif name == "flag":
            value = self._made("/v1/flags", {"key": f"f{n}", "default_value": True})["key"]
        elif name == "policy":
            value = self._made("/v1/ratelimit/policies", {"name": f"p{n}", "limits": "9/minute"})[
                "name"
            ]
        elif name == "rl_ban":
            value = self._made("/v1/ratelimit/bans", {"key": f"b{n}", "seconds": 60})["key"]
        elif name == "waf_ban":
            value = f"198.51.{n // 250}.{n % 250 + 1}"
            if self.tenant == "platform":  # WAF bans are the platform's: elsewhere, a name
                self._made("/v1/waf/bans", {"client": value, "seconds": 60})
        elif name == "wafrule":
            value = self._made("/v1/waf/custom-rules", {"id": f"r{n}", "pattern": "^/x"})["id"]
        elif name == "wafexcl":
            value = self._made("/v1/waf/exclusions", {"id": f"x{n}", "path": "/wiki/*"})["id"]
        elif name == "cr":  # opened by another key, so no role decides its own request
            dev = self.server.key(self.h["Authorization"][7:], "developer")
            r = self.server.client.post(
                "/v1/flags/change-requests",
                json={"action": "toggle", "key": self["flag"], "enabled": False},
                headers=bearer(dev),
            )
            assert r.status_code == 201, r.text
            value = r.json()["id"]
        elif name == "exp":
            value = self._made("/v1/experiments", {**EXPERIMENT, "key": f"e{n}"})["key"]
        else:
            raise KeyError(name)
        self[name] = value
        return value


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"\{(\w+)\}", lambda m: names[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
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

    home = tmp_path_factory.mktemp("rbac")
    backups = home / "backups"
    app = create_app(make_settings(home, backup_dir=str(backups)), announce=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        server = Server(client, app)
        tenant, owner = server.new_tenant("acme")
        from cognitionos.dr import BackupManager

        with BackupManager(
            app.state.cognitionos.settings.database_url, target=f"file://{backups}"
        ) as m:
            backup = m.backup().id
        yield {
            "server": server,
            "backup": backup,
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
    names = _Fresh(server, keys["owner"], tenant, world["backup"])
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
