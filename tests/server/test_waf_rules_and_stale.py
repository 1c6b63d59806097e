"""A tenant's WAF rules and exclusions, the guard's incident list, and the stale-flag report."""

from __future__ import annotations

import pytest

from .conftest import bearer

XSS = "/{where}?q=%3Cscript%3Ealert(1)%3C/script%3E"


def _inspect(c, token: str, target: str) -> dict:
    body = {
        "target": target,
        "headers": {"host": "shop.test", "user-agent": "test", "accept": "*/*"},
    }
    r = c.post("/v1/waf/inspect", json=body, headers=bearer(token))
    assert r.status_code == 200, r.text
    doc: dict = r.json()
    return doc


def test_custom_rules_apply_to_their_tenant_only(server):
    c = server.client
    _a, a = server.new_tenant("a")
    _b, b = server.new_tenant("b")
    assert _inspect(c, a, "/admin/panel")["blocked"] is False
    rule = {"id": "no-admin", "pattern": "^/admin", "locations": ["path"], "message": "admin"}
    r = c.post("/v1/waf/custom-rules", json=rule, headers=bearer(a))
    assert r.status_code == 201, r.text
    verdict = _inspect(c, a, "/admin/panel")
    assert verdict["blocked"] is True and [m["rule_id"] for m in verdict["matches"]] == ["no-admin"]
    assert _inspect(c, b, "/admin/panel")["blocked"] is False  # B has no such rule
    listed = c.get("/v1/waf/rules", params={"limit": 200}, headers=bearer(a)).json()["items"]
    assert [r["rule_id"] for r in listed if r["custom"]] == ["no-admin"]
    # a change takes effect at once (If-Match needed)
    path = "/v1/waf/custom-rules/no-admin"
    assert c.put(path, json={"pattern": "^/root"}, headers=bearer(a)).status_code == 428
    stale = {**bearer(a), "If-Match": '"nope"'}
    assert c.put(path, json={"pattern": "^/root"}, headers=stale).status_code == 412
    tag = c.get(path, headers=bearer(a)).headers["etag"]
    r = c.put(path, json={"pattern": "^/root", "locations": ["path"]},
              headers={**bearer(a), "If-Match": tag})  # fmt: skip
    assert r.status_code == 200 and r.json()["pattern"] == "^/root"
    assert _inspect(c, a, "/admin/panel")["blocked"] is False
    assert _inspect(c, a, "/root/x")["blocked"] is True
    assert c.delete(path, headers={**bearer(a), "If-Match": r.headers["etag"]}).status_code == 204
    assert _inspect(c, a, "/root/x")["blocked"] is False
    actions = [e["entry"]["action"] for e in c.get("/v1/audit", headers=bearer(a)).json()["items"]]
    assert actions == ["waf.rule.create", "waf.rule.update", "waf.rule.delete"]


