"""Key layout, Lua scripts and error mapping shared by the sync and async Redis stores.

Every key of one atomic operation shares a ``{hash tag}`` so the scripts run
unchanged on Redis Cluster: ``<prefix>kv:{<key>}``, ``<prefix>ctr:{<key>}``,
``<prefix>log:{<stream>}`` and ``<prefix>log:{<stream>}:seq``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Any

from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.storage._types import Entry, Event
from cognitionos.storage._url import StoreURL

__all__ = [
    "RedisLayout",
    "cluster_client",
    "cluster_kwargs",
    "is_unavailable",
    "lua_source",
    "redis_error",
    "redis_errors",
    "split_options",
]

_OPTIONS = ("prefix",)


@cache
def lua_source(name: str) -> tuple[str, str]:
    """(source, sha1) of a packaged Lua script ``cognitionos/storage/lua/<name>.lua``."""
    src = resources.files("cognitionos.storage").joinpath(f"lua/{name}.lua").read_text("utf-8")
    return src, hashlib.sha1(src.encode()).hexdigest()


def split_options(url: StoreURL) -> tuple[str, str]:
    """(URL for redis-py without our options, key prefix)."""
    prefix = url.query.get("prefix", "cos:")
    if "{" in prefix or "}" in prefix:
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: prefix may not contain braces"
        )
    raw = url.raw
    if "?" in raw:
        base, _, query = raw.partition("?")
        kept = [p for p in query.split("&") if p.split("=", 1)[0] not in _OPTIONS]
        raw = base + ("?" + "&".join(kept) if kept else "")
    return raw, prefix


def redis_error(exc: Exception, masked_url: str, what: str) -> StorageError:
    """Map a redis-py exception to StorageError / BackendUnavailable."""
    kind = BackendUnavailable if is_unavailable(exc) else StorageError
    return kind(f"redis store {masked_url}: {what} failed: {exc}")


def redis_errors() -> tuple[type[Exception], ...]:
    """What redis-py raises on failure: ``RedisError``, and cluster errors that are not one."""
    import redis.exceptions as rex

    return (rex.RedisError, rex.RedisClusterException)


def is_unavailable(exc: BaseException) -> bool:
    """A failure of reaching the data (down, timed out, refused, or a cluster mid-failover)
    rather than of the command itself."""
    import redis.exceptions as rex

    if isinstance(exc, rex.RedisClusterException) and exc.__cause__ is not None:
        return is_unavailable(exc.__cause__)  # e.g. "cannot be connected" from a refused seed
    return isinstance(
        exc,
        (
            rex.ConnectionError,
            rex.TimeoutError,
            rex.AuthenticationError,
            rex.ClusterDownError,  # CLUSTERDOWN / MASTERDOWN: slots unserved during an election
            rex.TryAgainError,
            rex.SlotNotCoveredError,
        ),
    )


class RedisLayout:
    """Builds the keys and decodes the replies of the Redis backends."""

    __slots__ = ("channel", "prefix")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.channel = prefix + "changes"

    def key(self, *parts: str) -> str:
        """A key under this store's prefix whose hash tag is the first part: ``cos:{a}:b``."""
        head, *rest = parts
        return self.prefix + "{" + head + "}" + "".join(":" + p for p in rest)

    def kv(self, key: str) -> str:
        return f"{self.prefix}kv:{{{key}}}"

    def ctr(self, key: str) -> str:
        return f"{self.prefix}ctr:{{{key}}}"

    def log(self, stream: str) -> tuple[str, str]:
        base = f"{self.prefix}log:{{{stream}}}"
        return base, base + ":seq"

    def kv_pattern(self, prefix: str) -> str:
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
        return f"{self.prefix}kv:{{{escaped}*"

    def logical_kv(self, redis_key: bytes | str) -> str:
        text = redis_key.decode() if isinstance(redis_key, bytes) else redis_key
        return text[len(self.prefix) + 4 : -1]

    @staticmethod
    def take_events(
        stream: str,
        batch: Any,
        out: list[Event],
        limit: int,
        since_ns: int | None,
        until_ns: int | None,
    ) -> int:
        """Decode one XRANGE reply into ``out`` (time-filtered, at most ``limit``); the last seq."""
        seq = 0
        for entry_id, fields in batch:
            seq = int(entry_id.split(b"-", 1)[0])
            ts = int(fields[b"t"])
            if (since_ns is not None and ts < since_ns) or (
                until_ns is not None and ts >= until_ns
            ):
                continue
            out.append(Event(stream, seq, ts, bytes(fields[b"p"])))
            if len(out) >= limit:
                break
        return seq

    @staticmethod
    def entry(key: str, reply: Any, now_ns: int | None = None) -> Entry | None:
        if not reply:
            return None
        value, version, pttl = reply
        expires = None
        if now_ns is not None and int(pttl) > 0:
            expires = now_ns + int(pttl) * 1_000_000
        return Entry(key, bytes(value), int(version), expires)


