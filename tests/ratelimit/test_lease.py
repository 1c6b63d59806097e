"""Leased quotas: configuration errors, exact accounting on real Redis, the local book."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.ratelimit import AsyncRateLimiter, BanPolicy, LeasePolicy, Limit, RateLimiter
from cognitionos.ratelimit._lease import SliceBook

from .conftest import REDIS_URL, T0, redis_client

# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 0},
        {"ttl": float("nan")},
        {"ttl": 10**6},
        {"share": 0.5},
        {"min_slice": 0},
        {"max_slice": 1, "min_slice": 2},
        {"initial_slice": True},
    ],
)
def test_lease_policy_refuses_bad_values(kwargs):
    with pytest.raises(ConfigurationError, match="LeasePolicy"):
        LeasePolicy(**kwargs)


def test_memory_and_sql_backends_refuse_lease_naming_the_fix(tmp_path):
    with pytest.raises(ConfigurationError, match=r"memory backend.*redis://"):
        RateLimiter("memory://", lease=LeasePolicy())
    pytest.importorskip("sqlalchemy")
    with pytest.raises(ConfigurationError, match=r"sqlite backend.*redis://"):
        RateLimiter(f"sqlite:///{tmp_path / 'rl.db'}", lease=LeasePolicy())


@pytest.mark.redis
@pytest.mark.parametrize(
    "algorithm", ["fixed_window_anchored", "sliding_log", "token_bucket", "gcra", "concurrency"]
)
def test_unsound_algorithms_are_refused_with_the_reason(algorithm):
    redis_client().close()
    with pytest.raises(
        ConfigurationError,
        match=f"supports the fixed_window and sliding_window algorithms, not {algorithm}: ",
    ):
        RateLimiter(REDIS_URL, algorithm=algorithm, lease=LeasePolicy())


@pytest.mark.redis
def test_auto_block_and_shadow_are_refused():
    redis_client().close()
    with pytest.raises(ConfigurationError, match="ban_policy"):
        RateLimiter(
            REDIS_URL, lease=LeasePolicy(), ban_policy=BanPolicy(3, find_window=60, ban_time=60)
        )
    with pytest.raises(ConfigurationError, match="shadow"):
        RateLimiter(REDIS_URL, lease=LeasePolicy(), shadow=True)
    with pytest.raises(ConfigurationError, match="LeasePolicy"):
        RateLimiter(REDIS_URL, lease={"ttl": 1})  # type: ignore[arg-type]


# -- on real Redis ---------------------------------------------------------------------------


@pytest.fixture
def prefix() -> Any:
    client = redis_client()
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def leased(
    prefix: str, clock: ManualClock, algorithm: str = "fixed_window", **policy: Any
) -> RateLimiter:
    return RateLimiter(
        REDIS_URL,
        algorithm=algorithm,
        clock=clock,
        server_time=False,
        prefix=prefix,
        lease=LeasePolicy(**policy),
    )


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window"])
def test_one_holder_admits_exactly_the_limit_with_few_round_trips(prefix, algorithm):
    clock = ManualClock(T0)
    limit = Limit(amount=1000, period=60)
    with leased(prefix, clock, algorithm, ttl=30) as limiter:
        admitted = sum(limiter.hit(limit, "k").allowed for _ in range(1000))
        stats = limiter.lease_stats()
        assert not limiter.hit(limit, "k").allowed
    assert admitted == 1000
    assert stats["local"] > 950  # decided in process
    assert stats["round_trips"] < 30
    assert stats["local"] + stats["round_trips"] + stats["plain"] == 1000


@pytest.mark.redis
def test_holders_share_the_quota_exactly_and_close_hands_back(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=500, period=60)
    a, b = leased(prefix, clock, ttl=30), leased(prefix, clock, ttl=30)
    plain = RateLimiter(REDIS_URL, clock=clock, server_time=False, prefix=prefix)
    got = 0
    for _ in range(300):
        got += a.hit(limit, "k").allowed
        got += b.hit(limit, "k").allowed
    assert got == 500
    # both took slices; what they did not use went back only when they were closed
    assert a.lease_stats()["slices"] > 0 and b.lease_stats()["slices"] > 0
    for _ in range(50):
        a.hit(limit, "other")
    held = a.lease_stats()["held"]
    assert held > 0
    assert plain.stats(limit, "other").remaining == 500 - 50 - held
    a.close()
    assert plain.stats(limit, "other").remaining == 450
    b.close()
    plain.close()


@pytest.mark.redis
def test_a_slice_is_at_most_remaining_over_share_times_holders(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=1000, period=60)
    limiters = [leased(prefix, clock, ttl=30, initial_slice=10_000) for _ in range(4)]
    plain = RateLimiter(REDIS_URL, clock=clock, server_time=False, prefix=prefix)
    remaining = 1000
    for n, limiter in enumerate(limiters, start=1):
        limiter.hit(limit, "k")
        held = limiter.lease_stats()["held"] + 1  # the hit itself came from the slice
        assert held == remaining // (2 * n)
        remaining -= held
        assert plain.stats(limit, "k").remaining == remaining
    for limiter in limiters:
        limiter.close()
    assert plain.stats(limit, "k").remaining == 1000 - 4  # every unused unit came back
    plain.close()


@pytest.mark.redis
def test_near_the_limit_every_hit_is_a_round_trip(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=10, period=60)
    with leased(prefix, clock, ttl=30, min_slice=4, initial_slice=8) as limiter:
        decisions = [limiter.hit(limit, "k") for _ in range(12)]
        stats = limiter.lease_stats()
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert decisions[-1].retry_after == pytest.approx(60 - (T0 % 60))
    # slices of 5 (10/2), then 1 < min_slice: the lease script decides one hit, and the next
    # ones go to the plain per-hit script until the mark ages out
    assert stats["slices"] == 1 and stats["per_hit"] == 1
    assert stats["plain"] == 12 - 5 - 1
    clock.advance(31)  # one ttl later the key asks for a slice again (still refused)
    with leased(prefix, clock, ttl=30, min_slice=4) as limiter:
        assert not limiter.hit(limit, "k").allowed
        assert limiter.lease_stats()["per_hit"] == 1


@pytest.mark.redis
def test_expired_slices_are_not_used_and_go_back(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=100, period=3600)
    plain = RateLimiter(REDIS_URL, clock=clock, server_time=False, prefix=prefix)
    with leased(prefix, clock, ttl=1, initial_slice=20) as limiter:
        assert limiter.hit(limit, "k").allowed
        assert limiter.lease_stats()["held"] == 19
        clock.advance(1.5)  # the lease ran out: the next hit asks again, returning 19
        assert limiter.hit(limit, "k").allowed
        stats = limiter.lease_stats()
        assert stats["local"] == 0 and stats["round_trips"] == 2
        assert stats["returned"] == 19
        held = stats["held"]
        assert plain.stats(limit, "k").remaining == 100 - 2 - held
        # an idle key's slice goes back with any round trip once it expired a ttl ago
        clock.advance(1.5)  # expired 0.5 s ago: kept for the key's own next round trip
        limiter.hit(limit, "another")
        assert plain.stats(limit, "k").remaining == 98 - held
        clock.advance(1.0)  # expired 1.5 s ago: swept
        limiter.hit(limit, "third")
        assert plain.stats(limit, "k").remaining == 98
    plain.close()


@pytest.mark.redis
def test_a_slice_never_outlives_its_window(prefix):
    clock = ManualClock(T0 + 59)  # one second before the minute rolls
    limit = Limit(amount=100, period=60)
    with leased(prefix, clock, ttl=30, initial_slice=50) as limiter:
        assert limiter.hit(limit, "k").allowed
        clock.advance(1)  # a new window: the old slice is void, the new one fresh
        d = limiter.hit(limit, "k")
        assert d.allowed
        assert limiter.lease_stats()["round_trips"] == 2
        assert d.remaining == 99


@pytest.mark.redis
def test_reset_drops_slices_and_leases(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=100, period=60)
    with leased(prefix, clock, ttl=30) as limiter:
        for _ in range(10):
            limiter.hit(limit, "k")
        limiter.reset(limit, "k")
        assert limiter.lease_stats()["held"] == 0
        client = redis_client()
        assert not list(client.scan_iter(match=f"{prefix}:*", count=100))
        client.close()
        assert limiter.hit(limit, "k").allowed


@pytest.mark.redis
def test_banned_keys_are_refused_at_the_next_round_trip(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=100, period=60)
    with leased(prefix, clock, ttl=1) as limiter:
        assert limiter.hit(limit, "k").allowed
        limiter.ban("k", 600)
        clock.advance(1)  # the slice expired: the next hit goes to the server
        d = limiter.hit(limit, "k")
        assert not d.allowed and d.banned


@pytest.mark.redis
def test_several_limits_and_batches_share_the_same_counters(prefix):
    clock = ManualClock(T0)
    with leased(prefix, clock, ttl=30) as limiter:
        limit = Limit(amount=50, period=60)
        for _ in range(10):
            assert limiter.hit(limit, "k").allowed
        held = limiter.lease_stats()["held"]
        d = limiter.hit_many([(limit, "k")])  # one round trip, charged beside the slice
        assert d.allowed and d.remaining == 50 - 11 - held
        both = limiter.hit("50/minute;1000/hour", "k")
        assert both.allowed and both.details


@pytest.mark.redis
def test_async_twin_admits_exactly_the_limit(prefix):
    async def main() -> tuple[int, dict[str, int]]:
        limiter = AsyncRateLimiter(
            REDIS_URL,
            clock=ManualClock(T0),
            server_time=False,
            prefix=prefix,
            lease=LeasePolicy(ttl=30),
        )
        limit = Limit(amount=300, period=60)

        async def worker() -> int:
            return sum([(await limiter.hit(limit, "k")).allowed for _ in range(100)])

        got = sum(await asyncio.gather(*[worker() for _ in range(5)]))
        stats = limiter.lease_stats()
        await limiter.aclose()
        return got, stats

    got, stats = asyncio.run(main())
    assert got == 300
    assert stats["local"] > stats["round_trips"]


@pytest.mark.redis
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_use_its_parents_slices(prefix):
    clock = ManualClock(T0)
    limit = Limit(amount=100, period=60)
    limiter = leased(prefix, clock, ttl=30)
    limiter.hit(limit, "k")
    assert limiter.lease_stats()["held"] > 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        held = limiter.lease_stats()["held"]
        os.write(write, str(held).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 100) == b"0"
    limiter.close()


# -- the local book against a reference model ------------------------------------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("install"), st.integers(0, 2), st.integers(1, 50), st.integers(1, 3)),
        st.tuples(st.just("take"), st.integers(0, 2), st.integers(1, 6), st.integers(0, 3)),
        st.tuples(st.just("detach"), st.integers(0, 2), st.integers(0, 1), st.integers(0, 3)),
        st.tuples(st.just("expired"), st.integers(0, 2), st.integers(0, 1), st.integers(0, 3)),
        st.tuples(st.just("drain"), st.integers(0, 2), st.integers(0, 1), st.integers(0, 3)),
    ),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(seq=ops, ttl=st.integers(1, 5))
def test_slice_book_matches_a_reference_model(seq, ttl):
    policy = LeasePolicy(ttl=ttl, min_slice=2, max_slice=40, initial_slice=3)
    book = SliceBook(policy)
    model: dict[int, list[int]] = {}  # key -> [grant, left, deadline, id]
    used: dict[int, int] = {}  # slice id -> admitted from it
    back: dict[int, int] = {}  # slice id -> handed back
    grants: dict[int, int] = {}
    ids = iter(range(10**6))
    now = 0
    sec = 1_000_000_000
    for op, key, n, dt in seq:
        now += dt * sec // 2
        if op == "install":
            if key in model:  # the limiter detaches before it installs
                continue
            sid = next(ids)
            cost = min(n, 1)
            book.install(key, sid, f"k{key}", n, cost, 7, now + ttl * sec, now + 9 * sec, 0, now)
            model[key] = [n, n - cost, now + ttl * sec, sid]
            grants[sid], used[sid] = n, cost
        elif op == "take":
            sl = book.take(key, n, now)
            m = model.get(key)
            expect = m is not None and m[1] >= n and now < m[2]
            assert (sl is not None) == expect
            if expect:
                assert m is not None
                m[1] -= n
                used[m[3]] += n
                assert sl is not None and sl.left == m[1]
        elif op == "detach":
            window, unused, want = book.detach(key, now)
            m = model.pop(key, None)
            assert unused == (m[1] if m else 0)
            assert window == (7 if m else -1)
            assert policy.min_slice <= want <= policy.max_slice
            if m:
                back[m[3]] = unused
        elif op == "expired":
            got = {sid: amount for sid, _, _, amount in book.expired(now)}
            dead = {k: m for k, m in model.items() if now >= m[2]}
            assert got == {m[3]: m[1] for m in dead.values() if m[1] > 0}
            for k, m in dead.items():
                del model[k]
                back[m[3]] = m[1]
        else:
            got = {sid: amount for sid, _, _, amount in book.drain()}
            assert got == {m[3]: m[1] for m in model.values() if m[1] > 0}
            for m in model.values():
                back[m[3]] = m[1]
            model.clear()
        assert book.held() == sum(m[1] for m in model.values())
    for sid, grant in grants.items():
        live = [m for m in model.values() if m[3] == sid]
        left = live[0][1] if live else back[sid]
        # every unit of a slice is admitted once or handed back once, never both
        assert used[sid] + left == grant


# -- CLI ----------------------------------------------------------------------------------------


@pytest.mark.redis
def test_cli_lists_leases_as_json_and_refuses_other_stores(prefix, tmp_path):
    import json

    from click.testing import CliRunner

    from cognitionos.cli import main

    limiter = RateLimiter(REDIS_URL, prefix=prefix, lease=LeasePolicy(ttl=60, initial_slice=7))
    limiter.hit(Limit(amount=1000, period=3600), "tenant:acme")
    runner = CliRunner()
    out = runner.invoke(
        main, ["ratelimit", "leases", "--store", REDIS_URL, "--prefix", prefix, "--json"]
    )
    assert out.exit_code == 0, out.output
    (record,) = json.loads(out.stdout)
    assert record["grant"] == 7 and record["holder"] == limiter._lease.holder
    assert 0 < record["expires_in"] <= 60
    limiter.close()
    out = runner.invoke(main, ["ratelimit", "leases", "--store", f"sqlite:///{tmp_path}/x.db"])
    assert out.exit_code == 1 and "Redis stores only" in out.output


def test_a_slice_handed_back_cannot_be_used_by_a_thread_that_fetched_it_before():
    # the hot path reads a key's slice before taking the lock: a slice detached, swept or
    # drained meanwhile must have nothing left, or a unit could be admitted and returned
    book = SliceBook(LeasePolicy())
    for hand_back in (
        lambda: book.detach("k", 5),
        lambda: book.expired(10**12),
        lambda: book.drain(),
    ):
        book.install("k", "spec", "k", 10, 1, 7, 10**9, 10**10, 0, 0)
        fetched = book.slices["k"]
        assert fetched.left == 9
        hand_back()
        assert fetched.left == 0 and "k" not in book.slices


@pytest.mark.redis
def test_a_return_sent_twice_or_late_changes_nothing(prefix):
    # a lost reply makes the limiter send a return again: it names its lease, so the second
    # copy (even after the key was leased again, same window) takes nothing back
    clock = ManualClock(T0)
    limit = Limit(amount=100, period=60)
    plain = RateLimiter(REDIS_URL, clock=clock, server_time=False, prefix=prefix)
    with leased(prefix, clock, ttl=30, initial_slice=10) as limiter:
        lease = limiter._lease
        assert limiter.hit(limit, "k").allowed  # a slice of 10, 9 left
        spec = lease.s.specs(limit)[0]
        ((_, _, lease_id, unused),) = lease.book.drain()
        assert unused == 9
        now = clock.time_ns() // 1000
        again = lease._command("r", spec, "k", 0, 0, lease_id, unused, now)
        assert [int(r) for r in lease.send([again])] == [9]
        assert plain.stats(limit, "k").remaining == 99
        assert [int(r) for r in lease.send([again])] == [0]
        assert limiter.hit(limit, "k").allowed  # leased again
        held = limiter.lease_stats()["held"]
        assert held > 0
        assert [int(r) for r in lease.send([again])] == [0]
        assert plain.stats(limit, "k").remaining == 98 - held
    plain.close()
