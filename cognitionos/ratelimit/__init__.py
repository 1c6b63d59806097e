"""Rate limiting: may this caller (IP, tenant, API key, route) proceed now?

Every standard algorithm (fixed window, sliding-window counter, exact sliding
log, token bucket, GCRA, concurrency leases) over memory, SQL or Redis, with
auto-block of abusers and shadow mode::

    from cognitionos.ratelimit import Limit, RateLimiter
    limiter = RateLimiter("memory://", algorithm="sliding_window")
    decision = limiter.hit(Limit.parse("100/minute"), "tenant:acme")
"""

from __future__ import annotations

from cognitionos.ratelimit._lease import LeasePolicy
from cognitionos.ratelimit.aio import AsyncRateLimiter
from cognitionos.ratelimit.engine import RateLimiter
from cognitionos.ratelimit.models import Algorithm, Ban, BanPolicy, Decision, Limit

__all__ = [
    "Algorithm",
    "AsyncRateLimiter",
    "Ban",
    "BanPolicy",
    "Decision",
    "LeasePolicy",
    "Limit",
    "RateLimiter",
]
