"""``create_app``: the FastAPI app, its routes and the pure-ASGI guard stack.

Request path, outermost first: :class:`AccessLog` (one JSON line per request, trace id) ->
:class:`BodyGuard` (413/415) -> WAF (403, bans) -> rate limit per client IP for requests
without a known key -> per API key -> per tenant (429 with the IETF ``RateLimit`` fields) ->
APM tracing (a server span per request, per-route latency) -> FastAPI. Every layer is pure
ASGI.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI

from cognitionos import __version__
from cognitionos.errors import CognitionError
from cognitionos.integrations.apm import TracingMiddleware
from cognitionos.integrations.proxies import TrustedProxies
from cognitionos.integrations.ratelimit import ClientIP, RateLimitMiddleware
from cognitionos.integrations.request import RequestInfo
from cognitionos.server._access import AccessLog, note_span
from cognitionos.server._guards import BodyGuard, ProblemFirewall
from cognitionos.server._keys import parse_token
from cognitionos.server._metrics import ServerCollector
from cognitionos.server._problems import install_handlers
from cognitionos.server._routes import (
    admin,
    apm,
    audit,
    autoscale,
    change_requests,
    dr,
    experiments,
    flags,
    guard,
    ops,
    pricing,
    stream,
    waf_rules,
)
from cognitionos.server._routes.docs import install_docs
from cognitionos.server._settings import Settings
from cognitionos.server._state import ServerState

__all__ = ["build_app"]

log = logging.getLogger("cognitionos.server")

TAGS = [
    {"name": "auth", "description": "Who is calling"},
    {"name": "tenants", "description": "Tenants (the platform tenant manages the others)"},
    {"name": "users", "description": "Users of a tenant"},
    {"name": "keys", "description": "API keys: shown once, stored as hashes"},
    {"name": "roles", "description": "Roles and their scopes (the access policy)"},
    {"name": "flags", "description": "Feature flags"},
    {"name": "waf", "description": "Web application firewall"},
    {"name": "ratelimit", "description": "Rate limits"},
    {"name": "experiments", "description": "A/B tests: definitions, assignment, events, analysis"},
    {"name": "pricing", "description": "Elasticity, optimal prices, customer lifetime value"},
    {"name": "apm", "description": "Trace ingest, route latency, error groups, slow queries"},
    {"name": "autoscale", "description": "Trace replays, HPA decisions and manifests"},
    {"name": "dr", "description": "Recovery plans, retention previews, the backup catalog"},
    {"name": "audit", "description": "Tamper-evident log of administrative changes"},
    {"name": "operations", "description": "Health, readiness, metrics"},
]


def _key_id_of(header: str) -> str | None:
    if not header.lower().startswith("bearer "):
        return None
    token = parse_token(header[7:].strip())
    return token.key_id if token is not None else None


#: header digest -> key id: each of the three guards asks, the checksum is verified once per
#: token (keyed by a digest so that the cache holds no secrets)
_KEY_IDS: dict[bytes, str | None] = {}


def _key_id(info: RequestInfo) -> str | None:
    header = info.headers.get("authorization", "")
    if not header or len(header) > 512:
        return None
    digest = hashlib.blake2b(header.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    try:
        return _KEY_IDS[digest]
    except KeyError:
        pass
    key_id = _key_id_of(header)
    if len(_KEY_IDS) >= 4096:
        _KEY_IDS.clear()
    _KEY_IDS[digest] = key_id
    return key_id


def _guarded(app: FastAPI, state: ServerState) -> Any:
    settings = state.settings
    known = state.key_tenants
    client_ip = ClientIP(TrustedProxies(settings.trusted_proxies))

    def anonymous(info: RequestInfo) -> str | None:
        key_id = _key_id(info)
        if key_id is not None and key_id in known:
            return None
        ip = client_ip(info)
        return f"guard:{ip}" if ip else None

    def per_key(info: RequestInfo) -> str | None:
        key_id = _key_id(info)
        return f"guard:key:{key_id}" if key_id is not None and key_id in known else None

    def per_tenant(info: RequestInfo) -> str | None:
        key_id = _key_id(info)
        tenant = known.get(key_id) if key_id is not None else None
        return f"guard:tenant:{tenant}" if tenant is not None else None

    limiter = state.guard_limiter
    stack: Any = TracingMiddleware(
        app,
        tracer_provider=state.tracer_provider,
        recorder=state.latency,
        annotate=note_span,
    )
    stack = RateLimitMiddleware(
        stack, limiter=limiter, limits=settings.tenant_rate_limit, key=per_tenant
    )
    stack = RateLimitMiddleware(stack, limiter=limiter, limits=settings.key_rate_limit, key=per_key)
    stack = RateLimitMiddleware(
        stack, limiter=limiter, limits=settings.anonymous_rate_limit, key=anonymous
    )
    stack = ProblemFirewall(
        stack,
        state.firewall,
        incidents=state.incidents,
        blacklist=state.blacklist,
        max_body_bytes=settings.max_body_bytes,
        trusted_proxies=settings.trusted_proxies,
    )
    stack = BodyGuard(stack, max_body_bytes=settings.max_body_bytes)
    return AccessLog(stack) if settings.access_log else stack


class GuardedApp:
    """The FastAPI app behind its guard stack; attribute access reaches the FastAPI app."""

    def __init__(self, app: FastAPI, asgi: Any) -> None:
        self.fastapi = app
        self._asgi = asgi

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.fastapi(scope, receive, send)
            return
        await self._asgi(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fastapi, name)


def build_app(settings: Settings | None = None, *, announce: bool = True) -> GuardedApp:
    """See :func:`cognitionos.server.create_app`."""
    from prometheus_client import CollectorRegistry

    settings = settings or Settings()
    state = ServerState(settings)
    created = state.bootstrap() if settings.bootstrap else None
    if created is not None and announce:
        _row, token = created
        print(
            "cognitionos: new database; created tenant 'platform' and its owner API key "
            f"(shown once, store it now):\n\n    {token}\n",
            file=sys.stderr,
            flush=True,
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async def publish_latency() -> None:
            # per-route latency sketches go to the database, merged across processes
            while True:
                await anyio.sleep(settings.latency_flush_interval)
                try:
                    await anyio.to_thread.run_sync(state.latency.flush)
                except CognitionError as exc:
                    log.warning("route latency not published: %s", exc)

        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(publish_latency)
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()
        finally:
            # outside the cancelled task group, so these awaits run
            with contextlib.suppress(CognitionError):
                await anyio.to_thread.run_sync(state.latency.flush)
            await state.aclose()

    app = FastAPI(
        title="cognitionos",
        version=__version__,
        description="Reference server: the cognitionos engines behind a multi-tenant REST API. "
        "Authenticate with `Authorization: Bearer <API key>`; errors are "
        "`application/problem+json`.",
        openapi_tags=TAGS,
        lifespan=lifespan,
        # /docs is served with local assets (install_docs); ReDoc would need a CDN
        docs_url=None,
        redoc_url=None,
    )
    app.state.cognitionos = state
    app.state.bootstrap_token = created[1] if created is not None else None
    registry = CollectorRegistry()
    registry.register(ServerCollector(state))
    app.state.cognitionos_registry = registry
    install_handlers(app)
    # routes are matched in order: the per-request data plane (flag evaluation, rate-limit
    # checks, experiment assignment) first, administration last. Paths of different modules
    # never overlap, except /v1/flags/stream and /v1/flags/change-requests, which must come
    # before /v1/flags/{key}.
    for module in (
        stream,
        change_requests,
        flags,
        guard,
        experiments,
        apm,
        pricing,
        autoscale,
        dr,
        waf_rules,
        ops,
        admin,
        audit,
    ):
        app.include_router(module.router)
    install_docs(app)
    return GuardedApp(app, _guarded(app, state))
