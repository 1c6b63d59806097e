"""RateLimiter behaviour on every backend: atomic hit_many, bans, shadow mode, leases, errors."""

from __future__ import annotations

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.ratelimit import Algorithm, BanPolicy, Decision, Limit, RateLimiter

from .conftest import T0

WINDOWED = ["fixed_window", "fixed_window_anchored", "sliding_window", "sliding_log"]


@pytest.mark.parametrize("algorithm", [a.value for a in Algorithm])
def test_admits_exactly_the_limit_then_refuses(limiter_factory, algorithm):
    limiter = limiter_factory(algorithm)
    limit = Limit(amount=5, period=60)
    decisions = [limiter.hit(limit, "k") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert refused.retry_after is not None and refused.retry_after > 0
    assert all(d.retry_after is None for d in decisions[:5])
    assert refused.key == "k" and refused.policy == limit and refused.limit == 5


@pytest.mark.parametrize("algorithm", [*WINDOWED, "token_bucket", "gcra"])
def test_retry_after_is_when_a_hit_fits_again(limiter_factory, algorithm):
    clock = ManualClock(T0 + 7)
    limiter = limiter_factory(algorithm, clock)
    limit = Limit(amount=3, period=10)
    for _ in range(3):
        assert limiter.hit(limit, "r").allowed
    refused = limiter.hit(limit, "r")
    assert not refused.allowed
    wait = refused.retry_after
    clock.advance(wait - 0.000001)
    assert not limiter.test(limit, "r").allowed
    clock.advance(0.000001)
    assert limiter.hit(limit, "r").allowed


def test_hit_many_is_all_or_nothing(limiter_factory):
    limiter = limiter_factory("fixed_window")
    per_ip, per_tenant = Limit(amount=10, period=60), Limit(amount=2, period=60)
    batch = [(per_ip, "ip:1.2.3.4"), (per_tenant, "tenant:acme")]
    if limiter_factory.kind == "cluster":
        assert_cross_slot_refused(limiter, batch)
        return
    assert limiter.hit_many(batch).allowed
    assert limiter.hit_many(batch).allowed
    refused = limiter.hit_many(batch)
    assert not refused.allowed
    assert refused.key == "tenant:acme"
    assert [d.key for d in refused.details] == ["ip:1.2.3.4", "tenant:acme"]
    # nothing was charged by the refused batch: the IP limit still has 8 left
    assert refused.details[0].remaining == 8
    assert limiter.stats(per_ip, "ip:1.2.3.4").remaining == 8


def test_multi_limit_string_binds_on_the_tightest(limiter_factory):
    limiter = limiter_factory("sliding_log")
    allowed = [limiter.hit("2/second;3/minute", "u").allowed for _ in range(3)]
    assert allowed == [True, True, False]
    d = limiter.test("2/second;3/minute", "u")
    assert len(d.details) == 2


def test_test_and_stats_never_charge(limiter_factory):
    limiter = limiter_factory("sliding_window")
    limit = Limit(amount=2, period=60)
    for _ in range(5):
        assert limiter.test(limit, "t").allowed
    assert limiter.stats(limit, "t").remaining == 2
    limiter.hit(limit, "t", cost=2)
    assert not limiter.test(limit, "t").allowed
    assert limiter.stats(limit, "t").remaining == 0


def test_reset_forgets_usage(limiter_factory):
    limiter = limiter_factory("sliding_log")
    limit = Limit(amount=1, period=60)
    assert limiter.hit(limit, "x").allowed
    assert not limiter.hit(limit, "x").allowed
    limiter.reset(limit, "x")
    assert limiter.hit(limit, "x").allowed


def test_keys_are_independent_and_safely_encoded(limiter_factory):
    limiter = limiter_factory("fixed_window")
    limit = Limit(amount=1, period=60)
    odd = ["a{b}c", "sp ace", "ünï", "x" * 5000, "x" * 5001, "%7B"]
    for key in odd:
        assert limiter.hit(limit, key).allowed, key
    for key in odd:
        assert not limiter.hit(limit, key).allowed, key


def test_auto_block_bans_after_max_violations(limiter_factory):
    clock = ManualClock(T0)
    policy = BanPolicy(max_violations=3, find_window=60, ban_time=100, growth=2, max_ban_time=150)
    limiter = limiter_factory("fixed_window", clock, ban_policy=policy)
    limit = Limit(amount=1, period=1)
    assert limiter.hit(limit, "abuser").allowed
    for _ in range(3):
        assert not limiter.hit(limit, "abuser").banned
    d = limiter.hit(limit, "abuser")
    assert d.banned and not d.allowed and d.retry_after == pytest.approx(100)
    clock.advance(50)
    assert limiter.hit(limit, "abuser").banned  # a new window does not lift the ban
    assert [b.key for b in limiter.bans()] == ["abuser"]
    assert limiter.bans()[0].remaining == pytest.approx(50)
    clock.advance(50)
    assert limiter.hit(limit, "abuser").allowed
    # a repeat offender is banned for longer (growth 2, capped at 150)
    for _ in range(3):
        limiter.hit(limit, "abuser")
    d = limiter.hit(limit, "abuser")
    assert d.banned and d.retry_after == pytest.approx(150)
    assert limiter.bans()[0].offenses == 2
    assert limiter.counters.snapshot()["bans"] == 2


def test_violations_outside_find_window_do_not_ban(limiter_factory):
    clock = ManualClock(T0)
    limiter = limiter_factory(
        "fixed_window", clock, ban_policy=BanPolicy(max_violations=2, find_window=5, ban_time=60)
    )
    limit = Limit(amount=1, period=10)
    limiter.hit(limit, "slow")
    limiter.hit(limit, "slow")  # violation 1
    clock.advance(10)
    limiter.hit(limit, "slow")
    limiter.hit(limit, "slow")  # violation 2, but violation 1 is 10 s old
    assert limiter.bans() == []
    clock.advance(1)
    assert not limiter.hit(limit, "slow").allowed  # violation 3, 1 s after violation 2: ban
    assert [b.key for b in limiter.bans()] == ["slow"]


def test_allow_list_is_never_banned_and_bans_skip_counters(limiter_factory):
    clock = ManualClock(T0)
    policy = BanPolicy(max_violations=1, find_window=60, ban_time=60, allow_list={"ops"})
    limiter = limiter_factory("fixed_window", clock, ban_policy=policy)
    limit = Limit(amount=1, period=60)
    limiter.hit(limit, "ops")
    for _ in range(3):
        d = limiter.hit(limit, "ops")
        assert not d.allowed and not d.banned
    assert limiter.bans() == []


def test_manual_ban_and_unban(limiter_factory):
    clock = ManualClock(T0)
    limiter = limiter_factory("fixed_window", clock)
    limit = Limit(amount=100, period=60)
    ban = limiter.ban("ip:6.6.6.6", 30)
    assert ban.key == "ip:6.6.6.6" and ban.manual and ban.remaining == pytest.approx(30)
    d = limiter.hit(limit, "ip:6.6.6.6")
    assert d.banned and d.retry_after == pytest.approx(30)
    # a banned key refuses a whole batch and charges nothing to the others
    if limiter_factory.kind == "cluster":
        assert_cross_slot_refused(limiter, [(limit, "tenant:a"), (limit, "ip:6.6.6.6")])
    else:
        assert not limiter.hit_many([(limit, "tenant:a"), (limit, "ip:6.6.6.6")]).allowed
    assert limiter.stats(limit, "tenant:a").remaining == 100
    assert limiter.unban("ip:6.6.6.6")
    assert not limiter.unban("ip:6.6.6.6")
    assert limiter.hit(limit, "ip:6.6.6.6").allowed
    limiter.ban("ip:7.7.7.7", 5)
    clock.advance(5)
    assert limiter.bans() == []


def test_shadow_mode_decides_but_never_refuses(limiter_factory):
    limiter = limiter_factory("sliding_log", shadow=True)
    limit = Limit(amount=2, period=60)
    decisions = [limiter.hit(limit, "s") for _ in range(4)]
    assert all(d.allowed for d in decisions)
    assert [d.shadowed for d in decisions] == [False, False, True, True]
    counts = limiter.counters.snapshot()
    assert counts["allowed"] == 2 and counts["shadowed"] == 2 and counts["refused"] == 0


def test_concurrency_leases(limiter_factory):
    clock = ManualClock(T0)
    limiter = limiter_factory("concurrency", clock)
    slots = Limit(amount=2, period=30)  # 2 in flight; a lease expires after 30 s
    first = limiter.hit(slots, "jobs")
    second = limiter.hit(slots, "jobs")
    assert first.lease and second.lease and first.lease != second.lease
    third = limiter.hit(slots, "jobs")
    assert not third.allowed and third.lease is None
    assert third.retry_after == pytest.approx(30)
    assert limiter.release(first)
    assert not limiter.release(first)
    with limiter.lease(slots, "jobs") as inside:
        assert inside.allowed
        assert not limiter.test(slots, "jobs").allowed
    assert limiter.test(slots, "jobs").allowed
    clock.advance(30)  # the unreleased lease expires
    assert limiter.stats(slots, "jobs").remaining == 2


def test_misuse_raises_configuration_error(limiter_factory):
    limiter = limiter_factory("token_bucket")
    limit = Limit(amount=10, period=1, burst=3)
    with pytest.raises(ConfigurationError, match="exceeds"):
        limiter.hit(limit, "k", cost=4)
    with pytest.raises(ConfigurationError, match="non-negative"):
        limiter.hit(limit, "k", cost=-1)
    with pytest.raises(ConfigurationError, match="empty"):
        limiter.hit(limit, "")
    with pytest.raises(ConfigurationError, match="string"):
        limiter.hit(limit, 42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        limiter.hit("ten per fortnight", "k")
    with pytest.raises(ConfigurationError, match="at least one"):
        limiter.hit_many([])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": 0, "period": 1}, "amount must be positive"),
        ({"amount": -3, "period": 1}, "amount must be positive"),
        ({"amount": 1.5, "period": 1}, "amount must be an integer"),
        ({"amount": 1, "period": 0}, "period must be a positive"),
        ({"amount": 1, "period": 1, "burst": 0}, "burst must be positive"),
    ],
)
def test_limit_validation(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        Limit(**kwargs)


def test_limit_parse_forms():
    assert Limit.parse("100/minute") == Limit(amount=100, period=60)
    assert Limit.parse(" 10 per 2 hours ") == Limit(amount=10, period=7200)
    assert [str(x) for x in Limit.parse_many("10/second;1000/day")] == ["10/second", "1000/day"]
    with pytest.raises(ConfigurationError, match="parse_many"):
        Limit.parse("1/second, 2/minute")
    with pytest.raises(ConfigurationError, match="'-5'"):
        Limit.parse("-5/second")
    with pytest.raises(ConfigurationError, match="'fortnight'"):
        Limit.parse("10/fortnight")
    assert Limit(amount=100, period=60, burst=20).capacity == 20


def test_unknown_algorithm_and_error_mode():
    with pytest.raises(ConfigurationError, match="unknown algorithm 'leaky'"):
        RateLimiter(algorithm="leaky")
    with pytest.raises(ConfigurationError, match="on_backend_error"):
        RateLimiter(on_backend_error="maybe")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="scheme 'mysql'"):
        RateLimiter("mysql://db/x")


