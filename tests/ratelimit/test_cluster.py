"""The limiter on Redis Cluster: one slot per caller key, the cross-slot refusal, no startup
without a reachable seed. (The engine matrix, the exactness and the failover tests run on the
cluster too: ``-k cluster``.)"""

from __future__ import annotations

import socket
import uuid

import pytest

from cognitionos.errors import BackendUnavailable, ConfigurationError
from cognitionos.ratelimit import AsyncRateLimiter, BanPolicy, Limit, RateLimiter


@pytest.mark.cluster
def test_all_state_of_one_caller_key_shares_a_slot(redis_cluster_url):
    from redis.crc import key_slot

    from cognitionos.ratelimit._batch import compile_spec

    with RateLimiter(redis_cluster_url, prefix=f"t{uuid.uuid4().hex[:8]}") as limiter:
        backend = limiter._backend
        assert backend.cluster
        key = "tenant:{acme} with braces and ünïcode"
        keys = [backend.ban_key(key), backend.viol_key(key)]
        for rate in ("10/second", "1000/day"):
            skey = backend.storage_key(compile_spec(Limit.parse(rate), limiter.algorithm), key)
            keys += [skey, skey + ":n"]
        assert len({key_slot(k.encode()) for k in keys}) == 1


@pytest.mark.cluster
def test_one_caller_many_limits_is_one_atomic_call_on_a_cluster(redis_cluster_url):
    policy = BanPolicy(max_violations=2, find_window=60, ban_time=30)
    with RateLimiter(
        redis_cluster_url, prefix=f"t{uuid.uuid4().hex[:8]}", ban_policy=policy
    ) as limiter:
        tight, roomy = Limit.parse("2/minute"), Limit.parse("100/hour")
        assert limiter.hit_many([(tight, "k"), (roomy, "k")]).allowed
        assert limiter.hit([tight, roomy], "k").allowed
        refused = limiter.hit_many([(tight, "k"), (roomy, "k")])
        assert not refused.allowed
        assert limiter.stats(roomy, "k").remaining == 98  # the refused call charged nothing
        assert not limiter.hit(tight, "k").allowed  # second violation: banned
        assert [b.key for b in limiter.bans()] == ["k"]
        assert limiter.unban("k")


@pytest.mark.cluster
def test_cross_slot_hit_many_names_the_fix_sync_and_async(redis_cluster_url):
    import asyncio

    limit = Limit.parse("5/minute")
    batch = [(limit, "ip:1.2.3.4"), (limit, "tenant:acme")]
    with RateLimiter(redis_cluster_url, prefix=f"t{uuid.uuid4().hex[:8]}") as limiter:
        with pytest.raises(ConfigurationError, match=r"'ip:1.2.3.4' \(slot \d+\).*hit_batch"):
            limiter.hit_many(batch)
        # the fix the error names: hit_batch decides each key on its own
        assert [d.allowed for d in limiter.hit_batch(batch)] == [True, True]

    async def scenario() -> None:
        limiter = AsyncRateLimiter(redis_cluster_url, prefix=f"t{uuid.uuid4().hex[:8]}")
        try:
            with pytest.raises(ConfigurationError, match="different hash slots"):
                await limiter.hit_many(batch)
        finally:
            await limiter.aclose()

    asyncio.run(scenario())


def test_unreachable_cluster_fails_at_construction():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable, match=f"127.0.0.1:{port}"):
        RateLimiter(f"redis+cluster://127.0.0.1:{port}/", connect_timeout=0.5)
