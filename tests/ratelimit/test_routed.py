"""The limiter's own per-node channels on Redis Cluster (cognitionos/ratelimit/_routed.py).

The reference is redis-py's ``RedisCluster`` client, which the limiter used before (and still
falls back to): the same random hit sequences, leased and per hit, run once through the
routed channels and once through the client, on the same cluster, must give identical
decisions and identical counts on the server. Then a slot is migrated to another primary
under a running limiter (``CLUSTER SETSLOT … IMPORTING/MIGRATING``, ``MIGRATE``, ``SETSLOT …
NODE``): the next call gets ``MOVED``, the channel refreshes its slot map and the decisions
stay exact.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import LeasePolicy, Limit, RateLimiter
from cognitionos.ratelimit._redis import pack_command
from cognitionos.ratelimit._routed import RoutedChannel

from .conftest import T0

pytestmark = pytest.mark.cluster

LIMITS = [Limit.parse("40/minute"), Limit.parse("300/hour")]


def _limiters(url: str, prefix: str, clock: ManualClock, routed: bool) -> list[RateLimiter]:
    """Three leasing holders and one per-hit limiter sharing ``prefix``."""
    out = [
        RateLimiter(
            url,
            clock=clock,
            server_time=False,
            prefix=prefix,
            lease=LeasePolicy(ttl=5.0, initial_slice=3, max_slice=50),
        )
        for _ in range(3)
    ]
    out.append(RateLimiter(url, clock=clock, server_time=False, prefix=prefix))
    for limiter in out:
        backend = limiter._backend
        assert isinstance(backend._routed, RoutedChannel)
        if routed:
            # prove the client's own paths are not used for decisions on this side
            backend.client.pipeline = _refuse
        else:
            backend._routed = None  # the reference: redis-py's RedisCluster does everything
    return out


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("the routed side went through RedisCluster.pipeline")


def _view(d: Any) -> tuple[Any, ...]:
    return (d.allowed, d.limit, d.remaining, round(d.reset_after, 6), d.retry_after, d.key)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_routed_channels_decide_exactly_as_the_cluster_client(redis_cluster_url, seed, monkeypatch):
    rng = random.Random(seed)
    # keys spread over the three primaries: sweeps of expired slices cross nodes
    keys = [f"user:{i}" for i in range(12)]
    ops = []
    for _ in range(1500):
        r = rng.random()
        ops.append(
            (
                rng.randrange(4),
                rng.choice(LIMITS),
                rng.choice(keys),
                1 if r < 0.8 else rng.randint(2, 4),
                rng.choice([0, 0, 0, 0.05, 0.4, 3.0]) if rng.random() < 0.1 else 0,
            )
        )
    nodes_per_call: list[int] = []
    real_run = RoutedChannel.run

    def counting_run(self: RoutedChannel, packed: list[bytes], slots: list[int]) -> list[Any]:
        nodes_per_call.append(len({self.primary(s).name for s in slots}))
        return real_run(self, packed, slots)

    monkeypatch.setattr(RoutedChannel, "run", counting_run)
    results = {}
    for routed in (True, False):
        prefix = f"t{uuid.uuid4().hex[:8]}"
        clock = ManualClock(T0)
        limiters = _limiters(redis_cluster_url, prefix, clock, routed)
        seen = []
        for who, limit, key, cost, advance in ops:
            seen.append(_view(limiters[who].hit(limit, key, cost)))
            if advance:
                clock.advance(advance)
        stats = [limiters[i].lease_stats() for i in range(3)]
        for limiter in limiters[:3]:
            limiter.close()  # hands back unused slices
        probe = limiters[3]
        counts = [probe.stats(limit, key).remaining for limit in LIMITS for key in keys]
        probe.close()
        results[routed] = (seen, counts, stats)
    routed_seen, routed_counts, routed_stats = results[True]
    ref_seen, ref_counts, ref_stats = results[False]
    assert sum(d[0] for d in ref_seen) > 100 and sum(not d[0] for d in ref_seen) > 100
    for i, (a, b) in enumerate(zip(routed_seen, ref_seen, strict=True)):
        assert a == b, f"decision {i} ({ops[i]}): routed {a}, RedisCluster {b}"
    assert routed_counts == ref_counts
    for a, b in zip(routed_stats, ref_stats, strict=True):
        assert {k: a[k] for k in ("local", "round_trips", "slices", "returned")} == {
            k: b[k] for k in ("local", "round_trips", "slices", "returned")
        }
    assert routed_stats[0]["round_trips"] > 20  # the sequence did exercise renewals
    assert max(nodes_per_call) > 1  # and pipelines spanning several nodes


def test_async_routed_channels_decide_exactly_as_the_cluster_client(redis_cluster_url):
    import asyncio

    from cognitionos.ratelimit import AsyncRateLimiter
    from cognitionos.ratelimit._routed import AsyncRoutedChannel

    rng = random.Random(7)
    keys = [f"user:{i}" for i in range(4)]
    ops = [
        (
            rng.randrange(3),
            rng.choice(LIMITS),
            rng.choice(keys),
            rng.choice([1, 1, 1, 2]),
            rng.choice([0, 0.05, 0.4, 6.0]) if rng.random() < 0.1 else 0,
        )
        for _ in range(700)
    ]

    async def side(routed: bool) -> tuple[list[Any], list[int], list[dict[str, int]]]:
        prefix = f"t{uuid.uuid4().hex[:8]}"
        clock = ManualClock(T0)
        limiters = [
            AsyncRateLimiter(
                redis_cluster_url,
                clock=clock,
                server_time=False,
                prefix=prefix,
                lease=LeasePolicy(ttl=5.0, initial_slice=3, max_slice=50),
            )
            for _ in range(2)
        ]
        limiters.append(
            AsyncRateLimiter(redis_cluster_url, clock=clock, server_time=False, prefix=prefix)
        )
        for limiter in limiters:
            backend = limiter._backend
            assert isinstance(backend._routed, AsyncRoutedChannel)
            if routed:
                backend.client.pipeline = _refuse
                backend.client.execute_command = _refuse
            else:
                backend._routed = None
        seen = []
        for who, limit, key, cost, advance in ops:
            seen.append(_view(await limiters[who].hit(limit, key, cost)))
            if advance:
                clock.advance(advance)
        stats = [limiters[i].lease_stats() for i in range(2)]
        for limiter in limiters[:2]:
            await limiter.aclose()
        probe = limiters[2]
        counts = [(await probe.stats(limit, key)).remaining for limit in LIMITS for key in keys]
        await probe.aclose()
        return seen, counts, stats

    routed_side = asyncio.run(side(True))
    reference = asyncio.run(side(False))
    assert sum(d[0] for d in reference[0]) > 50 and sum(not d[0] for d in reference[0]) > 50
    for i, (a, b) in enumerate(zip(routed_side[0], reference[0], strict=True)):
        assert a == b, f"decision {i} ({ops[i]}): routed {a}, RedisCluster {b}"
    assert routed_side[1] == reference[1]
    fields = ("local", "round_trips", "slices", "returned")
    for a, b in zip(routed_side[2], reference[2], strict=True):
        assert {k: a[k] for k in fields} == {k: b[k] for k in fields}
    assert routed_side[2][0]["round_trips"] > 20


# -- a slot moves under a running limiter ------------------------------------------------------


def _node_ids(ports: list[int]) -> dict[int, str]:
    import redis

    out = {}
    for port in ports:
        with redis.Redis(port=port) as c:
            out[port] = c.execute_command("CLUSTER", "MYID").decode()
    return out


def begin_migration(cluster: Any, slot: int, source: int, target: int) -> dict[int, str]:
    """Mark ``slot`` as migrating from ``source`` to ``target``; the primaries' node ids."""
    import redis

    ids = _node_ids(cluster.primaries())
    with redis.Redis(port=target) as dst, redis.Redis(port=source) as src:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
    return ids


