"""Experiment tables: exposures, exactly-once event ids, per-unit totals, per-arm sums.

Revision ID: 0004
Revises: 0003

``cos_exp_stats`` holds one row per (experiment, arm, metric) whose eight float sums are
updated by upsert (``ON CONFLICT DO UPDATE SET s = s + excluded.s``); ``cos_exp_unit_metrics``
keeps each unit's running totals so an event changes the sums by the change of the unit's
contribution. The experiments engine also creates these tables when missing (checkfirst),
so ``if_not_exists`` keeps this migration safe on such databases.
tests/storage/test_sql.py checks it matches ``cognitionos.experiments._ingest.build_tables``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_SUMS = (
    "sum",
    "sum_sq",
    "pre_sum",
    "pre_sum_sq",
    "cross_sum",
    "denom_sum",
    "denom_sum_sq",
    "num_denom_sum",
)


def upgrade() -> None:
    name = sa.String(300)
    op.create_table(
        "cos_exp_units",
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("arm", name, nullable=False),
        sa.Column("multi", sa.Boolean, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "cos_exp_arms",
        sa.Column("experiment", name, primary_key=True),
        sa.Column("arm", name, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("multi", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "cos_exp_seen",
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("event_id", name, primary_key=True),
        if_not_exists=True,
    )
    op.create_table(
        "cos_exp_unit_metrics",
        sa.Column("experiment", name, primary_key=True),
        sa.Column("unit", name, primary_key=True),
        sa.Column("metric", name, primary_key=True),
        sa.Column("num", sa.Float(53), nullable=False),
        sa.Column("den", sa.Float(53), nullable=False),
        sa.Column("cov", sa.Float(53), nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "cos_exp_stats",
        sa.Column("experiment", name, primary_key=True),
        sa.Column("arm", name, primary_key=True),
        sa.Column("metric", name, primary_key=True),
        *(sa.Column(f, sa.Float(53), nullable=False) for f in _SUMS),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in (
        "cos_exp_stats",
        "cos_exp_unit_metrics",
        "cos_exp_seen",
        "cos_exp_arms",
        "cos_exp_units",
    ):
        op.drop_table(table)
