"""open_store / open_async_store: pick a backend from a URL."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cognitionos.clock import Clock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.storage._url import CLUSTER_SCHEMES, StoreURL, parse_url

__all__ = [
    "BUILTIN_SCHEMES",
    "ENTRY_POINT_GROUP",
    "check_url",
    "open_async_store",
    "open_store",
    "sqlite_file",
]

#: URL schemes handled without entry points (``postgresql+<driver>`` is accepted too)
BUILTIN_SCHEMES = (
    "memory",
    "sqlite",
    "postgresql",
    "postgres",
    "redis",
    "rediss",
    "redis+cluster",
    "rediss+cluster",
)
#: entry-point group third-party backends register under, one entry per URL scheme
ENTRY_POINT_GROUP = "cognitionos.storage"


def _plugin(scheme: str) -> Any:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == scheme:
            return ep.load()
    return None


def _unknown(url: StoreURL) -> ConfigurationError:
    from importlib.metadata import entry_points

    plugins = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    known = ", ".join([*BUILTIN_SCHEMES[:3], "postgresql+<driver>", *BUILTIN_SCHEMES[4:], *plugins])
    return ConfigurationError(
        f"unknown storage scheme {url.scheme!r} in {url.masked!r}; known schemes: {known}"
    )


def _memory_options(url: StoreURL) -> dict[str, int]:
    opts: dict[str, int] = {}
    for name in ("max_keys", "max_events_per_stream"):
        if name in url.query:
            try:
                opts[name] = int(url.query[name])
            except ValueError:
                raise ConfigurationError(
                    f"malformed storage URL {url.masked!r}: {name} must be an integer"
                ) from None
    unknown = set(url.query) - {"max_keys", "max_events_per_stream"}
    if unknown:
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: unknown option(s) {sorted(unknown)} for memory://"
        )
    if url.host or url.path not in ("", "/"):
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: memory:// takes no host or path"
        )
    return opts


#: query options a ``sqlite://`` URL may carry: the sqlite3 driver's and SQLite URI parameters
SQLITE_OPTIONS = frozenset(
    {"uri", "mode", "cache", "vfs", "immutable", "nolock", "psow", "timeout"}
    | {"check_same_thread", "isolation_level", "detect_types", "cached_statements"}
)
#: libpq connection parameters (psycopg passes the query string to libpq, which rejects others)
POSTGRES_OPTIONS = frozenset(
    {"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "require_auth"}
    | {"channel_binding", "connect_timeout", "client_encoding", "options", "application_name"}
    | {"fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval"}
    | {"keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode"}
    | {"requiressl", "sslcompression", "sslcert", "sslkey", "sslpassword", "sslcertmode"}
    | {"sslrootcert", "sslcrl", "sslcrldir", "sslsni", "sslnegotiation", "requirepeer"}
    | {"ssl_min_protocol_version", "ssl_max_protocol_version", "krbsrvname", "gsslib"}
    | {"gssdelegation", "service", "target_session_attrs", "load_balance_hosts"}
)
#: our own options on a Redis URL, beside redis-py's (``prefix`` namespaces every key)
REDIS_OWN_OPTIONS = frozenset({"prefix"})
#: redis-py options given as plain strings (the typed ones come from redis-py itself)
_REDIS_STRING_OPTIONS = frozenset({"client_name", "lib_name", "lib_version", "username"})
_REDISS_OPTIONS = frozenset(
    {"ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_path", "ssl_certfile", "ssl_keyfile"}
    | {"ssl_password", "ssl_ciphers"}
)


def _refuse_unknown(url: StoreURL, allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(url.query) - allowed)
    if unknown:
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: unknown option(s) {unknown} for {what}; "
            f"known: {', '.join(sorted(allowed))}"
        )


def _check_sqlite(url: StoreURL) -> None:
    if url.host or url.port:
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: sqlite URLs take no host "
            f"(got {url.host!r}); write sqlite:///relative/path.db, sqlite:////absolute/path.db "
            "or sqlite:// for an in-memory database"
        )
    _refuse_unknown(url, SQLITE_OPTIONS, "sqlite://")


def _check_postgres(url: StoreURL) -> None:
    database = url.path.lstrip("/")
    if not database and not url.query.get("dbname"):
        # without one, libpq connects to the user's default database (often ``postgres``)
        # and the tables would silently be created there
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: no database name; "
            "write postgresql+psycopg://user@host:5432/DATABASE"
        )
    if "/" in database:
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: database name {database!r} contains '/'"
        )
    _refuse_unknown(url, POSTGRES_OPTIONS, "postgresql://")


def _check_redis(url: StoreURL) -> None:
    if url.scheme not in ("redis", "rediss", *CLUSTER_SCHEMES):
        raise _unknown(url)
    db = url.path.strip("/")
    if url.is_cluster and db not in ("", "0"):
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: a Redis Cluster has only database 0, "
            f"got {db!r}; write {url.scheme}://host:port,host:port/"
        )
    if db and not (db.isascii() and db.isdigit()):
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: the Redis database must be a "
            f"non-negative integer after the host (e.g. /0), got {db!r}"
        )
    parsers: dict[str, Callable[[str], Any]] = {}
    try:
        from redis.connection import URL_QUERY_ARGUMENT_PARSERS

        parsers = dict(URL_QUERY_ARGUMENT_PARSERS)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - redis is a core dependency
        pass
    allowed = REDIS_OWN_OPTIONS | _REDIS_STRING_OPTIONS | frozenset(parsers)
    if url.base_scheme == "rediss":
        allowed |= _REDISS_OPTIONS
    _refuse_unknown(url, allowed, f"{url.base_scheme}://")
    for name, value in url.query.items():
        if name in parsers:
            try:
                parsers[name](value)
            except (TypeError, ValueError, OverflowError):
                raise ConfigurationError(
                    f"malformed storage URL {url.masked!r}: invalid value {value!r} for {name}"
                ) from None
    if "db" in url.query and not url.query["db"].isdigit():
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: db must be a non-negative integer, "
            f"got {url.query['db']!r}"
        )


def sqlite_file(url: StoreURL) -> str | None:
    """The absolute path a ``sqlite:///`` URL names (relative to the working directory), or None."""
    relative = url.path[1:] if url.path.startswith("/") else url.path
    if url.base_scheme != "sqlite" or relative in ("", ":memory:") or relative.startswith("file:"):
        return None
    from urllib.parse import unquote

    return os.path.abspath(unquote(relative))


