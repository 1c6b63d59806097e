"""Bad input, problem documents, ETags, idempotency keys and pagination."""

from __future__ import annotations

import json

import pytest

from .conftest import bearer

PROBLEM = "application/problem+json"


def _problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    doc = r.json()
    assert doc["status"] == status and doc["title"] and "detail" in doc
    assert "Traceback" not in r.text and 'File "' not in r.text
    return doc


def test_framework_errors_are_problem_documents(server):
    c = server.client
    _problem(c.get("/no/such/route"), 404)
    _problem(c.delete("/healthz"), 405)
    _problem(c.get("/v1/users?limit=0", headers=bearer(server.root)), 422)
    _problem(c.get("/v1/users"), 401)


def test_oversized_body_is_413(server_factory):
    server = server_factory(max_body_bytes=1000)
    body = json.dumps({"name": "x" * 2000})
    r = server.client.post(
        "/v1/tenants",
        content=body,
        headers={**bearer(server.root), "Content-Type": "application/json"},
    )
    _problem(r, 413)


def test_streamed_oversized_body_is_413(server_factory):
    server = server_factory(max_body_bytes=1000)

    def chunks():
        for _ in range(5):
            yield b"x" * 400

    r = server.client.post(
        "/v1/tenants",
        content=chunks(),
        headers={**bearer(server.root), "Content-Type": "application/json"},
    )
    _problem(r, 413)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_wrong_content_type_is_415(server, content_type):
    headers = bearer(server.root)
    if content_type:
        headers["Content-Type"] = content_type
    r = server.client.post("/v1/tenants", content=b'{"name": "a"}', headers=headers)
    _problem(r, 415)


def test_invalid_json_is_422_with_a_location(server):
    r = server.client.post(
        "/v1/tenants",
        content=b'{"name": ',
        headers={**bearer(server.root), "Content-Type": "application/json"},
    )
    doc = _problem(r, 422)
    assert doc["errors"][0]["type"] == "json_invalid"


def test_field_errors_name_their_paths(server):
    r = server.client.post(
        "/v1/keys", json={"name": "", "role": "emperor"}, headers=bearer(server.root)
    )
    doc = _problem(r, 422)
    assert {e["pointer"] for e in doc["errors"]} == {"/name", "/role"}
    r = server.client.post(
        "/v1/flags",
        json={"key": "f", "default_value": 1, "rules": [{"force": 2, "coverage": 7}]},
        headers=bearer(server.root),
    )
    doc = _problem(r, 422)
    assert any(e["pointer"].startswith("/rules/0") for e in doc["errors"]), doc


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/tenants", {"name": "a", "plan": "gold"}),
        ("/v1/keys", {"name": "a", "role": "viewer", "admin": True}),
        ("/v1/flags", {"key": "f", "default_value": True, "colour": "red"}),
        ("/v1/waf/inspect", {"target": "/", "verbose": True}),
        ("/v1/ratelimit/policies", {"name": "p", "limits": "1/second", "burst": 5}),
    ],
)
def test_unknown_fields_are_rejected(server, path, body):
    doc = _problem(server.client.post(path, json=body, headers=bearer(server.root)), 422)
    assert doc["errors"]


