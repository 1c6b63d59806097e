"""How the APM engine keeps fleet-wide state in a store: key layout and compare-and-set merges.

Keys start with a namespace (default ``apm``; one per application or tenant).
Every process merges its own part into a shared entry with a read / merge / compare-and-set
loop, so nothing is lost when many workers and hosts flush at once (any backend with the
``kv`` capability: memory, SQLite, PostgreSQL, Redis)::

    apm:lat:<start, 12 digits>:<length>:<route>  LatencySketch bytes (per time window)
    apm:err:<fingerprint>                        ErrorGroup as JSON
    apm:sql:<sha1 of normalized SQL, 20 hex>     slow-query aggregate as JSON (+ sketch)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cognitionos.errors import ConfigurationError, StorageError

__all__ = ["DEFAULT_NAMESPACE", "cas_update", "check_namespace", "open_kv", "prefix", "safe_key"]

DEFAULT_NAMESPACE = "apm"
_KINDS = {"latency": "lat", "errors": "err", "sql": "sql"}


def check_namespace(namespace: object) -> str:
    """A namespace is 1-64 characters without ``:`` (it prefixes every key)."""
    if not isinstance(namespace, str) or not 0 < len(namespace) <= 64 or ":" in namespace:
        raise ConfigurationError(
            f"namespace must be 1-64 characters without ':', got {namespace!r}"
        )
    return namespace


def prefix(namespace: str, kind: str) -> str:
    """The key prefix of one kind of entry (``latency``, ``errors``, ``sql``)."""
    return f"{check_namespace(namespace)}:{_KINDS[kind]}:"


_ATTEMPTS = 100


def open_kv(store: Any, needed_by: str) -> tuple[Any, bool]:
    """``(store, owned)`` from a URL or an open store; checks the ``kv`` capability."""
    owned = False
    if isinstance(store, str):
        from cognitionos.storage import open_store

        store = open_store(store)
        owned = True
    if not hasattr(store, "require") or not hasattr(store, "compare_and_set"):
        raise ConfigurationError(
            f"{needed_by} store must be a storage URL or a store from open_store(), "
            f"got {type(store).__name__}"
        )
    store.require("kv", needed_by=needed_by)
    return store, owned


def safe_key(prefix: str, name: str) -> str:
    """``prefix + name``, hashing ``name`` when the key would pass the store's key limit."""
    key = prefix + name
    if len(key) <= 400:
        return key
    return prefix + "#" + hashlib.sha1(name.encode("utf-8", "replace")).hexdigest()


def cas_update(
    store: Any, key: str, merge: Callable[[bytes | None], bytes], *, ttl: float | None = None
) -> bytes:
    """Merge into ``key`` with compare-and-set, retrying while other writers win."""
    for _ in range(_ATTEMPTS):
        entry = store.get(key)
        value = merge(entry.value if entry is not None else None)
        version = entry.version if entry is not None else 0
        if store.compare_and_set(key, value, version=version, ttl=ttl) is not None:
            return value
    raise StorageError(f"could not update {key!r}: {_ATTEMPTS} concurrent writers won in a row")
