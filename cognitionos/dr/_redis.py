"""Redis backups: an RDB snapshot taken by ``BGSAVE`` and checked by loading it into a server.

* **Snapshot**: note ``LASTSAVE``, send ``BGSAVE`` (or join one already running), wait until
  ``LASTSAVE`` moves past the noted value with ``rdb_last_bgsave_status:ok``, then copy the RDB
  the server wrote (``CONFIG GET dir`` + ``dbfilename``; Redis writes a temporary file and
  renames it, so the named file is always complete). When that file is not readable from
  here (a remote or managed server, ``CONFIG`` disabled) ``redis-cli --rdb`` streams a fresh
  RDB over the replication protocol instead. The method used is recorded.
* **Check**: the RDB is loaded into a scratch ``redis-server`` of our own (free port on
  127.0.0.1, no persistence, stopped afterwards). Redis refuses an RDB whose CRC64 does not
  match, so a server that starts has read every byte; then every key of the source's
  logical database is read back into a content digest (key, type, value in a canonical
  order, whether it expires).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cognitionos.errors import ConfigurationError, StorageError

__all__ = ["copy_keys", "redis_db", "redis_digests", "scratch_redis", "snapshot_rdb"]

_START_TIMEOUT = 60.0


def _client(url: str, **kw: Any) -> Any:
    from cognitionos._optional import require

    redis = require("redis", purpose="Redis backups")
    return redis.Redis.from_url(url, socket_timeout=30, **kw)


def redis_db(url: str) -> int:
    """The logical database number of a ``redis://host:port/N`` URL (0 when absent)."""
    path = urlsplit(url).path.strip("/")
    if not path:
        return 0
    if not path.isdigit():
        raise ConfigurationError(f"redis URL database must be a number, got {path!r} in {url!r}")
    return int(path)


def _read_value(pipe: Any, key: bytes, kind: str) -> None:
    if kind == "string":
        pipe.get(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "stream":
        pipe.xrange(key, "-", "+")
    else:
        pipe.dump(key)  # modules' types: their serialized form


def _canonical(kind: str, value: Any) -> object:
    if kind == "set":
        return sorted(value)
    if kind == "hash":
        return sorted(value.items())
    return value


def redis_digests(url: str) -> dict[str, list[Any]]:
    """``{"db<N>": [key count, sha256 of the keys' contents]}`` for the URL's database.

    Reads are pipelined per SCAN batch (two round trips per 1,000 keys).
    """
    client = _client(url)
    try:
        lines: list[str] = []
        for keys in _batches(client.scan_iter(count=1000), 1000):
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
            kinds = [k.decode() for k in pipe.execute()]
            pipe = client.pipeline(transaction=False)
            for key, kind in zip(keys, kinds, strict=True):
                _read_value(pipe, key, kind)
                pipe.pttl(key)
            values = pipe.execute()
            for i, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
                value, pttl = values[2 * i], values[2 * i + 1]
                if kind == "none" or pttl == -2:  # expired between SCAN and the read
                    continue
                lines.append(repr((key, kind, _canonical(kind, value), pttl >= 0)))
    except Exception as exc:  # redis.RedisError and connection errors
        raise StorageError(f"reading {_masked(url)} failed: {exc}") from None
    finally:
        client.close()
    lines.sort()
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    return {f"db{redis_db(url)}": [len(lines), digest]}


def _masked(url: str) -> str:
    from cognitionos.storage import mask_url

    return str(mask_url(url))


def snapshot_rdb(url: str, dest: Path, *, timeout: float = 3600.0) -> str:
    """Write a fresh RDB of the server at ``url`` to ``dest``; returns the method used."""
    client = _client(url)
    try:
        try:
            deadline = time.monotonic() + timeout
            # LASTSAVE has one-second resolution: start in a later second than the last
            # save so that "LASTSAVE changed" can only mean our BGSAVE finished
            before = client.lastsave()
            while client.time()[0] <= before.timestamp() and time.monotonic() < deadline:
                time.sleep(0.05)
            while True:  # one BGSAVE of our own; wait out a save someone else started
                try:
                    client.bgsave()
                    break
                except Exception as exc:
                    if "in progress" not in str(exc).lower() or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            while True:
                info = client.info("persistence")
                if client.lastsave() > before and not info.get("rdb_bgsave_in_progress"):
                    break
                if info.get("rdb_last_bgsave_status") == "err" and not info.get(
                    "rdb_bgsave_in_progress"
                ):
                    raise StorageError(f"BGSAVE on {_masked(url)} failed (rdb_last_bgsave_status)")
                if time.monotonic() > deadline:
                    raise StorageError(f"BGSAVE on {_masked(url)} did not finish in {timeout:g} s")
                time.sleep(0.05)
            if info.get("rdb_last_bgsave_status") != "ok":
                raise StorageError(f"BGSAVE on {_masked(url)} failed (rdb_last_bgsave_status)")
            try:
                directory = client.config_get("dir").get("dir")
                name = client.config_get("dbfilename").get("dbfilename")
            except Exception:
                directory = name = None
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"BGSAVE on {_masked(url)} failed: {exc}") from None
    finally:
        client.close()
    host = urlsplit(url).hostname or ""
    if directory and name and host in ("127.0.0.1", "localhost", "::1"):
        # only a server on this host wrote the file at that path; and only a file written by
        # this save (not older than the save we waited for) is the snapshot we asked for
        source = Path(directory) / name
        with contextlib.suppress(OSError):
            if source.stat().st_mtime < before.timestamp():
                raise OSError("stale RDB file")
            # the server renames a complete temporary file onto this name; an open handle
            # keeps reading that file even if a later save replaces it
            with source.open("rb") as src, dest.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            return "bgsave+copy"
    return _redis_cli_rdb(url, dest, timeout)


