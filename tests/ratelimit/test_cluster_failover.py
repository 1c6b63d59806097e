"""A primary of a real Redis Cluster is SIGKILLed while the limiter runs traffic.

Each round: threads hammer one key (``fixed_window_anchored``, exact on one server) until
about half its limit is spent, the primary serving that key's slot is killed, the threads
keep going through the election (``on_backend_error="closed"``: the limiter refuses while
the slot has no primary) and until the promoted replica refuses them too; then the killed
node is restarted and rejoins as a replica. Redis replicates asynchronously, so increments
the dead primary acknowledged but had not yet sent to its replica are lost, and that many
extra hits are admitted: ``admitted - limit`` is measured per round and printed.

What must hold: the limiter falls back (counts fallbacks) instead of raising, recovers
without a new limiter once the replica is promoted, no call outlives the configured
timeouts, and the over-admission of a round stays under the bound docs/ratelimit.md states.

Run alone with ``-s`` to see the figures::

    pytest tests/ratelimit/test_cluster_failover.py -s -p no:randomly
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from cognitionos.ratelimit import AsyncRateLimiter, Limit, RateLimiter
from cognitionos.ratelimit._redis import CLUSTER_RETRIES
from tests._cluster import ClusterUnavailable, LocalCluster
from tests.conftest import skip_or_fail

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROUNDS = 4
THREADS = 4
LIMIT = 2000
TIMEOUT = CONNECT_TIMEOUT = 0.5
#: one call: (1 + retries) attempts, each at most a connect and a read timeout, plus the slot
#: map refresh that follows a failed attempt (one connect per node tried), plus scheduling
#: slack for 4 threads on a shared 2-core machine
CALL_BOUND = (1 + CLUSTER_RETRIES) * (CONNECT_TIMEOUT + TIMEOUT) * 2 + 1.0
#: over-admission per kill (docs/ratelimit.md): what the replica had not received at the kill.
#: On a quiet machine that is 0-1; with the CPU shared (a full CI run beside it) the replica
#: lagged by about half the window once (1,012). Asynchronous replication bounds the loss only
#: by the one counter that can be lost: at most one window per kill, never more.
OVER_ADMISSION_BOUND = LIMIT
#: the whole test's budget (the issue asks for < 90 s)
BUDGET = 85.0


@pytest.fixture(scope="module")
def cluster() -> Any:
    """A cluster of its own: this test wrecks and rebuilds its topology."""
    try:
        c = LocalCluster().start()
    except ClusterUnavailable as exc:
        skip_or_fail(f"Redis Cluster not available: {exc}")
        raise  # unreachable
    yield c
    c.stop()


class Traffic:
    """THREADS threads hitting one key until stopped; counts and times every decision."""

    def __init__(self, limiter: RateLimiter, key: str) -> None:
        self.limiter = limiter
        self.key = key
        self.limit = Limit(amount=LIMIT, period=3600)
        self.admitted = 0
        self.refused = 0
        self.slowest = 0.0
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(THREADS)]

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                d = self.limiter.hit(self.limit, self.key)
            except BaseException as exc:  # the limiter must never raise in "closed" mode
                self.errors.append(exc)
                return
            took = time.monotonic() - t0
            with self._lock:
                self.slowest = max(self.slowest, took)
                if d.allowed:
                    self.admitted += 1
                else:
                    self.refused += 1
            if not d.allowed:
                time.sleep(0.002)  # refused: no need to spin the CPU the cluster needs

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def wait(self, what: str, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)


def spent(probe: RateLimiter, key: str) -> Any:
    """``ready()`` for :meth:`Traffic.wait`: Redis (not a fallback) says ``key`` is spent."""
    from cognitionos.errors import StorageError

    limit = Limit(amount=LIMIT, period=3600)

    def ready() -> bool:
        try:
            return probe.stats(limit, key).remaining == 0
        except StorageError:  # the slot's map is still settling
            return False

    return ready


def test_limiter_survives_primary_kills_and_bounds_over_admission(cluster):
    started = time.monotonic()
    limiter_prefix = f"fo{uuid.uuid4().hex[:6]}"
    limiter = RateLimiter(
        cluster.url,
        algorithm="fixed_window_anchored",
        prefix=limiter_prefix,
        on_backend_error="closed",
        retry_backend_after=0.2,
        timeout=TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
    )
    # a second limiter that raises instead of falling back: its answers come from Redis
    probe = RateLimiter(
        cluster.url,
        algorithm="fixed_window_anchored",
        prefix=limiter_prefix,
        timeout=TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
    )
    rounds: list[dict[str, Any]] = []
    try:
        for _ in range(ROUNDS):
            key = f"victim:{uuid.uuid4().hex[:8]}"
            primary = cluster.primary_of(key)
            fallbacks_before = limiter.counters.snapshot()["fallbacks"]
            traffic = Traffic(limiter, key)
            traffic.start()
            try:
                traffic.wait("half the limit", lambda t=traffic: t.admitted >= LIMIT // 2, 20)
                killed_at = time.monotonic()
                cluster.kill(primary)
                # the election: the slot has no primary until the replica is promoted
                cluster.wait_failover(primary, timeout=20)
                promoted_at = time.monotonic()
                # keep going until the new primary itself says the key is spent: from then
                # on no hit can be admitted, so ``admitted`` is final
                traffic.wait("the promoted primary to hold a spent key", spent(probe, key), 20)
            finally:
                traffic.stop()
            assert not traffic.errors, traffic.errors
            fallbacks = limiter.counters.snapshot()["fallbacks"] - fallbacks_before
            # recovered without a restart: the same limiter gets real answers again (once its
            # circuit breaker, open for retry_backend_after after the last failure, closes)
            recovered = time.monotonic() + 10
            fresh = limiter.hit(traffic.limit, f"fresh:{uuid.uuid4().hex}")
            while not fresh.allowed and time.monotonic() < recovered:
                time.sleep(0.1)
                fresh = limiter.hit(traffic.limit, f"fresh:{uuid.uuid4().hex}")
            assert fresh.allowed and fresh.remaining == LIMIT - 1
            rounds.append(
                {
                    "over": traffic.admitted - LIMIT,
                    "fallbacks": fallbacks,
                    "election_s": round(promoted_at - killed_at, 2),
                    "slowest_call_s": round(traffic.slowest, 3),
                }
            )
            cluster.restart(primary)
            assert time.monotonic() - started < BUDGET, rounds
    finally:
        limiter.close()
        probe.close()
    print(f"\nfailover rounds (limit {LIMIT}, {THREADS} threads): {rounds}")
    overs = [r["over"] for r in rounds]
    print(f"over-admission per kill: {overs}; max {max(overs)}")
    # a hit charged by the dying primary whose reply never came back is refused by the
    # fallback yet counted: at most one per call in flight at the kill (one per thread)
    assert all(-THREADS <= r["over"] <= OVER_ADMISSION_BOUND for r in rounds), rounds
    # the election took the slot away, and the limiter fell back instead of raising
    assert sum(r["fallbacks"] for r in rounds) > 0, rounds
    assert max(r["slowest_call_s"] for r in rounds) < CALL_BOUND, rounds
    assert time.monotonic() - started < BUDGET


def test_change_feed_moves_to_another_node_when_its_node_dies(cluster):
    from cognitionos.storage import Change, open_store

    store = open_store(cluster.url)
    ns = f"fo{uuid.uuid4().hex[:8]}:"
    seen: list[Change] = []
    sub = store.subscribe(ns, seen.append)
    try:
        feed = store._cluster_feed
        assert feed is not None and feed._pubsub is not None
        port = int(feed._pubsub.node.port)
        cluster.kill(port)
        cluster.wait_failover(port, timeout=20)
        # changes published while the feed moves are lost (at-most-once): write until one
        # arrives through the feed's new node
        deadline = time.monotonic() + 15
        version = 0
        while not seen and time.monotonic() < deadline:
            try:
                version = store.set(ns + "k", b"x")
            except Exception:  # the written key's slot may still be changing hands
                pass
            time.sleep(0.1)
        assert seen, "no change delivered after the feed's node was killed"
        assert seen[-1].key == ns + "k" and seen[-1].version <= version
        assert int(feed._pubsub.node.port) != port
        cluster.restart(port)
    finally:
        sub.close()
        store.close()


def test_async_limiter_falls_back_and_recovers_after_a_kill(cluster):
    import asyncio

    async def scenario() -> tuple[int, float, float]:
        limiter = AsyncRateLimiter(
            cluster.url,
            prefix=f"fa{uuid.uuid4().hex[:6]}",
            on_backend_error="closed",
            retry_backend_after=0.2,
            timeout=TIMEOUT,
            connect_timeout=CONNECT_TIMEOUT,
        )
        limit = Limit(amount=LIMIT, period=3600)
        key = f"victim:{uuid.uuid4().hex[:8]}"
        try:
            assert (await limiter.hit(limit, key)).remaining == LIMIT - 1
            primary = cluster.primary_of(key)
            # the hit reached the replica (replication is asynchronous: without this wait the
            # promoted replica may not have it, the loss the test above measures)
            cluster.wait_replicated(primary)
            killed_at = time.monotonic()
            cluster.kill(primary)
            slowest, fell_back, recovered_at = 0.0, 0, 0.0
            while time.monotonic() - killed_at < 30:
                before = limiter.counters.snapshot()["fallbacks"]
                t0 = time.monotonic()
                d = await limiter.hit(limit, key)
                slowest = max(slowest, time.monotonic() - t0)
                if limiter.counters.snapshot()["fallbacks"] > before:
                    fell_back += 1
                    assert not d.allowed  # "closed": the fallback refuses
                elif fell_back:
                    # a real answer again, from the promoted replica, same limiter object
                    assert d.allowed and d.remaining < LIMIT - 1
                    recovered_at = time.monotonic()
                    break
                await asyncio.sleep(0.02)
            cluster.restart(primary)
        finally:
            await limiter.aclose()
        return fell_back, recovered_at - killed_at if recovered_at else -1.0, slowest

    fell_back, recovered_after, slowest = asyncio.run(scenario())
    print(f"\nasync: {fell_back} fallbacks, recovered {recovered_after:.2f} s after the kill")
    assert fell_back > 0
    assert recovered_after > 0, "the async limiter never got a real answer again"
    assert slowest < CALL_BOUND


def test_leased_limiter_follows_a_failover_through_its_routed_channels(cluster, monkeypatch):
    """Leasing on: renewals go through the limiter's per-node channels (``_routed.py``). The
    primary of the key's slot is killed: renewals fall back ("closed") within the timeouts,
    and once the replica is promoted they reach it through those channels again."""
    from redis.crc import key_slot

    from cognitionos.ratelimit import LeasePolicy
    from cognitionos.ratelimit._routed import RoutedChannel

    routed_ok: list[float] = []
    real_run = RoutedChannel.run

    def recording_run(self: RoutedChannel, packed: list[bytes], slots: list[int]) -> list[Any]:
        replies = real_run(self, packed, slots)
        routed_ok.append(time.monotonic())
        return replies

    monkeypatch.setattr(RoutedChannel, "run", recording_run)
    limiter = RateLimiter(
        cluster.url,
        prefix=f"fl{uuid.uuid4().hex[:6]}",
        on_backend_error="closed",
        retry_backend_after=0.2,
        timeout=TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
        lease=LeasePolicy(ttl=1.0, max_slice=5),
    )
    limit = Limit(amount=LIMIT, period=3600)
    key = f"victim:{uuid.uuid4().hex[:8]}"
    try:
        admitted = sum(limiter.hit(limit, key).allowed for _ in range(20))
        assert admitted == 20 and routed_ok
        skey = limiter._lease.keys(limiter._s.specs(limit)[0], key)[0]
        primary = cluster.primary_of(skey)
        killed_at = time.monotonic()
        cluster.kill(primary)
        slowest, fell_back, recovered_at = 0.0, 0, 0.0
        while time.monotonic() - killed_at < 30:
            before = limiter.counters.snapshot()["fallbacks"]
            trips = limiter.lease_stats()["round_trips"]
            t0 = time.monotonic()
            d = limiter.hit(limit, key)
            slowest = max(slowest, time.monotonic() - t0)
            if limiter.counters.snapshot()["fallbacks"] > before:
                fell_back += 1
                assert not d.allowed  # "closed": the fallback refuses
            elif fell_back and limiter.lease_stats()["round_trips"] > trips:
                assert d.allowed  # a renewal answered by the promoted replica
                recovered_at = time.monotonic()
                break
            time.sleep(0.01)
        assert fell_back > 0
        assert recovered_at, "the leased limiter never renewed again"
        # after the promotion, renewals use the per-node channels, not only the client
        n = len(routed_ok)
        for _ in range(30):
            limiter.hit(limit, key)
        assert len(routed_ok) > n
        assert limiter._backend._routed.primary(key_slot(skey.encode())).port != primary
        assert slowest < CALL_BOUND
        print(
            f"\nleased: {fell_back} fallbacks, renewed {recovered_at - killed_at:.2f} s after "
            f"the kill, slowest call {slowest:.2f} s"
        )
        cluster.restart(primary)
    finally:
        limiter.close()
