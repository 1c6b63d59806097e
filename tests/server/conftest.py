"""Fixtures for the reference server: an app on a fresh SQLite file, keys of every role."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from starlette.testclient import TestClient

from cognitionos.server import Settings, create_app

ROLES = ("owner", "admin", "developer", "viewer", "service")


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


class Server:
    """A running in-process app with its bootstrap (platform owner) token."""

    def __init__(self, client: TestClient, app: Any) -> None:
        self.client = client
        self.app = app
        self.root = app.state.bootstrap_token

    @property
    def state(self) -> Any:
        return self.app.state.cognitionos

    def new_tenant(self, name: str) -> tuple[str, str]:
        """(tenant id, owner token) of a fresh tenant created through the API."""
        r = self.client.post("/v1/tenants", json={"name": name}, headers=bearer(self.root))
        assert r.status_code == 201, r.text
        return r.json()["tenant_id"], r.json()["owner_key"]["token"]

    def key(self, owner_token: str, role: str, **extra: Any) -> str:
        """A new key of ``role`` created by ``owner_token``."""
        r = self.client.post(
            "/v1/keys",
            json={"name": f"{role} key", "role": role, **extra},
            headers=bearer(owner_token),
        )
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def role_keys(self, owner_token: str) -> dict[str, str]:
        """A token for every role in the owner's tenant (the owner's own for ``owner``)."""
        keys = {role: self.key(owner_token, role) for role in ROLES if role != "owner"}
        keys["owner"] = owner_token
        return keys


def otlp_trace(
    route: str,
    seconds: float,
    *,
    trace: int = 1,
    error: tuple[str, str] | None = None,
    statements: tuple[tuple[str, float], ...] = (),
) -> dict[str, Any]:
    """An OTLP/JSON body: one server span for ``route`` (``"GET /x"``), optional exception
    event and child database spans (statement, seconds)."""
    method, _, path = route.partition(" ")
    start = 1_700_000_000_000_000_000
    tid = f"{trace:032x}"

    def attr(key: str, value: str) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value}}

    server = {
        "traceId": tid,
        "spanId": f"{1:016x}",
        "name": route,
        "kind": 2,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + round(seconds * 1e9)),
        "attributes": [attr("http.route", path), attr("http.request.method", method)],
        "events": []
        if error is None
        else [
            {
                "timeUnixNano": str(start),
                "name": "exception",
                "attributes": [
                    attr("exception.type", error[0]),
                    attr("exception.message", error[1]),
                ],
            }
        ],
    }
    children = [
        {
            "traceId": tid,
            "spanId": f"{i + 2:016x}",
            "parentSpanId": f"{1:016x}",
            "name": "db",
            "kind": 3,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + round(took * 1e9)),
            "attributes": [attr("db.statement", sql)],
        }
        for i, (sql, took) in enumerate(statements)
    ]
    spans = [server, *children]
    return {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}


def make_settings(tmp_path: Any, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'server.db'}",
        # not $COGNITIONOS_REDIS_URL (the tests' Redis): each test's hot state is its own
        "redis_url": None,
        "key_rate_limit": "100000/minute",
        "tenant_rate_limit": "100000/minute",
        "anonymous_rate_limit": "100000/minute",
        "sse_max_seconds": 0.3,  # flag streams end quickly, so generated calls to them return
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def server_factory(tmp_path) -> Iterator[Any]:
    """``server_factory(**settings)`` -> a started :class:`Server`; all closed at teardown."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> Server:
        app = create_app(make_settings(tmp_path, **overrides), announce=False)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return Server(client, app)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def server(server_factory) -> Server:
    """A fresh server on its own SQLite file, bootstrapped."""
    made: Server = server_factory()
    return made
