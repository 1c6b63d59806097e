"""Redis specifics: server time under clock skew, the store's key layout, one round trip."""

from __future__ import annotations

import uuid

import pytest

from cognitionos.clock import ManualClock
from cognitionos.errors import ConfigurationError
from cognitionos.ratelimit import Limit, RateLimiter

from .conftest import REDIS_URL, redis_client

pytestmark = pytest.mark.redis


@pytest.fixture
def client():
    c = redis_client()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    c.test_prefix = prefix
    yield c
    keys = list(c.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        c.delete(*keys)
    c.close()


def test_clock_skew_between_hosts_does_not_change_decisions(client):
    # two "hosts" whose clocks disagree by three hours share one limit: server TIME decides
    host_a = RateLimiter(
        client, algorithm="sliding_log", clock=ManualClock(1_700_000_000), prefix=client.test_prefix
    )
    host_b = RateLimiter(
        client, algorithm="sliding_log", clock=ManualClock(1_700_010_800), prefix=client.test_prefix
    )
    limit = Limit(amount=3, period=60)
    answers = [
        host_a.hit(limit, "k").allowed,
        host_b.hit(limit, "k").allowed,
        host_a.hit(limit, "k").allowed,
        host_b.hit(limit, "k").allowed,
    ]
    assert answers == [True, True, True, False]
    ban = host_b.ban("skewed", 30)
    assert ban.remaining == pytest.approx(30)
    assert host_a.bans()[0].remaining == pytest.approx(30, abs=1)


def _commands_in(packed) -> list[list[bytes]]:
    """Decode the RESP arrays of bulk strings in what a connection sent."""
    data = b"".join([packed] if isinstance(packed, bytes) else list(packed))
    commands, pos = [], 0
    while pos < len(data):
        end = data.index(b"\r\n", pos)
        count, pos, args = int(data[pos + 1 : end]), end + 2, []
        for _ in range(count):
            end = data.index(b"\r\n", pos)
            size = int(data[pos + 1 : end])
            args.append(data[end + 2 : end + 2 + size])
            pos = end + 2 + size + 2
        commands.append(args)
    return commands


def test_several_limits_cost_one_round_trip(client, monkeypatch):
    limiter = RateLimiter(client, algorithm="gcra", prefix=client.test_prefix)
    limiter.hit(Limit(amount=5, period=1), "warm-up")  # connects and loads the script
    sent = []
    # count at the wire: every command any connection sends, whichever path sent it
    connection_class = client.connection_pool.connection_class
    real = connection_class.send_packed_command

    def counting(self, command, *args, **kwargs):
        sent.extend(_commands_in(command))
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(connection_class, "send_packed_command", counting)
    d = limiter.hit_many([("10/second;1000/day", "ip:1"), ("5/second", "tenant:a")])
    assert d.allowed and len(d.details) == 3
    # string-state limits, no auto-block: mode 4, two keys per limit (state, ban record)
    assert [(c[0], c[2]) for c in sent] == [(b"EVALSHA", b"6")]


def test_keys_share_the_callers_hash_tag(client):
    limiter = RateLimiter(client, algorithm="sliding_log", prefix=client.test_prefix)
    limiter.hit(Limit(amount=5, period=60), "tenant:{acme}")
    keys = [k.decode() for k in client.scan_iter(match=f"{client.test_prefix}:*")]
    assert keys and all("{tenant:%7Bacme%7D}" in k for k in keys)


def test_cognitionos_store_layout_is_used():
    from cognitionos.storage import open_store

    prefix = f"t{uuid.uuid4().hex[:10]}:"
    store = open_store(f"{REDIS_URL}?prefix={prefix}")
    try:
        limiter = RateLimiter(store, algorithm="fixed_window")
        limit = Limit(amount=1, period=60)
        assert limiter.hit(limit, "k").allowed
        assert not limiter.hit(limit, "k").allowed
        keys = [k.decode() for k in store.client.scan_iter(match=f"{prefix}*")]
        assert keys == [store.key("k", "rl", limiter._s.specs(limit)[0].ident)]
        store.client.delete(*keys)
    finally:
        store.close()


def test_limits_beyond_exact_lua_arithmetic_are_refused(client):
    limiter = RateLimiter(client, algorithm="gcra", prefix=client.test_prefix)
    with pytest.raises(ConfigurationError, match="2\\*\\*53"):
        limiter.hit(Limit(amount=10, period=365 * 86400, burst=10**6), "k")


def test_ban_keys_derived_in_a_batch_match_the_manual_ones(client):
    from cognitionos.storage import open_store

    limit = Limit(amount=1, period=60)
    own = RateLimiter(client, prefix=client.test_prefix)
    reqs = own._s._requests_for(limit, "ip:{1}", 1)
    keys, _ = own._backend.script_call(reqs, None, True, None)
    assert keys[2:] == [own._backend.ban_key("ip:{1}"), own._backend.viol_key("ip:{1}")]
    store = open_store(f"{REDIS_URL}?prefix={client.test_prefix}:")
    try:
        layered = RateLimiter(store)
        reqs = layered._s._requests_for(limit, "ip:{1}", 1)
        keys, _ = layered._backend.script_call(reqs, None, True, None)
        backend = layered._backend
        assert keys[2:] == [backend.ban_key("ip:{1}"), backend.viol_key("ip:{1}")]
    finally:
        store.close()


def test_redis_scripts_reload_after_script_flush(client):
    limiter = RateLimiter(client, algorithm="gcra", prefix=client.test_prefix)
    limit = Limit(amount=2, period=60)
    assert limiter.hit(limit, "nf").allowed
    limiter._backend.client.script_flush()
    assert limiter.hit(limit, "nf").allowed
    limiter._backend.client.script_flush()
    assert [d.allowed for d in limiter.hit_batch([(limit, "nf"), (limit, "nf2")])] == [False, True]


@pytest.mark.parametrize(
    "algorithm", ["fixed_window", "fixed_window_anchored", "sliding_window", "gcra", "token_bucket"]
)
def test_lean_batch_matches_memory_with_repeated_keys(client, algorithm):
    # hit_batch of one string-state limit per item takes the script's lean mode 3: a key
    # repeated in one call must see the charges made earlier in the same call
    limit = Limit(amount=2, period=60)
    items = [(limit, "k"), (limit, "j"), (limit, "k"), (limit, "k"), (limit, "j", 2)]
    ours = RateLimiter(client, algorithm=algorithm, prefix=client.test_prefix)
    memory = RateLimiter("memory://", algorithm=algorithm)
    got = [(d.allowed, d.remaining, d.retry_after is None) for d in ours.hit_batch(items)]
    want = [(d.allowed, d.remaining, d.retry_after is None) for d in memory.hit_batch(items)]
    assert got == want


@pytest.mark.parametrize(
    "algorithm",
    ["fixed_window", "fixed_window_anchored", "sliding_window", "token_bucket", "gcra"],
)
def test_lean_all_or_nothing_mode_decides_as_the_memory_backend(client, monkeypatch, algorithm):
    """Mode 4 (string-state limits, no auto-block) against memory over a random sequence."""
    import random

    clock = ManualClock(1_700_000_040.5)
    mem = RateLimiter("memory://", algorithm=algorithm, clock=clock)
    red = RateLimiter(
        client, algorithm=algorithm, clock=clock, prefix=client.test_prefix, server_time=False
    )
    lean_calls = []
    real = red._backend.lean_script_call

    def counting(reqs, now):
        lean_calls.append(len(reqs))
        return real(reqs, now)

    monkeypatch.setattr(red._backend, "lean_script_call", counting)
    limits = [
        Limit(amount=3, period=1, burst=3),
        Limit(amount=5, period=2),
        Limit(amount=4, period=3),
    ]
    keys = ["ip:1", "tenant:a", "key:k1", "key:k2"]

    def view(d):
        return tuple(d[:5]) + tuple(tuple(x[:5]) for x in d.details)

    rng = random.Random(f"mode4-{algorithm}")
    refused = 0
    for step in range(400):
        clock.advance(ns=rng.randrange(0, 400_000) * 1000)
        if step == 150:  # a manual ban refuses every call naming the key, charging nothing
            assert mem.ban("tenant:a", 0.7).key == red.ban("tenant:a", 0.7).key
        if step == 300:
            assert mem.unban("ip:1") == red.unban("ip:1")
            assert mem.ban("ip:1", 0.5).key == "ip:1"
            red.ban("ip:1", 0.5)
        items = [(lim, rng.choice(keys), rng.randint(0, 2)) for lim in limits]
        m, r = mem.hit_many(items), red.hit_many(items)
        assert view(m) == view(r), (step, items)
        if not r.allowed:
            refused += 1
            # nothing was charged: every limit reads as before the refused call
            for lim, key, _ in items:
                assert view(mem.test(lim, key, 0)) == view(red.test(lim, key, 0)), (step, key)
        lim = rng.choice(limits)
        key = rng.choice(keys)
        assert view(mem.hit(lim, key)) == view(red.hit(lim, key)), (step, key)
    assert refused > 20
    assert sum(lean_calls) == 400 * 4  # every hit and hit_many took mode 4
