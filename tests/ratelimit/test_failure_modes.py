"""Backend down: raise, fail open, fail closed or fall back to local memory — logged and counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import BackendUnavailable
from cognitionos.ratelimit import Limit, RateLimiter

from .conftest import T0


@pytest.fixture
def dead_redis():
    redis = pytest.importorskip("redis")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # nothing listens on port 1: every command fails to connect, without retries
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )
    yield client
    client.close()


def test_raise_by_default(dead_redis):
    limiter = RateLimiter(dead_redis)
    with pytest.raises(BackendUnavailable, match="redis rate limiter"):
        limiter.hit(Limit(amount=1, period=1), "k")
    assert limiter.counters.snapshot()["backend_errors"] == 1


def test_fail_open_admits_and_logs(dead_redis, caplog):
    limiter = RateLimiter(dead_redis, on_backend_error="open")
    with caplog.at_level(logging.WARNING, logger="cognitionos.ratelimit"):
        d = limiter.hit(Limit(amount=1, period=1), "k")
    assert d.allowed
    assert "failing open" in caplog.text
    counts = limiter.counters.snapshot()
    assert counts["backend_errors"] == 1 and counts["fallbacks"] == 1


def test_fail_closed_refuses(dead_redis):
    limiter = RateLimiter(dead_redis, on_backend_error="closed")
    d = limiter.hit(Limit(amount=5, period=2), "k")
    assert not d.allowed and d.retry_after == 2


def test_local_fallback_enforces_in_process(dead_redis):
    limiter = RateLimiter(dead_redis, on_backend_error="local", clock=ManualClock(T0))
    limit = Limit(amount=2, period=60)
    assert [limiter.hit(limit, "k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.counters.snapshot()["fallbacks"] == 3


def test_backend_is_skipped_for_a_while_after_a_failure(dead_redis):
    clock = ManualClock(T0)
    limiter = RateLimiter(dead_redis, on_backend_error="open", clock=clock, retry_backend_after=5)
    limit = Limit(amount=1, period=1)
    for _ in range(3):
        assert limiter.hit(limit, "k").allowed
    # one real attempt, then the open breaker answers without touching the backend
    assert limiter.counters.snapshot()["backend_errors"] == 1
    clock.advance(5)
    limiter.hit(limit, "k")
    assert limiter.counters.snapshot()["backend_errors"] == 2


def _silent_redis() -> tuple[Any, int]:
    """A server that answers every command with +OK except EVALSHA, which it never answers."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve(conn: socket.socket) -> None:
        buffered = b""
        with conn:
            while data := conn.recv(65536):
                buffered += data
                while b"\r\n" in buffered:
                    # replies per command (RESP arrays): enough to count "*" headers
                    line, _, buffered = buffered.partition(b"\r\n")
                    if line.startswith(b"*") and b"EVALSHA" not in buffered[:64]:
                        conn.sendall(b"+OK\r\n")

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_async_commands_that_hang_time_out_like_redis_py():
    pytest.importorskip("redis")
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    from cognitionos.ratelimit import AsyncRateLimiter

    listener, port = _silent_redis()

    async def scenario() -> None:
        client = Redis(
            host="127.0.0.1", port=port, protocol=2, socket_timeout=0.2, retry=Retry(NoBackoff(), 0)
        )
        limiter = AsyncRateLimiter(client, on_backend_error="open")
        started = asyncio.get_running_loop().time()
        d = await limiter.hit(Limit(amount=1, period=1), "k")
        waited = asyncio.get_running_loop().time() - started
        assert d.allowed and limiter.counters.snapshot()["backend_errors"] == 1
        # the limiter's own connection times out, then redis-py's path does too
        assert 0.2 <= waited < 2
        await limiter.aclose()
        await client.aclose()

    try:
        asyncio.run(scenario())
    finally:
        listener.close()
