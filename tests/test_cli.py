"""The cognitionos admin CLI skeleton."""

from __future__ import annotations

from click.testing import CliRunner

from cognitionos import __version__
from cognitionos.cli import main


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_help_lists_lazy_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "db" in result.output and "store" in result.output


def test_store_check_memory_prints_capabilities():
    result = CliRunner().invoke(main, ["store", "check", "memory://", "--samples", "3"])
    assert result.exit_code == 0, result.output
    assert "backend:      memory" in result.output
    assert "change_feed, counters, event_log, kv" in result.output
    assert "round trip" in result.output


def test_store_check_unknown_scheme_fails_cleanly():
    result = CliRunner().invoke(main, ["store", "check", "mysql://x"])
    assert result.exit_code == 1
    assert "unknown storage scheme 'mysql'" in result.output
    assert "Traceback" not in result.output


def test_store_check_masks_password_of_unreachable_backend():
    result = CliRunner().invoke(main, ["store", "check", "redis://u:topsecret@127.0.0.1:1/0"])
    assert result.exit_code == 1
    assert "topsecret" not in result.output
    assert "***" in result.output


def test_db_upgrade_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    result = CliRunner().invoke(main, ["db", "upgrade", url])
    assert result.exit_code == 0, result.output
    from cognitionos.storage._sql import HEAD_REVISION

    assert f"schema at revision {HEAD_REVISION}" in result.output
    import sqlite3

    tables = {
        r[0] for r in sqlite3.connect(tmp_path / "cli.db").execute("select name from sqlite_master")
    }
    assert {"cos_kv", "cos_counters", "cos_events", "cos_changes"} <= tables


def test_db_upgrade_refuses_non_sql():
    result = CliRunner().invoke(main, ["db", "upgrade", "memory://"])
    assert result.exit_code == 1
    assert "no schema" in result.output


def test_store_check_postgres(postgres_url):
    result = CliRunner().invoke(main, ["store", "check", postgres_url, "--samples", "2"])
    assert result.exit_code == 0, result.output
    assert "backend:      postgresql" in result.output
