"""Redis backend (async): ``redis.asyncio`` running the same Lua scripts as the sync store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos._optional import require
from cognitionos.errors import ConfigurationError
from cognitionos.storage._base import (
    BaseStore,
    FeedSubscription,
    Subscribers,
    check_key,
    check_payload,
    decode_change,
)
from cognitionos.storage._redis_cluster import listen_cluster
from cognitionos.storage._redis_common import (
    RedisLayout,
    cluster_client,
    lua_source,
    redis_error,
    redis_errors,
    split_options,
    ttl_ms,
)
from cognitionos.storage._types import Capability, Change, Entry, Event
from cognitionos.storage._url import StoreURL, parse_url

__all__ = ["AsyncLuaScript", "AsyncRedisStore"]

log = logging.getLogger("cognitionos.storage.redis")


class AsyncLuaScript:
    """Async EVALSHA with NOSCRIPT reload: ``await script(keys=[...], args=[...])``."""

    __slots__ = ("client", "sha", "source")

    def __init__(self, client: Any, source: str, sha: str | None = None) -> None:
        import hashlib

        self.client = client
        self.source = source
        self.sha = sha or hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL with the source both runs and re-caches it; a SCRIPT FLUSH racing between a
            # SCRIPT LOAD and the retried EVALSHA can then no longer fail the call
            return await self.client.eval(self.source, len(keys), *keys, *args)


class AsyncRedisStore(BaseStore):
    """Async Redis store; the connection is made on first use (``await store.ping()`` to check)."""

    backend = "redis"
    capabilities = frozenset(Capability)

    def __init__(self, url: str | StoreURL, *, client: Any = None, **client_options: Any) -> None:
        self.url = url if isinstance(url, StoreURL) else parse_url(url)
        self._masked = self.url.masked
        redis_url, prefix = split_options(self.url)
        self.layout = RedisLayout(prefix)
        #: resets an owned cluster client in a forked child (asyncio cluster clients hold
        #: locks and node connections of the parent's event loop)
        self._reinit: Callable[[Any], Any] | None = None
        require("redis", purpose="Redis storage")
        import redis.asyncio as aredis

        try:
            if client is not None:
                self.client = client
            elif self.url.is_cluster:
                self.client = cluster_client(
                    self.url, redis_url, asynchronous=True, **client_options
                )
                url = self.url
                self._reinit = lambda client: cluster_client(
                    url, redis_url, asynchronous=True, reuse=client, **client_options
                )
            else:
                self.client = aredis.Redis.from_url(redis_url, **client_options)
        except ValueError as exc:
            raise ConfigurationError(f"malformed storage URL {self._masked!r}: {exc}") from None
        self.cluster = type(self.client).__name__ == "RedisCluster"
        self._scripts = {
            name: self.script(*lua_source(name))
            for name in ("kv_get", "kv_set", "kv_delete", "counter_incr", "log_append")
        }
        self._subs = Subscribers()
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: new connections (redis.asyncio's pool does not check the pid).

        The listener task belonged to the parent's event loop; the next :meth:`subscribe`
        in the child starts one on the child's loop.
        """
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None and hasattr(pool, "reset"):
            pool.reset()
        if self._reinit is not None:
            self._reinit(self.client)
        self._subs.after_fork()
        self._listener = None
        self._pubsub = None

    def script(self, source: str, sha: str | None = None) -> AsyncLuaScript:
        """Wrap a Lua script for EVALSHA with NOSCRIPT reload."""
        return AsyncLuaScript(self.client, source, sha)

    def key(self, *parts: str) -> str:
        """A namespaced key whose hash tag is ``parts[0]``."""
        return self.layout.key(*parts)

    @asynccontextmanager
    async def _errors(self, what: str) -> AsyncIterator[None]:
        import redis.exceptions as rex

        try:
            yield
        except redis_errors() as exc:
            raise redis_error(exc, self._masked, what) from exc
        except OSError as exc:
            raise redis_error(rex.ConnectionError(str(exc)), self._masked, what) from exc

    async def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or None."""
        check_key(key)
        async with self._errors("get"):
            reply = await self._scripts["kv_get"]([self.layout.kv(key)])
        return RedisLayout.entry(key, reply, time.time_ns())

    async def _write(self, key: str, value: bytes, ttl: float | None, expected: int) -> int | None:
        check_key(key)
        value = check_payload(value)
        args = [value, ttl_ms(ttl), expected, self.layout.channel, key]
        async with self._errors("set"):
            reply = await self._scripts["kv_set"]([self.layout.kv(key)], args)
        return None if reply is None else int(reply)

    async def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        version = await self._write(key, value, ttl, -1)
        assert version is not None
        return version

    async def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0 = absent)."""
        if version < 0:
            raise ConfigurationError(f"version must be >= 0, got {version}")
        return await self._write(key, value, ttl, version)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        check_key(key)
        async with self._errors("delete"):
            return bool(
                await self._scripts["kv_delete"]([self.layout.kv(key)], [self.layout.channel, key])
            )

    async def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries under ``prefix``, ordered by key."""
        out: list[Entry] = []
        now = time.time_ns()
        async with self._errors("scan"):
            names = sorted(
                {
                    bytes(k)
                    async for k in self.client.scan_iter(
                        match=self.layout.kv_pattern(prefix), count=1000
                    )
                }
            )
            for name in names:
                pipe = self.client.pipeline(transaction=False)
                pipe.hmget(name, "v", "ver")
                pipe.pttl(name)
                (value, version), pttl = await pipe.execute()
                if value is not None:
                    entry = RedisLayout.entry(
                        self.layout.logical_kv(name), (value, version, pttl), now
                    )
                    assert entry is not None
                    out.append(entry)
        out.sort(key=lambda e: e.key)
        return out[:limit]

    async def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` atomically; the TTL is set when the counter is created."""
        check_key(key)
        async with self._errors("incr"):
            return int(
                await self._scripts["counter_incr"](
                    [self.layout.ctr(key)], [int(amount), ttl_ms(ttl)]
                )
            )

    async def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        check_key(key)
        async with self._errors("get_counter"):
            value = await self.client.get(self.layout.ctr(key))
        return 0 if value is None else int(value)

    async def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        check_key(key)
        async with self._errors("reset_counter"):
            await self.client.delete(self.layout.ctr(key))

    async def append(self, stream: str, payload: bytes) -> Event:
        """Append one event."""
        return (await self.append_many(stream, [payload]))[0]

    async def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append events atomically with gapless sequence numbers."""
        check_key(stream, "stream")
        checked = [check_payload(p) for p in payloads]
        if not checked:
            return []
        async with self._errors("append"):
            first, ts = await self._scripts["log_append"](list(self.layout.log(stream)), checked)
        first, ts = int(first), int(ts)
        return [Event(stream, first + i, ts, p) for i, p in enumerate(checked)]

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
        check_key(stream, "stream")
        name = self.layout.log(stream)[0]
        out: list[Event] = []
        cursor = after
        async with self._errors("read"):
            while len(out) < limit:
                batch = await self.client.xrange(name, min=f"{cursor + 1}-0", count=max(limit, 100))
                if not batch:
                    break
                cursor = RedisLayout.take_events(stream, batch, out, limit, since_ns, until_ns)
        return out

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> FeedSubscription:
        """Deliver matching changes from a listener task on the running event loop.

        Call ``await store.ping()`` (or any operation) after subscribing to be sure
        the listener is connected before relying on delivery.
        """
        sub = self._subs.add(prefix, callback)
        if self._listener is None:
            self._ready = asyncio.Event()
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        return sub

    async def wait_subscribed(self, timeout: float = 5.0) -> None:
        """Wait until the pub/sub listener is confirmed by the server."""
        if self._listener is not None:
            await asyncio.wait_for(self._ready.wait(), timeout)

    def _on_data(self, data: bytes) -> None:
        change = decode_change(data)
        if change is not None:
            self._subs.dispatch(change)

    async def _listen(self) -> None:
        if self.cluster:
            # PUBLISH reaches every node of a cluster: one subscription on any node
            await listen_cluster(
                self.client, self.layout.channel, self._on_data, self._ready, self._masked
            )
            return
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        self._pubsub = pubsub
        try:
            await pubsub.subscribe(self.layout.channel)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._ready.set()
                    continue
                if message["type"] != "message":
                    continue
                change = decode_change(message["data"])
                if change is not None:
                    self._subs.dispatch(change)
        finally:
            await pubsub.aclose()

    async def ping(self) -> float:
        """Time one PING round trip."""
        t0 = time.perf_counter()
        async with self._errors("ping"):
            await self.client.ping()
        return time.perf_counter() - t0

    async def aclose(self) -> None:
        """Cancel the listener and close connections."""
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except (asyncio.CancelledError, Exception):
                pass
            self._listener = None
        await self.client.aclose()

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncRedisStore({self._masked!r})"
