"""The engines through the server: flags, WAF, rate limits, and the guard stack itself."""

from __future__ import annotations

import pytest

from cognitionos.flags import FlagEngine

from .conftest import bearer


def test_flag_crud_evaluate_import_export(server):
    c, h = server.client, bearer(server.root)
    rollout = {
        "key": "checkout",
        "default_value": "old",
        "rules": [{"condition": {"country": "NL"}, "value": "new", "force": True}],
    }
    assert c.post("/v1/flags", json=rollout, headers=h).status_code == 201
    assert c.post("/v1/flags", json=rollout, headers=h).status_code == 409
    # the same definition evaluated by the engine directly (no server) is the reference
    reference = FlagEngine.from_json({"flags": [rollout]})
    for attrs in ({"id": "u1", "country": "NL"}, {"id": "u2", "country": "DE"}, {"id": "u3"}):
        got = c.post("/v1/flags/checkout/evaluate", json={"attributes": attrs}, headers=h).json()
        assert got["value"] == reference.evaluate("checkout", attrs).value
    bulk = c.post("/v1/flags/evaluate", json={"attributes": {"country": "NL"}}, headers=h).json()
    assert bulk["items"]["checkout"]["value"] == "new"
    etag = c.get("/v1/flags/checkout", headers=h).headers["etag"]
    off = c.post("/v1/flags/checkout/toggle", json={"enabled": False}, headers=h)
    assert off.status_code == 200 and off.json()["enabled"] is False and off.headers["etag"] != etag
    exported = c.get("/v1/flags/export", headers=h).json()
    assert [f["key"] for f in exported["flags"]] == ["checkout"]
    audit = c.get("/v1/flags/audit", params={"key": "checkout"}, headers=h).json()["items"]
    assert [e["action"] for e in audit] == ["set", "disable"]
    assert {e["actor"] for e in audit} == {server.root[9:17]}
    # import into another tenant: same answers there
    _tid, owner = server.new_tenant("copy")
    r = c.post("/v1/flags/import", json={"document": exported}, headers=bearer(owner))
    assert r.json() == {"imported": 1, "changed": 1}
    got = c.post(
        "/v1/flags/checkout/evaluate", json={"attributes": {"country": "NL"}}, headers=bearer(owner)
    ).json()
    # imported switched off: the same answer the engine gives for the exported document
    assert (
        got["value"] == FlagEngine.from_json(exported).evaluate("checkout", {"country": "NL"}).value
    )
    assert got["reason"] == "DISABLED"


def test_growthbook_import(server):
    doc = {"features": {"dark": {"defaultValue": False, "rules": [{"force": True}]}}}
    r = server.client.post(
        "/v1/flags/import",
        json={"format": "growthbook", "document": doc},
        headers=bearer(server.root),
    )
    assert r.status_code == 200, r.text
    got = server.client.post(
        "/v1/flags/dark/evaluate", json={"attributes": {"id": "1"}}, headers=bearer(server.root)
    )
    assert got.json()["value"] is True


def test_waf_inspect_and_the_guard(server):
    c, h = server.client, bearer(server.root)
    attack = "/search?q=%27%20or%201%3D1--"
    verdict = c.post("/v1/waf/inspect", json={"target": attack}, headers=h).json()
    assert verdict["blocked"] is True and verdict["score"] >= verdict["threshold"]
    benign = {"target": "/search?q=shoes", "headers": {"Host": "shop.example"}}
    assert c.post("/v1/waf/inspect", json=benign, headers=h).json()["blocked"] is False
    # the same attack against the server itself is refused by the guard, as a problem document
    r = c.get(f"/v1/flags{attack}", headers=h)
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["incident_id"]
    rules = c.get("/v1/waf/rules", params={"limit": 200}, headers=h).json()["items"]
    assert any(rule["category"] == "sqli" for rule in rules)


def test_waf_bans_guard_the_server(server):
    c, h = server.client, bearer(server.root)
    assert c.get("/healthz").status_code == 200
    r = c.post("/v1/waf/bans", json={"client": "203.0.113.5", "seconds": 60}, headers=h)
    assert r.status_code == 201 and r.json()["client"] == "203.0.113.5"
    # hot state is memory:// (one per process, shared by the apps of this test run): membership
    assert "203.0.113.5" in [b["client"] for b in c.get("/v1/waf/bans", headers=h).json()["items"]]
    assert c.delete("/v1/waf/bans/203.0.113.5", headers=h).status_code == 204
    assert c.delete("/v1/waf/bans/203.0.113.5", headers=h).status_code == 404


def test_ratelimit_policy_admits_exactly_its_amount(server):
    c, h = server.client, bearer(server.root)
    assert (
        c.post(
            "/v1/ratelimit/policies", json={"name": "login", "limits": "5/minute"}, headers=h
        ).status_code
        == 201
    )
    answers = [
        c.post("/v1/ratelimit/check", json={"policy": "login", "key": "u1"}, headers=h).json()
        for _ in range(8)
    ]
    assert [a["allowed"] for a in answers] == [True] * 5 + [False] * 3
    assert [a["remaining"] for a in answers[:5]] == [4, 3, 2, 1, 0]
    assert answers[5]["retry_after"] >= 1
    other = c.post("/v1/ratelimit/check", json={"policy": "login", "key": "u2"}, headers=h)
    assert other.json()["allowed"] is True
    usage = c.get("/v1/ratelimit/usage", params={"policy": "login", "key": "u1"}, headers=h)
    assert usage.json()["remaining"] == 0
    bad = c.post("/v1/ratelimit/policies", json={"name": "x", "limits": "lots"}, headers=h)
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/limits"


