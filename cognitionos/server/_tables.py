"""SQLAlchemy Core tables of the reference server (migration 0003 creates exactly these).

Every row carries ``tenant_id``; every query the server makes filters on it. Times are
integer nanoseconds since the epoch, like the rest of the SQL backend.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_tables"]


def build_tables(md: Any) -> dict[str, Any]:
    """Add the server's tables to ``md`` (a ``sqlalchemy.MetaData``) and return them by name."""
    import sqlalchemy as sa

    tenants = sa.Table(
        "cos_tenants",
        md,
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    users = sa.Table(
        "cos_users",
        md,
        sa.Column("user_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("tenant_id", "email", name="uq_cos_users_tenant_email"),
    )
    keys = sa.Table(
        "cos_api_keys",
        md,
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False, index=True),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
    )
    idempotency = sa.Table(
        "cos_idempotency",
        md,
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )
    policies = sa.Table(
        "cos_ratelimit_policies",
        md,
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("limits", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    return {
        "tenants": tenants,
        "users": users,
        "keys": keys,
        "idempotency": idempotency,
        "policies": policies,
    }
