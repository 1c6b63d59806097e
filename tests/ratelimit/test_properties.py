"""Hypothesis properties of the algorithms and of the backends' agreement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import Algorithm, Limit, RateLimiter
from cognitionos.ratelimit import _core as core

from .conftest import T0, postgres_engine, redis_client

steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=400_000), st.integers(min_value=0, max_value=3)),
    min_size=1,
    max_size=150,
)


@settings(max_examples=300, deadline=None)
@given(
    seq=steps,
    amount=st.integers(min_value=1, max_value=8),
    period=st.integers(min_value=1, max_value=2_000_000),
)
def test_sliding_log_never_admits_more_than_the_limit_in_any_window(seq, amount, period):
    log = None
    now = T0 * 10**6
    admitted: list[tuple[int, int]] = []
    for dt, cost in seq:
        now += dt
        ok, *_ = core.sliding_log(log, now, period, amount, cost)
        if ok:
            log = core.sliding_log_commit(log, now, period, cost)
            admitted.append((now, cost))
    for t, _ in admitted:
        # every window (t - period, t] ending at an admission holds at most `amount`
        assert sum(c for u, c in admitted if t - period < u <= t) <= amount


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra"])
@settings(max_examples=200, deadline=None)
@given(
    seq=steps,
    amount=st.integers(min_value=1, max_value=20),
    burst=st.integers(min_value=1, max_value=6),
    period=st.integers(min_value=1, max_value=3_000_000),
)
def test_bucket_never_admits_more_than_burst_plus_rate_times_t(
    algorithm, seq, amount, burst, period
):
    fn = core.token_bucket if algorithm == "token_bucket" else core.gcra
    state = None
    now = T0 * 10**6
    admitted: list[tuple[int, int]] = []
    for dt, cost in seq:
        now += dt
        ok, *_, new = fn(state, now, period, amount, burst, min(cost, burst))
        if ok:
            state = new
            admitted.append((now, min(cost, burst)))
    for i, (start, _) in enumerate(admitted):
        total = 0
        for end, cost in admitted[i:]:
            total += cost
            # in [start, end]: burst + rate * t, rate = amount / period (integers, no rounding)
            assert total * period <= burst * period + amount * (end - start)


@settings(max_examples=200, deadline=None)
@given(seq=steps, amount=st.integers(min_value=1, max_value=10))
def test_token_bucket_and_gcra_admit_the_same(seq, amount):
    period, burst = 1_000_000, max(1, amount // 2)
    tb = gc = None
    now = T0 * 10**6
    for dt, cost in seq:
        now += dt
        cost = min(cost, burst)
        a = core.token_bucket(tb, now, period, amount, burst, cost)
        b = core.gcra(gc, now, period, amount, burst, cost)
        assert a[:4] == b[:4]
        tb = a[4] if a[0] else tb
        gc = b[4] if b[0] else gc


# -- memory, SQL and Redis decide identically ------------------------------------------------


@pytest.fixture(scope="module")
def shared_stores(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """One store per backend for the whole module; each example uses fresh keys."""
    import sqlalchemy as sa

    stores: dict[str, Any] = {}
    cleanups = []
    stores["sqlite"] = sa.create_engine(f"sqlite:///{tmp_path_factory.mktemp('x') / 'p.db'}")
    cleanups.append(stores["sqlite"].dispose)
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        client = redis_client()
    except pytest.skip.Exception:
        client = None
    if client is not None:
        stores["redis"] = client

        def clean_redis() -> None:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)

        cleanups.append(clean_redis)
    try:
        engine = postgres_engine()
    except pytest.skip.Exception:
        engine = None
    if engine is not None:
        stores["postgresql"] = engine

        def drop() -> None:
            from cognitionos.ratelimit._sql import drop_tables

            drop_tables(engine, table_prefix=f"{prefix}_")
            engine.dispose()

        cleanups.append(drop)
    stores["_prefix"] = prefix
    yield stores
    for fn in cleanups:
        fn()


sequences = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=700_000),  # µs since the previous hit
        st.sampled_from(["a", "b", "a+b"]),  # "a+b": hit_many over both keys
        st.integers(min_value=0, max_value=3),
    ),
    min_size=1,
    max_size=25,
)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", [a.value for a in Algorithm])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seq=sequences)
def test_backends_decide_identically(shared_stores, algorithm, seq):
    clock = ManualClock(T0 + 0.5)
    prefix = shared_stores["_prefix"]
    run = uuid.uuid4().hex[:8]
    limiters = {"memory": RateLimiter("memory://", algorithm=algorithm, clock=clock)}
    for kind in ("sqlite", "postgresql", "redis"):
        if kind not in shared_stores:
            continue
        opts: dict[str, Any] = {}
        if kind == "redis":
            opts = {"prefix": prefix, "server_time": False}
        elif kind == "postgresql":
            opts = {"prefix": f"{prefix}_"}
        limiters[kind] = RateLimiter(shared_stores[kind], algorithm=algorithm, clock=clock, **opts)
    limit, other = Limit(amount=3, period=1, burst=3), Limit(amount=4, period=2, burst=4)

    def decide(lim: RateLimiter, key: str, cost: int) -> tuple:
        if key == "a+b":
            d = lim.hit_many([(limit, f"{run}:a", cost), (other, f"{run}:b", cost)])
            return tuple(d[:5]) + tuple(tuple(x[:5]) for x in d.details)
        return tuple(lim.hit(limit, f"{run}:{key}", cost)[:5])

    for dt, key, cost in seq:
        clock.advance(ns=dt * 1000)
        answers = {kind: decide(lim, key, cost) for kind, lim in limiters.items()}
        assert len(set(answers.values())) == 1, answers


def test_sliding_log_counts_survivors_after_compaction():
    # Found by the cross-backend property: after half the log expired and was compacted,
    # the running totals still included the dropped entries, so the window looked fuller.
    from cognitionos.ratelimit import _core as core

    log = core.sliding_log_commit(None, 0, 1_000_000, 1)  # t=0s
    log = core.sliding_log_commit(log, 300_000, 1_000_000, 1)  # t=0.3s
    log = core.sliding_log_commit(log, 1_000_000, 1_000_000, 0)  # t=1s: the t=0 hit expires
    assert log.entries() == [(300_000, 1)]
    allowed, remaining, *_ = core.sliding_log(log, 1_000_000, 1_000_000, 3, 0)
    assert allowed and remaining == 2
