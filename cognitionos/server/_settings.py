"""Server settings from the environment (``COGNITIONOS_…``), via pydantic-settings."""

from __future__ import annotations

from typing import Literal

from cognitionos._optional import require

require("pydantic_settings", extra="server", purpose="the reference server")

from pydantic import Field  # noqa: E402
from pydantic_settings import BaseSettings, SettingsConfigDict  # noqa: E402

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything ``create_app`` needs; each field reads ``COGNITIONOS_<FIELD>`` from the env.

    The defaults are the embedded setup: a SQLite file in the working directory and hot
    state (rate limits, bans) in process memory. ``COGNITIONOS_DATABASE_URL=postgresql+psycopg://…``
    plus ``COGNITIONOS_REDIS_URL=redis://…`` make several processes act as one::

        Settings(database_url="sqlite:///app.db", key_rate_limit="100/minute")
    """

    model_config = SettingsConfigDict(env_prefix="COGNITIONOS_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///cognitionos.db", description="SQL database (durable state)"
    )
    redis_url: str | None = Field(
        default=None, description="Redis for shared hot state; memory if unset"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(
        default=1_048_576, ge=1, description="larger request bodies get 413"
    )
    key_rate_limit: str = Field(default="600/minute", description="per API key")
    tenant_rate_limit: str = Field(
        default="3000/minute", description="per tenant, all its keys together"
    )
    anonymous_rate_limit: str = Field(
        default="120/minute", description="per client IP without a key"
    )
    waf_mode: Literal["block", "detect"] = "block"
    waf_paranoia: int = Field(default=1, ge=1, le=4)
    trusted_proxies: list[str] = Field(default_factory=list)
    bootstrap: bool = Field(
        default=True, description="create a tenant and an owner key on an empty database"
    )
    sse_heartbeat: float = Field(
        default=15.0, gt=0, le=300, description="seconds between keep-alives"
    )
    sse_max_seconds: float = Field(
        default=300.0, gt=0, description="a stream ends after this long; clients resume"
    )
    sse_poll_interval: float = Field(default=0.25, gt=0, le=10, description="change polling period")
    backup_dir: str | None = Field(
        default=None,
        description="directory of the database's DR backups (cognitionos dr); unset: none",
    )
    compute_workers: int = Field(
        default=2, ge=1, le=64, description="fits and simulations running at once"
    )
    audit_key_file: str | None = Field(
        default=None,
        description="Ed25519 key (hex, `cognitionos audit keygen`) signing the audit tree heads; "
        "unset: `<SQLite file>.audit-key`, else `cognitionos-audit.key` here, made on first use",
    )
    audit_sth_interval: float = Field(
        default=60.0, gt=0, description="a new signed tree head at most this often (seconds)"
    )
    access_log: bool = Field(
        default=True, description="one JSON line per request (logger cognitionos.server.access)"
    )
    latency_flush_interval: float = Field(
        default=10.0, gt=0, le=3600, description="seconds between route-latency publications"
    )
    protected_environments: list[Literal["live", "test"]] = Field(
        default_factory=list,
        description="key environments whose flag changes wait for a second person's approval "
        '(change requests), e.g. ["live"]',
    )
    idempotency_ttl: float = Field(
        default=86_400.0, gt=0, description="seconds an idempotency key is kept"
    )
