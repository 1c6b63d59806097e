"""open_store: URL validation, unknown schemes, unreachable backends, plug-ins."""

from __future__ import annotations

import socket

import pytest

from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.storage import mask_url, open_store, parse_url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(ConfigurationError) as info:
        open_store("mysql://root@localhost/db")
    message = str(info.value)
    assert "'mysql'" in message
    for scheme in ("memory", "sqlite", "postgresql", "redis"):
        assert scheme in message


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("localhost:6379", "missing '://'"),
        ("", "non-empty"),
        ("1redis://x", "invalid scheme"),
        ("redis://localhost:notaport/0", "bad port"),
        ("memory://?max_keys=lots", "max_keys"),
        ("memory://?colour=blue", "unknown option"),
        ("memory://somehost", "no host or path"),
        ("redis://localhost:6379/0?prefix={x}", "braces"),
    ],
)
def test_malformed_urls_name_the_bad_part(url, part):
    with pytest.raises(ConfigurationError, match=part.replace("(", r"\(")):
        open_store(url)


def test_password_is_masked():
    assert mask_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert mask_url("postgresql+psycopg://u:p@db/x") == "postgresql+psycopg://u:***@db/x"
    assert mask_url("sqlite:///a.db") == "sqlite:///a.db"
    assert parse_url("redis://:pw@h/0").masked == "redis://:***@h/0"


def test_unreachable_redis_names_masked_url_and_cause():
    port = _closed_port()
    with pytest.raises(BackendUnavailable) as info:
        open_store(f"redis://user:hunter2@127.0.0.1:{port}/0", socket_connect_timeout=1)
    message = str(info.value)
    assert "hunter2" not in message
    assert f"127.0.0.1:{port}" in message
    assert info.value.__cause__ is not None


def test_unreachable_postgresql_names_masked_url_and_cause():
    port = _closed_port()
    with pytest.raises(BackendUnavailable) as info:
        open_store(f"postgresql+psycopg://user:hunter2@127.0.0.1:{port}/db?connect_timeout=2")
    assert "hunter2" not in str(info.value)
    assert isinstance(info.value, StorageError)


def test_sqlite_in_unwritable_place_is_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError):
        open_store(f"sqlite:///{blocker}/sub/x.db")


def test_memory_options_from_url():
    store = open_store("memory://?max_keys=3")
    assert store.max_keys == 3


def test_entry_point_plugin_is_used_for_unknown_scheme(monkeypatch):
    import cognitionos.storage._open as storage

    made = {}

    def factory(url, **options):
        made["url"] = url
        return "plugin-store"

    monkeypatch.setattr(storage, "_plugin", lambda scheme: factory if scheme == "acme" else None)
    assert open_store("acme://bucket") == "plugin-store"
    assert made["url"] == "acme://bucket"


def test_postgres_scheme_aliases_pick_psycopg(postgres_url):
    bare = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    store = open_store(bare)
    try:
        assert store.engine.dialect.driver == "psycopg"
    finally:
        store.close()
