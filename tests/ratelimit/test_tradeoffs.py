"""The worst cases docs/ratelimit.md states for each algorithm, demonstrated."""

from __future__ import annotations

import pytest

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import Limit, RateLimiter

from .conftest import T0

LIMIT = Limit(amount=10, period=60)


def admitted(limiter: RateLimiter, n: int) -> int:
    return sum(limiter.hit(LIMIT, "edge").allowed for _ in range(n))


@pytest.mark.parametrize(
    ("algorithm", "worst"),
    [
        ("fixed_window", 20),  # a full window just before the boundary and one just after
        ("sliding_window", 20),  # the weighted estimate assumes the previous bucket was uniform
        ("sliding_log", 10),  # exact
        ("fixed_window_anchored", 10),  # the second burst falls in the same anchored window
    ],
)
def test_two_bursts_around_a_bucket_boundary(algorithm, worst):
    # both bursts fall inside one 60 s span: [T0 + 59.999, T0 + 119.9]
    clock = ManualClock(T0 + 59.999)
    limiter = RateLimiter(algorithm=algorithm, clock=clock)
    first = admitted(limiter, 20)
    clock.set(T0 + 119.9)
    assert first + admitted(limiter, 20) == worst


@pytest.mark.parametrize("algorithm", ["token_bucket", "gcra"])
def test_buckets_admit_burst_plus_refill(algorithm):
    clock = ManualClock(T0)
    limiter = RateLimiter(algorithm=algorithm, clock=clock)
    limit = Limit(amount=10, period=60, burst=4)
    total = sum(limiter.hit(limit, "b").allowed for _ in range(50))
    for _ in range(60):
        clock.advance(1)
        total += sum(limiter.hit(limit, "b").allowed for _ in range(5))
    assert total == 4 + 10  # burst + rate x 60 s
