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
    from cognitionos.storage._sql import HEAD_REVISION  # never a literal: the chain grows

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


# what the extras bring: a base install (``pip install cognitionos``) has none of them
EXTRA_MODULES = ("pydantic_settings", "fastapi", "uvicorn", "yaml", "matplotlib", "cryptography")


def test_help_works_without_any_extra():
    """Before: in a base install ``cognitionos --help`` crashed with a traceback, because
    listing ``serve`` imported the server package, which needs pydantic-settings."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        f"for name in {EXTRA_MODULES!r}: sys.modules[name] = None  # import fails\n"
        "from cognitionos.cli import main\n"
        "for args in (['--help'], ['serve', '--help']):\n"
        "    try:\n"
        "        main(args, standalone_mode=False)\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    for group in ("apm", "audit", "autoscale", "dr", "experiment", "pricing", "serve"):
        assert group in out.stdout
    assert "--workers" in out.stdout  # serve --help


def test_serve_without_the_server_extra_names_the_extra():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['pydantic_settings'] = None\n"
        "sys.modules['uvicorn'] = None\n"
        "from cognitionos.cli import main\n"
        "main(['serve', '--port', '0'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode != 0
    assert "cognitionos[server]" in out.stderr
    assert "Traceback" not in out.stderr
