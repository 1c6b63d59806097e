"""A hung backend is bounded: after the limiter's timeout, ``on_backend_error`` decides.

Before: a SIGSTOPped Redis blocked the async limiter's ``hit()`` for as long as it hung (its
own RESP connections had no read timeout) and the sync one for twice redis-py's socket
timeout; a locked SQLite file blocked a decision for the store's 30 s busy timeout; a
PostgreSQL backend process that stopped answering (SIGSTOP) blocked ``hit()`` forever, and a
row lock held by another session blocked it for as long as that session held it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.ratelimit import AsyncRateLimiter, Limit, RateLimiter

LIMIT = Limit(amount=100, period=60)
TIMEOUT = 0.2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stoppable_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own (it gets SIGSTOPped), on a free port."""
    pytest.importorskip("redis")
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("redis-server did not start")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


def _elapsed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["url", "client without timeouts"])
def test_sync_hit_on_a_stopped_redis_is_bounded(stoppable_redis, mode):
    import redis

    url, proc = stoppable_redis
    store = url if mode == "url" else redis.Redis.from_url(url, socket_timeout=None)
    limiter = RateLimiter(store, on_backend_error="open", timeout=TIMEOUT, connect_timeout=TIMEOUT)
    assert limiter.hit(LIMIT, "warm").allowed  # the limiter's connection is open
    os.kill(proc.pid, signal.SIGSTOP)
    d, waited = _elapsed(lambda: limiter.hit(LIMIT, "k"))
    assert d.allowed  # failed open
    assert TIMEOUT * 0.9 <= waited < TIMEOUT * 5
    counts = limiter.counters.snapshot()
    assert counts["backend_errors"] == 1 and counts["fallbacks"] == 1
    os.kill(proc.pid, signal.SIGCONT)
    limiter.close()


@pytest.mark.redis
@pytest.mark.parametrize("mode", ["url", "client without timeouts"])
def test_async_hit_on_a_stopped_redis_is_bounded(stoppable_redis, mode):
    from redis.asyncio import Redis

    url, proc = stoppable_redis

    async def scenario() -> float:
        store = url if mode == "url" else Redis.from_url(url, socket_timeout=None)
        limiter = AsyncRateLimiter(
            store, on_backend_error="closed", timeout=TIMEOUT, connect_timeout=TIMEOUT
        )
        assert (await limiter.hit(LIMIT, "warm")).allowed
        os.kill(proc.pid, signal.SIGSTOP)
        start = time.perf_counter()
        # a cap far above the bound: a hang fails the test instead of blocking the suite
        d = await asyncio.wait_for(limiter.hit(LIMIT, "k"), 10)
        waited = time.perf_counter() - start
        assert not d.allowed  # failed closed
        assert limiter.counters.snapshot()["backend_errors"] == 1
        os.kill(proc.pid, signal.SIGCONT)
        await limiter.aclose()
        if mode != "url":
            await store.aclose()
        return waited

    waited = asyncio.run(scenario())
    assert TIMEOUT * 0.9 <= waited < TIMEOUT * 5


@pytest.mark.redis
def test_default_timeout_applies_when_nothing_sets_one(stoppable_redis):
    url, proc = stoppable_redis
    limiter = RateLimiter(url, on_backend_error="open")
    assert limiter.hit(LIMIT, "warm").allowed
    os.kill(proc.pid, signal.SIGSTOP)
    d, waited = _elapsed(lambda: limiter.hit(LIMIT, "k"))
    assert d.allowed and 0.9 <= waited < 3  # DEFAULT_TIMEOUT is 1 s
    os.kill(proc.pid, signal.SIGCONT)
    limiter.close()


@pytest.fixture
def sqlite_lock(tmp_path) -> Iterator[tuple[str, sqlite3.Connection]]:
    """A SQLite URL, and a connection that write-locks it on ``execute("BEGIN IMMEDIATE")``."""
    path = tmp_path / "rl.db"
    holder = sqlite3.connect(path, isolation_level=None)
    yield f"sqlite:///{path}", holder
    if holder.in_transaction:
        holder.rollback()
    holder.close()


@pytest.mark.sqlite
def test_sync_hit_on_a_locked_sqlite_waits_only_the_timeout(sqlite_lock):
    url, holder = sqlite_lock
    limiter = RateLimiter(url, on_backend_error="open", timeout=TIMEOUT)
    holder.execute("BEGIN IMMEDIATE")
    d, waited = _elapsed(lambda: limiter.hit(LIMIT, "k"))
    assert d.allowed and TIMEOUT * 0.9 <= waited < TIMEOUT * 5
    assert limiter.counters.snapshot()["backend_errors"] == 1
    limiter.close()


@pytest.mark.sqlite
def test_async_hit_on_a_locked_sqlite_waits_only_the_timeout(sqlite_lock):
    url, holder = sqlite_lock

    async def scenario() -> float:
        limiter = AsyncRateLimiter(url, on_backend_error="closed", timeout=TIMEOUT)
        holder.execute("BEGIN IMMEDIATE")
        start = time.perf_counter()
        d = await asyncio.wait_for(limiter.hit(LIMIT, "k"), 10)
        waited = time.perf_counter() - start
        assert not d.allowed and limiter.counters.snapshot()["backend_errors"] == 1
        await limiter.aclose()
        return waited

    waited = asyncio.run(scenario())
    assert TIMEOUT * 0.9 <= waited < TIMEOUT * 5


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "1", True])
def test_timeouts_are_validated(bad):
    for name in ("timeout", "connect_timeout"):
        with pytest.raises(ConfigurationError, match=name):
            RateLimiter("memory://", **{name: bad})


