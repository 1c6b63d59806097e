"""Every mutating operation (from the OpenAPI document) writes an audit entry with a diff."""

from __future__ import annotations

import hashlib
import itertools
import re

from cognitionos.audit.verify import canonical_leaf, verify_inclusion

from .conftest import bearer

# POSTs that compute an answer and change nothing
READ_ONLY = {
    ("POST", "/v1/flags/evaluate"),
    ("POST", "/v1/flags/{key}/evaluate"),
    ("POST", "/v1/ratelimit/check"),
    ("POST", "/v1/waf/inspect"),
    ("POST", "/v1/experiments/{key}/assign"),
    ("POST", "/v1/experiments/{key}/analyze"),
    ("POST", "/v1/pricing/elasticity"),
    ("POST", "/v1/pricing/optimal-price"),
    ("POST", "/v1/pricing/clv/fit"),
    ("POST", "/v1/pricing/clv/predict"),
    ("POST", "/v1/autoscale/simulate"),
    ("POST", "/v1/autoscale/recommend"),
    ("POST", "/v1/autoscale/hpa/render"),
    ("POST", "/v1/autoscale/hpa/normalize"),
    ("POST", "/v1/dr/plan"),
    ("POST", "/v1/dr/retention/preview"),
}
# data, not administration (docs/server.md "Audit log"): recorded events, never audited
DATA_PLANE = {
    ("POST", "/v1/experiments/{key}/exposures"),
    ("POST", "/v1/experiments/{key}/events"),
    ("POST", "/v1/apm/traces"),
}

BODIES = {
    ("POST", "/v1/tenants"): {"name": "audited"},
    ("PATCH", "/v1/tenants/{tenant_id}"): {"name": "renamed"},
    ("POST", "/v1/users"): {"email": "new{n}@x.test", "role": "viewer"},
    ("PATCH", "/v1/users/{user_id}"): {"role": "developer"},
    ("POST", "/v1/keys"): {"name": "k", "role": "viewer"},
    ("POST", "/v1/keys/{key_id}/rotate"): {"overlap": 60},
    ("POST", "/v1/flags"): {"key": "new{n}", "default_value": 1},
    ("PUT", "/v1/flags/{key}"): {"default_value": 2},
    ("POST", "/v1/flags/{key}/toggle"): {"enabled": False},
    ("POST", "/v1/flags/import"): {"document": {"flags": [{"key": "imp{n}", "default_value": 1}]}},
    ("POST", "/v1/waf/bans"): {"client": "192.0.2.{n}", "seconds": 60},
    ("POST", "/v1/ratelimit/policies"): {"name": "new{n}", "limits": "5/minute"},
    ("PUT", "/v1/ratelimit/policies/{name}"): {"limits": "6/minute"},
    ("POST", "/v1/ratelimit/bans"): {"key": "b{n}", "seconds": 60},
    ("POST", "/v1/experiments"): {
        "key": "exp{n}",
        "arms": [{"key": "A"}, {"key": "B"}],
        "metrics": [{"name": "buy"}],
    },
    ("PATCH", "/v1/experiments/{key}"): {"coverage": 0.5},
    ("POST", "/v1/waf/custom-rules"): {"id": "r{n}", "pattern": "^/x{n}"},
    ("PUT", "/v1/waf/custom-rules/{rule_id}"): {"pattern": "^/changed"},
    ("POST", "/v1/waf/exclusions"): {"id": "x{n}", "path": "/a{n}/*"},
    ("PUT", "/v1/waf/exclusions/{exclusion_id}"): {"path": "/changed/*"},
    ("POST", "/v1/experiments/{key}/ship"): {"variant": "B"},
    ("POST", "/v1/flags/change-requests"): {
        "action": "create",
        "key": "cr{n}",
        "definition": {"default_value": 1},
    },
    ("POST", "/v1/flags/change-requests/{cr_id}/approve"): {"comment": "ok"},
    ("POST", "/v1/flags/change-requests/{cr_id}/reject"): {"comment": "no"},
}

_n = itertools.count(1)


def _fill(value, n):
    if isinstance(value, str):
        return value.replace("{n}", str(n))
    if isinstance(value, dict):
        return {k: _fill(v, n) for k, v in value.items()}
    return value


