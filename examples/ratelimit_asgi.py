"""A pure-ASGI app behind the rate-limit middleware, driven in process (no server needed)."""

from __future__ import annotations

import asyncio
import json

from cognitionos.integrations import TrustedProxies
from cognitionos.integrations.ratelimit import ClientIP, RateLimitMiddleware
from cognitionos.ratelimit import AsyncRateLimiter, BanPolicy


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


limiter = AsyncRateLimiter(
    "memory://",
    algorithm="gcra",
    ban_policy=BanPolicy(max_violations=3, find_window=60, ban_time=600),
)
guarded = RateLimitMiddleware(
    app,
    limiter=limiter,
    limits="2/second",
    key=ClientIP(TrustedProxies(["10.0.0.0/8"], ipv6_prefix=64)),
)


async def request(peer: str, forwarded_for: str) -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "client": (peer, 40000),
        "headers": [(b"x-forwarded-for", forwarded_for.encode())],
    }
    sent: list[dict] = []  # type: ignore[type-arg]

    async def receive():  # type: ignore[no-untyped-def]
        return {"type": "http.request"}

    async def send(message):  # type: ignore[no-untyped-def]
        sent.append(message)

    await guarded(scope, receive, send)
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    detail = json.loads(body["body"])["type"].rsplit("#")[-1] if start["status"] == 429 else ""
    print(start["status"], headers.get("ratelimit"), headers.get("retry-after"), detail)


async def main() -> None:
    for _ in range(7):  # the load balancer (10.0.0.5) forwards one client
        await request("10.0.0.5", "198.51.100.20")


asyncio.run(main())
