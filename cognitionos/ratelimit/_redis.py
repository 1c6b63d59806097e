"""Redis backend: one EVALSHA per decision, however many limits it covers.

``lua/decide.lua`` runs the same rules as :mod:`cognitionos.ratelimit._core` on
integer microseconds, reading the server's ``TIME`` so hosts with skewed clocks
agree. Keys of one caller key share a ``{hash tag}``::

    rl:{ip:1.2.3.4}:1:100:60000000     fixed-window state of "100/minute"
    rl:{ip:1.2.3.4}:ban                ban record
    rl:{ip:1.2.3.4}:viol               recent violations

On Redis Cluster, a ``hit_many`` over different caller keys must map them to one
slot (they are different hash tags otherwise, and Redis refuses the script).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos._optional import require
from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.ratelimit._batch import BanState, Outcome, Request, Result, Spec
from cognitionos.ratelimit._keys import MAX_KEY_LENGTH, decode_key, encode_key
from cognitionos.ratelimit._timeouts import DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, effective
from cognitionos.ratelimit.models import BanPolicy

__all__ = [
    "AsyncRedisBackend",
    "RedisBackend",
    "redis_backend_from_store",
    "redis_backend_from_url",
]

#: Lua numbers are doubles: every intermediate product must stay below this.
MAX_EXACT = 2**53
#: Key TTL floor (ms) when the caller supplies the time: its clock may not follow Redis's.
CLIENT_TIME_MIN_TTL_MS = 3_600_000


@cache
def lua_script() -> tuple[str, str]:
    """(source, sha1) of ``lua/decide.lua``."""
    src = resources.files("cognitionos.ratelimit").joinpath("lua/decide.lua").read_text("utf-8")
    return src, hashlib.sha1(src.encode()).hexdigest()


# string-state algorithms (fixed window, anchored fixed window, sliding-window counter,
# token bucket, GCRA): hit/hit_many over only these, without auto-block, use mode 4
_LEAN_CODES = frozenset((1, 2, 3, 5, 6))


def channel_kwargs(
    pool: Any, timeout: float | None, connect_timeout: float | None
) -> dict[str, Any]:
    """The pool's connection arguments with the limiter's read and connect timeouts.

    An explicit limiter timeout wins; else the client's own ``socket_timeout`` /
    ``socket_connect_timeout`` if it sets one; else :data:`DEFAULT_TIMEOUT` /
    :data:`DEFAULT_CONNECT_TIMEOUT`. A decision never waits unbounded on a hung server.
    """
    kwargs = dict(pool.connection_kwargs)
    kwargs["socket_timeout"] = effective(timeout, kwargs.get("socket_timeout"), DEFAULT_TIMEOUT)
    kwargs["socket_connect_timeout"] = effective(
        connect_timeout, kwargs.get("socket_connect_timeout"), DEFAULT_CONNECT_TIMEOUT
    )
    return kwargs


def _wrap(exc: Exception, what: str) -> StorageError:
    from cognitionos.storage._redis_common import is_unavailable

    if is_unavailable(exc):
        return BackendUnavailable(f"redis rate limiter: {what} failed: {exc}")
    return StorageError(f"redis rate limiter: {what} failed: {exc}")


def _parse_ban(raw: Any) -> BanState | None:
    if raw is None:
        return None
    parts = [int(float(x)) for x in (raw.decode() if isinstance(raw, bytes) else raw).split()]
    return BanState(parts[0], parts[1], parts[2], bool(parts[3]))


def _format_ban(ban: BanState) -> str:
    return f"{ban.until} {ban.offenses} {ban.keep_until} {int(ban.manual)}"


#: Packed single-hit commands kept per backend (bounded: caller keys can be many).
COMMAND_CACHE_SIZE = 4096


def pack_command(args: list[str] | tuple[str, ...], encoding: str = "utf-8") -> bytes:
    """RESP array of bulk strings (what redis-py sends, without its per-argument dispatch)."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode(encoding)
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


def _bulk(arg: str, encoding: str = "utf-8") -> bytes:
    data = arg.encode(encoding)
    return b"$%d\r\n%b\r\n" % (len(data), data)


#: Requests per script call of ``hit_batch``: long enough to share the call's fixed cost,
#: short enough that one call never holds the (single-threaded) server for long.
BATCH_CHUNK = 128


def _pool_of(client: Any, module: str) -> Any:
    """The client's plain connection pool, or None when a direct channel is not safe.

    Direct channels are used for ``redis.Redis`` / ``redis.asyncio.Redis`` over an ordinary
    (or blocking) pool with no client-side cache and no single-connection mode; cluster,
    sentinel and anything else go through the client's own ``execute_command``.
    """
    if type(client).__module__ != module or getattr(client, "connection", None) is not None:
        return None
    pool = getattr(client, "connection_pool", None)
    if pool is None or getattr(pool, "cache", None) is not None:
        return None
    pool_module = (
        "redis.asyncio.connection" if module.startswith("redis.asyncio") else ("redis.connection")
    )
    if type(pool).__module__ != pool_module or type(pool).__name__ not in (
        "ConnectionPool",
        "BlockingConnectionPool",
    ):
        return None
    if type(pool).__module__ != pool.connection_class.__module__:
        return None
    return pool


