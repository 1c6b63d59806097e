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
}

BODIES = {
    ("POST", "/v1/tenants"): {"name": "audited"},
    ("PATCH", "/v1/tenants/{tenant_id}"): {"name": "renamed"},
    ("POST", "/v1/users"): {"email": "new{n}@x.test", "role": "viewer"},
    ("PATCH", "/v1/users/{user_id}"): {"role": "developer"},
    ("POST", "/v1/keys"): {"name": "k", "role": "viewer"},
    ("POST", "/v1/flags"): {"key": "new{n}", "default_value": 1},
    ("PUT", "/v1/flags/{key}"): {"default_value": 2},
    ("POST", "/v1/flags/{key}/toggle"): {"enabled": False},
    ("POST", "/v1/flags/import"): {"document": {"flags": [{"key": "imp{n}", "default_value": 1}]}},
    ("POST", "/v1/waf/bans"): {"client": "192.0.2.{n}", "seconds": 60},
    ("POST", "/v1/ratelimit/policies"): {"name": "new{n}", "limits": "5/minute"},
    ("PUT", "/v1/ratelimit/policies/{name}"): {"limits": "6/minute"},
    ("POST", "/v1/ratelimit/bans"): {"key": "b{n}", "seconds": 60},
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
            if method not in ("POST", "PUT", "PATCH", "DELETE") or (method, path) in READ_ONLY:
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
    assert len(checked) >= 19, checked  # every mutating operation of the API today


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