def test_decision_is_falsy_when_refused():
    limiter = RateLimiter(clock=ManualClock(T0))
    limit = Limit(amount=1, period=1)
    assert limiter.hit(limit, "b")
    refused = limiter.hit(limit, "b")
    assert not refused
    assert isinstance(refused, Decision)


def test_fixed_window_admits_up_to_twice_the_limit_across_a_boundary():
    """The documented trade-off: clock-aligned windows allow 2L within one period."""
    clock = ManualClock(T0 + 59.9)
    limiter = RateLimiter(algorithm="fixed_window", clock=clock)
    exact = RateLimiter(algorithm="sliding_log", clock=clock)
    limit = Limit(amount=10, period=60)
    burst_a = sum(limiter.hit(limit, "b").allowed for _ in range(10))
    exact_a = sum(exact.hit(limit, "b").allowed for _ in range(10))
    clock.advance(0.2)  # next window
    burst_b = sum(limiter.hit(limit, "b").allowed for _ in range(10))
    exact_b = sum(exact.hit(limit, "b").allowed for _ in range(10))
    assert burst_a + burst_b == 20  # within 0.2 s
    assert exact_a + exact_b == 10


def test_hit_batch_decides_each_item_on_its_own(limiter_factory):
    limiter = limiter_factory("fixed_window")
    limit = Limit(amount=1, period=60)
    first = limiter.hit_batch([(limit, "a"), (limit, "b"), (limit, "a")])
    assert [d.allowed for d in first] == [True, True, False]
    assert [d.key for d in first] == ["a", "b", "a"]
    assert limiter.hit_batch([]) == []


