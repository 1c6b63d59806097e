"""Backend matrix for the rate-limiter tests.

``limiter_factory`` is parametrised over memory, SQLite, PostgreSQL, Redis and a local
Redis Cluster (tests/_cluster.py); each
builds limiters whose time comes from a ManualClock (Redis runs with
``server_time=False`` so it replays the same times). Redis uses db 15 and
PostgreSQL test-unique table prefixes, so parallel suites never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import AsyncRateLimiter, RateLimiter
from tests.conftest import skip_or_fail

REDIS_URL = os.environ.get("COGNITIONOS_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "COGNITIONOS_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = 1_700_000_040  # a minute-aligned epoch second

Factory = Callable[..., Any]


def redis_client() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        skip_or_fail(f"Redis not reachable at {REDIS_URL}: {exc}")
    return client


def postgres_engine() -> Any:
    sa = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    engine = sa.create_engine(POSTGRES_URL, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        skip_or_fail(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    return engine


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


class Backends:
    """Open stores for one test and clean them up after it."""

    def __init__(self, kind: str, tmp_path: Any) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.prefix = unique_prefix()
        self._cleanups: list[Callable[[], None]] = []
        self._store: Any = None
        #: the session's Redis Cluster URL (kind "cluster" only)
        self.cluster_url = ""

    def store(self) -> Any:
        if self._store is not None:
            return self._store
        if self.kind == "memory":
            from cognitionos.ratelimit._memory import MemoryBackend

            self._store = MemoryBackend()
        elif self.kind == "redis":
            client = redis_client()
            prefix = self.prefix

            def clean() -> None:
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    client.delete(*keys)
                client.close()

            self._cleanups.append(clean)
            self._store = client
        elif self.kind == "cluster":
            from redis.cluster import RedisCluster

            from cognitionos.storage._redis_common import cluster_kwargs
            from cognitionos.storage._url import parse_url

            url = parse_url(self.cluster_url)
            client = RedisCluster(**cluster_kwargs(url, url.raw, asynchronous=False))
            prefix = self.prefix

            def clean_cluster() -> None:
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                for key in keys:  # one DEL per key: they live in many slots
                    client.delete(key)
                client.close()

            self._cleanups.append(clean_cluster)
            self._store = client
        elif self.kind == "sqlite":
            sa = pytest.importorskip("sqlalchemy")
            engine = sa.create_engine(f"sqlite:///{self.tmp_path / 'rl.db'}")
            self._cleanups.append(engine.dispose)
            self._store = engine
        else:
            engine = postgres_engine()
            prefix = self.prefix

            def drop() -> None:
                from cognitionos.ratelimit._sql import drop_tables

                drop_tables(engine, table_prefix=f"{prefix}_")
                engine.dispose()

            self._cleanups.append(drop)
            self._store = engine
        return self._store

    def options(self) -> dict[str, Any]:
        if self.kind in ("redis", "cluster"):
            return {"prefix": self.prefix, "server_time": False}
        if self.kind == "postgresql":
            return {"prefix": f"{self.prefix}_"}
        return {}

    def close(self) -> None:
        for fn in reversed(self._cleanups):
            fn()


BACKENDS = [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.cluster),
]


@pytest.fixture(params=BACKENDS)
def backends(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backends]:
    b = Backends(request.param, tmp_path)
    if request.param == "cluster":
        b.cluster_url = request.getfixturevalue("redis_cluster_url")
    yield b
    b.close()


@pytest.fixture
def limiter_factory(backends: Backends) -> Factory:
    """``limiter_factory(algorithm, clock=..., **options)`` -> RateLimiter on this backend."""

    def make(algorithm: str, clock: ManualClock | None = None, **options: Any) -> RateLimiter:
        clock = clock or ManualClock(T0)
        return RateLimiter(
            backends.store(), algorithm=algorithm, clock=clock, **backends.options(), **options
        )

    make.kind = backends.kind  # type: ignore[attr-defined]
    return make


@pytest.fixture
def async_limiter_factory(backends: Backends) -> Factory:
    """Async twin of ``limiter_factory``."""

    def make(algorithm: str, clock: ManualClock | None = None, **options: Any) -> AsyncRateLimiter:
        clock = clock or ManualClock(T0)
        store = backends.store()
        if backends.kind == "redis":
            store = REDIS_URL  # the limiter owns (and aclose() closes) its asyncio client
        elif backends.kind == "cluster":
            backends.store()  # registers the cleanup of this test's keys
            store = backends.cluster_url
        return AsyncRateLimiter(
            store, algorithm=algorithm, clock=clock, **backends.options(), **options
        )

    return make