def test_policies_with_equal_limits_count_apart(server):
    c, h = server.client, bearer(server.root)
    for name in ("login", "signup"):
        c.post("/v1/ratelimit/policies", json={"name": name, "limits": "2/minute"}, headers=h)
    login = [
        c.post("/v1/ratelimit/check", json={"policy": "login", "key": "same"}, headers=h).json()
        for _ in range(3)
    ]
    signup = c.post("/v1/ratelimit/check", json={"policy": "signup", "key": "same"}, headers=h)
    assert [x["allowed"] for x in login] == [True, True, False]
    assert signup.json()["allowed"] is True and signup.json()["remaining"] == 1


def test_ratelimit_bans(server):
    c, h = server.client, bearer(server.root)
    c.post("/v1/ratelimit/policies", json={"name": "api", "limits": "100/minute"}, headers=h)
    assert (
        c.post("/v1/ratelimit/bans", json={"key": "abuser", "seconds": 60}, headers=h).status_code
        == 201
    )
    check = c.post("/v1/ratelimit/check", json={"policy": "api", "key": "abuser"}, headers=h)
    assert check.json()["allowed"] is False and check.json()["banned"] is True
    listed = [b["key"] for b in c.get("/v1/ratelimit/bans", headers=h).json()["items"]]
    assert "abuser" in listed  # memory:// hot state is per process: earlier tests' bans remain
    assert c.delete("/v1/ratelimit/bans/abuser", headers=h).status_code == 204
    check = c.post("/v1/ratelimit/check", json={"policy": "api", "key": "abuser"}, headers=h)
    assert check.json()["allowed"] is True


@pytest.mark.parametrize("per", ["key", "tenant"])
def test_guard_rate_limits_per_key_and_tenant(server_factory, per):
    limits = {"key_rate_limit": "3/minute"} if per == "key" else {"tenant_rate_limit": "3/minute"}
    server = server_factory(**limits)
    c = server.client
    # keys made in the database directly, so no request of the test's own set-up is counted
    first = server.state.directory.create_key("platform", name="a", role="viewer")[1]
    second = server.state.directory.create_key("platform", name="b", role="viewer")[1]
    # the first request of a key is counted per IP (its tenant is not known before it authenticates)
    statuses = [c.get("/v1/whoami", headers=bearer(first)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    refused = c.get("/v1/whoami", headers=bearer(first))
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert "q=3" in refused.headers["ratelimit-policy"]
    other = c.get("/v1/whoami", headers=bearer(second))
    # another key of the same tenant: its own budget per key, the shared one per tenant
    c.get("/v1/whoami", headers=bearer(second))
    expected = 200 if per == "key" else 429
    assert c.get("/v1/whoami", headers=bearer(second)).status_code == expected
    assert other.status_code == 200


def test_health_ready_metrics_openapi(server):
    c = server.client
    assert c.get("/healthz").json() == {"status": "ok"}
    ready = c.get("/readyz").json()
    assert ready["status"] == "ready" and ready["checks"] == {"database": "ok", "hot_state": "ok"}
    c.post("/v1/waf/inspect", json={"target": "/?q=%3Cscript%3E"}, headers=bearer(server.root))
    text = c.get("/metrics").text
    assert "cognitionos_waf_inspected_total" in text
    assert "cognitionos_ratelimit" in text
    spec = c.get("/openapi.json").json()
    operations = [op for item in spec["paths"].values() for op in item]
    assert len(operations) >= 40
    assert {t["name"] for t in spec["tags"]} >= {"flags", "waf", "ratelimit", "keys", "tenants"}


def test_policy_changes_reach_checks_at_once_here_and_within_the_cache_time_elsewhere(
    server_factory, monkeypatch
):
    from cognitionos.server import _directory

    here = server_factory()
    there = server_factory()  # a second process on the same database
    assert here.state.settings.database_url == there.state.settings.database_url
    h = bearer(here.root)

    def check(srv, key):
        r = srv.client.post("/v1/ratelimit/check", json={"policy": "p", "key": key}, headers=h)
        return r.json()

    assert (
        here.client.post(
            "/v1/ratelimit/policies", json={"name": "p", "limits": "5/minute"}, headers=h
        ).status_code
        == 201
    )
    assert check(here, "a")["limit"] == 5 and check(there, "a")["limit"] == 5  # both cached
    etag = here.client.get("/v1/ratelimit/policies/p", headers=h).headers["etag"]
    put = here.client.put(
        "/v1/ratelimit/policies/p", json={"limits": "7/minute"}, headers={**h, "If-Match": etag}
    )
    assert put.status_code == 200
    assert check(here, "b")["limit"] == 7  # the changing process applies it at once
    # the other process reads its copy until it is POLICY_CACHE_SECONDS old, then the row
    assert check(there, "b")["limit"] == 5
    assert there.client.get("/v1/ratelimit/policies/p", headers=h).json()["limits"] == "7/minute"
    later = _directory._monotonic() + _directory.POLICY_CACHE_SECONDS + 0.01
    monkeypatch.setattr(_directory, "_monotonic", lambda: later)
    assert check(there, "c")["limit"] == 7
    # a deleted policy is gone at once where it was deleted
    assert here.client.delete("/v1/ratelimit/policies/p", headers=h).status_code == 204
    gone = here.client.post("/v1/ratelimit/check", json={"policy": "p", "key": "d"}, headers=h)
    assert gone.status_code == 404
