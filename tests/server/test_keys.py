"""API key format: prefix, random body, CRC32 checksum in base62; only a hash is stored."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import string
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cognitionos.server._keys import new_token, parse_token

from .conftest import bearer

DIGITS = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _from_base62(text: str) -> int:
    value = 0
    for ch in text:
        value = value * 62 + DIGITS.index(ch)
    return value


@pytest.mark.parametrize("env", ["live", "test"])
def test_token_layout_and_checksum(env):
    token = new_token(env).text
    assert re.fullmatch(rf"cos_{env}_[0-9A-Za-z]{{46}}", token)
    body, check = token[len(f"cos_{env}_") : -6], token[-6:]
    # the checksum is CRC32 of the random body, written in base62 (computed here independently)
    assert _from_base62(check) == zlib.crc32(body.encode())
    assert parse_token(token) is not None


@given(st.integers(min_value=9, max_value=54), st.sampled_from(DIGITS))
def test_any_single_character_change_is_rejected_offline(position, replacement):
    token = new_token("live").text
    if token[position] == replacement:
        return
    tampered = token[:position] + replacement + token[position + 1 :]
    # CRC32 detects every single-character substitution
    assert parse_token(tampered) is None


@pytest.mark.parametrize(
    "text", ["", "cos_live_", "cos_prod_" + "a" * 46, "Bearer x", "cos_live_" + "!" * 46]
)
def test_malformed_tokens(text):
    assert parse_token(text) is None


def test_database_keeps_only_a_hash(server, tmp_path):
    token = server.root
    db = sqlite3.connect(tmp_path / "server.db")
    try:
        rows = db.execute("SELECT key_id, secret_hash FROM cos_api_keys").fetchall()
    finally:
        db.close()
    assert rows == [(token[9:17], hashlib.sha256(token.encode()).hexdigest())]
    raw = (tmp_path / "server.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("server.db-*")
    )
    assert token[17:-6].encode() not in raw


def test_revoked_expired_and_unknown_keys_are_refused(server):
    c = server.client
    token = server.key(server.root, "viewer")
    assert c.get("/v1/whoami", headers=bearer(token)).status_code == 200
    key_id = token[9:17]
    assert c.delete(f"/v1/keys/{key_id}", headers=bearer(server.root)).status_code == 200
    r = c.get("/v1/whoami", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert "Bearer" in r.headers["www-authenticate"]
    # same id, different (valid-checksum) secret: refused by the hash comparison
    other = new_token("live").text
    forged_body = key_id + other[17:-6]
    from cognitionos.server._keys import checksum

    forged = f"cos_live_{forged_body}{checksum(forged_body)}"
    assert c.get("/v1/whoami", headers=bearer(forged)).status_code == 401
    assert c.get("/v1/whoami").status_code == 401


def test_expiry_and_last_used(server):
    c = server.client
    state = server.state
    token = server.key(server.root, "viewer", expires_in=30)
    key_id = token[9:17]
    before = c.get(f"/v1/keys/{key_id}", headers=bearer(server.root)).json()
    assert before["last_used_at"] is None
    assert before["expires_at"] - before["created_at"] == 30 * 10**9
    assert c.get("/v1/whoami", headers=bearer(token)).status_code == 200
    after = c.get(f"/v1/keys/{key_id}", headers=bearer(server.root)).json()
    assert after["last_used_at"] is not None
    assert "secret_hash" not in after and "token" not in after
    # expire it by moving its expiry into the past directly in the database
    import sqlalchemy as sa

    keys = state.directory.t["keys"]
    with state.directory.engine.begin() as conn:
        conn.execute(
            sa.update(keys)
            .where(keys.c.key_id == key_id)
            .values(expires_at=state.clock.time_ns() - 1)
        )
    assert c.get("/v1/whoami", headers=bearer(token)).status_code == 401


def _move_clock(state, seconds: float) -> None:
    """Let the directory's clock run ``seconds`` ahead of the real one."""
    from cognitionos.clock import ManualClock

    state.directory.clock = ManualClock(state.clock.time() + seconds)


