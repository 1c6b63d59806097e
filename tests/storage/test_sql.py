"""SQL backend specifics: packaged migrations, atomic failure, change journal."""

from __future__ import annotations

import pytest

from cognitionos.errors import StorageError
from cognitionos.storage import open_store
from cognitionos.storage._sql import HEAD_REVISION, VERSION_TABLE, upgrade_schema


def test_head_constant_matches_migration_scripts():
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import cognitionos.storage.migrations as migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migrations_match_table_definitions(kind, tmp_path, request):
    """Alembic autogenerate finds nothing to do after our migrations ran."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from cognitionos.experiments._ingest import build_tables as build_experiment_tables
    from cognitionos.ratelimit._sql import build_tables
    from cognitionos.server._tables import build_tables as build_server_tables
    from cognitionos.storage._sql_schema import build_metadata

    url = (
        f"sqlite:///{tmp_path / 'm.db'}"
        if kind == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            expected = build_metadata()
            build_tables(expected)  # the rate limiter's tables come with migration 0002
            build_experiment_tables(expected)  # and the experiments' with 0004
            build_server_tables(expected)  # the reference server's tables (migration 0003)
            diff = [d for d in compare_metadata(ctx, expected) if "cos_" in repr(d)]
        assert diff == []
    finally:
        store.close()


def test_auto_migrate_off_requires_upgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = open_store(url, auto_migrate=False)
    try:
        with pytest.raises(StorageError, match="no such table"):
            store.set("k", b"v")
        assert upgrade_schema(store.engine) == HEAD_REVISION
        assert store.set("k", b"v") == 1
    finally:
        store.close()


def test_failure_mid_append_writes_nothing(tmp_path, monkeypatch):
    """A driver error after part of a batch was inserted rolls the whole batch back."""
    from contextlib import contextmanager

    import sqlalchemy as sa

    store = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        store.append("s", b"kept")
        insert, original_tx = store._q_insert_events, store._tx

        class HalfThenFail:
            def __init__(self, conn):
                self._conn = conn

            def execute(self, stmt, params=None):
                if stmt is insert:
                    self._conn.execute(
                        insert, params[:1]
                    )  # the first row lands, then the disk fails
                    raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))
                return self._conn.execute(stmt, params)

        @contextmanager
        def failing_tx(what, **kw):
            with original_tx(what, **kw) as conn:
                yield HalfThenFail(conn)

        monkeypatch.setattr(store, "_tx", failing_tx)
        with pytest.raises(StorageError, match="disk I/O error"):
            store.append_many("s", [b"a", b"b", b"c"])
        monkeypatch.setattr(store, "_tx", original_tx)
        assert [e.payload for e in store.read("s")] == [b"kept"]
        assert store.append("s", b"next").seq == 2
    finally:
        store.close()


def test_sqlite_file_is_shared_between_store_objects(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = open_store(url, clock=clock), open_store(url, clock=clock)
    try:
        a.set("k", b"from a")
        assert b.get("k").value == b"from a"
        assert b.compare_and_set("k", b"from b", version=1) == 2
        assert a.get("k").value == b"from b"
    finally:
        a.close()
        b.close()


@pytest.mark.postgresql
def test_postgres_change_feed_survives_a_terminated_listener(postgres_url, caplog):
    import time
    import uuid

    import sqlalchemy as sa

    from cognitionos.storage import Change

    store = open_store(postgres_url)
    ns = f"pgdrop:{uuid.uuid4().hex[:8]}:"
    seen: list[Change] = []
    sub = store.subscribe(ns, seen.append)
    try:
        with store.engine.begin() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN cognitionos_changes%' AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        assert killed >= 1
        deadline = time.monotonic() + 15
        while not seen and time.monotonic() < deadline:
            store.set(ns + "k", b"x")
            time.sleep(0.2)
        assert seen and seen[-1].key == ns + "k"
        assert "reconnecting" in caplog.text
    finally:
        sub.close()
        store.close()