@pytest.mark.parametrize("algorithm", [*WINDOWED, "token_bucket", "gcra"])
def test_hit_batch_decides_like_hits_in_order(limiter_factory, algorithm):
    # repeated keys, several limits per item, costs, a banned key and more items than one
    # Redis script call covers: a batch answers exactly what the same hits in order would
    clock = ManualClock(T0)
    limiter = limiter_factory(algorithm, clock)
    small, pair = Limit(amount=3, period=60), "2/second;4/minute"
    shape = [(small if i % 3 else pair, f"k{i % 7}", 1 + i % 2) for i in range(150)]
    limiter.ban("batch:k5", 60)
    limiter.ban("seq:k5", 60)
    batch = limiter.hit_batch([(lim, "batch:" + key, cost) for lim, key, cost in shape])
    sequential = [limiter.hit(lim, "seq:" + key, cost) for lim, key, cost in shape]

    def strip(d: Decision) -> tuple:
        return (d.allowed, d.limit, d.remaining, d.reset_after, d.retry_after, d.banned)

    assert [strip(d) for d in batch] == [strip(d) for d in sequential]
    assert [d.key for d in batch] == ["batch:" + key for _, key, _ in shape]
    assert any(d.allowed for d in batch) and any(d.banned for d in batch)


def test_looking_at_a_concurrency_limit_hands_out_no_lease(limiter_factory):
    limiter = limiter_factory("concurrency")
    slots = Limit(amount=1, period=30)
    assert limiter.test(slots, "c").lease is None
    assert limiter.stats(slots, "c").lease is None
    assert limiter.hit(slots, "c").lease is not None


