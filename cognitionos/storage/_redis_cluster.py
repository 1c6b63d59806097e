"""The change feed of a Redis Cluster store: classic pub/sub, one node at a time.

On a cluster, ``PUBLISH`` (also from inside a Lua script) is broadcast over the cluster bus
to every node, so a subscriber connected to *any* node hears every change, whichever
primary's script published it. Sharded pub/sub (``SPUBLISH``, Redis 7) would keep messages
on one shard, but a script may only publish to a shard channel of its own slot: a feed by
key prefix would then need one subscription per slot (16384). One broadcast channel keeps
the feed as simple as on a single Redis, at the cost of every change crossing the cluster
bus once per node; the feed carries only key names and versions, never values.

The feed holds one subscription on one node. When that node fails (or is killed in a
failover), the feed logs, moves to the next node of the client's current map and
subscribes again. Changes published in that gap are lost: the feed is at-most-once, as on
a single Redis, and subscribers re-read what they cache.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from cognitionos.storage._redis_common import redis_errors

__all__ = ["ClusterFeed", "listen_cluster"]

log = logging.getLogger("cognitionos.storage.redis")

#: seconds between attempts when no node accepts the subscription
RETRY_PAUSE = 0.2
#: seconds one poll waits for a message (also how fast ``stop`` is noticed)
POLL = 0.2


class ClusterFeed:
    """A daemon thread holding ``SUBSCRIBE channel`` on some node of a ``RedisCluster``."""

    def __init__(
        self, client: Any, channel: str, on_data: Callable[[bytes], None], masked: str
    ) -> None:
        self._client = client
        self._channel = channel
        self._on_data = on_data
        self._masked = masked
        self._stop = threading.Event()
        self._pubsub: Any = None
        self._turn = 0
        self._thread: threading.Thread | None = None

    def start(self, *, wait: bool) -> None:
        """Subscribe (with ``wait``: until the server confirmed, up to 5 s) and start the thread."""
        if wait:
            deadline = time.monotonic() + 5
            while self._pubsub is None and time.monotonic() < deadline:
                self._connect()
                if self._pubsub is None:
                    time.sleep(RETRY_PAUSE)
        self._thread = threading.Thread(
            target=self._run, name="cognitionos-cluster-feed", daemon=True
        )
        self._thread.start()

    def _connect(self) -> None:
        nodes = self._client.get_nodes()
        if not nodes:
            return
        node = nodes[self._turn % len(nodes)]
        self._turn += 1
        pubsub = None
        try:
            pubsub = self._client.pubsub(node=node)
            pubsub.subscribe(self._channel)
            deadline = time.monotonic() + 2
            while not pubsub.subscribed and time.monotonic() < deadline:
                pubsub.get_message(timeout=0.1)
            if not pubsub.subscribed:
                raise TimeoutError(f"no subscribe confirmation from {node.name}")
        except _failures() as exc:
            log.warning("change feed of %s: node %s refused (%s)", self._masked, node.name, exc)
            _close(pubsub)
            return
        self._pubsub = pubsub

    def _run(self) -> None:
        while not self._stop.is_set():
            pubsub = self._pubsub
            if pubsub is None:
                self._connect()
                if self._pubsub is None:
                    self._stop.wait(RETRY_PAUSE)
                continue
            try:
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL)
            except _failures(ValueError) as exc:
                log.warning(
                    "change feed lost %s (%s); reconnecting to another node", self._masked, exc
                )
                self._pubsub = None
                _close(pubsub)
                continue
            if message is not None and message.get("type") == "message":
                self._on_data(message["data"])

    def stop(self) -> None:
        """Stop the thread and drop the subscription."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        pubsub, self._pubsub = self._pubsub, None
        _close(pubsub)


def _failures(*more: type[Exception]) -> tuple[type[Exception], ...]:
    """redis-py's failures, socket errors and ``more``: what makes the feed change node."""
    return (*redis_errors(), OSError, *more)


def _close(pubsub: Any) -> None:
    if pubsub is None:
        return
    try:
        pubsub.close()
    except _failures():
        pass


async def listen_cluster(
    client: Any,
    channel: str,
    on_data: Callable[[bytes], None],
    ready: asyncio.Event,
    masked: str,
) -> None:
    """Async twin of :class:`ClusterFeed`: runs until cancelled, moving between nodes."""
    turn = 0
    while True:
        pubsub = None
        try:
            if not client.get_nodes():
                await client.initialize()
            nodes = client.get_nodes()
            node = nodes[turn % len(nodes)]
            turn += 1
            pubsub = client.pubsub(node=node)
            await pubsub.subscribe(channel)
            while True:
                message = await pubsub.get_message(timeout=POLL)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    ready.set()
                elif message["type"] == "message":
                    on_data(message["data"])
        except _failures() as exc:
            log.warning("change feed lost %s (%s); reconnecting to another node", masked, exc)
            await asyncio.sleep(RETRY_PAUSE)
        finally:
            if pubsub is not None:
                try:
                    await pubsub.aclose()
                except _failures():
                    pass
