"""SQLAlchemy Core tables of the SQL backend.

The Alembic migrations in ``cognitionos/storage/migrations`` create exactly
these tables; a test checks that autogenerate finds no difference.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_metadata"]


def build_metadata() -> Any:
    """Return a fresh ``MetaData`` holding the cognitionos tables (imports SQLAlchemy lazily)."""
    import sqlalchemy as sa

    md = sa.MetaData()
    sa.Table(
        "cos_kv",
        md,
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    sa.Table(
        "cos_counters",
        md,
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
    )
    sa.Table(
        "cos_events",
        md,
        sa.Column("stream", sa.String(512), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    sa.Table(
        "cos_changes",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(512), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False, index=True),
    )
    return md