class _Channel:
    """Connections of our own, built like the client's pool builds them, used LIFO.

    redis-py's ``execute_command`` checks a connection out of the pool (with a poll of
    the socket), wraps the call in its retry machinery and records metrics: about 40 µs
    per command on a small VM, against ~20 µs for the round trip itself. A decision only
    needs "send these bytes, read one reply", so the backend keeps a LIFO of connections
    (one per thread in flight; ``list.pop``/``append`` are atomic) created from the pool's
    ``connection_class`` and ``connection_kwargs`` (same server, auth, TLS, protocol,
    timeouts). Any connection-level failure is retried once through the client's own
    ``execute_command``, so the client's retry policy still applies.
    """

    __slots__ = ("_free", "_kwargs", "_make", "_pid", "encoding")

    def __init__(
        self, pool: Any, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        self._make = pool.connection_class
        self._kwargs = channel_kwargs(pool, timeout, connect_timeout)
        self.encoding = str(self._kwargs.get("encoding", "utf-8"))
        self._free: list[Any] = []
        self._pid = os.getpid()

    def _connection(self) -> Any:
        if self._pid != os.getpid():
            # a forked child must not share its parent's sockets
            self._free = []
            self._pid = os.getpid()
        try:
            return self._free.pop()
        except IndexError:
            return self._make(**self._kwargs)

    def call(self, packed: bytes) -> Any:
        """Send one packed command and read its reply (errors as redis-py raises them)."""
        conn = self._connection()
        try:
            conn.send_packed_command((packed,))
            reply = conn.read_response()
        except require("redis.exceptions").ResponseError:
            self._free.append(conn)  # the reply was read in full: the connection is clean
            raise
        except BaseException:
            conn.disconnect()  # redis-py reconnects it on the next send
            self._free.append(conn)
            raise
        self._free.append(conn)
        return reply

    def pipeline(self, packed: bytes, count: int) -> list[Any]:
        """Send several packed commands at once; their replies (errors as exceptions)."""
        conn = self._connection()
        replies: list[Any] = []
        try:
            conn.send_packed_command((packed,))
            for _ in range(count):
                try:
                    replies.append(conn.read_response())
                except require("redis.exceptions").ResponseError as exc:
                    replies.append(exc)
        except BaseException:
            conn.disconnect()
            self._free.append(conn)
            raise
        self._free.append(conn)
        return replies

    def forget(self) -> None:
        """Drop every connection unclosed: in a forked child they are the parent's."""
        self._free = []
        self._pid = os.getpid()

    def close(self) -> None:
        free, self._free = self._free, []
        for conn in free:
            conn.disconnect()


class _AsyncChannel:
    """:class:`_Channel` for ``redis.asyncio``: its connections belong to one event loop.

    redis-py bounds each command with ``asyncio.wait_for`` (a new task) and a timeout
    context when ``socket_timeout`` is set: a timer armed and cancelled per command,
    which costs more than the decision. These connections are made without a socket
    timeout; instead one watchdog timer per loop, running only while commands are in
    flight, cancels any command older than ``socket_timeout`` (it notices within a
    quarter of the timeout) and the caller gets redis-py's ``TimeoutError``.
    """

    __slots__ = (
        "_deadlines",
        "_expired",
        "_free",
        "_kwargs",
        "_loop",
        "_make",
        "_timeout",
        "_watchdog",
        "encoding",
    )

    def __init__(
        self, pool: Any, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        self._make = pool.connection_class
        self._kwargs = channel_kwargs(pool, timeout, connect_timeout)
        self._timeout: float | None = self._kwargs["socket_timeout"]
        self._kwargs["socket_timeout"] = None
        self.encoding = str(self._kwargs.get("encoding", "utf-8"))
        self._free: list[Any] = []
        self._loop: Any = None
        self._deadlines: dict[Any, float] = {}
        self._expired: set[Any] = set()
        self._watchdog: Any = None

    def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # connections (and timers) of another, finished loop cannot be used here
            self._free = []
            self._deadlines, self._expired, self._watchdog = {}, set(), None
            self._loop = loop
        try:
            return self._free.pop()
        except IndexError:
            return self._make(**self._kwargs)

    def _arm(self) -> Any:
        """Register the current task's deadline; the task, or None without a timeout."""
        timeout = self._timeout
        if timeout is None:
            return None
        task = asyncio.current_task()
        self._deadlines[task] = self._loop.time() + timeout
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(timeout / 4, self._watch)
        return task

    def _watch(self) -> None:
        timeout = self._timeout
        assert timeout is not None  # armed only with a timeout
        now = self._loop.time()
        for task, deadline in list(self._deadlines.items()):
            if deadline <= now and task not in self._expired:
                self._expired.add(task)
                task.cancel()
        self._watchdog = (
            self._loop.call_later(timeout / 4, self._watch) if self._deadlines else None
        )

    async def _fail(self, conn: Any, task: Any, exc: BaseException) -> None:
        """Drop a connection whose exchange broke; a watchdog cancel becomes a TimeoutError."""
        if task is not None and task in self._expired:
            self._expired.discard(task)
            task.uncancel()
            await conn.disconnect(nowait=True)
            self._free.append(conn)
            raise require("redis.exceptions").TimeoutError("Timeout talking to redis") from exc
        await conn.disconnect(nowait=True)
        self._free.append(conn)

    async def call(self, packed: bytes) -> Any:
        """Send one packed command and read its reply."""
        conn = self._connection()
        task = self._arm()
        try:
            await conn.send_packed_command(packed, check_health=False)
            reply = await conn.read_response()
        except require("redis.exceptions").ResponseError:
            self._free.append(conn)  # the reply was read in full: the connection is clean
            raise
        except BaseException as exc:
            await self._fail(conn, task, exc)
            raise
        finally:
            if task is not None:
                self._deadlines.pop(task, None)
        self._free.append(conn)
        return reply

    async def pipeline(self, packed: bytes, count: int) -> list[Any]:
        """Send packed commands at once; their replies (error replies as exceptions)."""
        conn = self._connection()
        task = self._arm()
        replies: list[Any] = []
        try:
            await conn.send_packed_command(packed, check_health=False)
            for _ in range(count):
                try:
                    replies.append(await conn.read_response())
                except require("redis.exceptions").ResponseError as exc:
                    replies.append(exc)
        except BaseException as exc:
            await self._fail(conn, task, exc)
            raise
        finally:
            if task is not None:
                self._deadlines.pop(task, None)
        self._free.append(conn)
        return replies

    def forget(self) -> None:
        """Drop every connection and timer unclosed: in a forked child they are the parent's."""
        self._free = []
        self._deadlines, self._expired, self._watchdog = {}, set(), None
        self._loop = None

    async def aclose(self) -> None:
        free, self._free = self._free, []
        if self._loop is asyncio.get_running_loop():
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            for conn in free:
                await conn.disconnect()


class _ProtocolChannel:
    """:class:`_Channel` for ``redis.asyncio`` over :mod:`cognitionos.ratelimit._resp`.

    Connections are asyncio Protocols of the running loop, made from the pool's connection
    class and keyword arguments (server, TLS, AUTH, SELECT) and used LIFO; a request
    outliving ``socket_timeout`` fails with redis-py's ``TimeoutError`` (one deadline
    check per connection, not a timer per command), a broken connection with its
    ``ConnectionError``. Used when :func:`cognitionos.ratelimit._resp.supports` the pool's
    connection class; :class:`_AsyncChannel` otherwise.
    """

    __slots__ = ("_free", "_kwargs", "_loop", "_make", "encoding")

    def __init__(
        self, pool: Any, timeout: float | None = None, connect_timeout: float | None = None
    ) -> None:
        self._make = pool.connection_class
        self._kwargs = channel_kwargs(pool, timeout, connect_timeout)
        self.encoding = str(self._kwargs.get("encoding", "utf-8"))
        self._free: list[Any] = []
        self._loop: Any = None

    async def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # connections of another, finished loop cannot be used here
            self._free = []
            self._loop = loop
        free = self._free
        while free:
            conn = free.pop()
            if conn.usable:
                return conn
        from cognitionos.ratelimit._resp import connect

        return await connect(loop, self._make, self._kwargs)

    async def call(self, packed: bytes) -> Any:
        """Send one packed command and read its reply (error replies raised)."""
        free = self._free
        conn = free.pop() if free and self._loop is asyncio.get_running_loop() else None
        if conn is None or not conn.usable:
            conn = await self._connection()
        try:
            reply = await conn.request(packed)
        except BaseException:
            conn.close()
            raise
        self._free.append(conn)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipeline(self, packed: bytes, count: int) -> list[Any]:
        """Send packed commands at once; their replies (error replies as exceptions)."""
        conn = await self._connection()
        try:
            replies: list[Any] = await conn.request(packed, count)
        except BaseException:
            conn.close()
            raise
        self._free.append(conn)
        return replies if count > 1 else [replies]

    def forget(self) -> None:
        """Drop every connection unclosed: in a forked child they are the parent's."""
        self._free = []
        self._loop = None

    async def aclose(self) -> None:
        free, self._free = self._free, []
        for conn in free:
            conn.close()


class _RedisLayout:
    """Key naming and the translation between requests and the script's KEYS/ARGV."""

    name = "redis"

    def __init__(self, keyfn: Callable[..., str], pattern: str, server_time: bool) -> None:
        self._keyfn = keyfn
        self._ban_pattern = pattern
        self.server_time = server_time
        self._checked: set[str] = set()
        self._skeys: dict[tuple[str, str], str] = {}
        self._commands: dict[Any, tuple[bytes, tuple[str, ...]]] = {}
        self._pieces: dict[Any, tuple[bytes, bytes]] = {}
        self._lean_pieces: dict[Any, tuple[bytes, bytes]] = {}
        self._src, self._sha = lua_script()
        self._encoding = "utf-8"
        self._rex: Any = require("redis.exceptions", extra="redis")
        #: what redis-py raises on failure (cluster errors are not all RedisErrors)
        self._errs: tuple[type[Exception], ...] = (
            self._rex.RedisError,
            self._rex.RedisClusterException,
        )
        #: a RedisCluster client: hit_many's keys must share one hash slot
        self.cluster = False
        #: builds a new client of an owned asyncio cluster client (for forked children)
        self._remake: Callable[[], Any] | None = None

    def storage_key(self, spec: Spec, key: str) -> str:
        """The state key of ``key`` under ``spec``."""
        skey = self._skeys.get((spec.ident, key))
        if skey is not None:
            return skey
        if spec.ident not in self._checked:
            if (
                max(spec.amount, 2 * spec.burst) + 1
            ) * spec.period >= MAX_EXACT or spec.amount >= 10**14:
                raise ConfigurationError(
                    f"{spec.limit} is too large for exact arithmetic on Redis "
                    "(amount x period in microseconds must stay below 2**53)"
                )
            self._checked.add(spec.ident)
        skey = self._keyfn(encode_key(key), spec.ident)
        if len(key) <= MAX_KEY_LENGTH:  # bounded in bytes too: never cache a 1 MB key
            if len(self._skeys) >= COMMAND_CACHE_SIZE:
                self._skeys.clear()
            self._skeys[(spec.ident, key)] = skey
        return skey

    def check_one_slot(self, reqs: list[Request]) -> None:
        """On Redis Cluster, refuse a ``hit_many`` whose caller keys live in different slots.

        One script runs on one node, so an all-or-none charge of keys in several slots
        cannot be one atomic call; splitting it would let a concurrent caller see half a
        charge. See docs/ratelimit.md ("Redis Cluster") for why this refuses instead.
        """
        first = reqs[0]
        if all(r.key == first.key for r in reqs):
            return  # one caller key: one hash tag, one slot
        from redis.crc import key_slot

        slot = key_slot(first.skey.encode(self._encoding))
        for r in reqs:
            other = key_slot(r.skey.encode(self._encoding))
            if other != slot:
                raise ConfigurationError(
                    f"hit_many on Redis Cluster: keys {first.key!r} (slot {slot}) and "
                    f"{r.key!r} (slot {other}) live in different hash slots, so no single "
                    "script can charge them all or none. Use hit_batch (each key decided on "
                    "its own), separate hit calls, or put limits that must be charged together "
                    "on one caller key; see docs/ratelimit.md, Redis Cluster"
                )

    def ban_key(self, key: str) -> str:
        return self._keyfn(encode_key(key), "ban")

    def viol_key(self, key: str) -> str:
        return self._keyfn(encode_key(key), "viol")

    def script_call(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> tuple[list[str], list[str]]:
        """KEYS and ARGV for ``lua/decide.lua`` (ARGV pre-formatted: see the script header)."""
        t = -1 if now is None else now
        floor_ms = 0 if now is None else CLIENT_TIME_MIN_TTL_MS
        header = f"{t} {int(commit)} {len(reqs)} {floor_ms}"
        if policy is None:
            ban_args = ""
        else:
            max_ban = policy.ban_cap_us  # always capped: growth must not reach inf
            ban_args = (
                f"{policy.max_violations} {round(policy.find_window * 1e6)} "
                f"{round(policy.ban_time * 1e6)} {float(policy.growth)!r} {max_ban} "
                f"{round(policy.forget_after * 1e6)}"
            )
        keys: list[str] = []
        args = [header, ban_args]
        for r in reqs:
            s = r.spec
            # the state key ends with the spec's ident; the same head (and hash tag) + "ban"
            head = r.skey[: len(r.skey) - len(s.ident)]
            keys += [r.skey, r.skey + ":n", head + "ban", head + "viol"]
            allow = 1 if policy is not None and r.key in policy.allow_list else 0
            lease = r.lease or "-"
            args.append(f"{s.code} {s.period} {s.amount} {s.burst} {r.cost} {allow} {lease}")
        return keys, args

    def lean_script_call(self, reqs: list[Request], now: int | None) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of a mode-4 call: :meth:`script_call` with ``commit`` and no policy
        when every limit is a string-state algorithm (two keys per request, short arguments).
        """
        t = -1 if now is None else now
        floor_ms = 0 if now is None else CLIENT_TIME_MIN_TTL_MS
        keys: list[str] = []
        args = [f"{t} 4 {len(reqs)} {floor_ms}", ""]
        for r in reqs:
            s = r.spec
            # the state key ends with the spec's ident; the same head (and hash tag) + "ban"
            keys += [r.skey, r.skey[: len(r.skey) - len(s.ident)] + "ban"]
            args.append(f"{s.code} {s.period} {s.amount} {s.burst} {r.cost}")
        return keys, args

    def command(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> tuple[bytes, tuple[str, ...]]:
        """The packed ``EVALSHA`` (and its arguments, for the client's own path).

        A hit on server time without leases packs to the same bytes every time, so those
        are cached per (storage keys, costs, commit, policy).
        """
        if len(reqs) == 1:
            r = reqs[0]
            cacheable = now is None and r.lease is None
            ck: Any = (r.skey, r.cost, commit, policy)
        else:
            cacheable = now is None and all(r.lease is None for r in reqs)
            ck = (tuple([(r.skey, r.cost) for r in reqs]), commit, policy)
        if cacheable:
            hit = self._commands.get(ck)
            if hit is not None:
                return hit
        if commit and policy is None and all(r.spec.code in _LEAN_CODES for r in reqs):
            keys, args = self.lean_script_call(reqs, now)
        else:
            keys, args = self.script_call(reqs, now, commit, policy)
        argv = ("EVALSHA", self._sha, str(len(keys)), *keys, *args)
        entry = (pack_command(argv, self._encoding), argv)
        if cacheable:
            if len(self._commands) >= COMMAND_CACHE_SIZE:
                self._commands.clear()
            self._commands[ck] = entry
        return entry

    def _request_pieces(self, r: Request) -> tuple[bytes, bytes]:
        """Packed KEYS and ARGV entry of one ``hit_batch`` request (batches have no policy)."""
        ck = (r.skey, r.cost)
        pieces = self._pieces.get(ck) if r.lease is None else None
        if pieces is None:
            keys, args = self.script_call([r], None, True, None)
            enc = self._encoding
            pieces = (b"".join([_bulk(k, enc) for k in keys]), _bulk(args[2], enc))
            if r.lease is None:
                if len(self._pieces) >= COMMAND_CACHE_SIZE:
                    self._pieces.clear()
                self._pieces[ck] = pieces
        return pieces

    def batch_commands(
        self, batches: list[list[Request]], now: int | None
    ) -> list[tuple[bytes, list[list[Request]]]]:
        """``hit_batch`` as few script calls as possible (mode 2: independent groups).

        Each call covers up to :data:`BATCH_CHUNK` requests; every group (one item of the
        batch) is decided and charged on its own, exactly as separate calls in that order.
        """
        t = -1 if now is None else now
        floor_ms = 0 if now is None else CLIENT_TIME_MIN_TTL_MS
        enc = self._encoding
        head = _bulk("EVALSHA") + _bulk(self._sha)
        chunks: list[list[list[Request]]] = [[]]
        size = 0
        for reqs in batches:
            if size and size + len(reqs) > BATCH_CHUNK:
                chunks.append([])
                size = 0
            chunks[-1].append(reqs)
            size += len(reqs)
        out = []
        for chunk in chunks:
            flat = [r for reqs in chunk for r in reqs]
            pieces = [self._request_pieces(r) for r in flat]
            n = len(flat)
            out.append(
                (
                    b"".join(
                        [
                            b"*%d\r\n" % (5 + 5 * n),
                            head,
                            _bulk(str(4 * n)),
                            *[p[0] for p in pieces],
                            _bulk(f"{t} 2 {n} {floor_ms}", enc),
                            _bulk(" ".join([str(len(reqs)) for reqs in chunk]), enc),
                            *[p[1] for p in pieces],
                        ]
                    ),
                    chunk,
                )
            )
        return out

    def lean_batch_commands(self, reqs: list[Request], now: int | None) -> list[bytes]:
        """``hit_batch`` of one string-state limit per item: mode-3 script calls.

        Each request packs to two keys (state, ban record) and one short argument,
        cached per (storage key, cost); see the end of ``lua/decide.lua``.
        """
        t = -1 if now is None else now
        floor_ms = 0 if now is None else CLIENT_TIME_MIN_TTL_MS
        enc = self._encoding
        cache = self._lean_pieces
        head = _bulk("EVALSHA") + _bulk(self._sha)
        out = []
        for start in range(0, len(reqs), BATCH_CHUNK):
            chunk = reqs[start : start + BATCH_CHUNK]
            n = len(chunk)
            keys, args = [], []
            for r in chunk:
                pieces = cache.get((r.skey, r.cost))
                if pieces is None:
                    s = r.spec
                    # the state key ends with the spec's ident; the same head + "ban"
                    ban = r.skey[: len(r.skey) - len(s.ident)] + "ban"
                    pieces = (
                        _bulk(r.skey, enc) + _bulk(ban, enc),
                        _bulk(f"{s.code} {s.period} {s.amount} {s.burst} {r.cost}", enc),
                    )
                    if len(cache) >= COMMAND_CACHE_SIZE:
                        cache.clear()
                    cache[(r.skey, r.cost)] = pieces
                keys.append(pieces[0])
                args.append(pieces[1])
            out.append(
                b"".join(
                    [
                        b"*%d\r\n" % (5 + 3 * n),
                        head,
                        _bulk(str(2 * n)),
                        *keys,
                        _bulk(f"{t} 3 {n} {floor_ms}", enc),
                        b"$0\r\n\r\n",
                        *args,
                    ]
                )
            )
        return out

    @staticmethod
    def lean_batch_outcomes(reply: bytes | str, out: list[Outcome]) -> None:
        """Append the outcomes of a mode-3 reply (five integers per request) to ``out``."""
        v = reply.split()
        is_one = (b"1" if isinstance(reply, bytes) else "1").__eq__
        # one split, then each field by slicing and C-level maps (no per-request indexing)
        out += zip(
            map(is_one, v[0::5]),
            map(int, v[1::5]),
            map(int, v[2::5]),
            map(int, v[3::5]),
            map(is_one, v[4::5]),
            strict=True,
        )

    @staticmethod
    def batch_results(chunk: list[list[Request]], reply: bytes | str) -> list[Result]:
        """Split a mode-2 reply into one :class:`Result` per group."""
        v = [int(x) for x in reply.split()]
        out, pos = [], 0
        for reqs in chunk:
            end = pos + 5 * len(reqs)
            outcomes = [
                (v[i] == 1, v[i + 1], v[i + 2], v[i + 3], v[i + 4] == 1) for i in range(pos, end, 5)
            ]
            result = Result(outcomes, v[end] == 1)
            result.new_bans = v[end + 1]
            out.append(result)
            pos = end + 2
        return out

    @staticmethod
    def result(reqs: list[Request], reply: bytes | str) -> Result:
        """Decode the script's reply: space-separated integers (see the script header)."""
        if len(reqs) == 1:
            a, rem, reset, retry, banned, charged, new_bans = reply.split()[:7]
            result = Result(
                [(a == b"1" or a == "1", int(rem), int(reset), int(retry), banned in (b"1", "1"))],
                charged in (b"1", "1"),
            )
            result.new_bans = int(new_bans)
            return result
        v = [int(x) for x in reply.split()]
        n = len(reqs)
        outcomes = [
            (v[i] == 1, v[i + 1], v[i + 2], v[i + 3], v[i + 4] == 1) for i in range(0, n * 5, 5)
        ]
        result = Result(outcomes, v[n * 5] == 1)
        result.new_bans = v[n * 5 + 1]
        return result

    def decode_ban_key(self, raw: bytes | str) -> str:
        text = raw.decode() if isinstance(raw, bytes) else raw
        start, end = text.index("{") + 1, text.index("}")
        return decode_key(text[start:end])


def _layout_for(store: Any, client: Any, prefix: str, server_time: bool) -> _RedisLayout:
    if store is not None and callable(getattr(store, "key", None)):

        def keyfn(enc: str, *rest: str) -> str:
            return str(store.key(enc, prefix, *rest))

        return _RedisLayout(keyfn, store.key("*", prefix, "ban"), server_time)

    def own(enc: str, *rest: str) -> str:
        return f"{prefix}:{{{enc}}}:" + ":".join(rest)

    return _RedisLayout(own, f"{prefix}:{{*}}:ban", server_time)


class RedisBackend(_RedisLayout):
    """Synchronous Redis backend over a ``redis.Redis`` client."""

    is_async = False

    def __init__(
        self,
        client: Any,
        layout: _RedisLayout,
        *,
        owns_client: bool = False,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        super().__init__(layout._keyfn, layout._ban_pattern, layout.server_time)
        self.client = client
        self._owns = owns_client
        self.cluster = type(client).__name__ == "RedisCluster"
        pool = _pool_of(client, "redis.client")
        self._channel = _Channel(pool, timeout, connect_timeout) if pool is not None else None
        if self._channel is not None:
            self._encoding = self._channel.encoding
        #: on a cluster: direct channels to each node, script calls routed by hash slot
        self._routed: Any = None
        if self.cluster and type(client).__module__ == "redis.cluster":
            from cognitionos.ratelimit._routed import RoutedChannel

            self._routed = RoutedChannel(client, timeout, connect_timeout)
            self._encoding = self._routed.encoding
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: new connections (the client's pool also checks the pid)."""
        if self._channel is not None:
            self._channel.forget()
        if self._routed is not None:
            self._routed.forget()

    def _send(self, packed: bytes, argv: tuple[str, ...]) -> Any:
        """One EVALSHA: direct channel first; the client's own path if the connection fails."""
        rex = self._rex
        channel = self._channel
        try:
            if channel is not None:
                try:
                    return channel.call(packed)
                except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                    pass  # once more through redis-py, with the client's retry policy
            elif self._routed is not None:
                try:
                    return self._routed.call(packed, argv)
                except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                    pass  # once more through RedisCluster: its retry refreshes the slot map
            return self.client.execute_command(*argv)
        except rex.NoScriptError:
            try:
                self.client.script_load(self._src)
                return self.client.execute_command(*argv)
            except self._errs as exc:
                raise _wrap(exc, "decision") from exc
        except self._errs as exc:
            raise _wrap(exc, "decision") from exc

    def run(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """One EVALSHA deciding every request atomically."""
        if self.cluster and len(reqs) > 1:
            self.check_one_slot(reqs)
        packed, argv = self.command(reqs, now, commit, policy)
        return self.result(reqs, self._send(packed, argv))

    def run_each(self, batches: list[list[Request]], now: int | None) -> list[Result]:
        """Independent decisions for many keys in one round trip.

        Over the direct channel: a few script calls covering many groups each
        (:meth:`batch_commands`); otherwise (cluster, sentinel, ...) a pipeline of one
        script call per group, which the client routes by hash slot.
        """
        rex = self._rex
        channel = self._channel
        if channel is not None:
            chunks = self.batch_commands(batches, now)
            try:
                replies = channel.pipeline(b"".join([c[0] for c in chunks]), len(chunks))
                missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
                if missing:
                    # the script cache was flushed: those calls did not run; load and resend
                    self.client.script_load(self._src)
                    again = channel.pipeline(
                        b"".join([chunks[i][0] for i in missing]), len(missing)
                    )
                    for i, rep in zip(missing, again, strict=True):
                        replies[i] = rep
                out: list[Result] = []
                for (_, chunk), rep in zip(chunks, replies, strict=True):
                    if isinstance(rep, Exception):
                        raise _wrap(rep, "batch decision")
                    out += self.batch_results(chunk, rep)
                return out
            except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                pass  # once more through redis-py, with the client's retry policy
            except self._errs as exc:
                raise _wrap(exc, "batch decision") from exc
        calls = [self.command(reqs, now, True, None) for reqs in batches]
        replies = self._pipeline([c[1] for c in calls])
        missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
        if missing:
            # the script cache was flushed: load it and run exactly the refused commands again
            try:
                self.client.script_load(self._src)
            except self._errs as exc:
                raise _wrap(exc, "batch decision") from exc
            for i, rep in zip(missing, self._pipeline([calls[i][1] for i in missing]), strict=True):
                replies[i] = rep
        for rep in replies:
            if isinstance(rep, Exception):
                raise _wrap(rep, "batch decision")
        return [self.result(r, rep) for r, rep in zip(batches, replies, strict=True)]

    def run_single_each(self, reqs: list[Request], now: int | None) -> list[Outcome] | None:
        """Outcomes of independent one-limit hits (string-state algorithms) in one round trip.

        None when there is no direct channel (or it failed): the caller then uses
        :meth:`run_each`, which also goes through the client's own path.
        """
        channel = self._channel
        if channel is None:
            return None
        rex = self._rex
        chunks = self.lean_batch_commands(reqs, now)
        try:
            replies = channel.pipeline(b"".join(chunks), len(chunks))
            missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
            if missing:
                # the script cache was flushed: those calls did not run; load and resend
                self.client.script_load(self._src)
                again = channel.pipeline(b"".join([chunks[i] for i in missing]), len(missing))
                for i, rep in zip(missing, again, strict=True):
                    replies[i] = rep
        except rex.ConnectionError:  # a timeout is not retried: it would wait twice
            return None  # once more through redis-py, with the client's retry policy
        except self._errs as exc:
            raise _wrap(exc, "batch decision") from exc
        out: list[Outcome] = []
        for rep in replies:
            if isinstance(rep, Exception):
                raise _wrap(rep, "batch decision")
            self.lean_batch_outcomes(rep, out)
        return out

    def _pipeline(self, argvs: list[tuple[str, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for argv in argvs:
            pipe.execute_command(*argv)
        try:
            return list(pipe.execute(raise_on_error=False))
        except self._errs as exc:
            raise _wrap(exc, "batch decision") from exc

    def time_us(self, clock_now: int) -> int:
        """Server time (µs), or the limiter's clock when ``server_time`` is off."""
        if not self.server_time:
            return clock_now
        try:
            sec, usec = self.client.time()
        except self._errs as exc:
            raise _wrap(exc, "TIME") from exc
        return int(sec) * 1_000_000 + int(usec)

    def release(self, spec: Spec, key: str, lease: str, now: int) -> bool:
        """Remove a concurrency lease; True if it was still live."""
        skey = self.storage_key(spec, key)
        try:
            for member, score in self.client.zrange(skey, 0, -1, withscores=True):
                text = member.decode()
                if text.rsplit(":", 1)[0] == lease:
                    self.client.zrem(skey, member)
                    return bool(score > self.time_us(now))
        except self._errs as exc:
            raise _wrap(exc, "release") from exc
        return False

    def reset(self, skeys: list[str]) -> None:
        """Delete the state (and sliding-log totals) of these keys."""
        if skeys:
            try:
                self.client.delete(*skeys, *(k + ":n" for k in skeys))
            except self._errs as exc:
                raise _wrap(exc, "reset") from exc

    def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``."""
        try:
            return _parse_ban(self.client.get(self.ban_key(key)))
        except self._errs as exc:
            raise _wrap(exc, "get ban") from exc

    def set_ban(self, key: str, ban: BanState | None, now: int) -> None:
        """Write or delete a ban record (and forget violations)."""
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.viol_key(key))
            if ban is None:
                pipe.delete(self.ban_key(key))
            else:
                ttl_ms = max(1, -(-(ban.keep_until - now) // 1000))
                if not self.server_time:
                    ttl_ms = max(ttl_ms, CLIENT_TIME_MIN_TTL_MS)
                pipe.set(self.ban_key(key), _format_ban(ban), px=ttl_ms)
            pipe.execute()
        except self._errs as exc:
            raise _wrap(exc, "ban") from exc

    def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Bans in force (SCAN over the ban keys)."""
        out = []
        try:
            for raw in self.client.scan_iter(match=self._ban_pattern, count=1000):
                ban = _parse_ban(self.client.get(raw))
                if ban is not None and ban.until > now:
                    out.append((self.decode_ban_key(raw), ban))
        except self._errs as exc:
            raise _wrap(exc, "list bans") from exc
        return sorted(out)

    def close(self) -> None:
        """Close this backend's connections (and the client if this backend opened it)."""
        if self._channel is not None:
            self._channel.close()
        if self._routed is not None:
            self._routed.close()
        if self._owns:
            self.client.close()


class AsyncRedisBackend(_RedisLayout):
    """The same script through ``redis.asyncio``."""

    is_async = True

    def __init__(
        self,
        client: Any,
        layout: _RedisLayout,
        *,
        owns_client: bool = False,
        timeout: float | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        super().__init__(layout._keyfn, layout._ban_pattern, layout.server_time)
        self.client = client
        self._owns = owns_client
        self.cluster = type(client).__name__ == "RedisCluster"
        pool = _pool_of(client, "redis.asyncio.client")
        self._channel: _ProtocolChannel | _AsyncChannel | None = None
        if pool is not None:
            from cognitionos.ratelimit._resp import supports

            if supports(pool.connection_class, pool.connection_kwargs):
                self._channel = _ProtocolChannel(pool, timeout, connect_timeout)
            else:
                self._channel = _AsyncChannel(pool, timeout, connect_timeout)
        if self._channel is not None:
            self._encoding = self._channel.encoding
        #: on a cluster: direct channels to each node, script calls routed by hash slot
        self._routed: Any = None
        if self.cluster and type(client).__module__ == "redis.asyncio.cluster":
            from cognitionos.ratelimit._resp import supports

            kwargs = dict(getattr(client, "connection_kwargs", None) or {})
            connection_class = kwargs.pop("connection_class", None)
            if connection_class is not None and supports(connection_class, kwargs):
                from cognitionos.ratelimit._routed import AsyncRoutedChannel

                self._routed = AsyncRoutedChannel(client, timeout, connect_timeout)
                self._encoding = self._routed.encoding
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: no parent socket is used again (redis.asyncio pools do not
        check the pid; the channels' connections belong to the parent's event loop)."""
        pool = getattr(self.client, "connection_pool", None)
        if pool is not None and hasattr(pool, "reset"):
            pool.reset()
        if self._remake is not None:
            # a redis.asyncio cluster client's locks and nodes belong to the parent's loop
            self.client = self._remake()
        if self._channel is not None:
            self._channel.forget()
        if self._routed is not None:
            self._routed.forget(self.client)

    async def run(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """One EVALSHA deciding every request atomically."""
        rex = self._rex
        if self.cluster and len(reqs) > 1:
            self.check_one_slot(reqs)
        packed, argv = self.command(reqs, now, commit, policy)
        channel = self._channel
        try:
            try:
                if channel is not None:
                    try:
                        return self.result(reqs, await channel.call(packed))
                    except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                        pass  # once more through redis-py, with the client's retry policy
                elif self._routed is not None:
                    try:
                        return self.result(reqs, await self._routed.call(packed, argv))
                    except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                        pass  # once more through RedisCluster: its retry refreshes the slot map
                reply = await self.client.execute_command(*argv)
            except rex.NoScriptError:
                await self.client.script_load(self._src)
                reply = await self.client.execute_command(*argv)
        except self._errs as exc:
            raise _wrap(exc, "decision") from exc
        return self.result(reqs, reply)

    async def run_each(self, batches: list[list[Request]], now: int | None) -> list[Result]:
        """Independent decisions for many keys in one round trip (see the sync twin)."""
        rex = self._rex
        channel = self._channel
        if channel is not None:
            chunks = self.batch_commands(batches, now)
            try:
                replies = await channel.pipeline(b"".join([c[0] for c in chunks]), len(chunks))
                missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
                if missing:
                    await self.client.script_load(self._src)
                    again = await channel.pipeline(
                        b"".join([chunks[i][0] for i in missing]), len(missing)
                    )
                    for i, rep in zip(missing, again, strict=True):
                        replies[i] = rep
                out: list[Result] = []
                for (_, chunk), rep in zip(chunks, replies, strict=True):
                    if isinstance(rep, Exception):
                        raise _wrap(rep, "batch decision")
                    out += self.batch_results(chunk, rep)
                return out
            except rex.ConnectionError:  # a timeout is not retried: it would wait twice
                pass  # once more through redis-py, with the client's retry policy
            except self._errs as exc:
                raise _wrap(exc, "batch decision") from exc
        calls = [self.command(reqs, now, True, None) for reqs in batches]
        replies = await self._pipeline([c[1] for c in calls])
        missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
        if missing:
            try:
                await self.client.script_load(self._src)
            except self._errs as exc:
                raise _wrap(exc, "batch decision") from exc
            again = await self._pipeline([calls[i][1] for i in missing])
            for i, rep in zip(missing, again, strict=True):
                replies[i] = rep
        for rep in replies:
            if isinstance(rep, Exception):
                raise _wrap(rep, "batch decision")
        return [self.result(r, rep) for r, rep in zip(batches, replies, strict=True)]

    async def run_single_each(self, reqs: list[Request], now: int | None) -> list[Outcome] | None:
        """Outcomes of independent one-limit hits in one round trip (see the sync twin)."""
        channel = self._channel
        if channel is None:
            return None
        rex = self._rex
        chunks = self.lean_batch_commands(reqs, now)
        try:
            replies = await channel.pipeline(b"".join(chunks), len(chunks))
            missing = [i for i, rep in enumerate(replies) if isinstance(rep, rex.NoScriptError)]
            if missing:
                await self.client.script_load(self._src)
                again = await channel.pipeline(b"".join([chunks[i] for i in missing]), len(missing))
                for i, rep in zip(missing, again, strict=True):
                    replies[i] = rep
        except rex.ConnectionError:  # a timeout is not retried: it would wait twice
            return None  # once more through redis-py, with the client's retry policy
        except self._errs as exc:
            raise _wrap(exc, "batch decision") from exc
        out: list[Outcome] = []
        for rep in replies:
            if isinstance(rep, Exception):
                raise _wrap(rep, "batch decision")
            self.lean_batch_outcomes(rep, out)
        return out

    async def _pipeline(self, argvs: list[tuple[str, ...]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for argv in argvs:
            pipe.execute_command(*argv)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except self._errs as exc:
            raise _wrap(exc, "batch decision") from exc

    async def time_us(self, clock_now: int) -> int:
        """Server time (µs), or the limiter's clock when ``server_time`` is off."""
        if not self.server_time:
            return clock_now
        try:
            sec, usec = await self.client.time()
        except self._errs as exc:
            raise _wrap(exc, "TIME") from exc
        return int(sec) * 1_000_000 + int(usec)

    async def release(self, spec: Spec, key: str, lease: str, now: int) -> bool:
        """Remove a concurrency lease; True if it was still live."""
        skey = self.storage_key(spec, key)
        try:
            for member, score in await self.client.zrange(skey, 0, -1, withscores=True):
                if member.decode().rsplit(":", 1)[0] == lease:
                    await self.client.zrem(skey, member)
                    return bool(score > await self.time_us(now))
        except self._errs as exc:
            raise _wrap(exc, "release") from exc
        return False

    async def reset(self, skeys: list[str]) -> None:
        """Delete the state (and sliding-log totals) of these keys."""
        if skeys:
            try:
                await self.client.delete(*skeys, *(k + ":n" for k in skeys))
            except self._errs as exc:
                raise _wrap(exc, "reset") from exc

    async def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``."""
        try:
            return _parse_ban(await self.client.get(self.ban_key(key)))
        except self._errs as exc:
            raise _wrap(exc, "get ban") from exc

    async def set_ban(self, key: str, ban: BanState | None, now: int) -> None:
        """Write or delete a ban record (and forget violations)."""
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.delete(self.viol_key(key))
            if ban is None:
                pipe.delete(self.ban_key(key))
            else:
                ttl_ms = max(1, -(-(ban.keep_until - now) // 1000))
                if not self.server_time:
                    ttl_ms = max(ttl_ms, CLIENT_TIME_MIN_TTL_MS)
                pipe.set(self.ban_key(key), _format_ban(ban), px=ttl_ms)
            await pipe.execute()
        except self._errs as exc:
            raise _wrap(exc, "ban") from exc

    async def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Bans in force (SCAN over the ban keys)."""
        out = []
        try:
            async for raw in self.client.scan_iter(match=self._ban_pattern, count=1000):
                ban = _parse_ban(await self.client.get(raw))
                if ban is not None and ban.until > now:
                    out.append((self.decode_ban_key(raw), ban))
        except self._errs as exc:
            raise _wrap(exc, "list bans") from exc
        return sorted(out)

    async def aclose(self) -> None:
        """Close this backend's connections (and the client if this backend opened it)."""
        if self._channel is not None:
            await self._channel.aclose()
        if self._routed is not None:
            await self._routed.aclose()
        if self._owns:
            await self.client.aclose()


def redis_backend_from_store(
    store: Any,
    *,
    prefix: str,
    asynchronous: bool,
    timeout: float | None = None,
    connect_timeout: float | None = None,
) -> RedisBackend | AsyncRedisBackend:
    """Backend over a cognitionos Redis store (its client and key layout) or a bare client."""
    owner = store if getattr(store, "backend", None) == "redis" else None
    client = store.client if owner is not None else store
    layout = _layout_for(owner, client, prefix, True)
    is_async_client = type(client).__module__.startswith("redis.asyncio")
    if asynchronous != is_async_client:
        want = "redis.asyncio.Redis" if asynchronous else "redis.Redis"
        raise ConfigurationError(f"this limiter needs a {want} client, got {type(client).__name__}")
    if asynchronous:
        return AsyncRedisBackend(client, layout, timeout=timeout, connect_timeout=connect_timeout)
    return RedisBackend(client, layout, timeout=timeout, connect_timeout=connect_timeout)


def redis_backend_from_url(
    url: str,
    *,
    prefix: str,
    asynchronous: bool,
    timeout: float | None = None,
    connect_timeout: float | None = None,
) -> RedisBackend | AsyncRedisBackend:
    """Open a client for ``url`` owned (and closed) by the backend.

    The client gets the limiter's timeouts (``socket_timeout`` / ``socket_connect_timeout``
    in the URL's query win), so its own calls (bans, reset, retries) are bounded too.
    """
    redis = require("redis", extra="redis", purpose="the Redis rate limiter")
    read = effective(timeout, None, DEFAULT_TIMEOUT)
    connect = effective(connect_timeout, None, DEFAULT_CONNECT_TIMEOUT)
    from cognitionos.storage._url import parse_url

    parsed = parse_url(url)
    if parsed.is_cluster:
        return _cluster_backend(parsed, prefix, asynchronous, timeout, connect_timeout)
    if asynchronous:
        require("redis.asyncio", extra="redis")
        aclient = redis.asyncio.Redis.from_url(
            url, socket_timeout=read, socket_connect_timeout=connect
        )
        return AsyncRedisBackend(
            aclient,
            _layout_for(None, aclient, prefix, True),
            owns_client=True,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
    client = redis.Redis.from_url(url, socket_timeout=read, socket_connect_timeout=connect)
    return RedisBackend(
        client,
        _layout_for(None, client, prefix, True),
        owns_client=True,
        timeout=timeout,
        connect_timeout=connect_timeout,
    )


#: Retries of one command by redis-py's cluster client after a connection error (each one
#: after it refreshed its slot map). One: a call made just as a replica was promoted finds
#: the new primary; more would multiply the time a call can wait on a dead node.
CLUSTER_RETRIES = 1


def _cluster_backend(
    url: Any,
    prefix: str,
    asynchronous: bool,
    timeout: float | None,
    connect_timeout: float | None,
) -> RedisBackend | AsyncRedisBackend:
    """A backend over redis-py's ``RedisCluster`` for a ``redis+cluster://`` URL.

    Decisions go through direct channels to the nodes, routed by the hash slot of their
    keys in the client's slot map (:mod:`cognitionos.ratelimit._routed`: it follows
    MOVED/ASK/TRYAGAIN); a connection failure there is sent once more through the cluster
    client, whose retry refreshes the map.
    A timeout is never retried, so one call waits at most about
    ``(1 + CLUSTER_RETRIES) x (connect_timeout + timeout)`` before ``on_backend_error``.
    """
    from redis.backoff import NoBackoff

    from cognitionos.storage._redis_common import cluster_client, redis_errors

    # the asyncio client takes its own Retry class (redis-py >= 8 warns about a sync one)
    retry: Any
    if asynchronous:
        from redis.asyncio.retry import Retry as AsyncRetry

        retry = AsyncRetry(NoBackoff(), CLUSTER_RETRIES)
    else:
        from redis.retry import Retry

        retry = Retry(NoBackoff(), CLUSTER_RETRIES)
    options = {
        "socket_timeout": effective(timeout, None, DEFAULT_TIMEOUT),
        "socket_connect_timeout": effective(connect_timeout, None, DEFAULT_CONNECT_TIMEOUT),
        "retry": retry,
    }
    for name in ("socket_timeout", "socket_connect_timeout"):
        if name in url.query:  # the URL's own setting wins, as for redis://
            del options[name]
    try:
        client = cluster_client(url, url.raw, asynchronous=asynchronous, **options)
    except redis_errors() as exc:
        raise _wrap(exc, "connect") from exc
    layout = _layout_for(None, client, prefix, True)
    cls = AsyncRedisBackend if asynchronous else RedisBackend
    backend = cls(
        client,
        layout,
        owns_client=True,
        timeout=timeout,
        connect_timeout=connect_timeout,
    )
    if asynchronous:
        backend._remake = lambda: cluster_client(url, url.raw, asynchronous=True, **options)
    return backend