def ttl_ms(ttl: float | None) -> int:
    """Seconds to whole milliseconds for PEXPIRE (at least 1); 0 means no expiry."""
    from cognitionos.storage._base import ttl_to_ns

    ns = ttl_to_ns(ttl)
    return 0 if ns is None else max(1, -(-ns // 1_000_000))


def cluster_kwargs(url: StoreURL, redis_url: str, *, asynchronous: bool) -> dict[str, Any]:
    """Keyword arguments for redis-py's ``RedisCluster`` from a ``redis+cluster://`` URL.

    The URL's credentials and query options are parsed by redis-py itself (as for
    ``redis://``); ``startup_nodes`` lists every seed, and TLS (``rediss+cluster``)
    becomes ``ssl=True``. The seeds only bootstrap: the client discovers every node.
    """
    if asynchronous:
        from redis.asyncio.cluster import ClusterNode as AsyncNode
        from redis.asyncio.connection import SSLConnection as AsyncSSL
        from redis.asyncio.connection import parse_url as aparse

        node_cls: Any = AsyncNode
        ssl_cls: Any = AsyncSSL
        parse: Any = aparse
    else:
        from redis.cluster import ClusterNode
        from redis.connection import SSLConnection, parse_url

        node_cls, ssl_cls, parse = ClusterNode, SSLConnection, parse_url
    scheme = "rediss" if url.scheme.startswith("rediss") else "redis"
    _, _, rest = redis_url.partition("://")
    netloc, slash, tail = rest.partition("/")
    userinfo = netloc.rpartition("@")[0]
    host, port = url.seeds[0]
    single = f"{scheme}://{userinfo + '@' if userinfo else ''}{_netloc(host, port)}{slash}{tail}"
    try:
        kwargs = dict(parse(single))
    except ValueError as exc:
        raise ConfigurationError(f"malformed storage URL {url.masked!r}: {exc}") from None
    if kwargs.pop("db", 0):
        raise ConfigurationError(
            f"malformed storage URL {url.masked!r}: a Redis Cluster has only database 0"
        )
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    if kwargs.pop("connection_class", None) is ssl_cls:
        kwargs["ssl"] = True
    kwargs["startup_nodes"] = [node_cls(h, p) for h, p in url.seeds]
    return kwargs


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def cluster_client(
    url: StoreURL, redis_url: str, *, asynchronous: bool, reuse: Any = None, **options: Any
) -> Any:
    """A redis-py ``RedisCluster`` (sync, or ``redis.asyncio.cluster``) for a cluster URL.

    ``reuse``: an existing client of that class to build again in place. A forked child
    does this: redis.asyncio's cluster client has no reset of its own, and its nodes and
    locks belong to the parent's event loop; constructing it again on the same object gives
    it fresh ones while everything holding a reference to it (Lua scripts, engines) keeps
    working. The parent's connections are dropped unclosed.
    """
    kwargs = {**cluster_kwargs(url, redis_url, asynchronous=asynchronous), **options}
    if asynchronous:
        from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

        cls: Any = AsyncRedisCluster
    else:
        from redis.cluster import RedisCluster

        cls = RedisCluster
    try:
        if reuse is not None:
            cls.__init__(reuse, **kwargs)
            return reuse
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"malformed storage URL {url.masked!r}: {exc}") from None
