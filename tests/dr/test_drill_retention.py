"""Drills (measured RPO/RTO), retention protections (leases, RPO window), backup-age gauges."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from cognitionos.cli import main
from cognitionos.dr import BackupManager, RetentionPolicy
from tests.conftest import skip_or_fail


def _db(tmp_path, rows=200):
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (x INTEGER, s TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, str(i)) for i in range(rows)])
    con.commit()
    con.close()
    return db


def test_sqlite_drill_measures_and_holds_to_targets(tmp_path):
    db = _db(tmp_path)
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", now=lambda: clock[0])
    first = mgr.drill()
    assert first.ok and first.verified
    assert first.rows == {"t": 200}
    assert first.interval == 0  # no earlier backup: the schedule interval is unknown
    assert first.measured_rpo == pytest.approx(first.backup_seconds)
    assert first.measured_rto == pytest.approx(60 + 300 + first.restore_seconds + 60)

    clock[0] += timedelta(minutes=20)  # backups 20 minutes apart cannot meet a 15-minute RPO
    second = mgr.drill(rpo=900)
    assert second.interval == 1200
    assert not second.ok and second.verified
    assert any("measured RPO" in p and "> rpo 900" in p for p in second.problems)
    assert second.max_interval_for_rpo == pytest.approx(900 - second.backup_seconds)

    clock[0] += timedelta(minutes=1)
    tight = mgr.drill(rto=400, interval=60)  # 60 + 300 + dns 60 alone exceed 400 s
    assert not tight.ok and any("measured RTO" in p for p in tight.problems)
    # every drill is recorded in the catalog, newest first
    assert [d.id for d in mgr.drills()][:1] == [tight.id]
    assert mgr.status()["last_drill"]["id"] == tight.id
    mgr.close()


def test_drill_of_a_corrupting_restore_is_not_ok(tmp_path, monkeypatch):
    db = _db(tmp_path)
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}")
    real = BackupManager._restore_sqlite

    def lossy(path, target):  # a restore path that silently drops a row
        real(path, target)
        con = sqlite3.connect(target)
        con.execute("DELETE FROM t WHERE x = 7")
        con.commit()
        con.close()

    monkeypatch.setattr(BackupManager, "_restore_sqlite", staticmethod(lossy))
    report = mgr.drill()
    assert not report.ok and not report.verified
    assert any("table t" in p for p in report.problems)
    assert mgr.get(report.id).verified_at is None
    mgr.close()


def test_prune_never_deletes_a_backup_a_running_restore_reads(tmp_path, monkeypatch):
    db = _db(tmp_path)
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    mgr = BackupManager(
        f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", catalog=catalog, now=lambda: clock[0]
    )
    ids = []
    for _ in range(3):
        ids.append(mgr.backup().id)
        clock[0] += timedelta(hours=1)
    other = BackupManager(  # another process pruning the same catalog
        f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", catalog=catalog, now=lambda: clock[0]
    )
    seen = {}
    real = BackupManager._restore_sqlite

    def restore_while_pruning(path, target):
        seen["plan"] = other.prune(RetentionPolicy(keep_last=1), dry_run=False)
        real(path, target)

    monkeypatch.setattr(BackupManager, "_restore_sqlite", staticmethod(restore_while_pruning))
    result = mgr.verify(ids[0])  # the oldest: keep_last=1 alone would remove it
    assert result.ok, result.problems
    plan = seen["plan"]
    assert {s.id for s in plan.keep} == {ids[0], ids[2]}
    reasons = {r.snapshot.id: r.matches for r in plan.reasons}
    assert "in use by a running restore" in reasons[ids[0]]
    assert [s.id for s in plan.remove] == [ids[1]]
    assert mgr.leased() == set()  # the lease ends with the verify
    monkeypatch.undo()
    # once the restore is over, the lease protects nothing (the verified backup still is)
    after = other.prune(RetentionPolicy(keep_last=1), dry_run=True)
    assert "in use by a running restore" not in {m for r in after.reasons for m in r.matches}
    mgr.close()
    other.close()


def test_prune_keeps_the_newest_backup_for_the_rpo_window(tmp_path):
    db = _db(tmp_path)
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", now=lambda: clock[0])
    ids = []
    for _ in range(3):
        ids.append(mgr.backup().id)
        clock[0] += timedelta(minutes=5)
    # a tag rule no catalogued backup carries: the policy alone keeps nothing at all
    policy = RetentionPolicy(keep_tags=(("monthly",),))
    plan = mgr.prune(policy, dry_run=True, rpo=900)
    assert [s.id for s in plan.keep] == [ids[2]]
    assert plan.reasons[0].matches == ("newest backup (within the RPO of 900 s)",)
    clock[0] += timedelta(hours=2)
    plan = mgr.prune(policy, dry_run=False, rpo=900)
    assert [s.id for s in plan.keep] == [ids[2]]
    assert "older than the RPO" in plan.reasons[0].matches[0]
    assert [r.id for r in mgr.backups()] == [ids[2]]
    mgr.close()


def test_backup_age_gauges_on_a_prometheus_registry(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    from cognitionos.integrations.prometheus import EngineCollector

    db = _db(tmp_path)
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    mgr = BackupManager(f"sqlite:///{db}", target=f"file://{tmp_path / 'b'}", now=lambda: clock[0])
    registry = CollectorRegistry()
    registry.register(EngineCollector(mgr.gauges(rpo=900)))

    def value(name):
        return registry.get_sample_value(f"cognitionos_dr_{name}")

    assert value("last_backup_age_seconds") == float("inf")  # none yet: the alert fires
    assert value("backup_older_than_rpo") == 1
    rec = mgr.backup()
    clock[0] += timedelta(minutes=10)
    assert value("last_backup_age_seconds") == 600  # read at scrape time
    assert value("last_verified_backup_age_seconds") == float("inf")  # never restored
    assert value("verified_older_than_rpo") == 1
    assert mgr.verify(rec.id).ok
    clock[0] += timedelta(minutes=10)
    assert value("last_verified_backup_age_seconds") == 1200
    assert value("verified_older_than_rpo") == 1  # 1200 s > the 900 s RPO
    assert value("rpo_seconds") == 900
    assert value("unverified_backups") == 0
    text = generate_latest(registry).decode()
    assert "# TYPE cognitionos_dr_last_backup_age_seconds gauge" in text
    mgr.close()


def test_cli_drill(tmp_path):
    db = _db(tmp_path)
    runner = CliRunner()
    args = ["dr", "drill", f"sqlite:///{db}", "--target", f"file://{tmp_path / 'b'}"]
    args += ["--store", f"sqlite:///{tmp_path / 'cat.db'}"]
    res = runner.invoke(main, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["verified"] is True and data["rows"] == {"t": 200}
    res = runner.invoke(main, [*args, "--rto", "100"])
    assert res.exit_code == 1
    assert "measured RTO" in res.output


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
        con.execute(f"CREATE TABLE {schema}.events (id int PRIMARY KEY, body text)")
        con.execute(
            f"INSERT INTO {schema}.events SELECT g, md5(g::text) FROM generate_series(1, 250) g"
        )
    try:
        mgr = BackupManager(postgres_url, target=f"file://{tmp_path / 'pg'}")
        report = mgr.drill(interval=60)
        assert report.ok, report.problems
        assert report.rows[f"{schema}.events"] == 250
        assert report.restore_seconds > 0
        mgr.close()
    finally:
        with psycopg.connect(libpq, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_prune_never_touches_another_sources_backups_in_a_shared_catalog(tmp_path):
    a = _db(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    b = _db(other_dir)
    catalog = f"sqlite:///{tmp_path / 'shared-catalog.db'}"
    clock = [datetime(2024, 1, 1, tzinfo=UTC)]
    ma = BackupManager(
        f"sqlite:///{a}", target=f"file://{tmp_path / 'ba'}", catalog=catalog, now=lambda: clock[0]
    )
    mb = BackupManager(
        f"sqlite:///{b}", target=f"file://{tmp_path / 'bb'}", catalog=catalog, now=lambda: clock[0]
    )
    b_ids = []
    for _ in range(3):
        ma.backup()
        b_ids.append(mb.backup().id)
        clock[0] += timedelta(hours=1)
    ma.prune(RetentionPolicy(keep_last=1), dry_run=False)
    assert len(ma.backups()) == 1
    assert sorted(r.id for r in mb.backups()) == sorted(b_ids)  # untouched
    assert len(ma.backups(all_sources=True)) == 4
    assert ma.status()["backups"] == 1
    ma.close()
    mb.close()
