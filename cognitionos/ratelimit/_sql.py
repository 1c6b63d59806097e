"""SQL backend (SQLite, PostgreSQL): one transaction per decision, rows locked in key order.

Each decision inserts missing rows (``ON CONFLICT DO NOTHING``), locks the rows
it needs (``SELECT … ORDER BY key FOR UPDATE`` on PostgreSQL; SQLite's write
transaction holds the database), runs the pure rules of
:mod:`cognitionos.ratelimit._batch`, writes the new states and commits. On a SQLite
file, decisions run on a DB-API connection per thread held by the backend (taken
from the engine's pool once and detached from it), with the statements as plain
strings: SQLAlchemy's checkout, events and result wrapping would be most of a
decision. ``BEGIN IMMEDIATE`` still makes each decision one write transaction.
Two tables, created if missing (and by the Alembic migration ``_migration_0002``)::

    cos_ratelimit_state (rl_key PK, state BLOB, expires_at µs)
    cos_ratelimit_bans  (rl_key PK, until_us, offenses, keep_until_us, manual, violations)
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos._optional import require
from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.ratelimit._batch import BanState, Request, Result, Spec, evaluate
from cognitionos.ratelimit._core import SlidingLog, concurrency_release
from cognitionos.ratelimit._keys import decode_key, encode_key
from cognitionos.ratelimit._timeouts import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_POSTGRES_TIMEOUT,
    DEFAULT_SQLITE_BUSY_TIMEOUT,
    effective,
)
from cognitionos.ratelimit.models import BanPolicy

__all__ = [
    "DEFAULT_TABLE_PREFIX",
    "SqlBackend",
    "build_tables",
    "decode_state",
    "drop_tables",
    "encode_state",
    "sql_backend_from_url",
]

DEFAULT_TABLE_PREFIX = "cos_"
#: Expired rows are deleted in a separate short transaction every this many commits.
_CLEANUP_EVERY = 10_000


def build_tables(metadata: Any, table_prefix: str = DEFAULT_TABLE_PREFIX) -> tuple[Any, Any]:
    """The two tables of the SQL rate limiter, added to ``metadata``."""
    sa = require("sqlalchemy", extra="sql")
    state = sa.Table(
        f"{table_prefix}ratelimit_state",
        metadata,
        sa.Column("rl_key", sa.String(300), primary_key=True),
        sa.Column("state", sa.LargeBinary, nullable=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False, index=True),
    )
    bans = sa.Table(
        f"{table_prefix}ratelimit_bans",
        metadata,
        sa.Column("rl_key", sa.String(300), primary_key=True),
        sa.Column("until_us", sa.BigInteger, nullable=False),
        sa.Column("offenses", sa.Integer, nullable=False),
        sa.Column("keep_until_us", sa.BigInteger, nullable=False, index=True),
        sa.Column("manual", sa.Boolean, nullable=False),
        sa.Column("violations", sa.Text, nullable=True),
    )
    return state, bans


def drop_tables(engine: Any, table_prefix: str = DEFAULT_TABLE_PREFIX) -> None:
    """Drop the rate-limiter tables (tests and uninstall)."""
    sa = require("sqlalchemy", extra="sql")
    md = sa.MetaData()
    build_tables(md, table_prefix)
    md.drop_all(engine, checkfirst=True)


def encode_state(state: Any) -> bytes:
    """Compact bytes for a state: integers as text, a sliding log as packed int64 pairs."""
    if isinstance(state, SlidingLog):
        flat = array("q")
        for ts, cost in state.entries():
            flat.append(ts)
            flat.append(cost)
        return b"l" + flat.tobytes()
    if state and isinstance(state[0], tuple):
        return b"c" + ";".join(f"{e} {lease} {c}" for e, lease, c in state).encode()
    if not state:
        return b"c"
    return b"t" + " ".join(str(int(x)) for x in state).encode()


def decode_state(raw: bytes | None) -> Any:
    """Inverse of :func:`encode_state`."""
    if raw is None:
        return None
    raw = bytes(raw)
    kind, body = raw[:1], raw[1:]
    if kind == b"t":
        return tuple(int(x) for x in body.split())
    if kind == b"l":
        flat = array("q")
        flat.frombytes(body)
        return SlidingLog.from_entries(list(zip(flat[::2], flat[1::2], strict=True)))
    if not body:
        return ()
    leases = []
    for item in body.decode().split(";"):
        e, lease, c = item.split(" ")
        leases.append((int(e), lease, int(c)))
    return tuple(leases)


def _is_sqlite_file(engine: Any) -> bool:
    """True for a SQLite database file over the standard driver (a new connection sees it)."""
    url = engine.url
    database = url.database or ""
    return (
        engine.dialect.driver == "pysqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
        and url.query.get("mode") != "memory"
        and type(engine.pool).__name__ in ("QueuePool", "NullPool")
    )


class SqlBackend:
    """Rate-limit state in two SQL tables, over an SQLAlchemy engine."""

    server_time = False

    def __init__(
        self,
        engine: Any,
        *,
        prefix: str = "rl",
        table_prefix: str | None = None,
        owns_engine: bool = False,
        busy_timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        sa = require("sqlalchemy", extra="sql", purpose="the SQL rate limiter")
        self.engine = engine
        self.dialect: str = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigurationError(
                f"SQL rate limiting supports sqlite and postgresql, not {self.dialect!r}"
            )
        self.name = self.dialect
        # the engine-level prefix names the tables; keys need none (the tables are ours)
        self.table_prefix = (
            table_prefix
            if table_prefix is not None
            else (DEFAULT_TABLE_PREFIX if prefix == "rl" else prefix)
        )
        self._owns = owns_engine
        #: how long a decision waits for a SQLite write lock on the backend's own connections
        self.busy_timeout_ms = round(
            effective(busy_timeout, None, DEFAULT_SQLITE_BUSY_TIMEOUT) * 1000
        )
        self._owner: Any = None
        self._commits = 0
        self._lock = threading.Lock()
        md = sa.MetaData()
        self._state_t, self._bans_t = build_tables(md, self.table_prefix)
        try:
            md.create_all(engine, checkfirst=True)
        except sa.exc.SQLAlchemyError as exc:
            raise self._wrap(exc, "create tables") from exc
        self._sql = self._statements()
        self._in_cache: dict[tuple[str, int], str] = {}
        #: per-thread DB-API connections for decisions (SQLite files only), see _raw()
        self._raw_ok = self.dialect == "sqlite" and _is_sqlite_file(engine)
        self._local = threading.local()
        self._detached: list[Any] = []
        #: the limiter's own PostgreSQL connections for decisions (see ``_pg``)
        self._pg: Any = None
        if self.dialect == "postgresql":
            from cognitionos.ratelimit._pg import PgChannels

            self._pg = PgChannels(
                engine,
                timeout=effective(busy_timeout, None, DEFAULT_POSTGRES_TIMEOUT),
                connect_timeout=effective(connect_timeout, None, DEFAULT_CONNECT_TIMEOUT),
            )
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: drop the parent's connections unclosed (see ``cognitionos._fork``).

        The engine's pool is emptied without closing (``dispose(close=False)``) unless it is
        a private in-memory SQLite, whose one connection is the database itself.
        """
        self._lock = threading.Lock()
        self._local = threading.local()
        self._detached = []
        if self._pg is not None:
            self._pg.forget()
        if self.dialect == "postgresql" or self._raw_ok:
            self.engine.dispose(close=False)

    def _statements(self) -> dict[str, str]:
        st, bt = self._state_t.name, self._bans_t.name
        p = "?" if self.dialect == "sqlite" else "%s"
        lock = "" if self.dialect == "sqlite" else " FOR UPDATE"
        return {
            "ensure_state": f"INSERT INTO {st} (rl_key, state, expires_at) VALUES ({p}, NULL, 0) "
            "ON CONFLICT (rl_key) DO NOTHING",
            "select_state": f"SELECT rl_key, state, expires_at FROM {st} WHERE rl_key IN ({{in}}) "
            f"ORDER BY rl_key{lock}",
            "update_state": f"UPDATE {st} SET state = {p}, expires_at = {p} WHERE rl_key = {p}",
            "ensure_ban": f"INSERT INTO {bt} (rl_key, until_us, offenses, keep_until_us, manual) "
            f"VALUES ({p}, 0, 0, 0, {'0' if self.dialect == 'sqlite' else 'false'}) "
            "ON CONFLICT (rl_key) DO NOTHING",
            "select_bans": f"SELECT rl_key, until_us, offenses, keep_until_us, manual, violations "
            f"FROM {bt} WHERE rl_key IN ({{in}}) ORDER BY rl_key",
            "update_ban": f"UPDATE {bt} SET until_us = {p}, offenses = {p}, keep_until_us = {p}, "
            f"manual = {p}, violations = {p} WHERE rl_key = {p}",
            "update_violations": f"UPDATE {bt} SET violations = {p} WHERE rl_key = {p}",
            "upsert_ban": f"INSERT INTO {bt} (rl_key, until_us, offenses, keep_until_us, manual, "
            f"violations) VALUES ({p}, {p}, {p}, {p}, {p}, NULL) "
            "ON CONFLICT (rl_key) DO UPDATE SET "
            "until_us = excluded.until_us, offenses = excluded.offenses, "
            "keep_until_us = excluded.keep_until_us, manual = excluded.manual, violations = NULL",
            "delete_ban": f"DELETE FROM {bt} WHERE rl_key = {p}",
            "list_bans": f"SELECT rl_key, until_us, offenses, keep_until_us, manual FROM {bt} "
            f"WHERE until_us > {p} ORDER BY rl_key",
            "delete_state": f"DELETE FROM {st} WHERE rl_key = {p}",
            "cleanup_state": f"DELETE FROM {st} WHERE expires_at <= {p}",
            "cleanup_bans": f"DELETE FROM {bt} WHERE keep_until_us <= {p} AND until_us <= {p} "
            "AND violations IS NULL",
        }

    def _in(self, name: str, n: int) -> str:
        text = self._in_cache.get((name, n))
        if text is None:
            p = "?" if self.dialect == "sqlite" else "%s"
            text = self._sql[name].replace("{in}", ", ".join([p] * n))
            if len(self._in_cache) < 256:
                self._in_cache[(name, n)] = text
        return text

    def _wrap(self, exc: Exception, what: str) -> StorageError:
        sa_exc = require("sqlalchemy.exc")
        kind = BackendUnavailable if isinstance(exc, sa_exc.OperationalError) else StorageError
        cause = getattr(exc, "orig", None) or exc
        return kind(f"{self.dialect} rate limiter: {what} failed: {cause}")

    @contextmanager
    def _tx(self, what: str) -> Iterator[Any]:
        sa_exc = require("sqlalchemy.exc")
        dbapi = self.engine.dialect.dbapi
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise self._wrap(exc, what) from exc
        except dbapi.Error as exc:  # raised by the raw cursor of the hot path
            kind = BackendUnavailable if isinstance(exc, dbapi.OperationalError) else StorageError
            raise kind(f"{self.dialect} rate limiter: {what} failed: {exc}") from exc

    def storage_key(self, spec: Spec, key: str) -> str:
        """``<ident>|<encoded key>``."""
        return f"{spec.ident}|{encode_key(key)}"

    def _raw(self) -> Any:
        """This thread's own DB-API connection (a SQLite file only; see the module docstring).

        It is checked out of the engine's pool once and detached, so it was set up by the
        engine's connect hooks (WAL, busy timeout) and never counts against the pool.
        """
        local = self._local
        pid = os.getpid()
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == pid:
            return conn
        fairy = self.engine.raw_connection()
        fairy.detach()
        conn = fairy.dbapi_connection
        conn.isolation_level = None  # autocommit: the transaction is our BEGIN IMMEDIATE
        # the store waits 30 s for a lock; a decision waits at most the limiter's timeout,
        # then on_backend_error decides
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
        local.conn, local.pid = conn, pid
        with self._lock:
            self._detached.append(fairy)
        return conn

    def _run_raw(
        self, reqs: list[Request], now: int, commit: bool, policy: BanPolicy | None
    ) -> Result:
        dbapi = self.engine.dialect.dbapi
        try:
            conn = self._raw()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if commit else "BEGIN")
            try:
                result = self._decide(cur, reqs, now, commit, policy)
                cur.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            finally:
                cur.close()
        except dbapi.Error as exc:
            kind = BackendUnavailable if isinstance(exc, dbapi.OperationalError) else StorageError
            raise kind(f"{self.dialect} rate limiter: decision failed: {exc}") from exc
        if commit:
            self._maybe_cleanup(now)
        return result

    def run(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """Decide ``reqs`` in one transaction."""
        assert now is not None
        if self._raw_ok:
            return self._run_raw(reqs, now, commit, policy)
        if self._pg is not None:
            return self._run_pg(reqs, now, commit, policy)
        with self._tx("decision") as conn:
            # the DB-API cursor directly: SQLAlchemy's per-statement overhead would be most
            # of a decision; the transaction (BEGIN IMMEDIATE on SQLite) stays SQLAlchemy's
            cur = conn.connection.dbapi_connection.cursor()
            try:
                result = self._decide(cur, reqs, now, commit, policy)
            finally:
                cur.close()
        if commit:
            self._maybe_cleanup(now)
        return result

    def _run_pg(
        self, reqs: list[Request], now: int, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """One decision on one of the limiter's own PostgreSQL connections, bounded in time."""
        dbapi = self.engine.dialect.loaded_dbapi
        pg = self._pg
        for attempt in (1, 2):
            try:
                conn, reused = pg.get()
            except dbapi.Error as exc:
                raise BackendUnavailable(
                    f"postgresql rate limiter: connecting failed: {exc}".strip()
                ) from exc
            watchdog = pg.watchdog
            committing = cut = False
            try:
                with watchdog.guard(conn.fileno()) as token:
                    try:
                        cur = conn.cursor()
                        try:
                            result = self._decide(cur, reqs, now, commit, policy)
                        finally:
                            cur.close()
                        committing = True
                        conn.commit()
                    finally:
                        cut = watchdog.was_cut(token)
            except dbapi.Error as exc:
                healthy = False
                if not cut:
                    try:
                        conn.rollback()
                        healthy = True
                    except dbapi.Error:
                        pass
                if healthy:
                    pg.put(conn)  # a statement error or a server-side timeout: still usable
                else:
                    pg.discard(conn)
                    if attempt == 1 and reused and not committing and not cut:
                        continue  # an idle connection went stale: nothing was applied, retry
                if cut:
                    raise BackendUnavailable(
                        f"postgresql rate limiter: no answer within {watchdog.seconds:g} s "
                        "(the connection was closed)"
                    ) from exc
                unavailable = isinstance(exc, dbapi.OperationalError)
                kind = BackendUnavailable if unavailable else StorageError
                raise kind(f"postgresql rate limiter: decision failed: {exc}") from exc
            except BaseException:
                pg.discard(conn)
                raise
            pg.put(conn)
            break
        if commit:
            self._maybe_cleanup(now)
        return result

    def _decide(
        self, cur: Any, reqs: list[Request], now: int, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """The statements of one decision, inside the caller's transaction."""
        sql = self._sql
        # ban rows are keyed by the encoded caller key, like the state rows: a raw key
        # (NUL, surrogates, 1 MB) would fail the query, and with it every caller's decision
        if len(reqs) == 1:
            skeys = [reqs[0].skey]
            raw_of = {encode_key(reqs[0].key): reqs[0].key}
        else:
            skeys = sorted({r.skey for r in reqs})
            raw_of = {encode_key(k): k for k in {r.key for r in reqs}}
        keys = sorted(raw_of)
        if commit:
            cur.executemany(sql["ensure_state"], [(k,) for k in skeys])
            if policy is not None:
                cur.executemany(sql["ensure_ban"], [(k,) for k in keys])
        cur.execute(self._in("select_state", len(skeys)), tuple(skeys))
        states = {
            k: decode_state(raw) for k, raw, exp in cur.fetchall() if raw is not None and exp > now
        }
        cur.execute(
            self._in("select_bans", len(keys))
            + (" FOR UPDATE" if commit and policy and self.dialect == "postgresql" else ""),
            tuple(keys),
        )
        ban_rows = cur.fetchall()
        bans = {
            raw_of[k]: BanState(int(u), int(o), int(kp), bool(m))
            for k, u, o, kp, m, _ in ban_rows
            if kp > now or u > now
        }
        violations = {raw_of[k]: tuple(int(t) for t in v.split()) for k, *_, v in ban_rows if v}
        result = evaluate(
            reqs, states, now, commit=commit, policy=policy, bans=bans, violations=violations
        )
        if result.states:
            cur.executemany(
                sql["update_state"],
                [(encode_state(s), now + ttl, k) for k, (s, ttl) in result.states.items()],
            )
        for key, ban in result.bans.items():
            cur.execute(
                sql["update_ban"],
                (ban.until, ban.offenses, ban.keep_until, ban.manual, None, encode_key(key)),
            )
        for key, times in result.violations.items():
            if key not in result.bans:
                cur.execute(
                    sql["update_violations"],
                    (" ".join(map(str, times)) if times else None, encode_key(key)),
                )
        return result

    def _maybe_cleanup(self, now: int) -> None:
        with self._lock:
            self._commits += 1
            due = self._commits % _CLEANUP_EVERY == 0
        if due:
            with self._tx("cleanup") as conn:
                conn.exec_driver_sql(self._sql["cleanup_state"], (now,))
                conn.exec_driver_sql(self._sql["cleanup_bans"], (now, now))

    def release(self, spec: Spec, key: str, lease: str, now: int) -> bool:
        """Return a concurrency lease."""
        skey = self.storage_key(spec, key)
        with self._tx("release") as conn:
            rows = conn.exec_driver_sql(self._in("select_state", 1), (skey,)).all()
            if not rows or rows[0][1] is None:
                return False
            live, kept = concurrency_release(decode_state(rows[0][1]), now, lease)
            expires = kept[-1][0] if kept else 0
            conn.exec_driver_sql(self._sql["update_state"], (encode_state(kept), expires, skey))
            return live

    def reset(self, skeys: list[str]) -> None:
        """Delete the state rows of these keys."""
        with self._tx("reset") as conn:
            conn.exec_driver_sql(self._sql["delete_state"], [(k,) for k in skeys])

    def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``."""
        with self._tx("get ban") as conn:
            rows = conn.exec_driver_sql(self._in("select_bans", 1), (encode_key(key),)).all()
        if not rows or (rows[0][1] == 0 and rows[0][3] == 0):
            return None
        _, u, o, kp, m, _ = rows[0]
        return BanState(int(u), int(o), int(kp), bool(m))

    def set_ban(self, key: str, ban: BanState | None, now: int) -> None:
        """Write or delete a ban record (and forget violations)."""
        stored = encode_key(key)
        with self._tx("ban") as conn:
            if ban is None:
                conn.exec_driver_sql(self._sql["delete_ban"], (stored,))
            else:
                conn.exec_driver_sql(
                    self._sql["upsert_ban"],
                    (stored, ban.until, ban.offenses, ban.keep_until, ban.manual),
                )

    def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Bans in force."""
        with self._tx("list bans") as conn:
            rows = conn.exec_driver_sql(self._sql["list_bans"], (now,)).all()
        return [
            (decode_key(k), BanState(int(u), int(o), int(kp), bool(m))) for k, u, o, kp, m in rows
        ]

    def time_us(self, clock_now: int) -> int:
        """The decision time: the limiter's clock."""
        return clock_now

    def close(self) -> None:
        """Close this backend's own connections, and the store or engine if it opened them."""
        with self._lock:
            detached, self._detached = self._detached, []
        self._local = threading.local()
        if self._pg is not None:
            self._pg.close()
        for fairy in detached:
            with suppress(Exception):  # made in another thread or process: let it go
                fairy.close()
        if self._owner is not None:
            self._owner.close()
        elif self._owns:
            self.engine.dispose()


def sql_backend_from_url(
    url: str,
    *,
    prefix: str,
    busy_timeout: float | None = None,
    connect_timeout: float | None = None,
) -> SqlBackend:
    """Open ``url`` with :func:`cognitionos.storage.open_store` and use its engine."""
    from cognitionos.storage import open_store

    store = open_store(url)
    try:
        backend = SqlBackend(
            store.engine,
            prefix=prefix,
            busy_timeout=busy_timeout,
            connect_timeout=connect_timeout,
        )
    except StorageError:
        store.close()
        raise
    backend._owner = store
    return backend
