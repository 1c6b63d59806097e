"""open_async_store: the same contract as coroutines, on every backend."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cognitionos.storage import Change, open_async_store


def run(coro):
    return asyncio.run(coro)


def test_async_roundtrip_every_backend(store_url, clock):
    async def scenario():
        kwargs = {} if store_url.startswith("redis") else {"clock": clock}
        store = open_async_store(store_url, **kwargs)
        ns = f"a{uuid.uuid4().hex[:8]}:"
        try:
            assert await store.set(ns + "k", b"v1") == 1
            assert await store.compare_and_set(ns + "k", b"v2", version=1) == 2
            assert await store.compare_and_set(ns + "k", b"v3", version=1) is None
            assert (await store.get(ns + "k")).value == b"v2"
            assert [e.key for e in await store.scan(ns)] == [ns + "k"]
            assert await store.incr(ns + "c", 2) == 2
            assert await store.get_counter(ns + "c") == 2
            await store.reset_counter(ns + "c")
            assert await store.get_counter(ns + "c") == 0
            events = await store.append_many(ns + "s", [b"a", b"b"])
            assert [e.seq for e in events] == [1, 2]
            assert [e.payload for e in await store.read(ns + "s", after=1)] == [b"b"]
            assert (await store.append(ns + "s", b"c")).seq == 3
            assert await store.delete(ns + "k") is True
            assert await store.ping() >= 0
        finally:
            await store.aclose()

    run(scenario())


@pytest.mark.redis
def test_async_redis_change_feed(redis_url):
    async def scenario():
        store = open_async_store(redis_url)
        ns = f"f{uuid.uuid4().hex[:8]}:"
        seen: list[Change] = []
        try:
            sub = store.subscribe(ns, seen.append)
            await store.wait_subscribed()
            await store.set(ns + "k", b"x")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            sub.close()
        finally:
            await store.aclose()
        assert seen == [Change(ns + "k", 1)]

    run(scenario())
