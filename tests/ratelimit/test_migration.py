"""The Alembic migration creates exactly the tables the SQL backend defines."""

from __future__ import annotations

import pytest

sa = pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")


def _schema(engine):
    inspector = sa.inspect(engine)
    out = {}
    for table in ("cos_ratelimit_state", "cos_ratelimit_bans"):
        cols = {c["name"]: (str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)}
        idx = sorted(i["name"] for i in inspector.get_indexes(table))
        out[table] = (cols, idx, inspector.get_pk_constraint(table)["constrained_columns"])
    return out


def test_migration_matches_build_tables_and_downgrades(tmp_path):
    import importlib

    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    migration = importlib.import_module("cognitionos.storage.migrations.versions.0002_ratelimit")
    from cognitionos.ratelimit._sql import SqlBackend

    migrated = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with migrated.begin() as conn:
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            migration.upgrade()
            migration.upgrade()  # idempotent: tables the limiter created are left alone
    built = sa.create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    SqlBackend(built)
    assert _schema(migrated) == _schema(built)
    SqlBackend(migrated)  # the backend accepts the migrated schema as is
    with migrated.begin() as conn:
        ctx = MigrationContext.configure(conn)
        with Operations.context(ctx):
            migration.downgrade()
    assert "cos_ratelimit_state" not in sa.inspect(migrated).get_table_names()
    migrated.dispose()
    built.dispose()
