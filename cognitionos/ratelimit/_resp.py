"""A small asyncio Protocol speaking RESP2: the async limiter's own Redis connections.

``redis.asyncio`` reads through a StreamReader, and bounds every command with a timer
of its own; for a decision ("write these bytes, read one reply") that machinery costs
more than the round trip. :class:`RespConnection` is a :class:`asyncio.Protocol`:
replies are parsed in ``data_received`` and handed to a FIFO of futures, so requests
pipeline naturally, and one deadline check per connection (``loop.call_later``, armed
only while requests are in flight) stands in for the per-command timers::

    conn = await connect(loop, pool.connection_class, pool.connection_kwargs)
    reply = await conn.request(packed)            # one command
    replies = await conn.request(packed, count=3) # three pipelined commands

Connections are set up from the ``redis.asyncio`` pool's connection class and keyword
arguments (host/port or unix path, TLS context, ``AUTH``, ``SELECT``, client name), and
fail with redis-py's exceptions: ``TimeoutError`` when a request outlives
``socket_timeout``, ``ConnectionError`` when the connection breaks, and error replies
as ``ResponseError`` subclasses (``NoScriptError``, ...) exactly as redis-py maps them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from cognitionos._optional import require

__all__ = ["RespConnection", "connect", "supports"]

_CRLF = b"\r\n"
#: the connection classes of redis.asyncio this module knows how to reproduce
_CLASSES = ("Connection", "SSLConnection", "UnixDomainSocketConnection")


def supports(connection_class: type, kwargs: dict[str, Any]) -> bool:
    """Can :func:`connect` reproduce connections of this class and these arguments?"""
    return (
        connection_class.__module__ == "redis.asyncio.connection"
        and connection_class.__name__ in _CLASSES
        and kwargs.get("credential_provider") is None
    )


class _Incomplete(Exception):
    """The buffer ends inside a reply (more bytes are coming)."""


class RespConnection(asyncio.Protocol):
    """One connection: write packed commands, get their replies in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._loop = loop
        self._timeout = timeout
        self._transport: Any = None
        self._buf = b""
        #: in-flight requests, oldest first: [future, replies still due, replies, sent at]
        self._waiters: deque[list[Any]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._lost: BaseException | None = None
        self._rex: Any = require("redis.exceptions", extra="redis")
        from redis._parsers.base import BaseParser

        self._parse_error: Any = BaseParser.parse_error

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos = 0
        waiters = self._waiters
        try:
            while pos < len(buf):
                reply, pos = self._parse(buf, pos)
                if not waiters:
                    raise self._rex.ConnectionError("unexpected reply from redis")
                waiter = waiters[0]
                waiter[2].append(reply)
                waiter[1] -= 1
                if waiter[1] == 0:
                    waiters.popleft()
                    fut = waiter[0]
                    if not fut.done():  # a cancelled caller: the reply is read and dropped
                        fut.set_result(waiter[2])
        except _Incomplete:
            pass
        except Exception as exc:  # a protocol error: this connection cannot be trusted
            self._buf = b""
            self._fail(exc)
            if self._transport is not None:
                self._transport.abort()
            return
        self._buf = buf[pos:] if pos < len(buf) else b""

    def connection_lost(self, exc: Exception | None) -> None:
        err = self._rex.ConnectionError(
            f"Error while reading from redis: {exc}" if exc else "Connection closed by server."
        )
        self._fail(err)

    # -- requests --------------------------------------------------------------------

    @property
    def usable(self) -> bool:
        """Open, and not failed."""
        return self._lost is None and self._transport is not None

    async def request(self, packed: bytes, count: int = 1) -> Any:
        """Send ``count`` packed commands; one reply, or a list of ``count`` replies.

        Error replies come back as exception instances (the caller decides to raise).
        """
        if self._lost is not None:
            raise self._lost
        fut = self._loop.create_future()
        self._waiters.append([fut, count, [], self._loop.time()])
        self._transport.write(packed)
        if self._timer is None and self._timeout is not None:
            self._timer = self._loop.call_later(self._timeout, self._check_deadline)
        replies = await fut
        return replies[0] if count == 1 else replies

    def close(self) -> None:
        """Close the connection; requests in flight fail with ``ConnectionError``."""
        self._fail(self._rex.ConnectionError("connection closed"))
        if self._transport is not None:
            self._transport.close()

    def _check_deadline(self) -> None:
        self._timer = None
        if not self._waiters:
            return
        timeout = self._timeout
        assert timeout is not None  # armed only with a timeout
        late = self._waiters[0][3] + timeout - self._loop.time()
        if late <= 0:
            self._fail(self._rex.TimeoutError("Timeout reading from redis"))
            if self._transport is not None:
                self._transport.abort()  # the reply may still come: nothing can match it
        else:
            self._timer = self._loop.call_later(late, self._check_deadline)

    def _fail(self, exc: BaseException) -> None:
        if self._lost is None:
            self._lost = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiters, self._waiters = self._waiters, deque()
        for waiter in waiters:
            if not waiter[0].done():
                waiter[0].set_exception(exc)

    # -- RESP2 -----------------------------------------------------------------------

    def _parse(self, buf: bytes, pos: int) -> tuple[Any, int]:
        end = buf.find(_CRLF, pos)
        if end < 0:
            raise _Incomplete
        kind = buf[pos]
        if kind == 36:  # $ bulk string (the script's reply)
            size = int(buf[pos + 1 : end])
            if size < 0:
                return None, end + 2
            stop = end + 2 + size
            if len(buf) < stop + 2:
                raise _Incomplete
            return buf[end + 2 : stop], stop + 2
        if kind == 43:  # + simple string
            return buf[pos + 1 : end], end + 2
        if kind == 58:  # : integer
            return int(buf[pos + 1 : end]), end + 2
        if kind == 45:  # - error
            return self._parse_error(buf[pos + 1 : end].decode("utf-8", "replace")), end + 2
        if kind == 42:  # * array
            size = int(buf[pos + 1 : end])
            if size < 0:
                return None, end + 2
            items = []
            pos = end + 2
            for _ in range(size):
                item, pos = self._parse(buf, pos)
                items.append(item)
            return items, pos
        raise self._rex.InvalidResponse(f"Protocol error, got {chr(kind)!r} as reply type byte")


def _pack(*args: str | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


async def connect(
    loop: asyncio.AbstractEventLoop, connection_class: type, kwargs: dict[str, Any]
) -> RespConnection:
    """Open a connection like ``connection_class(**kwargs)`` would, then AUTH and SELECT."""
    rex = require("redis.exceptions", extra="redis")
    timeout = kwargs.get("socket_timeout")
    connect_timeout = kwargs.get("socket_connect_timeout") or timeout
    proto = RespConnection(loop, timeout)
    name = connection_class.__name__
    try:
        async with asyncio.timeout(connect_timeout):
            if name == "UnixDomainSocketConnection":
                where = str(kwargs.get("path", ""))
                await loop.create_unix_connection(lambda: proto, where)
            else:
                host, port = kwargs.get("host", "localhost"), int(kwargs.get("port", 6379))
                where = f"{host}:{port}"
                ssl_ctx: Any = None
                server_hostname = None
                if name == "SSLConnection":
                    # redis-py's own TLS settings (certificates, verification, ciphers)
                    template: Any = connection_class(**kwargs)
                    ssl_ctx = template.ssl_context.get()
                    server_hostname = host if ssl_ctx.check_hostname else None
                await loop.create_connection(
                    lambda: proto, host, port, ssl=ssl_ctx, server_hostname=server_hostname
                )
    except TimeoutError as exc:
        raise rex.TimeoutError(f"Timeout connecting to redis at {where}") from exc
    except OSError as exc:
        raise rex.ConnectionError(f"Error connecting to redis at {where}: {exc}") from exc
    setup = []
    password, username = kwargs.get("password"), kwargs.get("username")
    if password is not None:
        setup.append(_pack("AUTH", username, password) if username else _pack("AUTH", password))
    if kwargs.get("client_name"):
        setup.append(_pack("CLIENT", "SETNAME", kwargs["client_name"]))
    if kwargs.get("db"):
        setup.append(_pack("SELECT", str(kwargs["db"])))
    if setup:
        try:
            replies = await proto.request(b"".join(setup), len(setup))
            if len(setup) == 1:
                replies = [replies]
        except BaseException:
            proto.close()
            raise
        for reply in replies:
            if isinstance(reply, Exception):
                proto.close()
                if isinstance(reply, rex.AuthenticationError) or "AUTH" in str(reply).upper():
                    raise rex.AuthenticationError(str(reply))
                raise rex.ConnectionError(f"redis connection setup failed: {reply}")
    return proto
