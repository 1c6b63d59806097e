"""Real backups of the project's stores, verified only by restoring them.

* **SQLite**: SQLite's online backup API (safe under concurrent writers and in WAL mode; the
  file is never copied), then ``PRAGMA integrity_check`` on the copy.
* **PostgreSQL**: ``pg_dump --format=custom``; restored with ``pg_restore`` into a fresh
  scratch database (named after the source, dropped afterwards) for verification.
* **Redis**: ``BGSAVE``, wait for ``LASTSAVE`` to change, copy the RDB (or ``redis-cli
  --rdb`` when the file is not reachable); checked by loading it into a scratch
  ``redis-server`` (see :mod:`cognitionos.dr._redis`).

Every backup gets a SHA-256 of its file and a per-table content digest (row count and a hash
of the rows in a canonical order) at backup time. ``verify`` checks the file checksum, then
restores to a scratch target and compares the digests; only then is the backup marked
verified (with the measured restore time). The catalog lives in a cognitionos store
(key-value capability), one JSON entry per backup under ``dr:backup:<id>``, drill reports
under ``dr:drill:<id>``, and a lease ``dr:lease:<id>:<token>`` (with a TTL) for as long as a
verify, restore or drill reads a backup file: ``prune`` never deletes a leased backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import attrs

from cognitionos.errors import ConfigurationError, StorageError

if TYPE_CHECKING:
    from cognitionos.metrics import GaugeSet

__all__ = ["BackupManager", "BackupRecord", "DrillReport", "VerifyResult"]

_PREFIX = "dr:backup:"
_DRILLS = "dr:drill:"
_LEASES = "dr:lease:"
#: a lease outlives the longest restore we allow (subprocess timeout 3600 s) with margin
_LEASE_TTL = 2 * 3600.0


_COUNTER_HELP = {
    "backups": "Backups taken and catalogued",
    "verifications": "Verifications that restored a backup and found every table equal",
    "verifications_failed": "Verifications that found a problem (checksum, restore, tables)",
    "restores": "Restores into a target",
    "drills": "Drills run (backup, verify, measured RPO/RTO)",
}


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
    backup_seconds: float | None = None
    method: str = ""

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


@attrs.frozen(slots=True)
class DrillReport:
    """One restore drill: the timings it measured and whether they meet the targets.

    ``ok`` only when the scratch restore verified (checksum, integrity, every table's row
    count and digest) and the measured RPO and RTO are within the targets.
    """

    id: str
    kind: str
    started_at: str
    ok: bool
    verified: bool
    problems: tuple[str, ...]
    size: int
    rows: dict[str, int] = attrs.field(hash=False)
    backup_seconds: float = 0.0
    restore_seconds: float = 0.0
    interval: float = 0.0
    measured_rpo: float = 0.0
    measured_rto: float = 0.0
    rpo_target: float = 900.0
    rto_target: float = 3600.0
    max_interval_for_rpo: float | None = None
    backup_throughput: float = 0.0
    restore_throughput: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        data = attrs.asdict(self)
        data["problems"] = list(self.problems)
        return data

    def to_json(self) -> bytes:
        """The catalog entry."""
        return json.dumps(self.as_dict(), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> DrillReport:
        """Read a catalog entry."""
        data = json.loads(raw)
        data["problems"] = tuple(data["problems"])
        return cls(**data)


def _with_protected(result: Any, protect: dict[str, list[str]]) -> Any:
    """``result`` with the snapshots in ``protect`` kept, each with its extra reasons."""
    from cognitionos.dr.retention import KeepReason, RetentionResult

    if not protect:
        return result
    every = {s.id: s for s in (*result.keep, *result.remove)}
    reasons = {r.snapshot.id: r for r in result.reasons}
    for sid, why in protect.items():
        had = reasons.get(sid, KeepReason(every[sid], ()))
        reasons[sid] = attrs.evolve(had, matches=tuple(dict.fromkeys((*had.matches, *why))))
    keep = sorted(
        {*(s.id for s in result.keep), *protect}, key=lambda i: every[i].time, reverse=True
    )
    return RetentionResult(
        keep=tuple(every[i] for i in keep),
        remove=tuple(s for s in result.remove if s.id not in protect),
        reasons=tuple(reasons[i] for i in keep),
    )


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
    except subprocess.TimeoutExpired:
        raise StorageError(f"{what} did not finish in 3600 s") from None
    if proc.returncode != 0:
        raise StorageError(f"{what} failed: {proc.stderr.strip() or proc.stdout.strip()}")


_PG_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
_REDIS_SCHEMES = ("redis://", "rediss://")


def _archive_mode(con: Any) -> str:
    """The server's ``archive_mode`` (``off``, ``on`` or ``always``)."""
    row = con.execute("SHOW archive_mode").fetchone()
    return str(row[0]) if row else "off"


