"""Value objects and capability protocols shared by every storage backend.

A backend is one object implementing some of four small capabilities:

=================  =========================================================
``kv``             :class:`KeyValue` - bytes values with TTL and compare-and-set on a version
``counters``       :class:`Counters` - atomic integer increments with TTL set on first write
``event_log``      :class:`EventLog` - append-only streams with ordered range reads
``change_feed``    :class:`ChangeFeed` - callbacks on changes to keys under a prefix
=================  =========================================================

Engines check what they need when constructed (:meth:`Store.require`) and get
:class:`~cognitionos.errors.UnsupportedCapability` naming the backend and the
capability otherwise.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "AsyncStore",
    "Capability",
    "Change",
    "ChangeFeed",
    "Counters",
    "Entry",
    "Event",
    "EventLog",
    "KeyValue",
    "MAX_KEY_LENGTH",
    "Store",
    "Subscription",
]

#: Keys longer than this are rejected with ConfigurationError (engines hash long keys first).
MAX_KEY_LENGTH = 512


class Capability(enum.StrEnum):
    """What a backend can do. Compare with ``in store.capabilities``."""

    KV = "kv"
    COUNTERS = "counters"
    EVENT_LOG = "event_log"
    CHANGE_FEED = "change_feed"


@attrs.frozen(slots=True)
class Entry:
    """A key-value entry: the bytes, their version (1 on creation, +1 per write) and expiry."""

    key: str
    value: bytes
    version: int
    expires_at_ns: int | None = None


@attrs.frozen(slots=True)
class Event:
    """One event of an append-only stream. ``seq`` is 1, 2, 3, ... per stream, in commit order."""

    stream: str
    seq: int
    timestamp_ns: int
    payload: bytes


@attrs.frozen(slots=True)
class Change:
    """A key changed: written (``version`` is the new version) or ``deleted``."""

    key: str
    version: int
    deleted: bool = False


@runtime_checkable
class Subscription(Protocol):
    """Handle returned by :meth:`ChangeFeed.subscribe`; ``close()`` stops delivery."""

    def close(self) -> None:
        """Stop delivering changes to the callback. Idempotent."""
        ...


class KeyValue(Protocol):
    """Bytes values with optional TTL and optimistic concurrency on a per-key version."""

    def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or ``None`` if absent or expired."""
        ...

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        ...

    def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0: the key must not exist).

        Returns the new version, or ``None`` when another writer got there first.
        """
        ...

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        ...

    def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries whose key starts with ``prefix``, ordered by key, at most ``limit``."""
        ...


class Counters(Protocol):
    """Atomic integer counters; the TTL starts at the first increment and is not extended."""

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` (may be negative) and return the new value."""
        ...

    def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        ...

    def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        ...


class EventLog(Protocol):
    """Append-only streams of opaque payloads, read back in order."""

    def append(self, stream: str, payload: bytes) -> Event:
        """Append one event; returns it with its sequence number and timestamp."""
        ...

    def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append several events atomically (all or none), in order."""
        ...

    def read(
        self,
        stream: str,
        *,
        after: int = 0,
        limit: int = 1000,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` and ``since_ns <= timestamp_ns < until_ns``, oldest first."""
        ...


class ChangeFeed(Protocol):
    """Notification of key-value changes, across processes where the backend allows."""

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> Subscription:
        """Call ``callback`` for every change of a key starting with ``prefix``.

        The callback runs on a backend thread (or inline, for the memory backend);
        keep it short and never raise from it.
        """
        ...


class Store(Protocol):
    """A storage backend as returned by :func:`cognitionos.storage.open_store`."""

    #: short backend name: "memory", "sqlite", "postgresql", "redis", ...
    backend: str
    capabilities: frozenset[Capability]

    def require(self, *capabilities: Capability | str, needed_by: str | None = None) -> None:
        """Raise UnsupportedCapability unless every capability is offered."""
        ...

    def ping(self) -> float:
        """One round trip to the backend; returns its duration in seconds."""
        ...

    def close(self) -> None:
        """Release connections and stop feed threads. Idempotent."""
        ...


class AsyncStore(Protocol):
    """The async twin: same method names as the sync capabilities, as coroutines."""

    backend: str
    capabilities: frozenset[Capability]

    def require(self, *capabilities: Capability | str, needed_by: str | None = None) -> None:
        """Raise UnsupportedCapability unless every capability is offered."""
        ...

    async def ping(self) -> float:
        """One round trip to the backend; returns its duration in seconds."""
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
        ...


def _check_capabilities(
    backend: str,
    offered: Iterable[Capability],
    wanted: Iterable[Capability | str],
    needed_by: str | None,
) -> None:
    have = set(offered)
    for cap in wanted:
        c = Capability(cap)
        if c not in have:
            from cognitionos.errors import UnsupportedCapability

            raise UnsupportedCapability(backend, c.value, needed_by)
