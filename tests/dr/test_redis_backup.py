"""Redis backups against redis-servers these tests start themselves (never the shared one)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cognitionos.dr import BackupManager
from cognitionos.errors import ConfigurationError
from tests.conftest import skip_or_fail

redis = pytest.importorskip("redis")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start_redis(tmp_path) -> Iterator[Callable[..., str]]:
    """Start redis-servers on free ports, persisting into tmp_path; all stopped afterwards."""
    exe = shutil.which("redis-server")
    if exe is None:
        skip_or_fail("redis-server is not installed")
    procs: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> str:
        port = _free_port()
        data = tmp_path / f"redis-{port}"
        data.mkdir()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
             "--save", "", "--appendonly", "no", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    skip_or_fail("a test redis-server did not start")
                time.sleep(0.05)
        client.close()
        return f"redis://127.0.0.1:{port}"

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _fill(url: str) -> dict[str, object]:
    r = redis.Redis.from_url(url)
    r.set("str", "v1")
    r.set("ttl", "soon", ex=3600)
    r.hset("hash", mapping={"a": "1", "b": "2"})
    r.rpush("list", "x", "y", "x")
    r.sadd("set", "p", "q")
    r.zadd("zset", {"m": 1.5, "n": -2})
    r.xadd("stream", {"f": "v"}, id="1-1")
    r.set("bin", bytes(range(256)))
    snapshot = {
        "str": r.get("str"),
        "hash": r.hgetall("hash"),
        "list": r.lrange("list", 0, -1),
        "set": r.smembers("set"),
        "zset": r.zrange("zset", 0, -1, withscores=True),
        "stream": r.xrange("stream"),
        "bin": r.get("bin"),
        "ttl": r.get("ttl"),
    }
    r.close()
    return snapshot


def _read(url: str) -> dict[str, object]:
    r = redis.Redis.from_url(url)
    try:
        return {
            "str": r.get("str"),
            "hash": r.hgetall("hash"),
            "list": r.lrange("list", 0, -1),
            "set": r.smembers("set"),
            "zset": r.zrange("zset", 0, -1, withscores=True),
            "stream": r.xrange("stream"),
            "bin": r.get("bin"),
            "ttl": r.get("ttl"),
        }
    finally:
        r.close()


def test_redis_backup_verify_restore_into_a_fresh_server(start_redis, tmp_path):
    source = start_redis()
    before = _fill(source + "/2")
    other = redis.Redis.from_url(source + "/0")
    other.set("not-in-db-2", "1")
    mgr = BackupManager(source + "/2", target=f"file://{tmp_path / 'b'}")
    rec = mgr.backup()
    assert rec.kind == "redis" and rec.method == "bgsave+copy"
    assert rec.tables == {"db2": [8, rec.tables["db2"][1]]}
    assert Path(rec.path).read_bytes()[:5] == b"REDIS"
    assert mgr.get(rec.id).verified_at is None

    # the live data moves on; the backup still holds what was there at BGSAVE
    live = redis.Redis.from_url(source + "/2")
    live.flushdb()
    live.set("str", "changed")
    result = mgr.verify(rec.id)
    assert result.ok, result.problems
    assert mgr.get(rec.id).verified_at is not None

    fresh = start_redis()
    tables = mgr.restore(rec.id, to=fresh + "/2")
    assert tables["db2"] == rec.tables["db2"]  # same key count and content digest
    assert _read(fresh + "/2") == before
    ttl = redis.Redis.from_url(fresh + "/2").ttl("ttl")
    assert 3500 < ttl <= 3600  # the expiry travelled with the key
    assert redis.Redis.from_url(fresh + "/0").dbsize() == 0  # only the source's database

    with pytest.raises(ConfigurationError, match="not empty"):
        mgr.restore(rec.id, to=fresh + "/2")  # never merges into live data
    mgr.close()


def test_corrupted_rdb_is_detected_by_checksum_and_by_the_server(start_redis, tmp_path):
    source = start_redis()
    _fill(source)
    mgr = BackupManager(source, target=f"file://{tmp_path / 'b'}")
    rec = mgr.backup()
    path = Path(rec.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = mgr.verify(rec.id)
    assert not result.ok and "checksum" in result.problems[0]

    # even with a catalog entry that matches the damaged file, the server's RDB CRC64 refuses it
    import attrs

    mgr._put(attrs.evolve(rec, sha256=hashlib.sha256(bytes(data)).hexdigest()))
    result = mgr.verify(rec.id)
    assert not result.ok
    assert "restore failed" in result.problems[0]
    assert mgr.get(rec.id).verified_at is None
    mgr.close()


def test_falls_back_to_redis_cli_rdb_when_config_is_disabled(start_redis, tmp_path):
    if shutil.which("redis-cli") is None:
        skip_or_fail("redis-cli is not installed")
    source = start_redis("--rename-command", "CONFIG", "")
    before = _fill(source)
    mgr = BackupManager(source, target=f"file://{tmp_path / 'b'}")
    rec = mgr.backup()
    assert rec.method == "redis-cli --rdb"
    assert rec.tables["db0"][0] == 8
    assert mgr.verify(rec.id).ok
    fresh = start_redis()
    mgr.restore(rec.id, to=fresh)
    assert _read(fresh) == before
    mgr.close()


def test_redis_drill(start_redis, tmp_path):
    source = start_redis()
    _fill(source)
    mgr = BackupManager(source, target=f"file://{tmp_path / 'b'}")
    report = mgr.drill(rpo=900, rto=3600, interval=300)
    assert report.ok and report.verified, report.problems
    assert report.rows == {"db0": 8}
    assert report.measured_rpo == pytest.approx(300 + report.backup_seconds)
    assert report.measured_rto == pytest.approx(60 + 300 + report.restore_seconds + 60)
    mgr.close()
