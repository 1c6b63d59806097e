"""Pluggable storage, chosen by URL.

==========================================  ==============================================
``memory://`` (``?max_keys=N``)             in-process; lock-protected; lazy TTL expiry; LRU cap
``sqlite:///path.db``, ``sqlite://``        SQLAlchemy Core on SQLite (WAL); the embedded default
``postgresql+psycopg://user@host/db``       SQLAlchemy Core on PostgreSQL; many processes and hosts
``redis://host:6379/0``, ``rediss://…``     redis-py with atomic Lua scripts; shared hot state
``redis+cluster://h1:7000,h2:7000/``        redis-py's RedisCluster; keys of a script share a slot
==========================================  ==============================================

Third-party backends register a factory ``(url: str, **options) -> store``
under the entry-point group ``cognitionos.storage``, named by URL scheme;
entry points are only looked at when a scheme is not built in.

    store = open_store("sqlite:///app.db")
    version = store.set("greeting", b"hello", ttl=60)
    store.incr("hits:/home")
"""

from __future__ import annotations

from cognitionos.storage._open import (
    BUILTIN_SCHEMES,
    ENTRY_POINT_GROUP,
    open_async_store,
    open_store,
)
from cognitionos.storage._types import (
    MAX_KEY_LENGTH,
    AsyncStore,
    Capability,
    Change,
    ChangeFeed,
    Counters,
    Entry,
    Event,
    EventLog,
    KeyValue,
    Store,
    Subscription,
)
from cognitionos.storage._url import StoreURL, mask_url, parse_url

__all__ = [
    "BUILTIN_SCHEMES",
    "ENTRY_POINT_GROUP",
    "MAX_KEY_LENGTH",
    "AsyncStore",
    "Capability",
    "Change",
    "ChangeFeed",
    "Counters",
    "Entry",
    "Event",
    "EventLog",
    "KeyValue",
    "Store",
    "StoreURL",
    "Subscription",
    "mask_url",
    "open_async_store",
    "open_store",
    "parse_url",
]
