"""HTTP adapters: pure-ASGI and WSGI middleware, a FastAPI dependency, key functions.

A limiter answers with a :class:`~cognitionos.ratelimit.Decision`; these adapters
turn it into HTTP: ``RateLimit-Policy`` / ``RateLimit`` header fields (IETF
httpapi draft), optional legacy ``X-RateLimit-*``, and on refusal a 429 with
``Retry-After`` (whole seconds, rounded up) and an ``application/problem+json`` body::

    app = RateLimitMiddleware(app, limiter=AsyncRateLimiter("redis://…"), limits="100/minute",
                              key=ClientIP(TrustedProxies(["10.0.0.0/8"], ipv6_prefix=64)))
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from cognitionos._optional import require
from cognitionos.integrations.request import RequestInfo
from cognitionos.ratelimit import AsyncRateLimiter, Decision, RateLimiter
from cognitionos.ratelimit.engine import LimitLike

__all__ = [
    "ClientIP",
    "ProxyPolicy",
    "RateLimit",
    "RateLimitMiddleware",
    "RequestInfo",
    "WSGIRateLimitMiddleware",
    "api_key",
    "decision_headers",
    "problem_body",
    "route_key",
    "tenant_key",
]

QUOTA_EXCEEDED = "https://iana.org/assignments/http-problem-types#quota-exceeded"
ABNORMAL_USAGE = "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"


KeyFunc = Callable[[RequestInfo], str | None]


class ProxyPolicy(Protocol):
    """What :class:`ClientIP` needs of :class:`cognitionos.integrations.TrustedProxies`."""

    def client_ip(
        self, peer: str | None, *, forwarded_for: str | None = None, forwarded: str | None = None
    ) -> str:
        """The client address behind the proxies (``"unknown"`` when the peer is unusable)."""
        ...


class ClientIP:
    """Key function: ``"ip:<client address>"``, the peer unless trusted proxies say otherwise.

    Forwarded headers count only through ``proxies`` (a
    :class:`cognitionos.integrations.TrustedProxies`, which also aggregates IPv6 /64s)::

        key = ClientIP(TrustedProxies(["10.0.0.0/8"], ipv6_prefix=64))
        key(RequestInfo("GET", "/", {"x-forwarded-for": "203.0.113.9"}, "10.1.2.3"))
        # -> "ip:203.0.113.9"
    """

    def __init__(self, proxies: ProxyPolicy | None = None) -> None:
        self.proxies = proxies

    def __call__(self, info: RequestInfo) -> str | None:
        if self.proxies is None:
            return f"ip:{info.peer}" if info.peer else None
        address = self.proxies.client_ip(
            info.peer,
            forwarded_for=info.headers.get("x-forwarded-for"),
            forwarded=info.headers.get("forwarded"),
        )
        return None if address == "unknown" else f"ip:{address}"


def api_key(header: str = "x-api-key", *, prefix: str = "key:") -> KeyFunc:
    """Key function: the API key header (``None`` when absent, so the request is not limited)."""
    name = header.lower()

    def key(info: RequestInfo) -> str | None:
        value = info.headers.get(name)
        return f"{prefix}{value}" if value else None

    return key


def tenant_key(header: str = "x-tenant-id", *, prefix: str = "tenant:") -> KeyFunc:
    """Key function: the tenant header."""
    return api_key(header, prefix=prefix)


def route_key(inner: KeyFunc | None = None) -> KeyFunc:
    """Key function: method and path, optionally per caller (``route_key(ClientIP())``)."""

    def key(info: RequestInfo) -> str | None:
        who = inner(info) if inner is not None else ""
        if who is None:
            return None
        return f"route:{info.method} {info.path}" + (f"|{who}" if who else "")

    return key


def _sf_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decision_headers(
    decision: Decision, *, legacy: bool = False, now: float | None = None
) -> list[tuple[str, str]]:
    """``RateLimit-Policy`` and ``RateLimit`` fields (plus ``Retry-After`` when refused).

    With ``legacy``, also ``X-RateLimit-Limit/Remaining/Reset``; Reset is epoch seconds
    and needs ``now`` (epoch seconds from the limiter's clock)::

        decision_headers(d) == [("RateLimit-Policy", '"100-per-60s";q=100;w=60'),
                                ("RateLimit", '"100-per-60s";r=99;t=60')]
    """
    parts = decision.details or (decision,)
    policies, states = [], []
    for d in parts:
        if d.policy is None:
            continue
        name = _sf_string(d.policy.policy_name)
        window = max(1, math.ceil(d.policy.period))
        policies.append(f"{name};q={d.limit};w={window}")
        wait = d.retry_after if not d.allowed and d.retry_after is not None else d.reset_after
        states.append(f"{name};r={max(0, d.remaining)};t={max(0, math.ceil(wait))}")
    headers = []
    if policies:
        headers += [("RateLimit-Policy", ", ".join(policies)), ("RateLimit", ", ".join(states))]
    if not decision.allowed:
        headers.append(("Retry-After", str(retry_after_seconds(decision))))
    if legacy:
        headers += [
            ("X-RateLimit-Limit", str(decision.limit)),
            ("X-RateLimit-Remaining", str(max(0, decision.remaining))),
        ]
        if now is not None:
            headers.append(("X-RateLimit-Reset", str(math.ceil(now + decision.reset_after))))
    return headers


def retry_after_seconds(decision: Decision) -> int:
    """Whole seconds to wait, rounded up, at least 1."""
    wait = decision.retry_after if decision.retry_after is not None else decision.reset_after
    return max(1, math.ceil(wait))


def problem_body(decision: Decision) -> bytes:
    """RFC 9457 problem document for a refusal.

    Type ``quota-exceeded``, or ``abnormal-usage-detected`` for a banned client.
    """
    parts = decision.details or (decision,)
    violated = [d.policy.policy_name for d in parts if not d.allowed and d.policy is not None]
    if decision.banned:
        body = {
            "type": ABNORMAL_USAGE,
            "title": "Too Many Requests",
            "status": 429,
            "detail": "This client is temporarily blocked.",
        }
    else:
        body = {
            "type": QUOTA_EXCEEDED,
            "title": "Too Many Requests",
            "status": 429,
            "detail": f"Rate limit exceeded; retry in {retry_after_seconds(decision)} s.",
            "violated-policies": violated,
        }
    return json.dumps(body, separators=(",", ":")).encode()


class RateLimitMiddleware:
    """Pure ASGI middleware: 429 before the app runs, headers on every limited response.

    ``limiter`` is an :class:`AsyncRateLimiter` (or a memory :class:`RateLimiter`, which
    never blocks). Requests whose ``key`` function returns ``None`` pass unlimited;
    non-HTTP scopes (websocket, lifespan) pass through untouched.
    """

    def __init__(
        self,
        app: Callable[..., Awaitable[None]],
        *,
        limiter: AsyncRateLimiter | RateLimiter,
        limits: LimitLike,
        key: KeyFunc | None = None,
        legacy_headers: bool = False,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.key = key or ClientIP()
        self.legacy_headers = legacy_headers
        self._async = isinstance(limiter, AsyncRateLimiter)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        key = self.key(RequestInfo.from_scope(scope))
        if key is None:
            await self.app(scope, receive, send)
            return
        if self._async:
            decision = await self.limiter.hit(self.limits, key)  # type: ignore[misc]
        else:
            decision = self.limiter.hit(self.limits, key)  # type: ignore[assignment]
        now = self.limiter.clock.time() if self.legacy_headers else None
        headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in decision_headers(decision, legacy=self.legacy_headers, now=now)
        ]
        if not decision.allowed:
            body = problem_body(decision)
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        *headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class WSGIRateLimitMiddleware:
    """WSGI middleware (Flask, Django): same behaviour with a sync :class:`RateLimiter`."""

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        limiter: RateLimiter,
        limits: LimitLike,
        key: KeyFunc | None = None,
        legacy_headers: bool = False,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.limits = limits
        self.key = key or ClientIP()
        self.legacy_headers = legacy_headers

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        key = self.key(RequestInfo.from_environ(environ))
        if key is None:
            return self.app(environ, start_response)
        decision = self.limiter.hit(self.limits, key)
        now = self.limiter.clock.time() if self.legacy_headers else None
        headers = decision_headers(decision, legacy=self.legacy_headers, now=now)
        if not decision.allowed:
            body = problem_body(decision)
            start_response(
                "429 Too Many Requests",
                [
                    ("Content-Type", "application/problem+json"),
                    ("Content-Length", str(len(body))),
                    *headers,
                ],
            )
            return [body]

        def start_with_headers(status: str, response_headers: list[Any], *exc: Any) -> Any:
            return start_response(status, [*response_headers, *headers], *exc)

        return self.app(environ, start_with_headers)


class RateLimit:
    """FastAPI dependency: ``Depends(RateLimit("100/minute", limiter=limiter))``.

    Sets the RateLimit headers on the response, and raises ``HTTPException(429)`` with
    ``Retry-After`` and the problem document as ``detail`` when refused. FastAPI is
    imported only when FastAPI inspects or calls the dependency.
    """

    def __init__(
        self,
        limits: LimitLike,
        *,
        limiter: AsyncRateLimiter,
        key: KeyFunc | None = None,
        legacy_headers: bool = False,
    ) -> None:
        self.limits = limits
        self.limiter = limiter
        self.key = key or ClientIP()
        self.legacy_headers = legacy_headers

    @property
    def __signature__(self) -> inspect.Signature:
        starlette = require("starlette.requests", extra="server", purpose="the FastAPI dependency")
        responses = require("starlette.responses", extra="server")
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature(
            [
                inspect.Parameter("request", kind, annotation=starlette.Request),
                inspect.Parameter("response", kind, annotation=responses.Response),
            ]
        )

    async def __call__(self, request: Any, response: Any) -> Decision | None:
        scope = request.scope
        key = self.key(RequestInfo.from_scope(scope))
        if key is None:
            return None
        decision = await self.limiter.hit(self.limits, key)
        now = self.limiter.clock.time() if self.legacy_headers else None
        headers = dict(decision_headers(decision, legacy=self.legacy_headers, now=now))
        if not decision.allowed:
            fastapi = require("fastapi", extra="server")
            raise fastapi.HTTPException(
                status_code=429, detail=json.loads(problem_body(decision)), headers=headers
            )
        for name, value in headers.items():
            response.headers[name] = value
        return decision
