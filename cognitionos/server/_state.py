"""What one server process holds: settings, stores, engines, the directory and the policy.

Durable state (tenants, keys, flags, policies) lives in the SQL database; hot state (rate
limit counters, bans) in Redis when ``redis_url`` is set, else in this process's memory.
Nothing here is module-global: each :func:`create_app` builds its own.
"""

from __future__ import annotations

import collections
import logging
import threading
from typing import Any

from cognitionos.apm import LatencyRecorder, TracerProvider
from cognitionos.audit import AuditLog
from cognitionos.clock import SystemClock
from cognitionos.errors import CognitionError, ConfigurationError, StorageError
from cognitionos.experiments import ExperimentEngine
from cognitionos.flags import FlagEngine
from cognitionos.ratelimit import AsyncRateLimiter, RateLimiter
from cognitionos.server._directory import Directory
from cognitionos.server._policy import AccessPolicy
from cognitionos.server._settings import Settings
from cognitionos.storage import open_store
from cognitionos.waf import AutoBlacklist, Firewall

__all__ = ["PLATFORM_TENANT", "ServerState"]

log = logging.getLogger("cognitionos.server")

#: id of the bootstrap tenant; the shipped policy grants platform scopes only here
PLATFORM_TENANT = "platform"
_KEY_CACHE = 65_536
JSON_BODY_RULE = "920901"
#: "too many arguments" and "more values than the inspection limit": bulk data routes carry
#: thousands of JSON values by design (each route bounds its own input and validates every
#: value's type); the first values are still inspected
BULK_RULES = ("920380", "920910")
BULK_DATA_ROUTES = (
    "/v1/experiments/*/exposures",
    "/v1/experiments/*/events",
    "/v1/pricing/*",
    "/v1/autoscale/simulate",
    "/v1/dr/retention/preview",
    "/v1/apm/traces",
)
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
        # Bulk data routes may carry more than the parser's 1000 arguments.
        self.firewall = Firewall(
            paranoia=settings.waf_paranoia,
            mode=settings.waf_mode,
            disabled_rules=[JSON_BODY_RULE],
            exclusions=[
                {"path": "/v1/waf/inspect", "methods": ["POST"], "locations": ["body:json:*"]},
                # spans carry SQL statements and exception messages by design: telemetry
                {"path": "/v1/apm/traces", "methods": ["POST"], "locations": ["body:json:*"]},
                # a YAML manifest is multi-line text
                {
                    "path": "/v1/autoscale/hpa/normalize",
                    "methods": ["POST"],
                    "locations": ["body:json:*"],
                    "categories": ["crlf"],
                },
                *(
                    {"path": path, "methods": ["POST"], "rule_ids": list(BULK_RULES)}
                    for path in BULK_DATA_ROUTES
                ),
            ],
        )
        self.blacklist = AutoBlacklist(self.hot, prefix="waf:", clock=self.clock)
        #: the APM stage: a server span per request (trace ids shared with the access log)
        #: and per-route latency sketches merged into the database every flush
        self.tracer_provider = TracerProvider(service_name="cognitionos-server")
        self.latency = LatencyRecorder(self.store, clock=self.clock)
        from cognitionos.metrics import CounterSet
        from cognitionos.server._metrics import AUTOSCALE_COUNTERS, PRICING_COUNTERS

        #: computations of the stateless engines this server ran (``/metrics``)
        self.engine_counters = {
            "pricing": CounterSet("pricing", PRICING_COUNTERS, help=PRICING_COUNTERS),
            "autoscale": CounterSet("autoscale", AUTOSCALE_COUNTERS, help=AUTOSCALE_COUNTERS),
        }
        self._flags: dict[str, FlagEngine] = {}
        self._flags_lock = threading.Lock()
        self._experiments: dict[str, ExperimentEngine] = {}
        self._flag_flushed: dict[str, float] = {}
        #: event loop -> the bounded pool for heavy computations (fits, simulations), made on
        #: first use inside the loop; requests beyond it wait instead of taking every thread
        self.compute_limiter: Any = None
        #: recent WAF refusals of this process (newest last), for ``GET /v1/waf/incidents``
        self.incidents: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        #: (tenant, digest of its WAF rules and exclusions) -> the firewall built from them
        self._tenant_firewalls: dict[str, tuple[str, Firewall]] = {}
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
                        store=self.store,
                        namespace=f"tenants/{tenant_id}/",
                        clock=self.clock,
                        track_evaluations=True,
                    )
                    self._flags[tenant_id] = engine
        return engine

    def experiments(self, tenant_id: str) -> ExperimentEngine:
        """The experiment engine of one tenant (definitions and statistics under its namespace)."""
        engine = self._experiments.get(tenant_id)
        if engine is None:
            with self._flags_lock:
                engine = self._experiments.get(tenant_id)
                if engine is None:
                    engine = ExperimentEngine(
                        self.store, namespace=f"tenants/{tenant_id}/", clock=self.clock
                    )
                    self._experiments[tenant_id] = engine
        return engine

    def flush_flag_stats(self, tenant_id: str, *, every: float = 30.0) -> None:
        """Write the tenant's evaluation statistics (for the stale report), at most every
        ``every`` seconds."""
        now = self.clock.time()
        if now - self._flag_flushed.get(tenant_id, 0.0) < every:
            return
        self._flag_flushed[tenant_id] = now
        try:
            self.flags(tenant_id).flush_stats()
        except StorageError as exc:  # statistics wait for the next flush; answers never fail
            log.warning("flag statistics of tenant %s not written: %s", tenant_id, exc)

    def tenant_firewall(self, tenant_id: str, digest: str, build: Any) -> Firewall:
        """The tenant's inspection firewall for the rule set named by ``digest``."""
        cached = self._tenant_firewalls.get(tenant_id)
        if cached is not None and cached[0] == digest:
            return cached[1]
        firewall: Firewall = build()
        if len(self._tenant_firewalls) >= 1024:
            self._tenant_firewalls.clear()
        self._tenant_firewalls[tenant_id] = (digest, firewall)
        return firewall

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
        for experiments in list(self._experiments.values()):
            experiments.close()
        self._experiments.clear()
        self.latency.close()
        self.limiter.close()
        self.hot.close()
        self.store.close()
