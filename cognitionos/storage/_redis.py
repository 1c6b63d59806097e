"""Redis backend (sync): redis-py, one Lua script per atomic operation.

Scripts run with EVALSHA and are reloaded on NOSCRIPT (after a restart or
``SCRIPT FLUSH``). TTLs and event timestamps use the Redis server's clock, so
hosts with skewed clocks agree. The change feed is Redis pub/sub; delivery is
at-most-once (a subscriber that is disconnected misses changes and should
re-read what it caches).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos._optional import require
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.storage._base import (
    BaseStore,
    FeedSubscription,
    Subscribers,
    check_key,
    check_payload,
    decode_change,
)
from cognitionos.storage._redis_cluster import ClusterFeed
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

__all__ = ["LuaScript", "RedisStore"]

log = logging.getLogger("cognitionos.storage.redis")


class LuaScript:
    """A Lua script run by EVALSHA, loaded again when the server answers NOSCRIPT.

    ``LuaScript(client, source)(keys=[...], args=[...])``
    """

    __slots__ = ("client", "sha", "source")

    def __init__(self, client: Any, source: str, sha: str | None = None) -> None:
        import hashlib

        self.client = client
        self.source = source
        self.sha = sha or hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL with the source both runs and re-caches it; a SCRIPT FLUSH racing between a
            # SCRIPT LOAD and the retried EVALSHA can then no longer fail the call
            return self.client.eval(self.source, len(keys), *keys, *args)


class RedisStore(BaseStore):
    """Key-value, counters, event log (Redis streams) and change feed (pub/sub) on Redis.

    ``open_store("redis://localhost:6379/0?prefix=myapp:")``; ``rediss://`` for TLS;
    ``redis+cluster://host:7000,host:7001/`` for Redis Cluster (redis-py's ``RedisCluster``).
    ``store.client`` is the underlying ``redis.Redis`` and ``store.script(source)``
    wraps a Lua script, for engines that need their own atomic operations.
    """

    backend = "redis"
    capabilities = frozenset(Capability)

    def __init__(self, url: str | StoreURL, *, client: Any = None, **client_options: Any) -> None:
        self.url = url if isinstance(url, StoreURL) else parse_url(url)
        self._masked = self.url.masked
        redis_url, prefix = split_options(self.url)
        self.layout = RedisLayout(prefix)
        redis = require("redis", purpose="Redis storage")
        try:
            if client is not None:
                self.client = client
            elif self.url.is_cluster:
                with self._errors("connect"):
                    self.client = cluster_client(
                        self.url, redis_url, asynchronous=False, **client_options
                    )
            else:
                self.client = redis.Redis.from_url(redis_url, **client_options)
        except ValueError as exc:
            raise ConfigurationError(f"malformed storage URL {self._masked!r}: {exc}") from None
        self.cluster = type(self.client).__name__ == "RedisCluster"
        self._scripts = {
            name: self.script(*lua_source(name))
            for name in ("kv_get", "kv_set", "kv_delete", "counter_incr", "log_append")
        }
        self._subs = Subscribers()
        self._feed_lock = threading.Lock()
        self._pubsub: Any = None
        self._feed_thread: Any = None
        self._cluster_feed: ClusterFeed | None = None
        self.ping()
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: own connections and a pub/sub thread of its own.

        redis-py's pools notice the new pid and open new connections; the parent's pub/sub
        connection and thread are dropped unclosed (closing would disturb the parent's).
        """
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None and hasattr(pool, "reset"):
            pool.reset()
        self._subs.after_fork()
        self._feed_lock = threading.Lock()
        # None again once the parent closed the store
        had_feed = self._pubsub is not None or self._cluster_feed is not None
        self._pubsub = None
        self._feed_thread = None
        self._cluster_feed = None
        if had_feed and self._subs:
            try:
                self._start_feed(wait=False)
            except StorageError:
                log.warning("change feed of %s not restarted after fork", self._masked)

    def script(self, source: str, sha: str | None = None) -> LuaScript:
        """Wrap a Lua script for EVALSHA with NOSCRIPT reload."""
        return LuaScript(self.client, source, sha)

    def key(self, *parts: str) -> str:
        """A namespaced key whose hash tag is ``parts[0]`` (cluster-safe multi-key scripts)."""
        return self.layout.key(*parts)

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except redis_errors() as exc:
            raise redis_error(exc, self._masked, what) from exc

    # -- key-value -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or None."""
        check_key(key)
        with self._errors("get"):
            reply = self._scripts["kv_get"]([self.layout.kv(key)])
        return RedisLayout.entry(key, reply, time.time_ns())

    def _write(self, key: str, value: bytes, ttl: float | None, expected: int) -> int | None:
        check_key(key)
        value = check_payload(value)
        args = [value, ttl_ms(ttl), expected, self.layout.channel, key]
        with self._errors("set"):
            reply = self._scripts["kv_set"]([self.layout.kv(key)], args)
        return None if reply is None else int(reply)

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        version = self._write(key, value, ttl, -1)
        assert version is not None
        return version

    def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0 = absent); new version or None."""
        if version < 0:
            raise ConfigurationError(f"version must be >= 0, got {version}")
        return self._write(key, value, ttl, version)

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        check_key(key)
        with self._errors("delete"):
            return bool(
                self._scripts["kv_delete"]([self.layout.kv(key)], [self.layout.channel, key])
            )

    def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries under ``prefix``, ordered by key (SCAN: O(keys in the database))."""
        with self._errors("scan"):
            names = sorted(
                {
                    bytes(k)
                    for k in self.client.scan_iter(match=self.layout.kv_pattern(prefix), count=1000)
                }
            )
            out: list[Entry] = []
            now = time.time_ns()
            for chunk_start in range(0, len(names), 500):
                chunk = names[chunk_start : chunk_start + 500]
                pipe = self.client.pipeline(transaction=False)
                for name in chunk:
                    pipe.hmget(name, "v", "ver")
                    pipe.pttl(name)
                replies = pipe.execute()
                for i, name in enumerate(chunk):
                    (value, version), pttl = replies[2 * i], replies[2 * i + 1]
                    if value is None:
                        continue  # expired or deleted between SCAN and HMGET
                    entry = RedisLayout.entry(
                        self.layout.logical_kv(name), (value, version, pttl), now
                    )
                    assert entry is not None
                    out.append(entry)
        out.sort(key=lambda e: e.key)
        return out[:limit]

    # -- counters --------------------------------------------------------------------------

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount`` atomically; the TTL is set when the counter is created."""
        check_key(key)
        with self._errors("incr"):
            return int(
                self._scripts["counter_incr"]([self.layout.ctr(key)], [int(amount), ttl_ms(ttl)])
            )

    def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        check_key(key)
        with self._errors("get_counter"):
            value = self.client.get(self.layout.ctr(key))
        return 0 if value is None else int(value)

    def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        check_key(key)
        with self._errors("reset_counter"):
            self.client.delete(self.layout.ctr(key))

    # -- event log -------------------------------------------------------------------------

    def append(self, stream: str, payload: bytes) -> Event:
        """Append one event."""
        return self.append_many(stream, [payload])[0]

    def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append events atomically (one script), gapless sequence numbers, server timestamps."""
        check_key(stream, "stream")
        checked = [check_payload(p) for p in payloads]
        if not checked:
            return []
        with self._errors("append"):
            first, ts = self._scripts["log_append"](list(self.layout.log(stream)), checked)
        first, ts = int(first), int(ts)
        return [Event(stream, first + i, ts, p) for i, p in enumerate(checked)]

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
        check_key(stream, "stream")
        name = self.layout.log(stream)[0]
        out: list[Event] = []
        cursor = after
        with self._errors("read"):
            while len(out) < limit:
                batch = self.client.xrange(name, min=f"{cursor + 1}-0", count=max(limit, 100))
                if not batch:
                    break
                cursor = RedisLayout.take_events(stream, batch, out, limit, since_ns, until_ns)
        return out

    # -- change feed -----------------------------------------------------------------------

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> FeedSubscription:
        """Deliver changes under ``prefix`` published by any client, on a pub/sub thread."""
        sub = self._subs.add(prefix, callback)
        self._start_feed(wait=True)
        return sub

    def _start_feed(self, *, wait: bool) -> None:
        with self._feed_lock:
            if self.cluster:
                if self._cluster_feed is None:
                    # PUBLISH reaches every node of a cluster: one subscription on any node
                    feed = ClusterFeed(
                        self.client, self.layout.channel, self._on_data, self._masked
                    )
                    feed.start(wait=wait)
                    self._cluster_feed = feed
                return
            if self._pubsub is None:
                with self._errors("subscribe"):
                    pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                    pubsub.subscribe(**{self.layout.channel: self._on_message})
                    # wait for the server's confirmation: from here on no change is missed
                    deadline = time.monotonic() + (5 if wait else 0)
                    while not pubsub.subscribed and time.monotonic() < deadline:
                        pubsub.get_message(timeout=0.1)
                    self._pubsub = pubsub
                    self._feed_thread = pubsub.run_in_thread(
                        sleep_time=0.2, daemon=True, exception_handler=self._on_feed_error
                    )

    def _on_feed_error(self, exc: BaseException, pubsub: Any, thread: Any) -> None:
        # keep the thread alive: the next get_message reconnects and re-subscribes
        log.warning("change feed lost %s (%s); reconnecting", self._masked, exc)
        time.sleep(0.5)

    def _on_message(self, message: dict[str, Any]) -> None:
        self._on_data(message["data"])

    def _on_data(self, data: bytes) -> None:
        change = decode_change(data)
        if change is not None:
            self._subs.dispatch(change)

    # -- lifecycle -------------------------------------------------------------------------

    def ping(self) -> float:
        """Time one PING round trip."""
        t0 = time.perf_counter()
        with self._errors("ping"):
            self.client.ping()
        return time.perf_counter() - t0

    def close(self) -> None:
        """Stop the pub/sub thread and close connections."""
        if self._cluster_feed is not None:
            self._cluster_feed.stop()
            self._cluster_feed = None
        if self._feed_thread is not None:
            self._feed_thread.stop()
            self._feed_thread.join(5)
            self._feed_thread = None
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except StorageError:
                pass
            self._pubsub = None
        self.client.close()

    def __repr__(self) -> str:
        return f"RedisStore({self._masked!r})"