def _target(server, path: str, n: int) -> str:
    """A fresh resource of the platform tenant for each path parameter."""
    c, h = server.client, bearer(server.root)
    values = {}
    for name in re.findall(r"\{(\w+)\}", path):
        if name == "tenant_id":
            values[name] = "platform"
        elif name == "user_id":
            r = c.post("/v1/users", json={"email": f"t{n}@x.test", "role": "viewer"}, headers=h)
            values[name] = r.json()["user_id"]
        elif name == "key_id":
            values[name] = c.post(
                "/v1/keys", json={"name": "t", "role": "viewer"}, headers=h
            ).json()["key_id"]
        elif name == "key" and path.startswith("/v1/flags/"):
            c.post("/v1/flags", json={"key": f"t{n}", "default_value": 0}, headers=h)
            values[name] = f"t{n}"
        elif name == "key" and path.startswith("/v1/experiments/"):
            exp = {"key": f"t{n}", "arms": [{"key": "A"}, {"key": "B"}]}
            assert c.post("/v1/experiments", json=exp, headers=h).status_code == 201
            values[name] = f"t{n}"
        elif name == "rule_id":
            rule = {"id": f"t{n}", "pattern": "^/t"}
            assert c.post("/v1/waf/custom-rules", json=rule, headers=h).status_code == 201
            values[name] = f"t{n}"
        elif name == "exclusion_id":
            excl = {"id": f"t{n}", "path": "/t/*"}
            assert c.post("/v1/waf/exclusions", json=excl, headers=h).status_code == 201
            values[name] = f"t{n}"
        elif name == "key" and path.startswith("/v1/ratelimit/bans/"):
            c.post("/v1/ratelimit/bans", json={"key": f"t{n}", "seconds": 60}, headers=h)
            values[name] = f"t{n}"
        elif name == "name":
            c.post(
                "/v1/ratelimit/policies", json={"name": f"t{n}", "limits": "1/minute"}, headers=h
            )
            values[name] = f"t{n}"
        elif name == "client":
            c.post("/v1/waf/bans", json={"client": f"198.51.100.{n}", "seconds": 60}, headers=h)
            values[name] = f"198.51.100.{n}"
        elif name == "cr_id":  # opened by another key: nobody decides their own request
            dev = c.post("/v1/keys", json={"name": "d", "role": "developer"}, headers=h).json()
            body = {"action": "create", "key": f"cr{n}", "definition": {"default_value": 1}}
            r = c.post("/v1/flags/change-requests", json=body, headers=bearer(dev["token"]))
            assert r.status_code == 201, r.text
            values[name] = r.json()["id"]
        else:
            raise AssertionError(f"new path parameter {name!r} in {path}: give it a resource")
    return path.format(**values)


def test_every_mutating_operation_is_audited_with_a_diff(server):
    c, h = server.client, bearer(server.root)
    log = server.state.audit
    checked = []
    for path, item in server.app.openapi()["paths"].items():
        for method in item:
            method = method.upper()
            if method not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            if (method, path) in READ_ONLY or (method, path) in DATA_PLANE:
                continue
            n = next(_n)
            url = _target(server, path, n)
            headers = dict(h)
            got = c.get(url, headers=h)
            if "etag" in got.headers:
                headers["If-Match"] = got.headers["etag"]
            before = log.size()
            body = _fill(BODIES.get((method, path)), n)
            r = c.request(method, url, json=body, headers=headers)
            assert r.status_code < 300, (method, url, r.status_code, r.text)
            entries = log.entries(after=before - 1)
            assert entries, f"{method} {path} wrote no audit entry"
            entry = entries[-1]
            assert entry.tenant == "platform" and entry.actor == server.root[9:17]
            assert isinstance(entry.diff, dict) and set(entry.diff) == {"before", "after"}
            assert entry.diff["before"] != entry.diff["after"], (method, path, entry.diff)
            checked.append((method, path))
    assert len(checked) >= 25, checked  # every mutating operation of the API today


def test_entries_are_listed_per_tenant_with_inclusion_proofs(server):
    c = server.client
    tid, owner = server.new_tenant("acme")
    h = bearer(owner)
    c.post("/v1/flags", json={"key": "f", "default_value": 1}, headers=h)
    mine = c.get("/v1/audit", headers=h).json()["items"]
    assert [e["entry"]["action"] for e in mine] == ["flag.create"]
    assert all(e["entry"]["tenant"] == tid for e in mine)
    platform = c.get("/v1/audit", headers=bearer(server.root)).json()["items"]
    assert "tenant.create" in [e["entry"]["action"] for e in platform]
    assert all(e["entry"]["tenant"] == "platform" for e in platform)
    entry = mine[0]
    proof = c.get(f"/v1/audit/proof/{entry['index']}", headers=h).json()
    leaf = canonical_leaf(entry["entry"])
    # RFC 6962 leaf hash: SHA-256(0x00 || leaf), computed here
    assert proof["leaf_hash"] == hashlib.sha256(b"\x00" + leaf).hexdigest()
    assert verify_inclusion(
        leaf, entry["index"], proof["tree_size"], proof["audit_path"], proof["root_hash"]
    )
    # someone else's entry is not reachable, nor is a forged index
    other = platform[0]["index"]
    assert c.get(f"/v1/audit/proof/{other}", headers=h).status_code == 404
    assert c.get("/v1/audit/proof/999999", headers=h).status_code == 404


def test_compute_and_data_routes_change_no_administrative_state(server):
    """What READ_ONLY and DATA_PLANE claim: those calls append nothing to the audit log."""
    from .conftest import otlp_trace

    c, h = server.client, bearer(server.root)
    exp = {"key": "e", "arms": [{"key": "A"}, {"key": "B"}], "metrics": [{"name": "buy"}]}
    assert c.post("/v1/experiments", json=exp, headers=h).status_code == 201
    log = server.state.audit
    before = log.size()
    calls = [
        ("/v1/experiments/e/assign", {"unit_id": "u1"}),
        ("/v1/experiments/e/exposures", {"exposures": [{"unit_id": "u1", "variant": "A"}]}),
        ("/v1/experiments/e/events", {"events": [{"unit_id": "u1", "metric": "buy"}]}),
        ("/v1/experiments/e/analyze", {}),
        ("/v1/pricing/optimal-price", {"elasticity": -2.0, "unit_cost": 1.0}),
        ("/v1/autoscale/recommend", {"current_replicas": 2, "cpu_utilization": 50}),
        ("/v1/apm/traces", otlp_trace("GET /x", 0.1)),
    ]
    for path, body in calls:
        assert c.post(path, json=body, headers=h).status_code == 200, path
    assert log.size() == before
