"""8 processes x 4 threads hammering one key on real Redis, a Redis Cluster, PostgreSQL and a
SQLite file admit exactly 50."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import pytest

from .conftest import POSTGRES_URL, REDIS_URL, postgres_engine, redis_client

PROCESSES, THREADS, HITS_PER_THREAD, TRIALS = 8, 4, 8, 10
EXACT = ["sliding_log", "fixed_window_anchored"]


def hammer(kind: str, prefix: str, algorithm: str, key: str, url: str = "") -> int:
    """Run in a worker process: 4 threads hit ``key``; returns how many were admitted."""
    from cognitionos.ratelimit import Limit, RateLimiter

    engine = None
    if kind == "redis":
        limiter = RateLimiter(REDIS_URL, algorithm=algorithm, prefix=prefix)
    elif kind == "cluster":  # url: the cluster's seeds
        limiter = RateLimiter(url, algorithm=algorithm, prefix=prefix)
    elif kind == "sqlite":  # prefix: the database file (decisions on per-thread connections)
        limiter = RateLimiter(f"sqlite:///{prefix}", algorithm=algorithm)
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(POSTGRES_URL, pool_size=THREADS, max_overflow=0)
        limiter = RateLimiter(engine, algorithm=algorithm, prefix=f"{prefix}_")
    limit = Limit.parse("50/minute")
    admitted = [0] * THREADS
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        start.wait()
        for _ in range(HITS_PER_THREAD):
            admitted[i] += limiter.hit(limit, key).allowed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    limiter.close()
    if engine is not None:
        engine.dispose()
    return sum(admitted)


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=ctx) as executor:
        yield executor


def run_trials(
    pool: ProcessPoolExecutor,
    kind: str,
    prefix: str,
    algorithm: str,
    trials: int = TRIALS,
    url: str = "",
) -> list[int]:
    totals = []
    for _ in range(trials):
        key = f"hammer:{uuid.uuid4().hex}"
        futures = [pool.submit(hammer, kind, prefix, algorithm, key, url) for _ in range(PROCESSES)]
        totals.append(sum(f.result(timeout=120) for f in futures))
    return totals


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("algorithm", EXACT)
def test_redis_admits_exactly_the_limit_under_contention(pool, algorithm):
    client = redis_client()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        totals = run_trials(pool, "redis", prefix, algorithm)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    assert totals == [50] * TRIALS


@pytest.mark.slow
@pytest.mark.cluster
@pytest.mark.parametrize("algorithm", EXACT)
def test_redis_cluster_admits_exactly_the_limit_under_contention(pool, algorithm, redis_cluster):
    """Each trial's key hashes to its own slot: over 10 trials all three primaries serve."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    totals = run_trials(pool, "cluster", prefix, algorithm, url=redis_cluster.url)
    assert totals == [50] * TRIALS


@pytest.mark.slow
@pytest.mark.postgresql
@pytest.mark.parametrize("algorithm", EXACT)
def test_postgresql_admits_exactly_the_limit_under_contention(pool, algorithm):
    engine = postgres_engine()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    from cognitionos.ratelimit._sql import SqlBackend, drop_tables

    SqlBackend(engine, prefix=f"{prefix}_")  # create the tables once, before the workers race
    try:
        totals = run_trials(pool, "postgresql", prefix, algorithm)
    finally:
        drop_tables(engine, table_prefix=f"{prefix}_")
        engine.dispose()
    assert totals == [50] * TRIALS


@pytest.mark.slow
@pytest.mark.sqlite
@pytest.mark.parametrize("algorithm", EXACT)
def test_sqlite_file_admits_exactly_the_limit_under_contention(pool, algorithm, tmp_path):
    from cognitionos.ratelimit import RateLimiter

    path = str(tmp_path / "rl.db")
    RateLimiter(f"sqlite:///{path}").close()  # tables and WAL once, before the workers race
    assert run_trials(pool, "sqlite", path, algorithm, trials=3) == [50] * 3