def _pg_pids(limiter) -> list[int]:
    """Server process ids of the limiter's own idle PostgreSQL connections."""
    return [conn.info.backend_pid for conn in limiter._backend._pg._idle]


@pytest.fixture
def pg_admin(postgres_url):
    """A plain SQLAlchemy engine on the test database, for locks and pg_terminate_backend."""
    sa = pytest.importorskip("sqlalchemy")
    engine = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.mark.postgresql
@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_hit_on_a_stopped_postgres_backend_is_bounded(postgres_url, pg_admin, asynchronous):
    from sqlalchemy import text

    prefix = f"rl_hang_{os.getpid()}_{int(asynchronous)}_"
    stopped: list[int] = []

    async def scenario() -> tuple[bool, float, dict[str, int]]:
        limiter = AsyncRateLimiter(
            postgres_url, on_backend_error="open", timeout=TIMEOUT, prefix=prefix
        )
        assert (await limiter.hit(LIMIT, "warm")).allowed
        stopped.extend(_pg_pids(limiter))
        for pid in stopped:
            os.kill(pid, signal.SIGSTOP)
        start = time.perf_counter()
        d = await asyncio.wait_for(limiter.hit(LIMIT, "k"), 10)
        waited = time.perf_counter() - start
        counts = limiter.counters.snapshot()
        await limiter.aclose()
        return d.allowed, waited, counts

    try:
        if asynchronous:
            allowed, waited, counts = asyncio.run(scenario())
        else:
            limiter = RateLimiter(
                postgres_url, on_backend_error="open", timeout=TIMEOUT, prefix=prefix
            )
            assert limiter.hit(LIMIT, "warm").allowed
            stopped.extend(_pg_pids(limiter))
            assert stopped, "the limiter keeps its connection for the next decision"
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
            d, waited = _elapsed(lambda: limiter.hit(LIMIT, "k"))
            allowed, counts = d.allowed, limiter.counters.snapshot()
            # the stopped session was given up; a later decision opens a new one and works
            time.sleep(1.1)  # retry_backend_after
            assert limiter.hit(LIMIT, "k2").remaining == LIMIT.amount - 1
            limiter.close()
    finally:
        for pid in stopped:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        with pg_admin.connect() as conn:
            for pid in stopped:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        from cognitionos.ratelimit._sql import drop_tables

        drop_tables(pg_admin, table_prefix=prefix)
    assert stopped
    assert allowed  # failed open
    # the watchdog closes the socket after timeout + 0.25 s of grace
    assert TIMEOUT <= waited < TIMEOUT + 2
    assert counts["backend_errors"] == 1 and counts["fallbacks"] == 1


@pytest.mark.postgresql
def test_hit_waiting_on_a_postgres_row_lock_waits_only_the_timeout(postgres_url, pg_admin):
    from sqlalchemy import text

    prefix = f"rl_lock_{os.getpid()}_"
    limiter = RateLimiter(postgres_url, on_backend_error="closed", timeout=TIMEOUT, prefix=prefix)
    try:
        assert limiter.hit(LIMIT, "k").allowed  # the row exists
        with pg_admin.connect() as holder:
            holder = holder.execution_options(isolation_level="READ COMMITTED")
            tx = holder.begin()
            # every state row of this limiter, locked by another session
            holder.execute(text(f"SELECT rl_key FROM {prefix}ratelimit_state FOR UPDATE"))
            d, waited = _elapsed(lambda: limiter.hit(LIMIT, "k"))
            tx.rollback()
        assert not d.allowed  # failed closed
        assert TIMEOUT * 0.9 <= waited < TIMEOUT + 2
        assert limiter.counters.snapshot()["backend_errors"] == 1
        # the server cancelled the statement itself: the connection is still good, and the
        # count went on from where it was (the timed-out decision changed nothing)
        time.sleep(1.1)
        assert limiter.hit(LIMIT, "k").remaining == LIMIT.amount - 2
    finally:
        limiter.close()
        from cognitionos.ratelimit._sql import drop_tables

        drop_tables(pg_admin, table_prefix=prefix)


@pytest.mark.postgresql
def test_closing_a_postgres_limiter_ends_its_watchdog_thread(postgres_url):
    import threading

    def watchdogs() -> int:
        return sum(t.name == "cognitionos-ratelimit-watchdog" for t in threading.enumerate())

    before = watchdogs()
    limiter = RateLimiter(postgres_url, timeout=TIMEOUT, prefix=f"wd{os.getpid()}")
    assert limiter.hit(Limit.parse("5/minute"), "k").allowed
    assert watchdogs() == before + 1
    limiter.close()
    deadline = time.monotonic() + 5
    while watchdogs() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert watchdogs() == before  # one thread per limiter ever made would leak in a server
