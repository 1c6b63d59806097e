"""Reference server tables: tenants, users, API keys, idempotency records, rate-limit policies.

Revision ID: 0003
Revises: 0002

Every row carries ``tenant_id``. tests/storage/test_sql.py checks this matches
``cognitionos.server._tables.build_tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cos_tenants",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_table(
        "cos_users",
        sa.Column("user_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.UniqueConstraint("tenant_id", "email", name="uq_cos_users_tenant_email"),
    )
    op.create_index("ix_cos_users_tenant_id", "cos_users", ["tenant_id"])
    op.create_table(
        "cos_api_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
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
    op.create_index("ix_cos_api_keys_tenant_id", "cos_api_keys", ["tenant_id"])
    op.create_table(
        "cos_idempotency",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_cos_idempotency_expires_at", "cos_idempotency", ["expires_at"])
    op.create_table(
        "cos_ratelimit_policies",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("limits", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cos_ratelimit_policies")
    op.drop_index("ix_cos_idempotency_expires_at", table_name="cos_idempotency")
    op.drop_table("cos_idempotency")
    op.drop_index("ix_cos_api_keys_tenant_id", table_name="cos_api_keys")
    op.drop_table("cos_api_keys")
    op.drop_index("ix_cos_users_tenant_id", table_name="cos_users")
    op.drop_table("cos_users")
    op.drop_table("cos_tenants")
