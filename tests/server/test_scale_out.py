"""The server on PostgreSQL + Redis, and ``cognitionos db upgrade`` creating its tables."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner

from cognitionos.cli import main

from .conftest import bearer

SERVER_TABLES = {
    "cos_tenants",
    "cos_users",
    "cos_api_keys",
    "cos_idempotency",
    "cos_ratelimit_policies",
}


def _tables(url: str) -> set[str]:
    import sqlalchemy as sa

    from cognitionos.storage._sql import _sqlalchemy_url
    from cognitionos.storage._url import parse_url

    engine = sa.create_engine(_sqlalchemy_url(parse_url(url)))
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ],
)
def test_db_upgrade_creates_the_server_tables(kind, tmp_path, request):
    url = (
        f"sqlite:///{tmp_path / 'up.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    result = CliRunner().invoke(main, ["db", "upgrade", "--store", url])
    assert result.exit_code == 0, result.output
    assert "schema at revision" in result.output
    assert _tables(url) >= SERVER_TABLES


def _clean_server_tables(url: str) -> None:
    import sqlalchemy as sa

    from cognitionos.storage import open_store

    store = open_store(url)  # migrates to the newest revision first
    try:
        with store.engine.begin() as conn:
            for table in sorted(SERVER_TABLES):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    finally:
        store.close()


@pytest.mark.postgresql
@pytest.mark.redis
def test_two_servers_on_postgresql_and_redis_act_as_one(postgres_url, redis_url, tmp_path):
    """Two apps share one database and one Redis: keys, flags, limits and bans are common."""
    from starlette.testclient import TestClient

    from cognitionos.server import Settings, create_app

    _clean_server_tables(postgres_url)
    settings = Settings(database_url=postgres_url, redis_url=redis_url)
    first_app = create_app(settings, announce=False)
    second_app = create_app(settings, announce=False)
    assert first_app.state.bootstrap_token is not None
    assert second_app.state.bootstrap_token is None  # bootstrapped once, by the first
    with TestClient(first_app) as one, TestClient(second_app) as two:
        root = bearer(first_app.state.bootstrap_token)
        assert two.get("/v1/whoami", headers=root).json()["tenant_id"] == "platform"
        name = f"p{uuid.uuid4().hex[:8]}"
        assert (
            one.post(
                "/v1/ratelimit/policies", json={"name": name, "limits": "10/minute"}, headers=root
            ).status_code
            == 201
        )
        answers = [
            (one if i % 2 else two)
            .post("/v1/ratelimit/check", json={"policy": name, "key": "k"}, headers=root)
            .json()["allowed"]
            for i in range(14)
        ]
        assert answers.count(True) == 10 and answers[:10] == [True] * 10
        flag = f"f{uuid.uuid4().hex[:8]}"
        assert (
            one.post("/v1/flags", json={"key": flag, "default_value": 7}, headers=root).status_code
            == 201
        )
        got = two.post(f"/v1/flags/{flag}/evaluate", json={"attributes": {}}, headers=root)
        assert got.json()["value"] == 7
        assert one.get("/readyz").json()["checks"] == {"database": "ok", "hot_state": "ok"}
        ban = one.post("/v1/ratelimit/bans", json={"key": "shared", "seconds": 30}, headers=root)
        assert ban.status_code == 201
        listed = two.get("/v1/ratelimit/bans", headers=root).json()["items"]
        assert "shared" in [b["key"] for b in listed]
        assert two.delete("/v1/ratelimit/bans/shared", headers=root).status_code == 204
