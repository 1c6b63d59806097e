"""Change requests: in a protected environment a flag change waits for a second person."""

from __future__ import annotations

import threading

import pytest

from .conftest import bearer

FLAG = {"key": "checkout", "default_value": False}


@pytest.fixture
def gov(server_factory):
    """A server protecting ``live`` keys; a tenant with a live developer, two live admins and a
    test-environment developer, and one flag."""
    server = server_factory(protected_environments=["live"])
    _tenant, owner = server.new_tenant("acme")
    keys = {
        "dev": server.key(owner, "developer"),
        "admin1": server.key(owner, "admin"),
        "admin2": server.key(owner, "admin"),
        "testdev": server.key(owner, "developer", environment="test"),
        "owner": owner,
    }
    r = server.client.post("/v1/flags", json=FLAG, headers=bearer(keys["testdev"]))
    assert r.status_code == 201, r.text
    return server, keys


def _flag(server, keys):
    r = server.client.get("/v1/flags/checkout", headers=bearer(keys["owner"]))
    assert r.status_code == 200
    return r


def _actions(server, keys):
    items = server.client.get("/v1/audit?limit=200", headers=bearer(keys["owner"])).json()["items"]
    return [e["entry"]["action"] for e in items]


def test_a_protected_change_waits_and_applies_on_a_second_persons_approval(gov):
    server, keys = gov
    c = server.client
    before = _flag(server, keys)
    r = c.put(
        "/v1/flags/checkout",
        json={"default_value": True},
        headers={**bearer(keys["dev"]), "If-Match": before.headers["etag"]},
    )
    assert r.status_code == 202, r.text
    cr = r.json()
    assert cr["status"] == "pending" and cr["action"] == "replace"
    assert r.headers["location"] == f"/v1/flags/change-requests/{cr['id']}"
    assert _flag(server, keys).json()["default_value"] is False  # nothing applied yet
    evaluated = c.post(
        "/v1/flags/checkout/evaluate",
        json={"attributes": {"id": "u1"}},
        headers=bearer(keys["dev"]),
    )
    assert evaluated.json()["value"] is False

    # the requester cannot decide its own request, and a developer cannot approve at all
    own = c.post(
        f"/v1/flags/change-requests/{cr['id']}/approve", json={}, headers=bearer(keys["dev"])
    )
    assert own.status_code == 403
    ok = c.post(
        f"/v1/flags/change-requests/{cr['id']}/approve",
        json={"comment": "lgtm"},
        headers=bearer(keys["admin1"]),
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "applied" and ok.json()["decision_comment"] == "lgtm"
    assert _flag(server, keys).json()["default_value"] is True
    again = c.post(
        f"/v1/flags/change-requests/{cr['id']}/approve", json={}, headers=bearer(keys["admin2"])
    )
    assert again.status_code == 409  # decided once only
    actions = _actions(server, keys)
    for action in ("flag.change_request.open", "flag.update", "flag.change_request.approve"):
        assert action in actions, actions


@pytest.mark.parametrize(
    ("method", "path", "body", "action"),
    [
        ("POST", "/v1/flags", {"key": "newflag", "default_value": 1}, "create"),
        ("DELETE", "/v1/flags/checkout", None, "delete"),
        ("POST", "/v1/flags/checkout/toggle", {"enabled": False}, "toggle"),
    ],
)
def test_every_direct_change_from_a_protected_key_becomes_a_request(
    gov, method, path, body, action
):
    server, keys = gov
    headers = bearer(keys["dev"])
    if method == "DELETE":
        headers["If-Match"] = _flag(server, keys).headers["etag"]
    flags_before = server.client.get("/v1/flags/export", headers=bearer(keys["owner"])).json()
    r = server.client.request(method, path, json=body, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["action"] == action and r.json()["status"] == "pending"
    flags_after = server.client.get("/v1/flags/export", headers=bearer(keys["owner"])).json()
    assert flags_after == flags_before


def test_imports_from_protected_keys_are_refused_naming_change_requests(gov):
    server, keys = gov
    r = server.client.post(
        "/v1/flags/import", json={"document": {"flags": []}}, headers=bearer(keys["dev"])
    )
    assert r.status_code == 409 and "change-requests" in r.json()["detail"]


def test_unprotected_keys_change_flags_directly(gov):
    server, keys = gov
    r = server.client.post(
        "/v1/flags/checkout/toggle", json={"enabled": False}, headers=bearer(keys["testdev"])
    )
    assert r.status_code == 200 and r.json()["enabled"] is False


def test_rejected_requests_change_nothing(gov):
    server, keys = gov
    c = server.client
    r = c.post(
        "/v1/flags/change-requests",
        json={"action": "toggle", "key": "checkout", "enabled": False, "comment": "kill it"},
        headers=bearer(keys["dev"]),
    )
    assert r.status_code == 201
    cr = r.json()["id"]
    no = c.post(
        f"/v1/flags/change-requests/{cr}/reject",
        json={"comment": "no"},
        headers=bearer(keys["admin1"]),
    )
    assert no.status_code == 200 and no.json()["status"] == "rejected"
    assert _flag(server, keys).json()["enabled"] is True
    late = c.post(
        f"/v1/flags/change-requests/{cr}/approve", json={}, headers=bearer(keys["admin2"])
    )
    assert late.status_code == 409
    listed = c.get("/v1/flags/change-requests?status=rejected", headers=bearer(keys["dev"])).json()
    assert [i["id"] for i in listed["items"]] == [cr]


def test_a_request_made_stale_by_a_later_change_is_not_applied(gov):
    server, keys = gov
    c = server.client
    r = c.post(
        "/v1/flags/change-requests",
        json={"action": "replace", "key": "checkout", "definition": {"default_value": "A"}},
        headers=bearer(keys["dev"]),
    )
    cr = r.json()["id"]
    # someone else changes the flag meanwhile (an unprotected key)
    etag = _flag(server, keys).headers["etag"]
    changed = c.put(
        "/v1/flags/checkout",
        json={"default_value": "B"},
        headers={**bearer(keys["testdev"]), "If-Match": etag},
    )
    assert changed.status_code == 200
    stale = c.post(
        f"/v1/flags/change-requests/{cr}/approve", json={}, headers=bearer(keys["admin1"])
    )
    assert stale.status_code == 409 and "changed since" in stale.json()["detail"]
    assert _flag(server, keys).json()["default_value"] == "B"  # the later change survives
    got = c.get(f"/v1/flags/change-requests/{cr}", headers=bearer(keys["dev"])).json()
    assert got["status"] == "conflict"


def test_bad_change_requests_are_refused_with_the_reason(gov):
    server, keys = gov
    h = bearer(keys["dev"])
    cases = [
        ({"action": "replace", "key": "checkout"}, 422, "needs a definition"),
        ({"action": "toggle", "key": "checkout"}, 422, "needs enabled"),
        ({"action": "delete", "key": "nope"}, 404, "no flag"),
        (
            {"action": "create", "key": "checkout", "definition": {"default_value": 1}},
            409,
            "exists",
        ),
        (
            {"action": "replace", "key": "checkout", "definition": {"key": "other"}},
            422,
            "differs",
        ),
    ]
    for body, status, words in cases:
        r = server.client.post("/v1/flags/change-requests", json=body, headers=h)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["detail"], (body, r.text)


def test_two_approvers_at_once_apply_a_request_exactly_once(gov):
    server, keys = gov
    c = server.client
    r = c.post(
        "/v1/flags/change-requests",
        json={"action": "toggle", "key": "checkout", "enabled": False},
        headers=bearer(keys["dev"]),
    )
    cr = r.json()["id"]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def approve(who: str) -> None:
        start.wait()
        res = c.post(f"/v1/flags/change-requests/{cr}/approve", json={}, headers=bearer(keys[who]))
        statuses.append(res.status_code)

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("admin1", "admin2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert _actions(server, keys).count("flag.change_request.approve") == 1
