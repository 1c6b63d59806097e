"""open_store / open_async_store: pick a backend from a URL."""

from __future__ import annotations

from typing import Any

from cognitionos.clock import Clock
from cognitionos.errors import ConfigurationError
from cognitionos.storage._url import StoreURL, parse_url

__all__ = ["BUILTIN_SCHEMES", "ENTRY_POINT_GROUP", "open_async_store", "open_store"]

#: URL schemes handled without entry points (``postgresql+<driver>`` is accepted too)
BUILTIN_SCHEMES = ("memory", "sqlite", "postgresql", "postgres", "redis", "rediss")
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
    known = ", ".join([*BUILTIN_SCHEMES[:3], "postgresql+<driver>", "redis", "rediss", *plugins])
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


def open_store(url: str, *, clock: Clock | None = None, **options: Any) -> Any:
    """Open the backend named by ``url``.

    ``clock`` drives TTLs and event timestamps where the backend keeps time in
    this process (memory, SQL); Redis always uses the server's clock. Unknown
    schemes raise ConfigurationError listing the known ones; an unreachable
    backend raises BackendUnavailable with the password masked.

        store = open_store("redis://localhost:6379/0")
    """
    parsed = parse_url(url)
    base = parsed.base_scheme
    if base == "memory":
        from cognitionos.storage._memory import MemoryStore

        return MemoryStore(clock=clock, **{**_memory_options(parsed), **options})
    if base in ("sqlite", "postgresql", "postgres"):
        from cognitionos.storage._sql import SQLStore

        return SQLStore(parsed, clock=clock, **options)
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
    parsed = parse_url(url)
    if parsed.base_scheme in ("redis", "rediss"):
        from cognitionos.storage._redis_async import AsyncRedisStore

        return AsyncRedisStore(parsed, **options)
    from cognitionos.storage._async import AsyncStoreAdapter

    sync = open_store(url, clock=clock, **options)
    return AsyncStoreAdapter(sync, offload=parsed.base_scheme != "memory")
