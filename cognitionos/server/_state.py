"""What one server process holds: settings, stores, engines, the directory and the policy.

Durable state (tenants, keys, flags, policies) lives in the SQL database; hot state (rate
limit counters, bans) in Redis when ``redis_url`` is set, else in this process's memory.
Nothing here is module-global: each :func:`create_app` builds its own.
"""

from __future__ import annotations

import threading
from typing import Any

from cognitionos.audit import AuditLog
from cognitionos.clock import SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.flags import FlagEngine
from cognitionos.ratelimit import AsyncRateLimiter, RateLimiter
from cognitionos.server._directory import Directory
from cognitionos.server._policy import AccessPolicy
from cognitionos.server._settings import Settings
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall

__all__ = ["PLATFORM_TENANT", "ServerState"]

#: id of the bootstrap tenant; the shipped policy grants platform scopes only here
PLATFORM_TENANT = "platform"
_KEY_CACHE = 65_536
JSON_BODY_RULE = "920901"
#: event stream of the server's audit log (one for all tenants; each entry names its tenant)
AUDIT_STREAM = "server.audit"


class ServerState:
    """Engines and stores of one app; closed by :meth:`close` at shutdown."""

    def __init__(self, settings: Settings) -> None:
        from cognitionos.storage._sql import SQLStore

        self.settings = settings
        self.clock = SystemClock()
        self.store = open_store(settings.database_url, clock=self.clock)
        if not isinstance(self.store, SQLStore):
            self.store.close()
            raise ConfigurationError(
                f"COGNITIONOS_DATABASE_URL must be a SQLite or PostgreSQL URL, "
                f"got {settings.database_url!r}"
            )
        self.directory = Directory(self.store.engine, self.clock)
        self.policy = AccessPolicy.default()
        #: every administrative change, as leaves of an RFC 6962 Merkle tree in the database
        self.audit = AuditLog(self.store, stream=AUDIT_STREAM, clock=self.clock)
        hot_url = settings.redis_url or "memory://"
        self.hot = open_store(hot_url, clock=self.clock)
        self.limiter = RateLimiter(
            settings.redis_url or self.hot, algorithm="sliding_window", clock=self.clock
        )
        self.guard_limiter: RateLimiter | AsyncRateLimiter = (
            AsyncRateLimiter(settings.redis_url, algorithm="sliding_window", clock=self.clock)
            if settings.redis_url
            else self.limiter
        )
        # 920901 (body is not valid JSON) is left to FastAPI, which answers 422 with the
        # position of the error instead of a bare 403. The JSON body of /v1/waf/inspect is a
        # request to judge (attacks expected), data that is never executed: not guarded.
        self.firewall = Firewall(
            paranoia=settings.waf_paranoia,
            mode=settings.waf_mode,
            disabled_rules=[JSON_BODY_RULE],
            exclusions=[
                {"path": "/v1/waf/inspect", "methods": ["POST"], "locations": ["body:json:*"]}
            ],
        )
        self.blacklist = AutoBlacklist(self.hot, prefix="waf:", clock=self.clock)
        self._flags: dict[str, FlagEngine] = {}
        self._flags_lock = threading.Lock()
        #: key id -> tenant id of keys that authenticated here (for the per-tenant rate limit)
        self.key_tenants: dict[str, str] = {}

    def flags(self, tenant_id: str) -> FlagEngine:
        """The flag engine of one tenant (its definitions live under ``tenants/<id>/``)."""
        engine = self._flags.get(tenant_id)
        if engine is None:
            with self._flags_lock:
                engine = self._flags.get(tenant_id)
                if engine is None:
                    engine = FlagEngine(
                        store=self.store, namespace=f"tenants/{tenant_id}/", clock=self.clock
                    )
                    self._flags[tenant_id] = engine
        return engine

    def remember_key(self, key_id: str, tenant_id: str) -> None:
        """Note which tenant a key belongs to (bounded; cleared when full)."""
        if len(self.key_tenants) >= _KEY_CACHE:
            self.key_tenants.clear()
        self.key_tenants[key_id] = tenant_id

    def bootstrap(self) -> tuple[dict[str, Any], str] | None:
        """On an empty database: the platform tenant and an owner key (row, token), else None."""
        from cognitionos.server._directory import Conflict

        if not self.directory.is_empty():
            return None
        try:
            self.directory.create_tenant("platform", tenant_id=PLATFORM_TENANT)
        except Conflict:
            return None  # another process bootstrapped first
        row, token = self.directory.create_key(
            PLATFORM_TENANT, name="bootstrap owner key", role="owner", created_by="bootstrap"
        )
        self.audit.append(PLATFORM_TENANT, "bootstrap", "tenant.create", "tenants/platform")
        self.audit.append(
            PLATFORM_TENANT,
            "bootstrap",
            "key.create",
            f"keys/{row['key_id']}",
            {"before": None, "after": {"role": "owner", "name": row["name"]}},
        )
        return row, token

    async def aclose(self) -> None:
        """Close engines and stores (safe to call twice)."""
        if isinstance(self.guard_limiter, AsyncRateLimiter):
            await self.guard_limiter.aclose()
        for engine in list(self._flags.values()):
            engine.close()
        self._flags.clear()
        self.limiter.close()
        self.hot.close()
        self.store.close()