def test_named_policies_keep_their_own_counters(limiter_factory):
    limiter = limiter_factory("fixed_window")
    burst, plain = Limit(amount=1, period=60, name="burst {x}"), Limit(amount=1, period=60)
    assert limiter.hit(burst, "k").allowed
    assert limiter.hit(plain, "k").allowed
    refused = limiter.hit(burst, "k")
    assert not refused.allowed and refused.policy.name == "burst {x}"


@pytest.mark.parametrize("algorithm", [a.value for a in Algorithm])
def test_a_refused_batch_charges_nothing_whatever_the_algorithm(limiter_factory, algorithm):
    limiter = limiter_factory(algorithm)
    roomy, tight = Limit(amount=5, period=60), Limit(amount=1, period=60)
    assert limiter.hit(tight, "t").allowed
    if limiter_factory.kind == "cluster":
        assert_cross_slot_refused(limiter, [(roomy, "r"), (tight, "t")])
    for _ in range(3 if limiter_factory.kind != "cluster" else 0):
        refused = limiter.hit_many([(roomy, "r"), (tight, "t")])
        assert not refused.allowed
        assert refused.details[0].remaining == 5
    assert limiter.stats(roomy, "r").remaining == 5
    assert [limiter.hit(roomy, "r").allowed for _ in range(6)] == [True] * 5 + [False]


def test_sqlite_file_decides_on_own_connection_one_commit_each(tmp_path):
    from cognitionos.storage import open_store

    store = open_store(f"sqlite:///{tmp_path}/rl.db")
    limiter = RateLimiter(store, algorithm="sliding_log")
    limit = Limit(amount=2, period=60)
    assert limiter.hit(limit, "k").allowed
    raw = limiter._backend._raw()
    statements: list[str] = []
    raw.set_trace_callback(statements.append)
    assert limiter.hit(limit, "k").allowed
    assert not limiter.hit(limit, "k").allowed
    assert limiter.test(limit, "k").remaining == 0
    raw.set_trace_callback(None)
    assert statements.count("BEGIN IMMEDIATE") == 2 and statements.count("COMMIT") == 3
    # a second limiter (another process would do the same) sees the same rows
    other = RateLimiter(f"sqlite:///{tmp_path}/rl.db", algorithm="sliding_log")
    assert not other.hit(limit, "k").allowed
    other.close()
    limiter.close()
    store.close()


def assert_cross_slot_refused(limiter, batch) -> None:
    """Redis Cluster: hit_many over keys in different slots is refused and charges nothing."""
    before = [limiter.stats(limit, key).remaining for limit, key in batch]
    with pytest.raises(ConfigurationError, match=r"different hash slots.*hit_batch"):
        limiter.hit_many(batch)
    assert [limiter.stats(limit, key).remaining for limit, key in batch] == before
