"""Async facade over a sync store: direct calls for memory, a worker thread for SQL.

SQL drivers here are blocking; running each operation in anyio's thread pool
keeps the event loop free (SQLAlchemy's own asyncio layer does the same with
greenlets). The memory store never blocks on I/O, so it is called inline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from cognitionos.storage._types import Capability, Change, Entry, Event, Subscription

__all__ = ["AsyncStoreAdapter"]


class AsyncStoreAdapter:
    """The async twin of a sync store: same methods, as coroutines.

    ``store = open_async_store("sqlite:///app.db"); await store.set("k", b"v")``
    """

    def __init__(self, sync_store: Any, *, offload: bool) -> None:
        self.sync = sync_store
        self.backend: str = sync_store.backend
        self.capabilities: frozenset[Capability] = sync_store.capabilities
        self._offload = offload

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._offload:
            return fn(*args, **kwargs)
        import anyio.to_thread

        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))

    def require(self, *capabilities: Capability | str, needed_by: str | None = None) -> None:
        """Raise UnsupportedCapability unless every capability is offered."""
        self.sync.require(*capabilities, needed_by=needed_by)

    async def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or None."""
        result: Entry | None = await self._run(self.sync.get, key)
        return result

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        return int(await self._run(self.sync.set, key, value, ttl=ttl))

    async def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0 = absent)."""
        result: int | None = await self._run(
            self.sync.compare_and_set, key, value, version=version, ttl=ttl
        )
        return result

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        return bool(await self._run(self.sync.delete, key))

    async def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries under ``prefix``, ordered by key."""
        result: list[Entry] = await self._run(self.sync.scan, prefix, limit=limit)
        return result

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` atomically and return the new value."""
        return int(await self._run(self.sync.incr, key, amount, ttl=ttl))

    async def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        return int(await self._run(self.sync.get_counter, key))

    async def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        await self._run(self.sync.reset_counter, key)

    async def append(self, stream: str, payload: bytes) -> Event:
        """Append one event."""
        result: Event = await self._run(self.sync.append, stream, payload)
        return result

    async def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append events atomically, in order."""
        result: list[Event] = await self._run(self.sync.append_many, stream, payloads)
        return result

    async def read(
        self,
        stream: str,
        *,
        after: int = 0,
        limit: int = 1000,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` within the time bounds, oldest first."""
        result: list[Event] = await self._run(
            self.sync.read, stream, after=after, limit=limit, since_ns=since_ns, until_ns=until_ns
        )
        return result

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> Subscription:
        """Register a change callback (it runs on the backend's feed thread)."""
        result: Subscription = self.sync.subscribe(prefix, callback)
        return result

    async def ping(self) -> float:
        """One round trip to the backend, in seconds."""
        return float(await self._run(self.sync.ping))

    async def aclose(self) -> None:
        """Close the underlying store."""
        await self._run(self.sync.close)

    async def __aenter__(self) -> AsyncStoreAdapter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Async({self.sync!r})"
