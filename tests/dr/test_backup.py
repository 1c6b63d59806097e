"""Backup/restore drills on a real SQLite file and the real PostgreSQL test database."""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest

from cognitionos.dr import BackupManager
from cognitionos.errors import ConfigurationError, StorageError
from tests.conftest import skip_or_fail


def _sqlite_rows(path, table):
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall())
    finally:
        con.close()


def test_sqlite_drill(tmp_path):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    con.executemany("INSERT INTO users VALUES (?, ?, ?)", [(i, f"u{i}", i / 7) for i in range(500)])
    con.execute("CREATE TABLE blobs (k TEXT, v BLOB)")
    con.execute("INSERT INTO blobs VALUES ('x', ?)", (bytes(range(256)),))
    con.commit()  # the writer stays open, in WAL mode, while the backup runs
    before_users = _sqlite_rows(db, "users")
    before_blobs = _sqlite_rows(db, "blobs")

    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'backups'}")
    rec = mgr.backup()
    assert rec.tables["users"][0] == 500
    assert mgr.get(rec.id).verified_at is None  # never verified by size alone

    con.execute("DELETE FROM users WHERE id < 100")
    con.execute("UPDATE blobs SET v = x'00'")
    con.commit()
    con.close()

    result = mgr.verify(rec.id)
    assert result.ok, result.problems
    assert mgr.get(rec.id).verified_at is not None

    restored = tmp_path / "restored.db"
    mgr.restore(rec.id, to=f"sqlite:///{restored}")
    assert _sqlite_rows(restored, "users") == before_users
    assert _sqlite_rows(restored, "blobs") == before_blobs
    check = sqlite3.connect(restored).execute("PRAGMA integrity_check").fetchone()[0]
    assert check == "ok"
    # one backup, one good verification, one restore: what the counters say
    assert mgr.counters.snapshot() == {
        "backups": 1,
        "verifications": 1,
        "verifications_failed": 0,
        "restores": 1,
        "drills": 0,
    }


def test_corrupted_backup_is_detected(tmp_path):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    con.commit()
    con.close()
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}")
    rec = mgr.backup()
    from pathlib import Path

    data = bytearray(Path(rec.path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(rec.path).write_bytes(bytes(data))
    result = mgr.verify(rec.id)
    assert not result.ok
    assert "checksum" in result.problems[0]
    assert mgr.get(rec.id).verified_at is None
    counts = mgr.counters.snapshot()
    assert (counts["verifications"], counts["verifications_failed"]) == (0, 1)
    with pytest.raises(StorageError, match="corrupted"):
        mgr.restore(rec.id, to=f"sqlite:///{tmp_path / 'r.db'}")


def test_bad_inputs(tmp_path):
    with pytest.raises(ConfigurationError, match="source"):
        BackupManager("mysql://x/y", target=f"file://{tmp_path}")
    with pytest.raises(ConfigurationError, match="target"):
        BackupManager(f"sqlite:///{tmp_path / 'a.db'}", target="s3://bucket")
    mgr = BackupManager(f"sqlite:///{tmp_path / 'missing.db'}", target=f"file://{tmp_path / 'b'}")
    with pytest.raises(ConfigurationError, match="does not exist"):
        mgr.backup()
    with pytest.raises(ConfigurationError, match="no backup"):
        mgr.verify("nope")
    with pytest.raises(ConfigurationError, match="target"):
        BackupManager(f"sqlite:///{tmp_path / 'a.db'}", target="  ")


def test_a_plain_directory_path_is_a_target(tmp_path, monkeypatch):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (42)")
    conn.close()
    monkeypatch.chdir(tmp_path)  # a relative path is taken from the working directory
    with BackupManager(f"sqlite:///{db}", target="backups") as mgr:
        rec = mgr.backup()
        assert mgr.verify(rec.id).ok
    assert (tmp_path / "backups" / Path(rec.path).name).is_file()


@pytest.mark.postgresql
def test_postgresql_drill(postgres_url, tmp_path):
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        skip_or_fail("pg_dump/pg_restore are not installed")
    psycopg = pytest.importorskip("psycopg")
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_url)
    libpq = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
    schema = f"dr_drill_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, note text, amount numeric)")
        con.execute(
            f"INSERT INTO {schema}.orders "
            "SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 300) g"
        )
        before = con.execute(f"SELECT * FROM {schema}.orders ORDER BY id").fetchall()
    restore_db = f"{parts.path.lstrip('/')}_restore_{uuid.uuid4().hex[:6]}"
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    try:
        mgr = BackupManager(postgres_url, target=f"file://{tmp_path / 'pg'}")
        rec = mgr.backup()
        assert rec.tables[f"{schema}.orders"][0] == 300
        with psycopg.connect(libpq, autocommit=True) as con:
            con.execute(f"DELETE FROM {schema}.orders WHERE id > 10")
        result = mgr.verify(rec.id)
        assert result.ok, result.problems
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{restore_db}"')
        target = urlunsplit((parts.scheme, parts.netloc, "/" + restore_db, "", ""))
        mgr.restore(rec.id, to=target)
        with psycopg.connect(
            urlunsplit(("postgresql", parts.netloc, "/" + restore_db, "", ""))
        ) as con:
            after = con.execute(f"SELECT * FROM {schema}.orders ORDER BY id").fetchall()
        assert after == before
    finally:
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{restore_db}" WITH (FORCE)')
        with psycopg.connect(libpq, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_prune_keeps_the_newest_verified_backup_and_status_ages(tmp_path):
    from datetime import UTC, datetime, timedelta

    from cognitionos.dr import RetentionPolicy

    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER)")
    con.commit()
    con.close()
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", now=lambda: clock[0])
    ids = []
    for _ in range(4):
        ids.append(mgr.backup().id)
        clock[0] += timedelta(hours=1)
    assert mgr.verify(ids[0]).ok  # only the oldest has been restored and checked
    status = mgr.status(rpo=900)
    # newest backup taken at 03:00, verify ran at 04:00: ages 3600 s and 4 x 3600 s
    assert status["last_backup_age_seconds"] == 3600
    assert status["last_verified_backup_age_seconds"] == 4 * 3600
    assert status["unverified"] == 3
    assert status["backup_older_than_rpo"] and status["verified_older_than_rpo"]
    plan = mgr.prune(RetentionPolicy(keep_last=1), dry_run=True)
    assert {s.id for s in plan.keep} == {ids[3], ids[0]}
    assert ("newest verified backup",) in [r.matches for r in plan.reasons]
    assert len(mgr.backups()) == 4  # dry run
    mgr.prune(RetentionPolicy(keep_last=1), dry_run=False)
    assert {r.id for r in mgr.backups()} == {ids[3], ids[0]}
    mgr.close()


