"""Rate limiting in ten lines: a per-tenant quota and a per-IP guard, charged all or nothing."""

from __future__ import annotations

from cognitionos.clock import ManualClock
from cognitionos.ratelimit import Limit, RateLimiter

clock = ManualClock(start=1_700_000_000)  # omit `clock=` in production (system clock)
limiter = RateLimiter("memory://", algorithm="sliding_log", clock=clock)
per_tenant, per_ip = Limit.parse("5/minute"), Limit.parse("2/second")

for n in range(8):
    d = limiter.hit_many([(per_tenant, "tenant:acme"), (per_ip, "ip:203.0.113.9")])
    print(f"t={n * 0.4:.1f}s allowed={d.allowed} binding={d.key} retry_after={d.retry_after}")
    clock.advance(0.4)
