"""Real backups of the project's SQL stores, verified only by restoring them.

* **SQLite**: SQLite's online backup API (safe under concurrent writers and in WAL mode; the
  file is never copied), then ``PRAGMA integrity_check`` on the copy.
* **PostgreSQL**: ``pg_dump --format=custom``; restored with ``pg_restore`` into a fresh
  scratch database (named after the source, dropped afterwards) for verification.

Every backup gets a SHA-256 of its file and a per-table content digest (row count and a hash
of the rows in a canonical order) at backup time. ``verify`` checks the file checksum, then
restores to a scratch target and compares the digests; only then is the backup marked
verified (with the measured restore time). The catalog lives in a cognitionos store
(key-value capability), one JSON entry per backup under ``dr:backup:<id>``.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from cognitionos.errors import ConfigurationError, StorageError

__all__ = ["BackupManager", "BackupRecord", "VerifyResult"]

_PREFIX = "dr:backup:"


@attrs.frozen(slots=True)
class BackupRecord:
    """One catalogued backup."""

    id: str
    kind: str
    source: str
    path: str
    size: int
    sha256: str
    created_at: str
    tables: dict[str, list[Any]] = attrs.field(hash=False)
    verified_at: str | None = None
    restore_seconds: float | None = None

    def to_json(self) -> bytes:
        """The catalog entry."""
        return json.dumps(attrs.asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> BackupRecord:
        """Read a catalog entry."""
        return cls(**json.loads(raw))


@attrs.frozen(slots=True)
class VerifyResult:
    """What ``verify`` found: ``ok`` only if the checksum and every table digest matched."""

    id: str
    ok: bool
    problems: tuple[str, ...]
    restore_seconds: float


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sqlite_path(url: str) -> Path:
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        raise ConfigurationError(f"expected sqlite:///path.db, got {url!r}")
    return Path(unquote(url[len("sqlite:///") :]))


def _libpq(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def _with_db(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def _sqlite_digests(path: Path) -> dict[str, list[Any]]:
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        out: dict[str, list[Any]] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            rows = sorted(repr(r) for r in con.execute(f"SELECT * FROM {quoted}"))
            out[name] = [len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()]
        return out
    finally:
        con.close()


def _pg_digests(url: str) -> dict[str, list[Any]]:
    from cognitionos._optional import require

    psycopg = require("psycopg", extra="postgres", purpose="PostgreSQL backups")
    out: dict[str, list[Any]] = {}
    with psycopg.connect(_libpq(url)) as con:
        tables = con.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            ident = psycopg.sql.Identifier(schema, table)
            query = psycopg.sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                "FROM {} AS t"
            ).format(ident)
            count, digest = con.execute(query).fetchone()
            out[f"{schema}.{table}"] = [int(count), digest]
    return out


def _age(now: datetime, iso: str) -> float:
    return (now - datetime.fromisoformat(iso)).total_seconds()


def _run(cmd: list[str], what: str) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    except FileNotFoundError:
        raise ConfigurationError(f"{cmd[0]} is not installed (needed for {what})") from None
    if proc.returncode != 0:
        raise StorageError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")


class BackupManager:
    """Back up, verify and restore one SQL store (``sqlite:///`` or ``postgresql://``).

    ``target`` is a ``file:///directory``; ``catalog`` is a cognitionos store URL or store
    (default: ``sqlite:///<target>/catalog.db``)::

        mgr = BackupManager("sqlite:///app.db", target="file:///backups")
        rec = mgr.backup()
        mgr.verify(rec.id).ok
        mgr.restore(rec.id, to="sqlite:///restored.db")
    """

    def __init__(
        self,
        source: str,
        *,
        target: str,
        catalog: Any = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if source.startswith("sqlite:///"):
            self.kind = "sqlite"
            _sqlite_path(source)
        elif source.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            self.kind = "postgresql"
        else:
            raise ConfigurationError(
                f"source must be sqlite:///path or postgresql://..., got {source.split('://')[0]!r}"
            )
        if not target.startswith("file://"):
            raise ConfigurationError(f"target must be file:///directory, got {target!r}")
        self.source = source
        self.directory = Path(unquote(urlsplit(target).path))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"backup target {target!r} is not writable: {exc}") from None
        if not os.access(self.directory, os.W_OK):
            raise ConfigurationError(f"backup target {target!r} is not writable")
        from cognitionos.storage import Capability, open_store

        self._owns_catalog = catalog is None or isinstance(catalog, str)
        if catalog is None or isinstance(catalog, str):
            catalog = open_store(catalog or f"sqlite:///{self.directory / 'catalog.db'}")
        catalog.require(Capability.KV, needed_by="the DR backup catalog")
        self.catalog = catalog
        self._now = now or (lambda: datetime.now(UTC))

    def close(self) -> None:
        """Close the catalog store if this manager opened it."""
        if self._owns_catalog:
            self.catalog.close()

    def __enter__(self) -> BackupManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- catalog ------------------------------------------------------------------------

    def backups(self) -> list[BackupRecord]:
        """Every catalogued backup, newest first."""
        entries = self.catalog.scan(_PREFIX, limit=100_000)
        records = [BackupRecord.from_json(e.value) for e in entries]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    def get(self, backup_id: str) -> BackupRecord:
        """The catalog entry of ``backup_id``."""
        entry = self.catalog.get(_PREFIX + backup_id)
        if entry is None:
            raise ConfigurationError(f"no backup with id {backup_id!r} in the catalog")
        return BackupRecord.from_json(entry.value)

    def _put(self, record: BackupRecord) -> None:
        self.catalog.set(_PREFIX + record.id, record.to_json())

    # -- backup -------------------------------------------------------------------------

    def backup(self) -> BackupRecord:
        """Take a backup now and catalogue it (unverified until :meth:`verify`)."""
        stamp = self._now()
        backup_id = stamp.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        if self.kind == "sqlite":
            path, tables = self._backup_sqlite(backup_id)
        else:
            path, tables = self._backup_pg(backup_id)
        record = BackupRecord(
            id=backup_id,
            kind=self.kind,
            source=self._masked(),
            path=str(path),
            size=path.stat().st_size,
            sha256=_sha256(path),
            created_at=stamp.isoformat(),
            tables=tables,
        )
        self._put(record)
        return record

    def _masked(self) -> str:
        from cognitionos.storage import mask_url

        return mask_url(self.source)

    def _backup_sqlite(self, backup_id: str) -> tuple[Path, dict[str, list[Any]]]:
        src_path = _sqlite_path(self.source)
        if not src_path.exists():
            raise ConfigurationError(f"SQLite database {str(src_path)!r} does not exist")
        final = self.directory / f"{backup_id}.sqlite3"
        tmp = final.with_suffix(".partial")
        src = sqlite3.connect(str(src_path))
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)  # the online backup API: consistent even with concurrent writers
            dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if check != "ok":
            tmp.unlink(missing_ok=True)
            raise StorageError(f"integrity_check of the new backup failed: {check}")
        tmp.replace(final)
        return final, _sqlite_digests(final)

    def _backup_pg(self, backup_id: str) -> tuple[Path, dict[str, list[Any]]]:
        final = self.directory / f"{backup_id}.pgdump"
        tmp = final.with_suffix(".partial")
        tables = _pg_digests(self.source)
        _run(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--file={tmp}",
                f"--dbname={_libpq(self.source)}",
            ],
            "pg_dump",
        )
        tmp.replace(final)
        return final, tables

    # -- verify / restore ---------------------------------------------------------------

    def verify(self, backup_id: str) -> VerifyResult:
        """Checksum, restore to a scratch target, compare every table; record the result."""
        record = self.get(backup_id)
        problems: list[str] = []
        path = Path(record.path)
        if not path.exists():
            return VerifyResult(backup_id, False, (f"backup file {record.path} is missing",), 0.0)
        if _sha256(path) != record.sha256:
            return VerifyResult(backup_id, False, ("checksum mismatch: the file changed",), 0.0)
        started = time.perf_counter()
        try:
            if record.kind == "sqlite":
                with tempfile.TemporaryDirectory() as scratch:
                    target = Path(scratch) / "restore.db"
                    self._restore_sqlite(path, target)
                    restored = _sqlite_digests(target)
            else:
                restored = self._pg_scratch_digests(path)
        except (StorageError, sqlite3.DatabaseError) as exc:
            return VerifyResult(backup_id, False, (f"restore failed: {exc}",), 0.0)
        seconds = time.perf_counter() - started
        for table, digest in record.tables.items():
            got = restored.get(table)
            if got != digest:
                problems.append(f"table {table}: expected {digest}, restored {got}")
        for table in set(restored) - set(record.tables):
            problems.append(f"table {table} appeared in the restore")
        ok = not problems
        if ok:
            self._put(
                attrs.evolve(record, verified_at=self._now().isoformat(), restore_seconds=seconds)
            )
        return VerifyResult(backup_id, ok, tuple(problems), seconds)

    def _pg_scratch_digests(self, path: Path) -> dict[str, list[Any]]:
        from cognitionos._optional import require

        psycopg = require("psycopg", extra="postgres", purpose="PostgreSQL restore drills")
        base = urlsplit(self.source).path.lstrip("/") or "postgres"
        scratch = f"{base}_drill_{secrets.token_hex(4)}"
        admin = _libpq(_with_db(self.source, "postgres"))
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(scratch))
            )
        try:
            target = _with_db(self.source, scratch)
            _run(
                ["pg_restore", "--no-owner", f"--dbname={_libpq(target)}", str(path)], "pg_restore"
            )
            return _pg_digests(target)
        finally:
            with psycopg.connect(admin, autocommit=True) as con:
                con.execute(
                    psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        psycopg.sql.Identifier(scratch)
                    )
                )

    @staticmethod
    def _restore_sqlite(path: Path, target: Path) -> None:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
            src.close()
        if check != "ok":
            raise StorageError(f"integrity_check after restore failed: {check}")

    def status(self, *, rpo: float = 900.0, now: datetime | None = None) -> dict[str, Any]:
        """Ages (seconds) of the newest backup and the newest verified one, and RPO alerts.

        A backup that was never restored does not count as verified, whatever its size.
        """
        moment = now or self._now()
        records = self.backups()
        newest = records[0] if records else None
        verified = [r for r in records if r.verified_at is not None]
        last_ok = _age(moment, newest.created_at) if newest else None
        last_verified = _age(moment, verified[0].created_at) if verified else None
        return {
            "backups": len(records),
            "unverified": len(records) - len(verified),
            "last_backup_age_seconds": last_ok,
            "last_verified_backup_age_seconds": last_verified,
            "backup_older_than_rpo": last_ok is None or last_ok > rpo,
            "verified_older_than_rpo": last_verified is None or last_verified > rpo,
        }

    def prune(self, policy: Any, *, mode: str = "restic", dry_run: bool = True) -> Any:
        """Apply a :class:`RetentionPolicy` to the catalog; the newest verified backup is
        always kept. With ``dry_run=False`` the removed backups' files and entries are deleted.
        """
        from cognitionos.dr.retention import KeepReason, RetentionResult, Snapshot, apply_retention

        records = {r.id: r for r in self.backups()}
        snaps = [
            Snapshot(r.id, datetime.fromisoformat(r.created_at), host=r.source)
            for r in records.values()
        ]
        result = apply_retention(snaps, policy, mode=mode)  # type: ignore[arg-type]
        verified = [r for r in records.values() if r.verified_at is not None]
        if verified:
            protect = max(verified, key=lambda r: r.created_at).id
            if protect not in {s.id for s in result.keep}:
                snap = next(s for s in result.remove if s.id == protect)
                result = RetentionResult(
                    keep=tuple(sorted((*result.keep, snap), key=lambda s: s.time, reverse=True)),
                    remove=tuple(s for s in result.remove if s.id != protect),
                    reasons=tuple(
                        sorted(
                            (*result.reasons, KeepReason(snap, ("newest verified backup",))),
                            key=lambda r: r.snapshot.time,
                            reverse=True,
                        )
                    ),
                )
        if not dry_run:
            for snap in result.remove:
                Path(records[snap.id].path).unlink(missing_ok=True)
                self.catalog.delete(_PREFIX + snap.id)
        return result

    def restore(self, backup_id: str, *, to: str) -> dict[str, list[Any]]:
        """Restore ``backup_id`` into ``to`` (a URL of the same kind); returns its table digests.

        The checksum is checked first; a PostgreSQL target database must exist (objects in the
        backup are dropped and recreated there).
        """
        record = self.get(backup_id)
        path = Path(record.path)
        if not path.exists() or _sha256(path) != record.sha256:
            raise StorageError(f"backup {backup_id!r} is missing or corrupted (checksum mismatch)")
        if record.kind == "sqlite":
            target = _sqlite_path(to)
            if target.exists():
                shutil.copy2(target, target.with_suffix(target.suffix + ".before-restore"))
            self._restore_sqlite(path, target)
            return _sqlite_digests(target)
        if not to.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ConfigurationError(
                f"restore target for a PostgreSQL backup must be postgresql://, got {to!r}"
            )
        _run(
            [
                "pg_restore",
                "--clean",
                "--if-exists",
                "--no-owner",
                f"--dbname={_libpq(to)}",
                str(path),
            ],
            "pg_restore",
        )
        return _pg_digests(to)