def test_unexpected_errors_hide_the_trace(server, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(server.state.directory, "list_users", boom)
    r = server.client.get("/v1/users", headers=bearer(server.root))
    doc = _problem(r, 500)
    assert "secret internal detail" not in r.text
    assert doc["detail"]


def test_updates_need_if_match(server):
    c, h = server.client, bearer(server.root)
    created = c.post("/v1/users", json={"email": "a@x.test", "role": "viewer"}, headers=h)
    uid, etag = created.json()["user_id"], created.headers["etag"]
    _problem(c.patch(f"/v1/users/{uid}", json={"role": "developer"}, headers=h), 428)
    ok = c.patch(f"/v1/users/{uid}", json={"role": "developer"}, headers={**h, "If-Match": etag})
    assert ok.status_code == 200 and ok.headers["etag"] != etag
    stale = c.patch(f"/v1/users/{uid}", json={"role": "admin"}, headers={**h, "If-Match": etag})
    _problem(stale, 412)
    assert c.get(f"/v1/users/{uid}", headers=h).json()["role"] == "developer"


def test_flag_updates_need_if_match(server):
    c, h = server.client, bearer(server.root)
    etag = c.post("/v1/flags", json={"key": "f", "default_value": 1}, headers=h).headers["etag"]
    assert c.get("/v1/flags/f", headers=h).headers["etag"] == etag
    _problem(c.put("/v1/flags/f", json={"default_value": 2}, headers=h), 428)
    ok = c.put("/v1/flags/f", json={"default_value": 2}, headers={**h, "If-Match": etag})
    assert ok.status_code == 200
    _problem(c.put("/v1/flags/f", json={"default_value": 3}, headers={**h, "If-Match": etag}), 412)
    _problem(c.delete("/v1/flags/f", headers={**h, "If-Match": etag}), 412)
    r = c.delete("/v1/flags/f", headers={**h, "If-Match": ok.headers["etag"]})
    assert r.status_code == 204


def test_idempotency_key_replays_and_refuses_other_bodies(server):
    c = server.client
    h = {**bearer(server.root), "Idempotency-Key": "create-acme-1"}
    first = c.post("/v1/tenants", json={"name": "acme"}, headers=h)
    again = c.post("/v1/tenants", json={"name": "acme"}, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    tenants = c.get("/v1/tenants", headers=bearer(server.root)).json()["items"]
    assert [t["name"] for t in tenants].count("acme") == 1
    _problem(c.post("/v1/tenants", json={"name": "other"}, headers=h), 422)


def test_idempotency_key_while_running_is_409(server):
    """A request holding the key (claimed, no answer yet) makes a repeat wait: 409 + Retry-After."""
    import hashlib

    state = server.state
    key_id = server.root[9:17]
    body = {"name": "acme", "owner_email": None}
    digest = hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    claimed = state.directory.idempotency_begin(
        "platform", f"{key_id}:POST:/v1/tenants:k1", digest, 10**12
    )
    assert claimed is None
    r = server.client.post(
        "/v1/tenants",
        json={"name": "acme"},
        headers={**bearer(server.root), "Idempotency-Key": "k1"},
    )
    _problem(r, 409)
    assert r.headers["retry-after"] == "1"


def test_concurrent_duplicates_create_once(server):
    """Eight threads send the same creating POST with one key: one tenant is created."""
    from concurrent.futures import ThreadPoolExecutor

    h = {**bearer(server.root), "Idempotency-Key": "race"}

    def send(_):
        return server.client.post("/v1/tenants", json={"name": "raced"}, headers=h)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    created = {r.json()["tenant_id"] for r in answers if r.status_code == 201}
    assert len(created) == 1
    names = [
        t["name"]
        for t in server.client.get("/v1/tenants", headers=bearer(server.root)).json()["items"]
    ]
    assert names.count("raced") == 1


def test_pagination_walks_every_item_once(server):
    c, h = server.client, bearer(server.root)
    emails = {f"user{i:02d}@x.test" for i in range(23)}
    for email in emails:
        assert (
            c.post("/v1/users", json={"email": email, "role": "viewer"}, headers=h).status_code
            == 201
        )
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = c.get("/v1/users", params=params, headers=h).json()
        seen += [u["email"] for u in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(emails) and len(seen) == 23 and pages == 5
    _problem(c.get("/v1/users", params={"cursor": "%%%"}, headers=h), 400)


@pytest.mark.parametrize("setting", ["key_rate_limit", "tenant_rate_limit", "anonymous_rate_limit"])
def test_an_unparseable_guard_limit_refuses_to_start_naming_the_setting(tmp_path, setting):
    from cognitionos.errors import ConfigurationError
    from cognitionos.server import create_app

    from .conftest import make_settings

    with pytest.raises(ConfigurationError, match=f"COGNITIONOS_{setting.upper()}='ten/minute'"):
        create_app(make_settings(tmp_path, **{setting: "ten/minute"}), announce=False)


@pytest.mark.redis
def test_a_guard_limit_too_large_for_redis_refuses_to_start(tmp_path, redis_url):
    from cognitionos.errors import ConfigurationError
    from cognitionos.server import create_app

    from .conftest import make_settings

    settings = make_settings(tmp_path, redis_url=redis_url, key_rate_limit="1000000000/minute")
    with pytest.raises(ConfigurationError, match=r"COGNITIONOS_KEY_RATE_LIMIT=.*too large"):
        create_app(settings, announce=False)
