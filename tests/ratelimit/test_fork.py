"""Limiters used before ``os.fork()``: 4 children x 50 hits are counted exactly, without errors.

Before: on PostgreSQL the children shared the parent's pooled connections; 2 of 4 children
failed ("connection in transaction status INTRANS", "the connection is lost") and 101 of
200 hits were counted.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from cognitionos.ratelimit import Limit
from tests.storage.test_fork import CHILDREN, PER_CHILD, run_children

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

LIMIT = Limit(amount=10_000, period=3600)
TOTAL = CHILDREN * PER_CHILD


@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_log"])
def test_forked_children_hit_exactly(limiter_factory, algorithm):
    # SQLite's busy wait is no queue: under load a child may wait seconds for its turn
    limiter = limiter_factory(algorithm, timeout=30)
    assert limiter.hit(LIMIT, "k").allowed  # the parent's connections are open

    def work() -> None:
        for _ in range(PER_CHILD):
            if not limiter.hit(LIMIT, "k").allowed:
                raise AssertionError("refused")

    assert run_children(work) == []
    used = LIMIT.amount - limiter.stats(LIMIT, "k").remaining
    # memory is per process: the children counted in their own copies
    assert used == (1 if limiter_factory.kind == "memory" else 1 + TOTAL)
    assert limiter.counters.snapshot()["backend_errors"] == 0
    limiter.close()


def test_forked_children_of_an_async_limiter(async_limiter_factory, backends):
    limiter = async_limiter_factory("gcra", timeout=30)
    loop = asyncio.new_event_loop()  # the parent's loop lives on, as a server's would
    loop.run_until_complete(limiter.hit(LIMIT, "k"))  # the parent's connections are open

    def work() -> None:
        async def hits() -> None:
            for _ in range(PER_CHILD):
                if not (await limiter.hit(LIMIT, "k")).allowed:
                    raise AssertionError("refused")

        asyncio.run(hits())

    try:
        assert run_children(work) == []
        d = loop.run_until_complete(limiter.stats(LIMIT, "k"))
        assert LIMIT.amount - d.remaining == (1 if backends.kind == "memory" else 1 + TOTAL)
    finally:
        loop.run_until_complete(limiter.aclose())
        loop.close()


def test_memory_limiter_lock_held_at_fork_is_free_in_the_child():
    """A thread inside a decision when another forks must not deadlock the child."""
    import threading

    from cognitionos.ratelimit import RateLimiter

    limiter = RateLimiter("memory://")
    backend = limiter._backend
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with backend._lock:
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    try:

        def work() -> None:
            lock = backend._lock
            for _ in range(PER_CHILD):  # the fast path and the general path, one lock
                assert limiter.hit(LIMIT, "k").allowed
                assert limiter.hit_many([(LIMIT, "k"), (LIMIT, "j")]).allowed
            assert backend._lock is lock

        assert run_children(work, n=1, deadline=10) == []
    finally:
        release.set()
        thread.join()
