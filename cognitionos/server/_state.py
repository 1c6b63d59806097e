"""What one server process holds: settings, stores, engines, the directory and the policy.

Durable state (tenants, keys, flags, policies) lives in the SQL database; hot state (rate
limit counters, bans) in Redis when ``redis_url`` is set, else in this process's memory.
Nothing here is module-global: each :func:`create_app` builds its own.
"""

from __future__ import annotations

import threading
from typing import Any

from cognitionos.apm import LatencyRecorder, TracerProvider
from cognitionos.audit import AuditLog
from cognitionos.clock import SystemClock
from cognitionos.errors import CognitionError, ConfigurationError
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
        self._check_guard_limits(settings)
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
        #: the APM stage: a server span per request (trace ids shared with the access log)
        #: and per-route latency sketches merged into the database every flush
        self.tracer_provider = TracerProvider(service_name="cognitionos-server")
        self.latency = LatencyRecorder(self.store, clock=self.clock)
        self._flags: dict[str, FlagEngine] = {}
        self._flags_lock = threading.Lock()
        self._audit_lock = threading.Lock()
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

    def audit_signer(self) -> Any:
        """The Ed25519 signer of the audit log's tree heads (its key file made on first use)."""
        import os
        from pathlib import Path

        from cognitionos.audit import Ed25519Signer

        with self._audit_lock:
            if self.audit.signer is not None:
                return self.audit.signer
            path = Path(self.settings.audit_key_file or self._default_audit_key())
            try:
                text = path.read_text(encoding="ascii")
            except FileNotFoundError:
                signer = Ed25519Signer.generate()
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:  # another process made it first
                    text = path.read_text(encoding="ascii")
                else:
                    with os.fdopen(fd, "w", encoding="ascii") as fh:
                        fh.write(signer.private_bytes().hex() + "\n")
                    text = signer.private_bytes().hex()
            except OSError as exc:
                raise ConfigurationError(f"audit key file {str(path)!r}: {exc}") from None
            try:
                signer = Ed25519Signer(bytes.fromhex(text.strip()))
            except ValueError:
                raise ConfigurationError(
                    f"audit key file {str(path)!r}: expected an Ed25519 private key in hex"
                ) from None
            self.audit.signer = signer
            return signer

    def _default_audit_key(self) -> str:
        url = self.settings.database_url
        if url.startswith("sqlite:///") and len(url) > len("sqlite:///"):
            return url[len("sqlite:///") :] + ".audit-key"
        return "cognitionos-audit.key"

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

    def _check_guard_limits(self, settings: Settings) -> None:
        """Refuse to start on a guard limit the limiter cannot enforce (bad syntax, or too
        large for exact arithmetic on Redis), instead of answering every request with 500."""
        for name in ("key_rate_limit", "tenant_rate_limit", "anonymous_rate_limit"):
            text = getattr(settings, name)
            try:
                self.limiter.test(text, "guard:settings-check")
            except ConfigurationError as exc:
                raise ConfigurationError(f"COGNITIONOS_{name.upper()}={text!r}: {exc}") from None
            except CognitionError:
                pass  # the backend is down: the guards follow their error mode per request

    async def aclose(self) -> None:
        """Close engines and stores (safe to call twice)."""
        if isinstance(self.guard_limiter, AsyncRateLimiter):
            await self.guard_limiter.aclose()
        for engine in list(self._flags.values()):
            engine.close()
        self._flags.clear()
        self.latency.close()
        self.limiter.close()
        self.hot.close()
        self.store.close()