def test_exclusions_silence_rules_where_they_misfire(server):
    c, owner = server.client, server.new_tenant("wiki")[1]
    assert _inspect(c, owner, XSS.format(where="wiki/page"))["blocked"] is True
    exclusion = {"id": "wiki-html", "path": "/wiki/*", "categories": ["xss"]}
    assert c.post("/v1/waf/exclusions", json=exclusion, headers=bearer(owner)).status_code == 201
    assert _inspect(c, owner, XSS.format(where="wiki/page"))["blocked"] is False
    assert _inspect(c, owner, XSS.format(where="blog/page"))["blocked"] is True  # elsewhere
    got = c.get("/v1/waf/exclusions/wiki-html", headers=bearer(owner)).json()
    assert got["path"] == "/wiki/*" and got["categories"] == ["xss"]
    again = c.post("/v1/waf/exclusions", json=exclusion, headers=bearer(owner))
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("rule", "named"),
    [
        ({"id": "r", "pattern": "(a+)+$"}, "repeats a repetition"),
        ({"id": "r", "pattern": "(x+x+)+y"}, "repeats a repetition"),
        ({"id": "r", "pattern": "a" * 600}, "longer than 512"),
        ({"id": "r", "pattern": "(unclosed"}, "invalid WAF rule"),
        ({"id": "r", "pattern": "x", "operator": "glob"}, "invalid WAF rule"),
        ({"id": "r", "pattern": "x", "extra": 1}, "invalid WAF rule"),
    ],
)
def test_bad_rules_are_refused_naming_the_problem(server, rule, named):
    r = server.client.post("/v1/waf/custom-rules", json=rule, headers=bearer(server.root))
    assert r.status_code == 422 and named in r.json()["detail"], r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_bad_exclusions_name_the_field(server):
    c, h = server.client, bearer(server.root)
    r = c.post("/v1/waf/exclusions", json={"path": "/x"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/id"
    r = c.post("/v1/waf/exclusions", json={"id": "e", "methods": "GET"}, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"].startswith("/methods")


def test_rules_per_tenant_are_bounded(server, monkeypatch):
    from cognitionos.server._routes import waf_rules

    monkeypatch.setattr(waf_rules, "MAX_PER_TENANT", 2)
    c, h = server.client, bearer(server.root)
    for i in range(2):
        assert c.post("/v1/waf/custom-rules", json={"id": f"r{i}", "pattern": "x"},
                      headers=h).status_code == 201  # fmt: skip
    r = c.post("/v1/waf/custom-rules", json={"id": "r2", "pattern": "x"}, headers=h)
    assert r.status_code == 409 and "at most 2" in r.json()["detail"]


def test_incidents_list_the_guards_refusals(server):
    c = server.client
    attack = c.get("/v1/whoami", params={"q": "' or 1=1--"}, headers=bearer(server.root))
    assert attack.status_code == 403
    incident = attack.json()["incident_id"]
    doc = c.get("/v1/waf/incidents", headers=bearer(server.root)).json()
    (mine,) = [i for i in doc["items"] if i["incident_id"] == incident]
    assert mine["path"] == "/v1/whoami" and mine["method"] == "GET" and mine["status"] == 403
    assert "sqli" in mine["categories"]
    assert isinstance(doc["bans"], list)
    _tid, owner = server.new_tenant("acme")
    assert c.get("/v1/waf/incidents", headers=bearer(owner)).status_code == 403


def test_stale_flag_report(server):
    c, h = server.client, bearer(server.root)
    c.post("/v1/flags", json={"key": "never-asked", "default_value": True}, headers=h)
    c.post("/v1/flags", json={"key": "one-answer", "default_value": True}, headers=h)
    split = {"key": "split", "default_value": "a",
             "rules": [{"condition": {"country": "NL"}, "value": "b", "force": True}]}  # fmt: skip
    c.post("/v1/flags", json=split, headers=h)
    for i in range(5):
        c.post("/v1/flags/one-answer/evaluate", json={"attributes": {"id": f"u{i}"}}, headers=h)
    for country in ("NL", "DE"):
        c.post("/v1/flags/split/evaluate", json={"attributes": {"country": country}}, headers=h)
    report = c.get("/v1/flags/stale", params={"days": 30}, headers=h).json()
    reasons = {r["flag"]: r["reasons"] for r in report["items"]}
    assert reasons == {"never-asked": ["unevaluated"], "one-answer": ["single-value"]}
    # with a window shorter than the flags' age, every flag is unchanged and unevaluated
    report = c.get("/v1/flags/stale", params={"days": 1e-9}, headers=h).json()
    reasons = {r["flag"]: set(r["reasons"]) for r in report["items"]}
    assert set(reasons) == {"never-asked", "one-answer", "split"}
    assert all({"unchanged", "unevaluated"} <= rs for rs in reasons.values())
    assert c.get("/v1/flags/stale", params={"days": 0}, headers=h).status_code == 422


def test_flags_stale_cli_reads_a_tenant_of_the_server(server):
    import json

    from click.testing import CliRunner

    from cognitionos.cli import main

    c, h = server.client, bearer(server.root)
    c.post("/v1/flags", json={"key": "old-flag", "default_value": True}, headers=h)
    store = server.state.settings.database_url
    result = CliRunner().invoke(
        main, ["flags", "--store", store, "--namespace", "tenants/platform/", "stale", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert [r["flag"] for r in json.loads(result.stdout)] == ["old-flag"]