def test_rotation_keeps_both_keys_valid_for_the_overlap_then_only_the_new(server):
    c, root = server.client, bearer(server.root)
    old = server.key(server.root, "developer")
    old_id = old[9:17]
    r = c.post(f"/v1/keys/{old_id}/rotate", json={"overlap": 3600}, headers=root)
    assert r.status_code == 201, r.text
    doc = r.json()
    new = doc["token"]
    assert doc["rotated_from"] == old_id and doc["role"] == "developer"
    assert doc["key_id"] == new[9:17] != old_id and doc["name"] == "developer key"
    assert r.headers["location"] == f"/v1/keys/{doc['key_id']}"
    # both work during the overlap, and each refreshes its own last_used_at
    for token in (old, new):
        assert c.get("/v1/whoami", headers=bearer(token)).json()["role"] == "developer"
    listed = {k["key_id"]: k for k in c.get("/v1/keys", headers=root).json()["items"]}
    assert listed[old_id]["last_used_at"] is not None
    assert listed[doc["key_id"]]["last_used_at"] is not None
    assert listed[old_id]["expires_at"] - doc["created_at"] == 3600 * 10**9
    assert listed[doc["key_id"]]["expires_at"] is None
    assert "token" not in listed[doc["key_id"]]  # shown once: only in the rotate answer
    # an hour and a second later: the old key is expired, the new one still works
    _move_clock(server.state, 3601)
    assert c.get("/v1/whoami", headers=bearer(old)).status_code == 401
    assert c.get("/v1/whoami", headers=bearer(new)).status_code == 200
    entries = [e["entry"] for e in c.get("/v1/audit", headers=root).json()["items"]]
    rotated = [e for e in entries if e["action"] == "key.rotate"]
    assert rotated and rotated[0]["diff"]["after"]["key_id"] == doc["key_id"]


def test_rotation_never_extends_an_expiry_and_refuses_dead_keys(server):
    c, root = server.client, bearer(server.root)
    short = server.key(server.root, "viewer", expires_in=60)
    r = c.post(f"/v1/keys/{short[9:17]}/rotate", json={"overlap": 86400}, headers=root)
    old = c.get(f"/v1/keys/{short[9:17]}", headers=root).json()
    assert old["expires_at"] - old["created_at"] == 60 * 10**9  # not pushed out to a day
    assert r.json()["old_key_expires_at"] == old["expires_at"]
    # overlap 0: the old key stops now
    k = server.key(server.root, "viewer")
    assert c.post(f"/v1/keys/{k[9:17]}/rotate", json={"overlap": 0}, headers=root).is_success
    assert c.get("/v1/whoami", headers=bearer(k)).status_code == 401
    # a revoked key cannot be rotated back to life; an unknown one is 404
    gone = server.key(server.root, "viewer")
    c.delete(f"/v1/keys/{gone[9:17]}", headers=root)
    assert c.post(f"/v1/keys/{gone[9:17]}/rotate", json={}, headers=root).status_code == 409
    assert c.post("/v1/keys/nosuchkey/rotate", json={}, headers=root).status_code == 404


def test_nobody_rotates_or_creates_a_key_stronger_than_their_own(server):
    c = server.client
    _tid, owner = server.new_tenant("acme")
    admin = server.key(owner, "admin")
    # an admin may not mint an owner key, neither by creating nor by rotating one
    r = c.post("/v1/keys", json={"name": "x", "role": "owner"}, headers=bearer(admin))
    assert r.status_code == 403
    r = c.post(f"/v1/keys/{owner[9:17]}/rotate", json={}, headers=bearer(admin))
    assert r.status_code == 403 and "stronger role 'owner'" in r.json()["detail"]
    assert c.get("/v1/whoami", headers=bearer(owner)).status_code == 200  # untouched
    # an admin rotates an admin key (its own, even) and a weaker one
    mine = c.post(f"/v1/keys/{admin[9:17]}/rotate", json={"overlap": 60}, headers=bearer(admin))
    assert mine.status_code == 201 and mine.json()["role"] == "admin"
    dev = server.key(owner, "developer")
    r = c.post(f"/v1/keys/{dev[9:17]}/rotate", json={}, headers=bearer(admin))
    assert r.status_code == 201 and r.json()["role"] == "developer"
    # a developer has no keys:write at all
    r = c.post(f"/v1/keys/{dev[9:17]}/rotate", json={}, headers=bearer(dev))
    assert r.status_code == 403
    # another tenant's key is not there
    other = server.key(server.root, "viewer")
    assert (
        c.post(f"/v1/keys/{other[9:17]}/rotate", json={}, headers=bearer(owner)).status_code == 404
    )


def test_rotation_follows_the_users_current_role(server):
    c, root = server.client, bearer(server.root)
    user = c.post("/v1/users", json={"email": "d@x.test", "role": "developer"}, headers=root).json()
    token = server.key(server.root, "developer", user_id=user["user_id"])
    tag = c.get(f"/v1/users/{user['user_id']}", headers=root).headers["etag"]
    demoted = c.patch(f"/v1/users/{user['user_id']}", json={"role": "viewer"},
                      headers={**root, "If-Match": tag})  # fmt: skip
    assert demoted.status_code == 200
    r = c.post(f"/v1/keys/{token[9:17]}/rotate", json={}, headers=root)
    assert r.status_code == 403 and "can no longer hold a developer key" in r.json()["detail"]
