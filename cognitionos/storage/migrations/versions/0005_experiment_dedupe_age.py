"""Experiment de-duplication ids get the second they were first seen, so they can expire.

Revision ID: 0005
Revises: 0004

``cos_exp_seen`` grew by one row per metric event forever. ``seen_at`` (seconds) and an
index on ``(experiment, seen_at)`` let the experiments engine delete the ids older than its
de-duplication window (``ExperimentEngine(dedupe_window=...)``). Rows written before this
migration get 0 and are pruned first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cos_exp_seen",
        sa.Column("seen_at", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index("ix_cos_exp_seen_age", "cos_exp_seen", ["experiment", "seen_at"])


def downgrade() -> None:
    op.drop_index("ix_cos_exp_seen_age", table_name="cos_exp_seen")
    op.drop_column("cos_exp_seen", "seen_at")