def _with_sqlite_path(url: StoreURL, exc: StorageError) -> StorageError:
    """``exc`` with the absolute file path added when a relative SQLite path would not open."""
    path = sqlite_file(url)
    relative = url.path[1:]
    if path is None or relative.startswith("/") or path in str(exc):
        return exc
    return type(exc)(f"{exc} (tried {path!r}, relative to the working directory {os.getcwd()!r})")


def check_url(url: str | StoreURL) -> StoreURL:
    """Parse ``url`` and check the parts its built-in backend would otherwise choke on.

    Unknown query options, a Redis database that is not an integer, a host on a ``sqlite``
    URL and a PostgreSQL URL without a database raise ConfigurationError naming the URL
    (password masked). Schemes of third-party backends are only parsed.

        check_url("redis://localhost:6379/0?prefix=app:")
    """
    parsed = url if isinstance(url, StoreURL) else parse_url(url)
    base = parsed.base_scheme
    if base == "memory":
        _memory_options(parsed)
    elif base == "sqlite":
        _check_sqlite(parsed)
    elif base in ("postgresql", "postgres"):
        _check_postgres(parsed)
    elif base in ("redis", "rediss"):
        _check_redis(parsed)
    return parsed


def open_store(url: str, *, clock: Clock | None = None, **options: Any) -> Any:
    """Open the backend named by ``url``.

    ``clock`` drives TTLs and event timestamps where the backend keeps time in
    this process (memory, SQL); Redis always uses the server's clock. Unknown
    schemes raise ConfigurationError listing the known ones; an unreachable
    backend raises BackendUnavailable with the password masked.

        store = open_store("redis://localhost:6379/0")
    """
    parsed = check_url(url)
    base = parsed.base_scheme
    if base == "memory":
        from cognitionos.storage._memory import MemoryStore

        return MemoryStore(clock=clock, **{**_memory_options(parsed), **options})
    if base in ("sqlite", "postgresql", "postgres"):
        from cognitionos.storage._sql import SQLStore

        try:
            return SQLStore(parsed, clock=clock, **options)
        except StorageError as exc:
            raise _with_sqlite_path(parsed, exc) from exc.__cause__
    if base in ("redis", "rediss"):
        from cognitionos.storage._redis import RedisStore

        return RedisStore(parsed, **options)
    factory = _plugin(parsed.scheme)
    if factory is None:
        raise _unknown(parsed)
    return factory(url, clock=clock, **options)


def open_async_store(url: str, *, clock: Clock | None = None, **options: Any) -> Any:
    """Async twin of :func:`open_store`: the same capabilities as coroutines.

    Redis uses ``redis.asyncio``; memory calls the sync store directly (it never
    blocks on I/O); SQL runs each operation in a worker thread (anyio).

        store = open_async_store("redis://localhost:6379/0")
        await store.incr("hits")
    """
    parsed = check_url(url)
    if parsed.base_scheme in ("redis", "rediss"):
        from cognitionos.storage._redis_async import AsyncRedisStore

        return AsyncRedisStore(parsed, **options)
    from cognitionos.storage._async import AsyncStoreAdapter

    sync = open_store(url, clock=clock, **options)
    return AsyncStoreAdapter(sync, offload=parsed.base_scheme != "memory")
