"""SQL backend: SQLAlchemy Core on SQLite (WAL) or PostgreSQL.

Every operation is one transaction and most are one statement (atomic upserts
with ``RETURNING``), so concurrent writers in many processes lose no update
and a failure leaves nothing half-written.

- SQLite: WAL journal, ``BEGIN IMMEDIATE`` for writes (writers queue on the
  busy timeout instead of failing on lock upgrade), change feed by polling a
  change journal table.
- PostgreSQL: event-log appends take a per-stream transaction advisory lock so
  sequence numbers are gapless and in commit order; the change feed uses
  ``LISTEN/NOTIFY`` (delivered on commit) and needs the psycopg 3 driver.

TTLs are checked against the injected clock of this process; hosts sharing a
database should run NTP.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos._optional import require
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.storage._base import (
    BaseStore,
    FeedSubscription,
    Subscribers,
    check_key,
    check_payload,
    decode_change,
    ttl_to_ns,
)
from cognitionos.storage._types import Capability, Change, Entry, Event
from cognitionos.storage._url import StoreURL, mask_url

__all__ = ["HEAD_REVISION", "SQLStore", "upgrade_schema"]

log = logging.getLogger("cognitionos.storage.sql")

#: newest migration; a test checks it matches the migration scripts
HEAD_REVISION = "0005"
VERSION_TABLE = "cognitionos_alembic_version"
NOTIFY_CHANNEL = "cognitionos_changes"
_MIGRATION_LOCK = 0x636F676E  # advisory lock id serialising concurrent upgrades on PostgreSQL
_JOURNAL_RETENTION_NS = 10 * 60 * 1_000_000_000


def _sqlalchemy_url(url: StoreURL) -> str:
    raw = url.raw
    # SQLAlchemy would pick psycopg2 for a bare scheme; our postgres extra ships psycopg 3
    for bare in ("postgresql://", "postgres://"):
        if raw.lower().startswith(bare):
            return "postgresql+psycopg://" + raw[len(bare) :]
    return raw


def _create_engine(url: StoreURL) -> tuple[Any, bool]:
    """Engine for ``url`` and whether it is a private in-memory SQLite (needs a Python lock)."""
    sa = require("sqlalchemy", purpose="SQL storage")
    from sqlalchemy import event

    target = _sqlalchemy_url(url)
    if url.base_scheme == "sqlite":
        memory = url.path in ("", "/", "/:memory:") or url.query.get("mode") == "memory"
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if memory:
            kwargs["poolclass"] = sa.pool.StaticPool
        engine = sa.create_engine(target, **kwargs)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            # reads are single SELECTs, atomic on their own: no transaction round trip for them
            if not conn.get_execution_options().get("cos_readonly", False):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine, memory
    if url.base_scheme in ("postgresql", "postgres"):
        try:
            engine = sa.create_engine(target, pool_pre_ping=True, pool_size=10, max_overflow=20)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(
                f"PostgreSQL driver for {mask_url(url.raw)!r} is not installed "
                f"({exc.name}); install it with: pip install 'cognitionos[postgres]'"
            ) from exc
        return engine, False
    raise ConfigurationError(f"not a SQL URL: {mask_url(url.raw)!r}")


def upgrade_schema(engine: Any, revision: str = "head") -> str | None:
    """Run the packaged Alembic migrations up to ``revision``; returns the revision now current."""
    require("alembic", purpose="SQL schema migrations")
    from pathlib import Path

    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    import cognitionos.storage.migrations as migrations

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        current: str | None = ctx.get_current_revision()
        return current


class SQLStore(BaseStore):
    """Key-value, counters, event log and change feed in SQLite or PostgreSQL.

    ``open_store("sqlite:///app.db")`` or ``open_store("postgresql+psycopg://user@host/db")``.
    The schema is migrated on open unless ``auto_migrate=False`` (then run
    ``cognitionos db upgrade URL`` yourself).
    """

    capabilities = frozenset(Capability)

    def __init__(
        self,
        url: str | StoreURL,
        *,
        clock: Clock | None = None,
        auto_migrate: bool = True,
        poll_interval: float = 0.2,
    ) -> None:
        from cognitionos.storage._url import parse_url

        self.url = url if isinstance(url, StoreURL) else parse_url(url)
        self._masked = self.url.masked
        self._clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.engine, private_memory = _create_engine(self.url)
        self.dialect: str = self.engine.dialect.name
        self.backend = self.dialect  # type: ignore[misc]
        # a private in-memory SQLite is one connection shared by all threads: serialise them
        self._conn_lock: threading.Lock | None = threading.Lock() if private_memory else None
        self._subs = Subscribers()
        self._feed_lock = threading.Lock()
        self._feed_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._writes = 0
        self._closed = False
        self._build_statements()
        try:
            if auto_migrate:
                self._ensure_schema()
            else:
                self.ping()
        except StorageError:
            self.engine.dispose()
            raise
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: own connections, own locks, own feed thread (see ``_fork``)."""
        if self._conn_lock is not None:
            # a private in-memory database lives in the connection: the child's copy is its own
            self._conn_lock = threading.Lock()
        else:
            # the parent's pooled connections stay the parent's; new ones open on first use
            self.engine.dispose(close=False)
        self._subs.after_fork()
        self._feed_lock = threading.Lock()
        had_feed = self._feed_thread is not None
        self._feed_thread = None  # threads do not survive a fork
        self._stop = threading.Event()
        if had_feed and self._subs and not self._closed:
            self._start_feed(wait=False)

    # -- plumbing --------------------------------------------------------------------------

    def _wrap(self, exc: Exception, what: str) -> StorageError:
        sa_exc = require("sqlalchemy.exc")
        kind = BackendUnavailable if isinstance(exc, sa_exc.OperationalError) else StorageError
        cause = getattr(exc, "orig", None) or exc
        return kind(f"{self.dialect} store {self._masked}: {what} failed: {cause}")

    @contextmanager
    def _tx(self, what: str, *, readonly: bool = False) -> Iterator[Any]:
        sa_exc = require("sqlalchemy.exc")
        lock = self._conn_lock
        if lock is not None:
            lock.acquire()
        try:
            conn = self.engine.connect()
            if readonly:
                conn = conn.execution_options(cos_readonly=True)
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.close()
        except sa_exc.SQLAlchemyError as exc:
            raise self._wrap(exc, what) from exc
        finally:
            if lock is not None:
                lock.release()

    def _ensure_schema(self) -> None:
        sa = require("sqlalchemy")
        try:
            with self._tx("schema check", readonly=True) as conn:
                current = conn.execute(
                    sa.text(f"SELECT version_num FROM {VERSION_TABLE}")
                ).scalar_one_or_none()
        except BackendUnavailable as exc:
            if "no such table" not in str(exc) and "does not exist" not in str(exc):
                raise
            current = None
        except StorageError:
            current = None
        if current == HEAD_REVISION:
            return
        sa_exc = require("sqlalchemy.exc")
        try:
            if self._conn_lock is not None:
                with self._conn_lock:
                    upgrade_schema(self.engine)
            else:
                upgrade_schema(self.engine)
        except sa_exc.SQLAlchemyError as exc:
            raise self._wrap(exc, "schema migration") from exc

    def _build_statements(self) -> None:
        sa = require("sqlalchemy")
        from sqlalchemy.dialects import postgresql, sqlite

        insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        md = require("cognitionos.storage._sql_schema").build_metadata()
        kv, ctr, ev, ch = (
            md.tables[n] for n in ("cos_kv", "cos_counters", "cos_events", "cos_changes")
        )
        self._kv, self._ctr, self._ev, self._ch = kv, ctr, ev, ch
        now = sa.bindparam("now")
        live_kv = sa.or_(kv.c.expires_at.is_(None), kv.c.expires_at > now)
        kv_expired = sa.and_(kv.c.expires_at.is_not(None), kv.c.expires_at <= now)

        self._q_get = sa.select(kv.c.value, kv.c.version, kv.c.expires_at).where(
            kv.c.key == sa.bindparam("k"), live_kv
        )
        ins = insert(kv).values(
            key=sa.bindparam("k"),
            value=sa.bindparam("v"),
            version=1,
            expires_at=sa.bindparam("exp"),
        )
        self._q_set = ins.on_conflict_do_update(
            index_elements=[kv.c.key],
            set_={
                "value": ins.excluded.value,
                "version": sa.case((kv_expired, 1), else_=kv.c.version + 1),
                "expires_at": ins.excluded.expires_at,
            },
        ).returning(kv.c.version)
        self._q_create = ins.on_conflict_do_update(
            index_elements=[kv.c.key],
            set_={"value": ins.excluded.value, "version": 1, "expires_at": ins.excluded.expires_at},
            where=kv_expired,
        ).returning(kv.c.version)
        self._q_cas = (
            sa.update(kv)
            .where(kv.c.key == sa.bindparam("k"), kv.c.version == sa.bindparam("ver"), live_kv)
            .values(
                value=sa.bindparam("v"), version=kv.c.version + 1, expires_at=sa.bindparam("exp")
            )
            .returning(kv.c.version)
        )
        self._q_delete = (
            sa.delete(kv)
            .where(kv.c.key == sa.bindparam("k"))
            .returning(kv.c.version, kv.c.expires_at)
        )
        key_order = sa.collate(kv.c.key, "C") if self.dialect == "postgresql" else kv.c.key
        self._q_scan = (
            sa.select(kv.c.key, kv.c.value, kv.c.version, kv.c.expires_at)
            .where(sa.func.substr(kv.c.key, 1, sa.bindparam("plen")) == sa.bindparam("p"), live_kv)
            .order_by(key_order)
            .limit(sa.bindparam("lim"))
        )
        self._q_scan_all = (
            sa.select(kv.c.key, kv.c.value, kv.c.version, kv.c.expires_at)
            .where(live_kv)
            .order_by(key_order)
            .limit(sa.bindparam("lim"))
        )

        ctr_expired = sa.and_(ctr.c.expires_at.is_not(None), ctr.c.expires_at <= now)
        cins = insert(ctr).values(
            key=sa.bindparam("k"), value=sa.bindparam("n"), expires_at=sa.bindparam("exp")
        )
        self._q_incr = cins.on_conflict_do_update(
            index_elements=[ctr.c.key],
            set_={
                "value": sa.case(
                    (ctr_expired, cins.excluded.value), else_=ctr.c.value + cins.excluded.value
                ),
                "expires_at": sa.case(
                    (ctr_expired, cins.excluded.expires_at), else_=ctr.c.expires_at
                ),
            },
        ).returning(ctr.c.value)
        self._q_get_counter = sa.select(ctr.c.value).where(
            ctr.c.key == sa.bindparam("k"),
            sa.or_(ctr.c.expires_at.is_(None), ctr.c.expires_at > now),
        )
        self._q_reset_counter = sa.delete(ctr).where(ctr.c.key == sa.bindparam("k"))

        self._q_last_seq = sa.select(sa.func.coalesce(sa.func.max(ev.c.seq), 0)).where(
            ev.c.stream == sa.bindparam("s")
        )
        self._q_insert_events = sa.insert(ev)
        self._q_stream_lock = sa.text("SELECT pg_advisory_xact_lock(hashtext(:s))")
        self._q_notify = sa.text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', :payload)")
        self._q_journal = sa.insert(ch)
        self._q_journal_prune = sa.delete(ch).where(ch.c.ts < sa.bindparam("before"))
        self._q_journal_max = sa.select(sa.func.coalesce(sa.func.max(ch.c.id), 0))
        self._q_journal_read = (
            sa.select(ch.c.id, ch.c.key, ch.c.version, ch.c.deleted)
            .where(ch.c.id > sa.bindparam("after"))
            .order_by(ch.c.id)
            .limit(1000)
        )

    def _record_change(self, conn: Any, change: Change, now: int) -> None:
        """Publish a change inside the writing transaction (delivered only if it commits)."""
        if self.dialect == "postgresql":
            payload = json.dumps({"k": change.key, "v": change.version, "d": change.deleted})
            conn.execute(self._q_notify, {"payload": payload})
            return
        conn.execute(
            self._q_journal,
            {"key": change.key, "version": change.version, "deleted": change.deleted, "ts": now},
        )
        self._writes += 1
        if self._writes % 1000 == 0:
            conn.execute(self._q_journal_prune, {"before": now - _JOURNAL_RETENTION_NS})

    # -- key-value -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or None."""
        check_key(key)
        with self._tx("get", readonly=True) as conn:
            row = conn.execute(self._q_get, {"k": key, "now": self._clock.time_ns()}).first()
        return None if row is None else Entry(key, bytes(row[0]), row[1], row[2])

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        check_key(key)
        value = check_payload(value)
        ttl_ns = ttl_to_ns(ttl)
        now = self._clock.time_ns()
        exp = None if ttl_ns is None else now + ttl_ns
        with self._tx("set") as conn:
            version = int(
                conn.execute(
                    self._q_set, {"k": key, "v": value, "exp": exp, "now": now}
                ).scalar_one()
            )
            self._record_change(conn, Change(key, version), now)
        return version

    def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0 = absent); new version or None."""
        check_key(key)
        value = check_payload(value)
        ttl_ns = ttl_to_ns(ttl)
        if version < 0:
            raise ConfigurationError(f"version must be >= 0, got {version}")
        now = self._clock.time_ns()
        params = {"k": key, "v": value, "exp": None if ttl_ns is None else now + ttl_ns, "now": now}
        with self._tx("compare_and_set") as conn:
            if version == 0:
                new = conn.execute(self._q_create, params).scalar_one_or_none()
            else:
                new = conn.execute(self._q_cas, {**params, "ver": version}).scalar_one_or_none()
            if new is not None:
                self._record_change(conn, Change(key, int(new)), now)
        return None if new is None else int(new)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed (and had not expired)."""
        check_key(key)
        now = self._clock.time_ns()
        with self._tx("delete") as conn:
            row = conn.execute(self._q_delete, {"k": key}).first()
            existed = row is not None and (row[1] is None or row[1] > now)
            if existed:
                self._record_change(conn, Change(key, int(row[0]), deleted=True), now)
        return existed

    def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries under ``prefix``, ordered by key."""
        params = {"p": prefix, "plen": len(prefix), "lim": limit, "now": self._clock.time_ns()}
        with self._tx("scan", readonly=True) as conn:
            rows = conn.execute(self._q_scan if prefix else self._q_scan_all, params).all()
        return [Entry(r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    # -- counters --------------------------------------------------------------------------

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` atomically; the TTL is set when the counter is created."""
        check_key(key)
        ttl_ns = ttl_to_ns(ttl)
        now = self._clock.time_ns()
        params = {
            "k": key,
            "n": amount,
            "exp": None if ttl_ns is None else now + ttl_ns,
            "now": now,
        }
        with self._tx("incr") as conn:
            return int(conn.execute(self._q_incr, params).scalar_one())

    def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        check_key(key)
        with self._tx("get_counter", readonly=True) as conn:
            value = conn.execute(
                self._q_get_counter, {"k": key, "now": self._clock.time_ns()}
            ).scalar()
        return 0 if value is None else int(value)

    def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        check_key(key)
        with self._tx("reset_counter") as conn:
            conn.execute(self._q_reset_counter, {"k": key})

    # -- event log -------------------------------------------------------------------------

    def append(self, stream: str, payload: bytes) -> Event:
        """Append one event."""
        return self.append_many(stream, [payload])[0]

    def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append events in one transaction; sequence numbers are gapless per stream."""
        check_key(stream, "stream")
        checked = [check_payload(p) for p in payloads]
        if not checked:
            return []
        with self._tx("append") as conn:
            if self.dialect == "postgresql":
                conn.execute(self._q_stream_lock, {"s": stream})
            last = int(conn.execute(self._q_last_seq, {"s": stream}).scalar_one())
            now = self._clock.time_ns()
            events = [Event(stream, last + i, now, p) for i, p in enumerate(checked, 1)]
            conn.execute(
                self._q_insert_events,
                [{"stream": stream, "seq": e.seq, "ts": now, "payload": e.payload} for e in events],
            )
        return events

    def read(
        self,
        stream: str,
        *,
        after: int = 0,
        limit: int = 1000,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` within the time bounds, oldest first."""
        sa = require("sqlalchemy")
        check_key(stream, "stream")
        ev = self._ev
        q = sa.select(ev.c.seq, ev.c.ts, ev.c.payload).where(
            ev.c.stream == stream, ev.c.seq > after
        )
        if since_ns is not None:
            q = q.where(ev.c.ts >= since_ns)
        if until_ns is not None:
            q = q.where(ev.c.ts < until_ns)
        q = q.order_by(ev.c.seq).limit(limit)
        with self._tx("read", readonly=True) as conn:
            rows = conn.execute(q).all()
        return [Event(stream, r[0], r[1], bytes(r[2])) for r in rows]

    # -- change feed -----------------------------------------------------------------------

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> FeedSubscription:
        """Deliver changes under ``prefix`` from any process, on a background thread."""
        sub = self._subs.add(prefix, callback)
        self._start_feed(wait=True)
        return sub

    def _start_feed(self, *, wait: bool) -> None:
        with self._feed_lock:
            if self._feed_thread is None:
                target = self._listen_pg if self.dialect == "postgresql" else self._poll_journal
                ready = threading.Event()
                self._feed_thread = threading.Thread(
                    target=target,
                    args=(ready,),
                    name=f"cognitionos-{self.dialect}-feed",
                    daemon=True,
                )
                self._feed_thread.start()
                if wait:
                    # listening before subscribe returns, or an immediate write is lost
                    ready.wait(10)

    def _poll_journal(self, ready: threading.Event) -> None:
        last: int | None = None
        rows: list[Any] = []
        while not self._stop.is_set():
            try:
                with self._tx("change feed poll", readonly=True) as conn:
                    if last is None:
                        last = int(conn.execute(self._q_journal_max).scalar_one())
                        ready.set()
                    else:
                        rows = conn.execute(self._q_journal_read, {"after": last}).all()
                for row in rows:
                    last = row[0]
                    self._subs.dispatch(Change(row[1], int(row[2]), bool(row[3])))
                rows = []
            except StorageError:
                log.warning("change feed poll failed on %s; retrying", self._masked, exc_info=True)
            self._stop.wait(self.poll_interval)

    def _listen_pg(self, ready: threading.Event) -> None:
        psycopg = require("psycopg", extra="postgres", purpose="the PostgreSQL change feed")
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    ready.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            change = decode_change(note.payload)
                            if change is not None:
                                self._subs.dispatch(change)
            except Exception:
                if self._stop.is_set():
                    return
                log.warning(
                    "change feed listener lost %s; reconnecting", self._masked, exc_info=True
                )
                self._stop.wait(1.0)

    # -- lifecycle -------------------------------------------------------------------------

    def ping(self) -> float:
        """Time one ``SELECT 1`` round trip."""
        sa = require("sqlalchemy")
        t0 = time.perf_counter()
        with self._tx("ping", readonly=True) as conn:
            conn.execute(sa.text("SELECT 1"))
        return time.perf_counter() - t0

    def close(self) -> None:
        """Stop the feed thread and dispose of the connection pool."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._feed_thread is not None:
            self._feed_thread.join(5)
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"SQLStore({self._masked!r})"