def test_scratch_must_be_a_postgresql_server(tmp_path):
    with pytest.raises(ConfigurationError, match="scratch must be a postgresql://"):
        BackupManager(
            f"sqlite:///{tmp_path / 'a.db'}", target=f"file://{tmp_path / 'b'}", scratch="redis://x"
        )


@pytest.mark.postgresql
def test_postgresql_check_refuses_a_scratch_server_that_archives_wal(
    postgres_url, tmp_path, monkeypatch
):
    # archive_mode needs a server restart to change, so the server's answer is replaced; the
    # refusal must come before any scratch database exists (nothing to ship into the archive)
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        skip_or_fail("pg_dump/pg_restore are not installed")
    psycopg = pytest.importorskip("psycopg")
    from urllib.parse import urlsplit, urlunsplit

    import cognitionos.dr.backup as backup_module

    parts = urlsplit(postgres_url)
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))

    def drill_dbs() -> int:
        with psycopg.connect(admin, autocommit=True) as con:
            row = con.execute(
                "SELECT count(*) FROM pg_database WHERE datname LIKE %s",
                (parts.path.lstrip("/") + "_drill_%",),
            ).fetchone()
        return int(row[0])

    mgr = BackupManager(postgres_url, target=f"file://{tmp_path / 'pg'}")
    rec = mgr.backup()
    before = drill_dbs()
    monkeypatch.setattr(backup_module, "_archive_mode", lambda con: "on")
    with pytest.raises(ConfigurationError, match=r"archive_mode=on.*--scratch"):
        mgr.verify(rec.id)
    assert drill_dbs() == before
    mgr.close()


def test_each_restore_over_an_existing_sqlite_file_keeps_what_was_there(tmp_path):
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('backed up')")
    conn.close()
    live = tmp_path / "live.db"
    with sqlite3.connect(live) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('production')")
    # the connection stays open: the row may sit in live.db-wal, the copy must still hold it
    with BackupManager(f"sqlite:///{db}", target=str(tmp_path / "b")) as mgr:
        rec = mgr.backup()
        mgr.restore(rec.id, to=f"sqlite:///{live}")
        first = mgr.saved_copy
        mgr.restore(rec.id, to=f"sqlite:///{live}")
        second = mgr.saved_copy
        mgr.restore(rec.id, to=f"sqlite:///{tmp_path / 'new.db'}")
        assert mgr.saved_copy is None  # nothing was there
    conn.close()
    assert first is not None and second is not None and first != second

    def rows(path):
        with sqlite3.connect(path) as c:
            return [r[0] for r in c.execute("SELECT x FROM t")]

    assert rows(first) == ["production"]
    assert rows(second) == ["backed up"]
    assert rows(live) == ["backed up"]