def _redis_cli_rdb(url: str, dest: Path, timeout: float) -> str:
    exe = shutil.which("redis-cli")
    if exe is None:
        raise ConfigurationError(
            "the server's RDB file is not readable here and redis-cli is not installed "
            "(needed for `redis-cli --rdb`)"
        )
    try:
        proc = subprocess.run(
            [exe, "-u", url, "--rdb", str(dest)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise StorageError(f"redis-cli --rdb did not finish in {timeout:g} s") from None
    if proc.returncode != 0 or not dest.exists():
        raise StorageError(f"redis-cli --rdb failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return "redis-cli --rdb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def scratch_redis(rdb: Path | None = None, *, db: int = 0) -> Iterator[str]:
    """A private ``redis-server`` on a free 127.0.0.1 port that loaded ``rdb`` (if given).

    Yields its URL for database ``db``; the server is stopped and its directory removed on
    exit. An RDB the server refuses (bad checksum, unknown version) raises StorageError with
    the server's own log line.
    """
    exe = shutil.which("redis-server")
    if exe is None:
        raise ConfigurationError("redis-server is not installed (needed to restore Redis backups)")
    with tempfile.TemporaryDirectory(prefix="cognitionos-redis-") as scratch:
        if rdb is not None:
            if _same_fs(rdb, scratch):
                os.link(rdb, Path(scratch) / "dump.rdb")
            else:
                shutil.copy(rdb, Path(scratch) / "dump.rdb")
        log = Path(scratch) / "redis.log"
        for _attempt in range(3):  # another process may take the free port first
            port = _free_port()
            proc = subprocess.Popen(
                [
                    exe,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", scratch,
                    "--dbfilename", "dump.rdb",
                    "--save", "",
                    "--appendonly", "no",
                    "--logfile", str(log),
                    "--databases", str(max(16, db + 1)),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                url = f"redis://127.0.0.1:{port}/{db}"
                if _wait_ready(proc, url, log):
                    yield url
                    return
            finally:
                _stop(proc)
        raise StorageError(f"the scratch redis-server did not start: {_tail(log)}")


def _same_fs(path: Path, directory: str) -> bool:
    try:
        return os.stat(path).st_dev == os.stat(directory).st_dev
    except OSError:
        return False


def _tail(log: Path) -> str:
    try:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    return " | ".join(lines[-3:]) or "empty log"


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    """True once the server answers PING with its data loaded; False if the port was taken."""
    deadline = time.monotonic() + _START_TIMEOUT
    client = _client(url, socket_connect_timeout=1)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                text = _tail(log)
                if "Address already in use" in text:
                    return False
                raise StorageError(f"redis-server refused the backup: {text}")
            try:
                if not client.info("persistence").get("loading"):
                    return True
            except Exception:  # not listening yet, or still loading
                pass
            time.sleep(0.02)
    finally:
        client.close()
    raise StorageError(f"the scratch redis-server did not become ready in {_START_TIMEOUT:g} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def copy_keys(source: str, target: str) -> int:
    """Copy every key of ``source``'s database into ``target``'s (DUMP/RESTORE, TTLs kept).

    The target database must be empty: a restore never merges into or overwrites live data.
    """
    src = _client(source)
    dst = _client(target)
    try:
        if dst.dbsize():
            raise ConfigurationError(
                f"restore target {_masked(target)} is not empty ({dst.dbsize()} keys); "
                "restore into an empty database (FLUSHDB it first if that is intended)"
            )
        copied = 0
        for keys in _batches(src.scan_iter(count=1000), 500):
            read = src.pipeline(transaction=False)
            for key in keys:
                read.dump(key)
                read.pttl(key)
            values = read.execute()
            write = dst.pipeline(transaction=False)
            for i, key in enumerate(keys):
                payload, pttl = values[2 * i], values[2 * i + 1]
                if payload is None:  # expired between SCAN and DUMP
                    continue
                write.restore(key, max(int(pttl), 0), payload)
                copied += 1
            write.execute()
        return copied
    except ConfigurationError:
        raise
    except Exception as exc:
        raise StorageError(f"restoring into {_masked(target)} failed: {exc}") from None
    finally:
        src.close()
        dst.close()


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