def move_keys(slot: int, source: int, target: int, names: list[bytes] | None = None) -> int:
    """``MIGRATE`` the slot's keys (or ``names``) from ``source`` to ``target``."""
    import redis

    moved = 0
    with redis.Redis(port=source) as src:
        while True:
            batch = names or src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            if not batch:
                return moved
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *batch)
            moved += len(batch)
            if names:
                return moved


def end_migration(ids: dict[int, str], slot: int, target: int) -> None:
    """Every primary learns the slot's new owner at once."""
    import redis

    for port in ids:
        with redis.Redis(port=port) as c:
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])


def migrate_slot(cluster: Any, slot: int, source: int, target: int) -> int:
    """Move ``slot`` with its keys from primary ``source`` to primary ``target`` (the steps
    ``redis-cli --cluster reshard`` takes); the number of keys moved."""
    ids = begin_migration(cluster, slot, source, target)
    moved = move_keys(slot, source, target)
    end_migration(ids, slot, target)
    return moved


def test_a_moved_slot_is_followed_and_decisions_stay_exact(redis_cluster, monkeypatch):
    from redis.crc import key_slot

    prefix = f"t{uuid.uuid4().hex[:8]}"
    clock = ManualClock(T0)
    limit = Limit.parse("500/hour")
    url = redis_cluster.url
    leased = RateLimiter(
        url, clock=clock, server_time=False, prefix=prefix, lease=LeasePolicy(max_slice=20)
    )
    plain = RateLimiter(url, clock=clock, server_time=False, prefix=prefix)
    refreshes = []
    real_refresh = RoutedChannel.refresh

    def counting_refresh(self: RoutedChannel) -> None:
        refreshes.append(1)
        real_refresh(self)

    monkeypatch.setattr(RoutedChannel, "refresh", counting_refresh)
    key = "tenant:moving"
    admitted = sum(leased.hit(limit, key).allowed for _ in range(60))
    admitted += sum(plain.hit(limit, key).allowed for _ in range(10))
    assert admitted == 70
    skey = leased._lease.keys(leased._s.specs(limit)[0], key)[0]
    slot = key_slot(skey.encode())
    source = redis_cluster.primary_of(skey)
    target = next(p for p in redis_cluster.primaries() if p != source)
    routed = leased._backend._routed
    assert routed.primary(slot).port == source
    try:
        assert migrate_slot(redis_cluster, slot, source, target) >= 2  # state and lease set
        assert routed.primary(slot).port == source  # the limiter's map is stale now
        # the per-hit path: MOVED, refresh, resent once on the new owner
        assert plain.hit(limit, key).allowed
        assert len(refreshes) == 1
        assert routed.primary(slot).port == source  # each limiter has its own map
        # the leased path: slices run out, the renewal meets MOVED and follows it
        admitted += 1 + sum(leased.hit(limit, key).allowed for _ in range(100))
        assert len(refreshes) == 2
        assert routed.primary(slot).port == target
        assert leased.lease_stats()["round_trips"] > 5
        leased.close()
        assert admitted == 171
        assert plain.stats(limit, key).remaining == 500 - 171  # nothing lost, nothing twice
    finally:
        leased.close()
        plain.close()
        migrate_slot(redis_cluster, slot, target, source)  # the session's cluster as it was


