"""The async limiter's own Redis connections (``_resp.RespConnection``): real and fake servers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cognitionos.errors import BackendUnavailable
from cognitionos.ratelimit import AsyncRateLimiter, Limit

from .conftest import REDIS_URL, redis_client

redis = pytest.importorskip("redis")
redis_asyncio = pytest.importorskip("redis.asyncio")

from cognitionos.ratelimit._redis import _ProtocolChannel, pack_command  # noqa: E402
from cognitionos.ratelimit._resp import connect  # noqa: E402


def _kwargs(url: str = REDIS_URL, **extra: Any) -> tuple[type, dict[str, Any]]:
    pool = redis_asyncio.ConnectionPool.from_url(url, **extra)
    return pool.connection_class, dict(pool.connection_kwargs)


class _FakeServer:
    """A TCP server running ``handle`` per client; :meth:`stop` waits for every handler."""

    def __init__(
        self, handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
    ) -> None:
        self._handle = handle
        self._tasks: list[asyncio.Task[None]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await self._handle(reader, writer)
        finally:
            writer.close()
            await writer.wait_closed()

    async def start(self) -> _FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Wait for the handlers (the clients must have hung up), then close."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.mark.redis
def test_pipelined_replies_come_back_in_order_and_db_is_selected():
    client = redis_client()
    key = f"t{uuid.uuid4().hex[:10]}"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        cls, kw = _kwargs()
        conn = await connect(loop, cls, kw)
        packed = b"".join(
            [
                pack_command(["SET", key, "v1"]),
                pack_command(["GET", key]),
                pack_command(["ECHO", "x" * 70_000]),  # spans several reads
                pack_command(["INCR", key]),  # an error reply, in its place
                pack_command(["DEL", key + "nope"]),
            ]
        )
        replies = await conn.request(packed, 5)
        assert replies[:3] == [b"OK", b"v1", b"x" * 70_000]
        assert isinstance(replies[3], redis.exceptions.ResponseError)
        assert replies[4] == 0
        # many tasks on one connection: each gets its own reply (FIFO of futures)
        echoes = await asyncio.gather(
            *[conn.request(pack_command(["ECHO", str(i)])) for i in range(50)]
        )
        assert echoes == [str(i).encode() for i in range(50)]
        conn.close()

    try:
        asyncio.run(main())
        assert client.get(key) == b"v1"  # written in db 15: SELECT ran on connect
    finally:
        client.delete(key)
        client.close()


@pytest.mark.redis
def test_limiter_uses_protocol_channel_and_reloads_script_after_flush():
    client = redis_client()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    limit = Limit(amount=5, period=60)

    async def main() -> None:
        limiter = AsyncRateLimiter(REDIS_URL, algorithm="gcra", prefix=prefix)
        assert isinstance(limiter._backend._channel, _ProtocolChannel)
        assert (await limiter.hit(limit, "k")).remaining == 4
        await limiter._backend.client.script_flush()
        assert (await limiter.hit(limit, "k")).remaining == 3  # NOSCRIPT: loaded and rerun
        await limiter._backend.client.script_flush()
        batch = await limiter.hit_batch([(limit, "a"), (limit, "b"), (limit, "k")])
        assert [d.remaining for d in batch] == [4, 4, 2]
        # the connection is dropped by the server: the next decision reconnects
        for info in await limiter._backend.client.client_list():
            if info.get("cmd") in ("evalsha", "eval"):
                await limiter._backend.client.client_kill_filter(_id=info["id"])
        assert (await limiter.hit(limit, "k")).remaining == 1
        await limiter.aclose()

    try:
        asyncio.run(main())
    finally:
        stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if stale:
            client.delete(*stale)
        client.close()


def test_request_to_a_server_that_never_answers_times_out():
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(4096):  # reads until the client hangs up, answers nothing
                pass

        server = await _FakeServer(silent).start()
        port = server.port
        loop = asyncio.get_running_loop()
        cls, kw = _kwargs(f"redis://127.0.0.1:{port}/0", socket_timeout=0.2)
        conn = await connect(loop, cls, kw)
        start = loop.time()
        with pytest.raises(redis.exceptions.TimeoutError):
            await conn.request(pack_command(["PING"]))
        assert 0.15 < loop.time() - start < 2
        assert not conn.usable
        # through the limiter: the direct try and the client's own retry both time out
        limiter = AsyncRateLimiter(
            redis_asyncio.Redis(host="127.0.0.1", port=port, socket_timeout=0.2),
            prefix="fake",
        )
        with pytest.raises(BackendUnavailable):
            await limiter.hit(Limit(amount=1, period=1), "k")
        await limiter.aclose()
        await limiter._backend.client.aclose()
        await server.stop()

    asyncio.run(main())


def test_connection_lost_mid_request_raises_connection_error():
    async def main() -> None:
        async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1)  # then hangs up without answering

        server = await _FakeServer(hang_up).start()
        port = server.port
        loop = asyncio.get_running_loop()
        cls, kw = _kwargs(f"redis://127.0.0.1:{port}/0", socket_timeout=5)
        conn = await connect(loop, cls, kw)
        with pytest.raises(redis.exceptions.ConnectionError):
            await conn.request(pack_command(["PING"]))
        assert not conn.usable
        with pytest.raises(redis.exceptions.ConnectionError):
            await conn.request(pack_command(["PING"]))
        await server.stop()
        # nobody listening at all
        with pytest.raises(redis.exceptions.ConnectionError):
            await connect(loop, cls, kw)

    asyncio.run(main())


def test_auth_and_select_are_sent_on_connect():
    seen: list[bytes] = []

    async def main() -> None:
        async def ok_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(await reader.read(4096))
            writer.write(b"+OK\r\n+OK\r\n")
            await writer.drain()
            await reader.read()

        server = await _FakeServer(ok_server).start()
        port = server.port
        loop = asyncio.get_running_loop()
        cls, kw = _kwargs(f"redis://alice:s3cret@127.0.0.1:{port}/3", socket_timeout=2)
        conn = await connect(loop, cls, kw)
        assert seen == [pack_command(["AUTH", "alice", "s3cret"]) + pack_command(["SELECT", "3"])]
        conn.close()

        async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(4096)
            writer.write(b"-WRONGPASS invalid username-password pair\r\n")
            await writer.drain()
            await reader.read()

        server2 = await _FakeServer(refuse).start()
        cls, kw = _kwargs(f"redis://alice:bad@127.0.0.1:{server2.port}/0", socket_timeout=2)
        with pytest.raises(redis.exceptions.AuthenticationError):
            await connect(loop, cls, kw)
        await server.stop()
        await server2.stop()

    asyncio.run(main())


def test_tls_url_builds_the_context_from_redis_py_settings(monkeypatch):
    calls: list[dict[str, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def fake_create_connection(factory: Any, host: str, port: int, **kw: Any) -> Any:
            calls.append({"host": host, "port": port, **kw})
            raise OSError("no TLS server here")

        monkeypatch.setattr(loop, "create_connection", fake_create_connection)
        cls, kw = _kwargs("rediss://127.0.0.1:6390/0?ssl_cert_reqs=none")
        with pytest.raises(redis.exceptions.ConnectionError):
            await connect(loop, cls, kw)

    asyncio.run(main())
    import ssl

    assert isinstance(calls[0]["ssl"], ssl.SSLContext)
    assert calls[0]["ssl"].verify_mode == ssl.CERT_NONE
    assert calls[0]["server_hostname"] is None