class BackupManager:
    """Back up, verify and restore one store (``sqlite:///``, ``postgresql://``, ``redis://``).

    ``target`` is a ``file:///directory`` or a directory path; ``catalog`` is a cognitionos
    store URL or store (default: ``sqlite:///<target>/catalog.db``)::

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
        scratch: str | None = None,
    ) -> None:
        if scratch is not None and not scratch.startswith(_PG_SCHEMES):
            raise ConfigurationError(
                f"scratch must be a postgresql://... server URL, got {scratch.split('://')[0]!r}"
            )
        #: the PostgreSQL server where verify and drills restore (default: the source's)
        self.scratch = scratch
        if source.startswith("sqlite:///"):
            self.kind = "sqlite"
            _sqlite_path(source)
        elif source.startswith(_PG_SCHEMES):
            self.kind = "postgresql"
        elif source.startswith(_REDIS_SCHEMES):
            from cognitionos.dr._redis import redis_db

            self.kind = "redis"
            redis_db(source)
        else:
            raise ConfigurationError(
                "source must be sqlite:///path, postgresql://... or redis://..., "
                f"got {source.split('://')[0]!r}"
            )
        if target.startswith("file://"):
            self.directory = Path(unquote(urlsplit(target).path))
        elif "://" not in target and target.strip():
            self.directory = Path(target).expanduser().absolute()  # a plain directory path
        else:
            raise ConfigurationError(
                f"target must be file:///directory or a directory path, got {target!r}"
            )
        self.source = source
        #: where the last SQLite restore saved the database it replaced (None: nothing was there)
        self.saved_copy: Path | None = None
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
        from cognitionos.metrics import CounterSet

        #: what this manager did since it was made (``cognitionos_dr_<name>_total``)
        self.counters = CounterSet("dr", _COUNTER_HELP, help=_COUNTER_HELP)

    def close(self) -> None:
        """Close the catalog store if this manager opened it."""
        if self._owns_catalog:
            self.catalog.close()

    def __enter__(self) -> BackupManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- catalog ------------------------------------------------------------------------

    def backups(self, *, all_sources: bool = False) -> list[BackupRecord]:
        """This source's catalogued backups (every source's with ``all_sources``), newest first.

        A catalog store may hold several sources' backups; status, drills and prune only
        ever look at (and delete) the manager's own.
        """
        entries = self.catalog.scan(_PREFIX, limit=100_000)
        records = [BackupRecord.from_json(e.value) for e in entries]
        if not all_sources:
            mine = self._masked()
            records = [r for r in records if r.source == mine]
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
        started = time.perf_counter()
        method = {"sqlite": "sqlite backup API", "postgresql": "pg_dump --format=custom"}.get(
            self.kind, ""
        )
        if self.kind == "sqlite":
            path, tables = self._backup_sqlite(backup_id)
        elif self.kind == "postgresql":
            path, tables = self._backup_pg(backup_id)
        else:
            path, tables, method = self._backup_redis(backup_id)
        record = BackupRecord(
            id=backup_id,
            kind=self.kind,
            source=self._masked(),
            path=str(path),
            size=path.stat().st_size,
            sha256=_sha256(path),
            created_at=stamp.isoformat(),
            tables=tables,
            backup_seconds=time.perf_counter() - started,
            method=method,
        )
        self._put(record)
        self.counters.inc("backups")
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

    def _backup_redis(self, backup_id: str) -> tuple[Path, dict[str, list[Any]], str]:
        from cognitionos.dr._redis import redis_db, redis_digests, scratch_redis, snapshot_rdb

        final = self.directory / f"{backup_id}.rdb"
        tmp = final.with_suffix(".partial")
        try:
            method = snapshot_rdb(self.source, tmp)
            # the digest is of the snapshot itself, read back from a server that loaded it:
            # the live dataset may have moved on since the fork
            with scratch_redis(tmp, db=redis_db(self.source)) as url:
                tables = redis_digests(url)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(final)
        return final, tables, method

    # -- leases: what a running verify/restore reads is never pruned ----------------------

    @contextlib.contextmanager
    def _lease(self, backup_id: str) -> Iterator[BackupRecord]:
        key = f"{_LEASES}{backup_id}:{secrets.token_hex(8)}"
        lease = {"pid": os.getpid(), "host": socket.gethostname(), "since": self._now().isoformat()}
        self.catalog.set(key, json.dumps(lease).encode(), ttl=_LEASE_TTL)
        try:
            # read the entry only after the lease exists: a prune that deleted it first sees
            # no lease and proceeds, one that deletes it later sees the lease and backs off
            yield self.get(backup_id)
        finally:
            self.catalog.delete(key)

    def leased(self) -> set[str]:
        """Ids of the backups a verify, restore or drill is reading right now."""
        return {e.key[len(_LEASES) :].rsplit(":", 1)[0] for e in self.catalog.scan(_LEASES)}

    # -- verify / restore ---------------------------------------------------------------

    def verify(self, backup_id: str) -> VerifyResult:
        """Checksum, restore to a scratch target, compare every table; record the result."""
        with self._lease(backup_id) as record:
            result = self._verify(record)
        self.counters.inc("verifications" if result.ok else "verifications_failed")
        return result

    def _verify(self, record: BackupRecord) -> VerifyResult:
        backup_id = record.id
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
            elif record.kind == "postgresql":
                restored = self._pg_scratch_digests(path)
            else:
                from cognitionos.dr._redis import redis_db, redis_digests, scratch_redis

                with scratch_redis(path, db=redis_db(self.source)) as url:
                    restored = redis_digests(url)
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
        if ok and self.catalog.get(_PREFIX + backup_id) is not None:
            self._put(
                attrs.evolve(record, verified_at=self._now().isoformat(), restore_seconds=seconds)
            )
        return VerifyResult(backup_id, ok, tuple(problems), seconds)

    def _pg_scratch_digests(self, path: Path) -> dict[str, list[Any]]:
        from cognitionos._optional import require

        psycopg = require("psycopg", extra="postgres", purpose="PostgreSQL restore drills")
        base = urlsplit(self.source).path.lstrip("/") or "postgres"
        scratch = f"{base}_drill_{secrets.token_hex(4)}"
        from cognitionos.storage import mask_url

        server = self.scratch or self.source
        admin = _libpq(_with_db(server, "postgres"))
        with psycopg.connect(admin, autocommit=True) as con:
            archive_mode = _archive_mode(con)
            if archive_mode in ("on", "always"):
                # a restore there would ship its WAL into the production archive
                raise ConfigurationError(
                    f"the scratch server {mask_url(server)} archives WAL (archive_mode="
                    f"{archive_mode}): a drill restored there is not isolated; pass "
                    "scratch='postgresql://<a server without WAL archiving>' "
                    "(cognitionos dr verify/drill --scratch URL)"
                )
            con.execute(
                psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(scratch))
            )
        try:
            target = _with_db(server, scratch)
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
    def _save_before_restore(target: Path) -> Path:
        """Copy the database a restore is about to replace to a new file beside it.

        Each restore gets its own copy (``<name>.before-restore-<UTC time>``, never an existing
        file), made with SQLite's backup API so that a WAL file's committed pages are in it.
        """
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        copy = target.with_name(f"{target.name}.before-restore-{stamp}")
        n = 1
        while copy.exists():
            n += 1
            copy = target.with_name(f"{target.name}.before-restore-{stamp}-{n}")
        src = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        dst = sqlite3.connect(str(copy))
        try:
            src.backup(dst)
        except sqlite3.DatabaseError as exc:
            raise StorageError(
                f"restore target {str(target)!r} exists and could not be saved first: {exc}"
            ) from None
        finally:
            dst.close()
            src.close()
        return copy

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
        drills = self.drills()
        return {
            "backups": len(records),
            "unverified": len(records) - len(verified),
            "last_backup_age_seconds": last_ok,
            "last_verified_backup_age_seconds": last_verified,
            "backup_older_than_rpo": last_ok is None or last_ok > rpo,
            "verified_older_than_rpo": last_verified is None or last_verified > rpo,
            "last_drill": drills[0].as_dict() if drills else None,
        }

    def gauges(self, *, rpo: float = 900.0, name: str = "dr") -> GaugeSet:
        """Backup ages as gauges read from the catalog at scrape time (kernel metrics).

        ``last_backup_age_seconds`` / ``last_verified_backup_age_seconds`` are ``+Inf`` while
        there is none, so an alert ``age > rpo_seconds`` fires; ``*_older_than_rpo`` are 0/1.
        Register with ``EngineCollector(mgr.gauges(rpo=900))``.
        """
        from cognitionos.metrics import GaugeSet

        def read() -> dict[str, float]:
            st = self.status(rpo=rpo)
            inf = float("inf")
            last = st["last_backup_age_seconds"]
            verified = st["last_verified_backup_age_seconds"]
            return {
                "last_backup_age_seconds": inf if last is None else float(last),
                "last_verified_backup_age_seconds": inf if verified is None else float(verified),
                "rpo_seconds": float(rpo),
                "backup_older_than_rpo": float(st["backup_older_than_rpo"]),
                "verified_older_than_rpo": float(st["verified_older_than_rpo"]),
                "backups": float(st["backups"]),
                "unverified_backups": float(st["unverified"]),
            }

        return GaugeSet(
            name,
            read,
            help={
                "last_backup_age_seconds": "Age of the newest catalogued backup",
                "last_verified_backup_age_seconds": "Age of the newest restore-verified backup",
                "rpo_seconds": "The recovery point objective the ages are held against",
                "backup_older_than_rpo": "1 when the newest backup is older than the RPO",
                "verified_older_than_rpo": (
                    "1 when the newest verified backup is older than the RPO"
                ),
                "backups": "Catalogued backups",
                "unverified_backups": "Backups never restored and checked",
            },
        )

    def prune(
        self, policy: Any, *, mode: str = "restic", dry_run: bool = True, rpo: float | None = None
    ) -> Any:
        """Apply a :class:`RetentionPolicy` to the catalog, with three protections on top.

        Whatever the policy says, prune keeps: the newest backup (the recovery point the RPO
        window rests on; ``rpo`` only changes the reason's wording), the newest verified
        backup, and every backup a running verify/restore/drill holds a lease on. With
        ``dry_run=False`` the removed backups' entries and files are deleted.
        """
        from cognitionos.dr.retention import Snapshot, apply_retention

        records = {r.id: r for r in self.backups()}
        snaps = [
            Snapshot(r.id, datetime.fromisoformat(r.created_at), host=r.source)
            for r in records.values()
        ]
        result = apply_retention(snaps, policy, mode=mode)  # type: ignore[arg-type]
        ordered = sorted(records.values(), key=lambda r: r.created_at, reverse=True)
        protect: dict[str, list[str]] = {}
        if ordered:
            newest = ordered[0]
            age = _age(self._now(), newest.created_at)
            if rpo is None:
                why = "newest backup (RPO window)"
            elif age <= rpo:
                why = f"newest backup (within the RPO of {rpo:g} s)"
            else:
                why = f"newest backup (older than the RPO of {rpo:g} s, still the best point)"
            protect.setdefault(newest.id, []).append(why)
        verified = [r for r in ordered if r.verified_at is not None]
        if verified:
            protect.setdefault(verified[0].id, []).append("newest verified backup")
        for backup_id in self.leased() & set(records):
            protect.setdefault(backup_id, []).append("in use by a running restore")
        result = _with_protected(result, protect)
        if not dry_run:
            for snap in result.remove:
                record = records[snap.id]
                # entry first, then look for a lease: a restore that started in between holds
                # one (it leases before it reads the entry), and then the entry goes back
                self.catalog.delete(_PREFIX + snap.id)
                if snap.id in self.leased():
                    self._put(record)
                    result = _with_protected(result, {snap.id: ["in use by a running restore"]})
                    continue
                Path(record.path).unlink(missing_ok=True)
        return result

    # -- drills -------------------------------------------------------------------------

    def drill(
        self,
        *,
        rpo: float = 900.0,
        rto: float = 3600.0,
        interval: float | None = None,
        detection_time: float = 60.0,
        provisioning_time: float = 300.0,
        dns_time: float = 60.0,
    ) -> DrillReport:
        """Back up now, restore into a scratch target, verify, and hold the timings to a plan.

        Measured RTO = ``detection + provisioning + restore (scratch restore and checks) +
        dns``; measured RPO = ``interval + backup duration`` (a failure just before the next
        backup completes loses the interval since this one started plus its duration — the
        planner's worst case). ``interval`` is the schedule's backup interval; by default the
        gap between the previous catalogued backup and this one (0 for the first). The
        report also gives the longest backup interval the RPO allows at the measured backup
        duration, and the measured throughputs (backup file bytes per second) to feed to
        ``plan_recovery`` / ``dr plan``. The report is stored in the catalog (``dr:drill:<id>``).
        """
        for field, value in (
            ("rpo", rpo),
            ("rto", rto),
            ("detection_time", detection_time),
            ("provisioning_time", provisioning_time),
            ("dns_time", dns_time),
        ):
            if not value >= 0 or value == float("inf"):
                raise ConfigurationError(f"{field} must be >= 0 and finite, got {value!r}")
        if interval is not None and not 0 <= interval < float("inf"):
            raise ConfigurationError(f"interval must be >= 0 and finite, got {interval!r}")
        previous = self.backups()
        started = self._now()
        record = self.backup()
        backup_seconds = float(record.backup_seconds or 0.0)
        result = self.verify(record.id)
        observed = (
            _age(datetime.fromisoformat(record.created_at), previous[0].created_at)
            if previous
            else 0.0
        )
        gap = observed if interval is None else interval
        measured_rpo = gap + backup_seconds
        measured_rto = detection_time + provisioning_time + result.restore_seconds + dns_time
        problems = list(result.problems)
        if measured_rpo > rpo:
            problems.append(
                f"measured RPO {measured_rpo:.3f} s (interval {gap:g} + backup "
                f"{backup_seconds:.3f}) > rpo {rpo:g} s"
            )
        if measured_rto > rto:
            problems.append(
                f"measured RTO {measured_rto:.3f} s (detection {detection_time:g} + provisioning "
                f"{provisioning_time:g} + restore {result.restore_seconds:.3f} + dns "
                f"{dns_time:g}) > rto {rto:g} s"
            )
        # full backups every I taking D each: the planner's worst case I + D must stay <= rpo
        needed = rpo - backup_seconds
        report = DrillReport(
            id=record.id,
            kind=record.kind,
            started_at=started.isoformat(),
            ok=result.ok and not problems,
            verified=result.ok,
            problems=tuple(problems),
            size=record.size,
            rows={k: int(v[0]) for k, v in record.tables.items()},
            backup_seconds=backup_seconds,
            restore_seconds=result.restore_seconds,
            interval=gap,
            measured_rpo=measured_rpo,
            measured_rto=measured_rto,
            rpo_target=rpo,
            rto_target=rto,
            max_interval_for_rpo=needed if needed > 0 else None,
            backup_throughput=record.size / max(backup_seconds, 1e-9),
            restore_throughput=record.size / max(result.restore_seconds, 1e-9),
        )
        self.catalog.set(_DRILLS + record.id, report.to_json())
        self.counters.inc("drills")
        return report

    def drills(self) -> list[DrillReport]:
        """This source's recorded drills, newest first."""
        entries = self.catalog.scan(_DRILLS, limit=100_000)
        mine = {r.id for r in self.backups()}
        reports = [DrillReport.from_json(e.value) for e in entries]
        reports = [r for r in reports if r.id in mine]
        return sorted(reports, key=lambda r: r.started_at, reverse=True)

    def restore(self, backup_id: str, *, to: str) -> dict[str, list[Any]]:
        """Restore ``backup_id`` into ``to`` (a URL of the same kind); returns its table digests.

        The checksum is checked first. A SQLite target file that exists is first copied to
        ``<name>.before-restore-<UTC time>`` (:attr:`saved_copy`); a PostgreSQL target
        database must exist (objects in the backup are dropped and recreated there); a Redis
        target database must be empty (the backup is loaded into a scratch server and its keys
        copied over with DUMP/RESTORE).
        """
        with self._lease(backup_id) as record:
            digests = self._restore(record, to)
        self.counters.inc("restores")
        return digests

    def _restore(self, record: BackupRecord, to: str) -> dict[str, list[Any]]:
        backup_id = record.id
        path = Path(record.path)
        if not path.exists() or _sha256(path) != record.sha256:
            raise StorageError(f"backup {backup_id!r} is missing or corrupted (checksum mismatch)")
        if record.kind == "sqlite":
            target = _sqlite_path(to)
            self.saved_copy = self._save_before_restore(target) if target.exists() else None
            self._restore_sqlite(path, target)
            return _sqlite_digests(target)
        if record.kind == "redis":
            from cognitionos.dr._redis import copy_keys, redis_db, redis_digests, scratch_redis

            if not to.startswith(_REDIS_SCHEMES):
                raise ConfigurationError(
                    f"restore target for a Redis backup must be redis://, got {to!r}"
                )
            with scratch_redis(path, db=redis_db(self.source)) as url:
                copy_keys(url, to)
            return redis_digests(to)
        if not to.startswith(_PG_SCHEMES):
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