def test_ask_during_a_migration_is_followed_and_tryagain_is_bounded(redis_cluster):
    """Mid-migration: a key already moved gets ``ASK`` from the old owner, and the channel
    sends ``ASKING`` + the call to the new one; a call over two keys split between the nodes
    gets ``TRYAGAIN`` and gives up after the bounded rounds, as an error reply."""
    import time

    import redis
    from redis.crc import key_slot

    from cognitionos.ratelimit._routed import REDIRECTS, TRYAGAIN_PAUSE
    from cognitionos.storage._redis_common import cluster_kwargs
    from cognitionos.storage._url import parse_url

    url = parse_url(redis_cluster.url)
    client = redis.RedisCluster(**cluster_kwargs(url, url.raw, asynchronous=False))
    channel = RoutedChannel(client, timeout=2.0, connect_timeout=1.0)
    sha = client.script_load("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    two = client.script_load(
        "return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])"
    )
    tag = f"ask{uuid.uuid4().hex[:6]}"
    a, b = f"{{{tag}}}:a", f"{{{tag}}}:b"
    slot = key_slot(a.encode())
    source = redis_cluster.primary_of(a)
    target = next(p for p in redis_cluster.primaries() if p != source)
    assert channel.pipeline([("EVALSHA", sha, "1", a, "5"), ("EVALSHA", sha, "1", b, "7")]) == [
        5,
        7,
    ]
    ids = begin_migration(redis_cluster, slot, source, target)
    try:
        assert move_keys(slot, source, target, [a.encode()]) == 1
        assert channel.primary(slot).port == source  # the map still names the old owner
        # a is on the new owner only: ASK, then ASKING + EVALSHA there; b is still at home
        assert channel.pipeline([("EVALSHA", sha, "1", a, "1"), ("EVALSHA", sha, "1", b, "1")]) == [
            6,
            8,
        ]
        assert (
            channel.call(pack_command(("EVALSHA", sha, "1", a, "1")), ("EVALSHA", sha, "1", a, "1"))
            == 7
        )
        # a and b together are split between the nodes: TRYAGAIN, a bounded number of times
        started = time.monotonic()
        reply = channel.pipeline([("EVALSHA", two, "2", a, b, "1")])[0]
        waited = time.monotonic() - started
        assert isinstance(reply, redis.exceptions.TryAgainError)
        pauses = sum(TRYAGAIN_PAUSE * (r + 1) for r in range(REDIRECTS))
        assert pauses <= waited < pauses + 1.5
        move_keys(slot, source, target)
        end_migration(ids, slot, target)
        assert channel.pipeline([("EVALSHA", two, "2", a, b, "1")]) == [8 + 9]  # MOVED: refresh
        assert channel.primary(slot).port == target
    finally:
        ids = begin_migration(redis_cluster, slot, target, source)
        move_keys(slot, target, source)
        end_migration(ids, slot, source)
        client.delete(a)
        client.delete(b)
        channel.close()
        client.close()
