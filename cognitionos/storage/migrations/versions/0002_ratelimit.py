"""Rate limiter tables: per-key algorithm state and bans.

Revision ID: 0002
Revises: 0001

The rate limiter also creates these tables when it is handed a bare engine
(checkfirst), so ``if_not_exists`` keeps this migration safe on such databases.
tests/storage/test_sql.py checks it matches ``cognitionos.ratelimit._sql.build_tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cos_ratelimit_state",
        sa.Column("rl_key", sa.String(300), primary_key=True),
        sa.Column("state", sa.LargeBinary, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "ix_cos_ratelimit_state_expires_at",
        "cos_ratelimit_state",
        ["expires_at"],
        if_not_exists=True,
    )
    op.create_table(
        "cos_ratelimit_bans",
        sa.Column("rl_key", sa.String(300), primary_key=True),
        sa.Column("until_us", sa.BigInteger, nullable=False),
        sa.Column("offenses", sa.Integer, nullable=False),
        sa.Column("keep_until_us", sa.BigInteger, nullable=False),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("violations", sa.Text, nullable=True),
        if_not_exists=True,
    )
    op.create_index(
        "ix_cos_ratelimit_bans_keep_until_us",
        "cos_ratelimit_bans",
        ["keep_until_us"],
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_index("ix_cos_ratelimit_bans_keep_until_us", table_name="cos_ratelimit_bans")
    op.drop_table("cos_ratelimit_bans")
    op.drop_index("ix_cos_ratelimit_state_expires_at", table_name="cos_ratelimit_state")
    op.drop_table("cos_ratelimit_state")
