"""Any key a caller can send is a valid key: it never fails a query, so never trips the fallback.

Before keys were encoded in one place, PostgreSQL got the raw key in the bans query: a NUL
byte (or over 300 characters with a ban policy) failed it, and ``on_backend_error`` then
refused (or admitted) every caller for ``retry_backend_after`` seconds. A lone surrogate
raised a raw ``UnicodeEncodeError`` on SQLite, PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio

import pytest

from cognitionos.clock import ManualClock
from cognitionos.integrations.ratelimit import RateLimitMiddleware, route_key
from cognitionos.ratelimit import AsyncRateLimiter, BanPolicy, Limit
from cognitionos.ratelimit._keys import MAX_KEY_LENGTH, encode_key

from .conftest import T0

HOSTILE = {
    "nul": "ip:\x00",
    "surrogate": "ip:\ud800x",
    "1000-chars": "k" * 1000,
    "1MB": "m" * 1_000_000,
}
POLICIES = [
    pytest.param(None, id="no-ban-policy"),
    pytest.param(BanPolicy(max_violations=1, find_window=60, ban_time=30), id="ban-policy"),
]
LIMIT = Limit(amount=2, period=60)


def _expected(policy: BanPolicy | None) -> list[tuple[bool, bool]]:
    """(allowed, banned) of four hits: two admitted, then refused (and banned with a policy)."""
    if policy is None:
        return [(True, False), (True, False), (False, False), (False, False)]
    return [(True, False), (True, False), (False, False), (False, True)]


@pytest.mark.parametrize("policy", POLICIES)
def test_hostile_keys_are_limited_like_any_key(limiter_factory, policy):
    # fail closed: any backend error would show as a refusal of the well-behaved key
    limiter = limiter_factory("fixed_window", ban_policy=policy, on_backend_error="closed")
    for name, key in HOSTILE.items():
        got = [(d.allowed, d.banned) for d in (limiter.hit(LIMIT, key) for _ in range(4))]
        assert got == _expected(policy), name
        assert limiter.hit(LIMIT, f"ok:{name}").allowed, name
    counts = limiter.counters.snapshot()
    assert counts["backend_errors"] == 0 and counts["fallbacks"] == 0
    if policy is not None:
        assert len(limiter.bans()) == len(HOSTILE)
    limiter.close()


@pytest.mark.parametrize("policy", POLICIES)
def test_hostile_keys_async(async_limiter_factory, policy):
    async def scenario() -> list[list[tuple[bool, bool]]]:
        limiter = async_limiter_factory("sliding_log", ban_policy=policy, on_backend_error="closed")
        out = []
        for name, key in HOSTILE.items():
            out.append([((d := await limiter.hit(LIMIT, key)).allowed, d.banned) for _ in range(4)])
            assert (await limiter.hit(LIMIT, f"ok:{name}")).allowed, name
        counts = limiter.counters.snapshot()
        assert counts["backend_errors"] == 0 and counts["fallbacks"] == 0
        await limiter.aclose()
        return out

    assert asyncio.run(scenario()) == [_expected(policy)] * len(HOSTILE)


def test_manual_bans_of_hostile_keys(limiter_factory):
    limiter = limiter_factory("fixed_window", on_backend_error="closed")
    for key in HOSTILE.values():
        limiter.ban(key, 60)
        assert limiter.hit(LIMIT, key).banned
    banned = {b.key for b in limiter.bans()}
    assert len(banned) == len(HOSTILE)
    # keys stored whole come back exactly; longer ones as their stored (digested) form
    assert {"ip:\x00", "ip:\ud800x"} <= banned
    for key in HOSTILE.values():
        assert limiter.unban(key)
        assert limiter.hit(LIMIT, key).allowed
    assert limiter.bans() == []
    limiter.close()


def test_distinct_keys_keep_distinct_counters(limiter_factory):
    limiter = limiter_factory("fixed_window")
    one = Limit(amount=1, period=60)
    long_a = "x" * 5000 + "a"
    keys = [
        "a\x00b",
        "a%00b",
        "a b",
        "a%20b",
        "\ud800",
        "\udfff",
        "\ud800\udc00",  # a surrogate pair written out is not the character it would pair to
        "\U00010000",
        long_a,
        long_a[:-1] + "b",  # long keys differing only past the stored prefix
        encode_key(long_a),  # a short key spelled like a long key's stored form
    ]
    assert [limiter.hit(one, k).allowed for k in keys] == [True] * len(keys)
    assert [limiter.hit(one, k).allowed for k in keys] == [False] * len(keys)
    limiter.close()


def test_encode_key_is_bounded_printable_and_injective():
    from cognitionos.ratelimit._keys import decode_key, encode_name

    keys = ["ip:1.2.3.4", "a b", "{tag}", "%", "\x00", "\ud800", "é", "k" * 200, "k" * 201]
    encoded = [encode_key(k) for k in keys]
    assert encoded[0] == "ip:1.2.3.4" and encoded[7] == "k" * 200  # safe keys stay as they are
    assert len(set(encoded)) == len(keys)
    for text in encoded:
        assert len(text) <= MAX_KEY_LENGTH
        assert all(0x21 <= ord(c) <= 0x7E and c not in "{}" for c in text)
    assert len(encode_key("m" * 1_000_000)) == len(encode_key("k" * 201)) == 194
    assert "%~" not in encode_key("%~" + "x" * 100)  # only the digest form holds the mark
    for key in keys[:7]:
        assert decode_key(encode_key(key)) == key
    assert len(encode_name("n" * 500)) == 40 and encode_name("api") == "api"


@pytest.mark.postgresql
def test_asgi_nul_path_does_not_fail_the_service(postgres_url):
    """``GET /%00`` through ``route_key()`` once put every caller into the fallback."""
    from cognitionos.ratelimit._sql import drop_tables

    from .conftest import unique_prefix

    prefix = f"{unique_prefix()}_"
    limiter = AsyncRateLimiter(
        postgres_url,
        clock=ManualClock(T0),
        prefix=prefix,
        on_backend_error="closed",
        ban_policy=BanPolicy(max_violations=3, find_window=60, ban_time=60),
    )
    sent: list[dict] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    mw = RateLimitMiddleware(app, limiter=limiter, limits="100/minute", key=route_key())

    async def get(path: str) -> int:
        sent.clear()
        scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await mw(scope, receive, send)
        return int(sent[0]["status"])

    async def scenario() -> list[int]:
        statuses = [await get(p) for p in ("/\x00", "/" + "x" * 400, "/\ud800", "/", "/items")]
        assert limiter.counters.snapshot()["backend_errors"] == 0
        drop_tables(limiter._backend.engine, table_prefix=prefix)
        await limiter.aclose()
        return statuses

    assert asyncio.run(scenario()) == [200] * 5


def test_long_keys_are_not_kept_in_the_limiters_caches(limiter_factory):
    """The caches are bounded in entries; a 1 MB key must not make each entry a megabyte."""
    limiter = limiter_factory("fixed_window")
    keys = [f"{i}" + "m" * 1_000_000 for i in range(3)]
    for key in keys:
        assert limiter.hit(LIMIT, key).allowed
    assert [d.allowed for d in limiter.hit_batch([(LIMIT, k) for k in keys])] == [True] * 3
    cached = [k for _, k, _ in limiter._s._reqs] + [
        k for _, k in getattr(limiter._backend, "_skeys", {})
    ]
    assert not any(len(k) > MAX_KEY_LENGTH for k in cached)
    limiter.close()
