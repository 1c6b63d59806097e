"""Leased quotas under contention on real Redis: 8 processes x 4 threads, and SIGKILLed holders.

The bound (docs/ratelimit.md, "Leased quotas"): a slice is charged to the window before any of
it is used, so a window never admits more than its limit, crashes included; quota held by a
killed holder is lost to that window (under-admission) and back when the window rolls.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

from .conftest import REDIS_URL, redis_client

PROCESSES, THREADS = 8, 4
AMOUNT = 2000
HITS_PER_THREAD = 150  # 8 x 4 x 150 = 4,800 attempts for 2,000 admissions


def long_period() -> int:
    """A period whose current (clock-aligned) window has at least 10 minutes left."""
    now = time.time()
    for period in (86400, 7 * 86400, 3 * 3600, 5 * 3600):
        if period - now % period > 600:
            return period
    raise AssertionError("unreachable: the windows above cannot all end within 10 minutes")


def hammer(
    url: str, prefix: str, algorithm: str, key: str, period: int
) -> tuple[int, dict[str, int]]:
    """Worker process: 4 threads hit ``key`` with leasing on, then close (handing back)."""
    from cognitionos.ratelimit import LeasePolicy, Limit, RateLimiter

    limiter = RateLimiter(url, algorithm=algorithm, prefix=prefix, lease=LeasePolicy(ttl=2.0))
    limit = Limit(amount=AMOUNT, period=period)
    admitted = [0] * THREADS
    start = threading.Barrier(THREADS)

    def run(i: int) -> None:
        start.wait()
        for _ in range(HITS_PER_THREAD):
            admitted[i] += limiter.hit(limit, key).allowed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = limiter.lease_stats()
    limiter.close()
    return sum(admitted), stats


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=PROCESSES, mp_context=ctx) as executor:
        yield executor


@pytest.fixture
def prefix() -> Iterator[str]:
    client = redis_client()
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    keys = list(client.scan_iter(match=f"{name}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
@pytest.mark.parametrize("algorithm", ["fixed_window", "sliding_window"])
def test_leasing_never_admits_more_than_the_limit_under_contention(
    request, pool, prefix, algorithm, backend
):
    from cognitionos.ratelimit import Limit, RateLimiter

    url = REDIS_URL if backend == "redis" else request.getfixturevalue("redis_cluster_url")
    period = long_period()
    limit = Limit(amount=AMOUNT, period=period)
    plain = RateLimiter(url, algorithm=algorithm, prefix=prefix)
    results = []
    for trial in range(3):
        key = f"hammer:{trial}"
        futures = [
            pool.submit(hammer, url, prefix, algorithm, key, period) for _ in range(PROCESSES)
        ]
        outs = [f.result(timeout=180) for f in futures]
        admitted = sum(n for n, _ in outs)
        local = sum(s["local"] for _, s in outs)
        # every slice went back on close(): what the workers did not use is still there
        rest = 0
        while plain.hit(limit, key).allowed:
            rest += 1
        results.append((admitted, rest, local))
    plain.close()
    for admitted, rest, local in results:
        assert admitted <= AMOUNT
        assert admitted + rest == AMOUNT  # exact: nothing over-admitted, nothing lost
        assert local > AMOUNT // 2  # most admissions were decided in process


def hold_and_wait(prefix: str, key: str, now: float, period: int, queue: Any) -> None:
    """Worker: 4 threads take 20 admissions each with leasing on, report, then wait to die."""
    from cognitionos.clock import ManualClock
    from cognitionos.ratelimit import LeasePolicy, Limit, RateLimiter

    limiter = RateLimiter(
        REDIS_URL,
        clock=ManualClock(now),
        server_time=False,
        prefix=prefix,
        lease=LeasePolicy(ttl=5.0, initial_slice=8),
    )
    limit = Limit(amount=1000, period=period)
    admitted = [0] * THREADS

    def run(i: int) -> None:
        for _ in range(40):
            if admitted[i] < 20:
                admitted[i] += limiter.hit(limit, key).allowed

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((os.getpid(), sum(admitted), limiter.lease_stats()["held"]))
    time.sleep(120)  # holding its slices until SIGKILL


@pytest.mark.slow
@pytest.mark.redis
def test_sigkilled_holders_can_only_under_admit_until_the_window_rolls(prefix):
    from cognitionos.clock import ManualClock
    from cognitionos.ratelimit import LeasePolicy, Limit, RateLimiter

    period = 3600
    t0 = (int(time.time()) // period) * period + 60.0  # a minute into an hour window
    key = "victim"
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=hold_and_wait, args=(prefix, key, t0, period, queue))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    try:
        reports = [queue.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
        for p in procs:
            p.join(timeout=30)
    assert all(p.exitcode == -signal.SIGKILL for p in procs)
    killed_admitted = sum(r[1] for r in reports)
    held = sum(r[2] for r in reports)
    assert killed_admitted == PROCESSES * THREADS * 20
    assert held > 0  # they died holding unused slices

    clock = ManualClock(t0)
    limit = Limit(amount=1000, period=period)
    plain = RateLimiter(REDIS_URL, clock=clock, server_time=False, prefix=prefix)
    # the held quota stays charged: exactly limit - admitted - held is left to admit
    left = plain.stats(limit, key).remaining
    assert left == 1000 - killed_admitted - held

    # once their leases expire, the dead no longer count as holders: a newcomer's slice is
    # remaining / share (2), not remaining / (share x 9)
    clock.advance(6)
    newcomer = RateLimiter(
        REDIS_URL,
        clock=clock,
        server_time=False,
        prefix=prefix,
        lease=LeasePolicy(ttl=5.0, initial_slice=10_000),
    )
    assert newcomer.hit(limit, key).allowed
    assert newcomer.lease_stats()["held"] + 1 == left // 2
    newcomer.close()

    rest = 1
    while plain.hit(limit, key).allowed:
        rest += 1
    assert killed_admitted + rest == 1000 - held  # under-admission of exactly `held`

    # the held quota comes back when the window rolls
    clock.advance(period)
    fresh = RateLimiter(
        REDIS_URL, clock=clock, server_time=False, prefix=prefix, lease=LeasePolicy(ttl=5.0)
    )
    got = sum(fresh.hit(limit, key).allowed for _ in range(1100))
    fresh.close()
    plain.close()
    assert got == 1000
