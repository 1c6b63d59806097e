"""Direct channels to the nodes of a Redis Cluster, each script call routed by its hash slot.

On one Redis the limiter writes its script calls on connections of its own
(:class:`cognitionos.ratelimit._redis._Channel`) instead of going through redis-py's
``execute_command``. On a cluster the same calls went through redis-py's ``RedisCluster``
pipeline, which for every call builds a pipeline object, looks up each command's node,
wraps the call in its retry machinery and parses with its generic reader: about 5x the
client CPU of the direct channel per renewal (measured with ``benchmarks/ratelimit_lease.py``).

:class:`RoutedChannel` keeps one :class:`_Channel` per cluster node (connections built from
that node's own redis-py pool: same address, auth, TLS and the limiter's timeouts). Each
command is an ``EVALSHA`` whose keys share one hash tag; it goes to the primary that serves
the slot of its first key (``CRC16(hash tag) mod 16384``, redis-py's ``key_slot``), looked up
in redis-py's slot map (``client.nodes_manager``, filled from ``CLUSTER SLOTS``). The map is
shared with the client: a refresh either side makes does serves both. Redirections::

    MOVED slot host:port   the slot has a new owner: refresh the map, send the command again
    ASK slot host:port     the slot is migrating: send ASKING + the command to that node once
    TRYAGAIN               a multi-key call mid-migration: wait a moment, send it again

A redirected command did not run, so sending it again applies it exactly once. At most
:data:`REDIRECTS` rounds of redirections are followed; then the last error reply stands. A
connection failure raises redis-py's ``ConnectionError`` (the caller then sends once more
through the ``RedisCluster`` client, whose retry refreshes the map after a failover); a
timeout raises ``TimeoutError`` and is not retried (it would wait twice).

:class:`AsyncRoutedChannel` is the same over ``redis.asyncio.cluster.RedisCluster``, with
one :class:`_ProtocolChannel` (asyncio Protocol connections of :mod:`._resp`) per node.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cognitionos._optional import require
from cognitionos.ratelimit._redis import _Channel, _ProtocolChannel, pack_command

__all__ = ["REDIRECTS", "AsyncRoutedChannel", "RoutedChannel"]

#: Rounds of MOVED / ASK / TRYAGAIN redirections one call follows before giving up.
REDIRECTS = 3
#: Pause before resending a command refused with TRYAGAIN (seconds, times the round).
TRYAGAIN_PAUSE = 0.02
_ASKING = b"*1\r\n$6\r\nASKING\r\n"


def _command_slot(key_slot: Any, argv: tuple[str, ...], encoding: str) -> int:
    if len(argv) < 4 or argv[0] != "EVALSHA" or argv[2] == "0":
        raise ValueError(f"a routed command is an EVALSHA with keys, got {argv[:3]!r}")
    return int(key_slot(argv[3].encode(encoding)))


class _Routing:
    """What the sync and async routed channels share: the client, timeouts, slot of a command."""

    __slots__ = (
        "_channels",
        "_client",
        "_connect_timeout",
        "_rex",
        "_slot",
        "_timeout",
        "encoding",
    )

    def __init__(
        self, client: Any, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._channels: dict[str, Any] = {}
        self.encoding = str(client.get_encoder().encoding)
        self._rex: Any = require("redis.exceptions", extra="redis")
        self._slot: Any = require("redis.crc", extra="redis").key_slot

    def slot(self, argv: tuple[str, ...]) -> int:
        """The hash slot of an ``EVALSHA sha numkeys key…`` command: that of its first key."""
        return _command_slot(self._slot, argv, self.encoding)


class RoutedChannel(_Routing):
    """Per-node direct channels of a ``redis.cluster.RedisCluster`` client, by hash slot."""

    __slots__ = ()

    # -- routing -----------------------------------------------------------------------

    def primary(self, slot: int) -> Any:
        """The node serving ``slot`` in the client's slot map."""
        nodes = self._client.nodes_manager.slots_cache.get(slot)
        if not nodes:
            raise self._rex.SlotNotCoveredError(f"slot {slot} is not covered by the cluster")
        return nodes[0]

    def channel(self, node: Any) -> _Channel:
        """The direct channel to ``node`` (made from its redis-py pool on first use)."""
        ch: _Channel | None = self._channels.get(node.name)
        if ch is None:
            conn = node.redis_connection or self._client.get_redis_connection(node)
            ch = _Channel(conn.connection_pool, self._timeout, self._connect_timeout)
            ch = self._channels.setdefault(node.name, ch)
        return ch

    def refresh(self) -> None:
        """Reload the slot map from the cluster (``CLUSTER SLOTS``)."""
        self._client.nodes_manager.initialize()

    # -- requests ----------------------------------------------------------------------

    def call(self, packed: bytes, argv: tuple[str, ...]) -> Any:
        """One packed command; its reply (an error reply raises, as redis-py raises it)."""
        reply = self.run([packed], [self.slot(argv)])[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def pipeline(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        """Several commands (argv tuples); their replies in order, error replies as exceptions.

        Commands for one node go in one write (in their order); nodes are visited one after
        the other, in the order their first command appears.
        """
        enc = self.encoding
        return self.run([pack_command(c, enc) for c in cmds], [self.slot(c) for c in cmds])

    def run(self, packed: list[bytes], slots: list[int]) -> list[Any]:
        """Send packed commands to the primaries of their slots, following redirections."""
        rex = self._rex
        replies: list[Any] = [None] * len(packed)
        todo = list(range(len(packed)))
        asking: dict[int, Any] = {}  # command -> node it must be sent to with ASKING
        for attempt in range(REDIRECTS + 1):
            groups: dict[str, tuple[Any, list[int]]] = {}
            for i in todo:
                node = asking.get(i) or self.primary(slots[i])
                groups.setdefault(node.name, (node, []))[1].append(i)
            again: list[int] = []
            ask_next: dict[int, Any] = {}
            moved = wait = False
            for node, idx in groups.values():
                data = b"".join([(_ASKING + packed[i]) if i in asking else packed[i] for i in idx])
                got = iter(self.channel(node).pipeline(data, len(idx) + len(asking.keys() & idx)))
                for i in idx:
                    if i in asking:
                        next(got)  # ASKING's +OK
                    rep = replies[i] = next(got)
                    if not isinstance(rep, rex.AskError | rex.TryAgainError):
                        continue
                    if attempt == REDIRECTS:
                        continue  # out of rounds: the error reply stands
                    again.append(i)
                    if isinstance(rep, rex.MovedError):
                        moved = True
                    elif isinstance(rep, rex.AskError):
                        target = self._client.nodes_manager.get_node(host=rep.host, port=rep.port)
                        if target is None:
                            moved = True  # a node the map does not know yet
                        else:
                            ask_next[i] = target
                    else:
                        wait = True
            if not again:
                break
            if moved:
                self.refresh()
            if wait:
                time.sleep(TRYAGAIN_PAUSE * (attempt + 1))
            todo, asking = sorted(again), ask_next
        return replies

    def forget(self) -> None:
        """Drop every connection unclosed (a forked child: they are the parent's)."""
        for ch in list(self._channels.values()):
            ch.forget()

    def close(self) -> None:
        """Close every node's connections."""
        channels, self._channels = self._channels, {}
        for ch in channels.values():
            ch.close()


class AsyncRoutedChannel(_Routing):
    """:class:`RoutedChannel` for ``redis.asyncio.cluster.RedisCluster``."""

    __slots__ = ()

    async def primary(self, slot: int) -> Any:
        """The node serving ``slot`` (the client reads the slot map on first use)."""
        nodes = self._client.nodes_manager.slots_cache.get(slot)
        if not nodes:
            await self._client.initialize()
            nodes = self._client.nodes_manager.slots_cache.get(slot)
            if not nodes:
                raise self._rex.SlotNotCoveredError(f"slot {slot} is not covered by the cluster")
        return nodes[0]

    def channel(self, node: Any) -> _ProtocolChannel:
        """The direct channel to ``node`` (its connection class and arguments)."""
        ch: _ProtocolChannel | None = self._channels.get(node.name)
        if ch is None:
            ch = _ProtocolChannel(node, self._timeout, self._connect_timeout)
            ch = self._channels.setdefault(node.name, ch)
        return ch

    async def refresh(self) -> None:
        """Reload the slot map from the cluster (``CLUSTER SLOTS``)."""
        await self._client.nodes_manager.initialize()

    async def call(self, packed: bytes, argv: tuple[str, ...]) -> Any:
        """One packed command; its reply (an error reply raises)."""
        reply = (await self.run([packed], [self.slot(argv)]))[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipeline(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        """Several commands (argv tuples); their replies in order (see the sync twin)."""
        enc = self.encoding
        return await self.run([pack_command(c, enc) for c in cmds], [self.slot(c) for c in cmds])

    async def run(self, packed: list[bytes], slots: list[int]) -> list[Any]:
        """:meth:`RoutedChannel.run`, awaited."""
        rex = self._rex
        replies: list[Any] = [None] * len(packed)
        todo = list(range(len(packed)))
        asking: dict[int, Any] = {}
        for attempt in range(REDIRECTS + 1):
            groups: dict[str, tuple[Any, list[int]]] = {}
            for i in todo:
                node = asking.get(i) or await self.primary(slots[i])
                groups.setdefault(node.name, (node, []))[1].append(i)
            again: list[int] = []
            ask_next: dict[int, Any] = {}
            moved = wait = False
            for node, idx in groups.values():
                data = b"".join([(_ASKING + packed[i]) if i in asking else packed[i] for i in idx])
                count = len(idx) + len(asking.keys() & idx)
                got = iter(await self.channel(node).pipeline(data, count))
                for i in idx:
                    if i in asking:
                        next(got)  # ASKING's +OK
                    rep = replies[i] = next(got)
                    if not isinstance(rep, rex.AskError | rex.TryAgainError):
                        continue
                    if attempt == REDIRECTS:
                        continue
                    again.append(i)
                    if isinstance(rep, rex.MovedError):
                        moved = True
                    elif isinstance(rep, rex.AskError):
                        target = self._client.nodes_manager.get_node(host=rep.host, port=rep.port)
                        if target is None:
                            moved = True
                        else:
                            ask_next[i] = target
                    else:
                        wait = True
            if not again:
                break
            if moved:
                await self.refresh()
            if wait:
                await asyncio.sleep(TRYAGAIN_PAUSE * (attempt + 1))
            todo, asking = sorted(again), ask_next
        return replies

    def forget(self, client: Any) -> None:
        """Drop every connection unclosed and use ``client`` (a forked child rebuilds its
        cluster client: the parent's nodes and connections belong to the parent's loop)."""
        self._client = client
        self._channels = {}

    async def aclose(self) -> None:
        """Close every node's connections."""
        channels, self._channels = self._channels, {}
        for ch in channels.values():
            await ch.aclose()
