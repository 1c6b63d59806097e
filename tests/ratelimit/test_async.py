"""AsyncRateLimiter: same answers as the sync limiter, on every backend."""

from __future__ import annotations

import asyncio
import inspect

import pytest

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import AsyncRateLimiter, BanPolicy, Limit, RateLimiter

from .conftest import T0

PUBLIC = ["hit", "hit_many", "test", "stats", "reset", "release", "ban", "unban", "bans"]


def test_async_twin_has_the_same_methods_as_coroutines():
    for name in PUBLIC:
        sync, coro = getattr(RateLimiter, name), getattr(AsyncRateLimiter, name)
        assert inspect.iscoroutinefunction(coro), name
        assert list(inspect.signature(sync).parameters) == list(
            inspect.signature(coro).parameters
        ), name


@pytest.mark.parametrize("algorithm", ["sliding_log", "gcra", "concurrency"])
def test_async_matches_sync(async_limiter_factory, limiter_factory, algorithm):
    clock = ManualClock(T0)
    limit = Limit(amount=3, period=2)
    # on Redis Cluster hit_many takes one caller key (one slot): two limits on one key there
    pair = [(limit, "b"), (limit, "c")]
    if limiter_factory.kind == "cluster":
        pair = [(limit, "b"), (Limit(amount=2, period=1), "b")]

    async def scenario() -> list[tuple]:
        limiter = async_limiter_factory(algorithm, clock)
        out = []
        for _ in range(5):
            out.append(tuple((await limiter.hit(limit, "a"))[:5]))
            clock.advance(0.3)
        out.append(tuple((await limiter.hit_many(pair))[:5]))
        out.append(tuple((await limiter.stats(limit, "a"))[:5]))
        out.append(tuple((await limiter.test(limit, "a"))[:5]))
        await limiter.reset(limit, "a")
        out.append(tuple((await limiter.stats(limit, "a"))[:5]))
        await limiter.aclose()
        return out

    got = asyncio.run(scenario())
    clock.set(T0)
    sync = RateLimiter("memory://", algorithm=algorithm, clock=clock)
    want = []
    for _ in range(5):
        want.append(tuple(sync.hit(limit, "a")[:5]))
        clock.advance(0.3)
    want.append(tuple(sync.hit_many(pair)[:5]))
    want.append(tuple(sync.stats(limit, "a")[:5]))
    want.append(tuple(sync.test(limit, "a")[:5]))
    sync.reset(limit, "a")
    want.append(tuple(sync.stats(limit, "a")[:5]))
    assert got == want


def test_async_bans_and_leases(async_limiter_factory):
    clock = ManualClock(T0)

    async def scenario() -> None:
        limiter = async_limiter_factory(
            "concurrency", clock, ban_policy=BanPolicy(max_violations=1, find_window=9, ban_time=9)
        )
        slots = Limit(amount=1, period=30)
        async with limiter.lease(slots, "job") as d:
            assert d.allowed
            assert not (await limiter.hit(slots, "job")).allowed  # a violation: banned
        assert [b.key for b in await limiter.bans()] == ["job"]
        assert (await limiter.hit(slots, "job")).banned
        assert await limiter.unban("job")
        assert (await limiter.hit(slots, "job")).allowed
        ban = await limiter.ban("other", 5)
        assert ban.remaining == pytest.approx(5)
        await limiter.aclose()

    asyncio.run(scenario())
