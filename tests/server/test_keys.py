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
