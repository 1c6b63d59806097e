"""Redis Cluster specifics: seed-list URLs, slots spread over every primary, the change feed
(sync and async), WAF bans shared through a cluster store.

The contract suite itself runs on the cluster through the ``cluster`` param of
tests/conftest.py's ``store_url``.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import pytest

from cognitionos.errors import BackendUnavailable, ConfigurationError
from cognitionos.storage import Change, open_async_store, open_store, parse_url

# -- URLs (no server needed) ---------------------------------------------------------------


def test_cluster_url_lists_every_seed_and_masks_the_password():
    url = parse_url("rediss+cluster://app:s3cret@10.0.0.1:7000,[::1]:7001,node-c:7002/?prefix=x:")
    assert url.is_cluster and url.base_scheme == "rediss"
    assert url.seeds == (("10.0.0.1", 7000), ("::1", 7001), ("node-c", 7002))
    assert (url.host, url.port) == ("10.0.0.1", 7000)
    assert url.masked == "rediss+cluster://app:***@10.0.0.1:7000,[::1]:7001,node-c:7002/?prefix=x:"
    assert not parse_url("redis://h:1/0").is_cluster


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("redis+cluster://127.0.0.1/", "must be host:port"),
        ("redis+cluster://a:1,b/", "seed 'b' must be host:port"),
        ("redis+cluster://a:1,b:port/", "bad port in seed 'b:port'"),
        ("redis+cluster://a:1,b:2/3", "only database 0"),
        ("redis+cluster://a:1/?colour=blue", "unknown option"),
        ("redis+sentinel://a:1/", "unknown storage scheme"),
    ],
)
def test_malformed_cluster_urls_name_the_bad_part(url, part):
    with pytest.raises(ConfigurationError, match=part):
        open_store(url)


def test_unreachable_cluster_is_backend_unavailable_with_the_password_masked():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailable) as info:
        open_store(f"redis+cluster://u:hunter2@127.0.0.1:{port}/", socket_connect_timeout=1)
    assert "hunter2" not in str(info.value)
    assert "redis+cluster://u:***@" in str(info.value)


# -- a real cluster ------------------------------------------------------------------------


@pytest.fixture
def cstore(redis_cluster_url):
    store = open_store(redis_cluster_url)
    yield store
    store.close()


@pytest.mark.cluster
def test_keys_spread_over_every_primary(cstore, redis_cluster):
    """The store really routes by slot: 300 counters land on all three primaries."""
    ns = f"spread{uuid.uuid4().hex[:8]}:"
    for i in range(300):
        cstore.incr(f"{ns}{i}")
    owners = {redis_cluster.primary_of(f"{{{ns}{i}}}") for i in range(0, 300, 10)}
    assert len(owners) == 3
    assert sum(cstore.get_counter(f"{ns}{i}") for i in range(300)) == 300


@pytest.mark.cluster
def test_every_script_key_of_one_operation_shares_a_slot(cstore):
    from redis.crc import key_slot

    stream, seq = cstore.layout.log("orders")
    assert key_slot(stream.encode()) == key_slot(seq.encode())
    assert key_slot(cstore.key("tenant-1", "a").encode()) == key_slot(
        cstore.key("tenant-1", "b").encode()
    )


@pytest.mark.cluster
def test_change_feed_hears_writes_to_every_primary(redis_cluster_url):
    """PUBLISH from a script on any primary reaches a subscriber connected to one node."""
    writer, reader = open_store(redis_cluster_url), open_store(redis_cluster_url)
    ns = f"feed{uuid.uuid4().hex[:8]}:"
    seen: list[Change] = []
    sub = reader.subscribe(ns, seen.append)
    try:
        keys = [f"{ns}{i}" for i in range(30)]  # 30 keys: slots on all three primaries
        for key in keys:
            writer.set(key, b"v")
        deadline = time.monotonic() + 5
        while len(seen) < len(keys) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(c.key for c in seen) == sorted(keys)
    finally:
        sub.close()
        writer.close()
        reader.close()


@pytest.mark.cluster
def test_async_cluster_store_and_change_feed(redis_cluster_url):
    async def scenario() -> list[Change]:
        store = open_async_store(redis_cluster_url)
        ns = f"af{uuid.uuid4().hex[:8]}:"
        seen: list[Change] = []
        try:
            sub = store.subscribe(ns, seen.append)
            await store.wait_subscribed()
            for i in range(10):
                assert await store.set(f"{ns}{i}", b"x") == 1
            for _ in range(300):
                if len(seen) == 10:
                    break
                await asyncio.sleep(0.01)
            sub.close()
            assert [e.key for e in await store.scan(ns)] == sorted(f"{ns}{i}" for i in range(10))
        finally:
            await store.aclose()
        return seen

    seen = asyncio.run(scenario())
    assert len(seen) == 10 and len({c.key for c in seen}) == 10
    assert all(c.version == 1 and not c.deleted for c in seen)


@pytest.mark.cluster
def test_waf_bans_are_shared_through_a_cluster_store(redis_cluster_url):
    from cognitionos.waf import AutoBlacklist, Firewall, Request

    host_a, host_b = open_store(redis_cluster_url), open_store(redis_cluster_url)
    ip = f"198.51.100.{uuid.uuid4().int % 200 + 1}"
    headers = [("Host", "h"), ("Accept", "*/*"), ("User-Agent", "curl/8")]
    attack = Request.from_raw("GET", "/?q=%27%20or%201%3D1--", headers=headers, client_ip=ip)
    try:
        bl_a = AutoBlacklist(host_a, threshold=2, ban_seconds=30)
        bl_b = AutoBlacklist(host_b, threshold=2, ban_seconds=30)
        fw = Firewall()
        verdict = fw.inspect(attack)
        assert verdict.blocked
        bl_a.record(attack, verdict)
        assert bl_b.is_banned(attack) is None
        bl_b.record(attack, verdict)  # the second strike lands on the other host
        assert bl_a.is_banned(attack) is not None
        assert bl_b.is_banned(attack) is not None
    finally:
        host_a.close()
        host_b.close()


@pytest.mark.cluster
def test_async_cluster_store_used_before_fork_counts_exactly_in_children(redis_cluster_url):
    """The child's asyncio cluster client is its own: the parent's locks belong to its loop."""
    from tests.storage.test_fork import run_children

    store = open_async_store(redis_cluster_url)
    key = f"afork:{uuid.uuid4().hex[:8]}"
    loop = asyncio.new_event_loop()  # the parent's loop lives on, as a server's would
    try:
        assert loop.run_until_complete(store.incr(key)) == 1

        def work() -> None:
            async def hits() -> None:
                for _ in range(20):
                    await store.incr(key)

            asyncio.run(hits())

        assert run_children(work, n=3) == []
        assert loop.run_until_complete(store.get_counter(key)) == 1 + 3 * 20
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


def test_the_cluster_fixture_names_a_missing_redis_server(monkeypatch):
    """Without redis-server the fixture skips (fails under CI) with this reason."""
    import tests._cluster as local

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(local.ClusterUnavailable, match="redis-server not found on PATH"):
        local.LocalCluster()
