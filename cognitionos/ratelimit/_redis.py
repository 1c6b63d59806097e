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

import hashlib
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import unquote

from cognitionos._optional import require
from cognitionos.errors import BackendUnavailable, ConfigurationError, StorageError
from cognitionos.ratelimit._batch import BanState, Request, Result, Spec
from cognitionos.ratelimit._keys import encode_key
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


def _wrap(exc: Exception, what: str) -> StorageError:
    rex = require("redis.exceptions", extra="redis")
    if isinstance(exc, rex.ConnectionError | rex.TimeoutError | rex.AuthenticationError):
        return BackendUnavailable(f"redis rate limiter: {what} failed: {exc}")
    return StorageError(f"redis rate limiter: {what} failed: {exc}")


def _parse_ban(raw: Any) -> BanState | None:
    if raw is None:
        return None
    parts = [int(float(x)) for x in (raw.decode() if isinstance(raw, bytes) else raw).split()]
    return BanState(parts[0], parts[1], parts[2], bool(parts[3]))


def _format_ban(ban: BanState) -> str:
    return f"{ban.until} {ban.offenses} {ban.keep_until} {int(ban.manual)}"


class _RedisLayout:
    """Key naming and the translation between requests and the script's KEYS/ARGV."""

    name = "redis"

    def __init__(self, keyfn: Callable[..., str], pattern: str, server_time: bool) -> None:
        self._keyfn = keyfn
        self._ban_pattern = pattern
        self.server_time = server_time
        self._checked: set[str] = set()

    def storage_key(self, spec: Spec, key: str) -> str:
        """The state key of ``key`` under ``spec``."""
        if spec.ident not in self._checked:
            if (
                max(spec.amount, 2 * spec.burst) + 1
            ) * spec.period >= MAX_EXACT or spec.amount >= 10**14:
                raise ConfigurationError(
                    f"{spec.limit} is too large for exact arithmetic on Redis "
                    "(amount x period in microseconds must stay below 2**53)"
                )
            self._checked.add(spec.ident)
        return self._keyfn(encode_key(key), spec.ident)

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
            max_ban = -1 if policy.max_ban_time is None else round(policy.max_ban_time * 1e6)
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

    @staticmethod
    def result(reqs: list[Request], reply: bytes | str) -> Result:
        """Decode the script's reply: space-separated integers (see the script header)."""
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
        return unquote(text[start:end])


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

    def __init__(self, client: Any, layout: _RedisLayout, *, owns_client: bool = False) -> None:
        super().__init__(layout._keyfn, layout._ban_pattern, layout.server_time)
        self.client = client
        self._owns = owns_client
        self._src, self._sha = lua_script()

    def _eval(self, keys: list[str], args: list[Any]) -> Any:
        rex = require("redis.exceptions", extra="redis")
        try:
            try:
                return self.client.evalsha(self._sha, len(keys), *keys, *args)
            except rex.NoScriptError:
                self.client.script_load(self._src)
                return self.client.evalsha(self._sha, len(keys), *keys, *args)
        except rex.RedisError as exc:
            raise _wrap(exc, "decision") from exc

    def run(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """One EVALSHA deciding every request atomically."""
        keys, args = self.script_call(reqs, now, commit, policy)
        return self.result(reqs, self._eval(keys, args))

    def run_each(self, batches: list[list[Request]], now: int | None) -> list[Result]:
        """Independent decisions for many keys in one pipelined round trip."""
        rex = require("redis.exceptions", extra="redis")
        calls = [self.script_call(reqs, now, True, None) for reqs in batches]
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            try:
                replies = pipe.execute()
                return [self.result(r, rep) for r, rep in zip(batches, replies, strict=True)]
            except rex.NoScriptError:
                if attempt:
                    raise
                self.client.script_load(self._src)
            except rex.RedisError as exc:
                raise _wrap(exc, "batch decision") from exc
        raise AssertionError("unreachable")

    def time_us(self, clock_now: int) -> int:
        """Server time (µs), or the limiter's clock when ``server_time`` is off."""
        if not self.server_time:
            return clock_now
        try:
            sec, usec = self.client.time()
        except require("redis.exceptions").RedisError as exc:
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
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "release") from exc
        return False

    def reset(self, skeys: list[str]) -> None:
        """Delete the state (and sliding-log totals) of these keys."""
        if skeys:
            try:
                self.client.delete(*skeys, *(k + ":n" for k in skeys))
            except require("redis.exceptions").RedisError as exc:
                raise _wrap(exc, "reset") from exc

    def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``."""
        try:
            return _parse_ban(self.client.get(self.ban_key(key)))
        except require("redis.exceptions").RedisError as exc:
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
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "ban") from exc

    def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Bans in force (SCAN over the ban keys)."""
        out = []
        try:
            for raw in self.client.scan_iter(match=self._ban_pattern, count=1000):
                ban = _parse_ban(self.client.get(raw))
                if ban is not None and ban.until > now:
                    out.append((self.decode_ban_key(raw), ban))
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "list bans") from exc
        return sorted(out)

    def close(self) -> None:
        """Close the client if this backend opened it."""
        if self._owns:
            self.client.close()


class AsyncRedisBackend(_RedisLayout):
    """The same script through ``redis.asyncio``."""

    is_async = True

    def __init__(self, client: Any, layout: _RedisLayout, *, owns_client: bool = False) -> None:
        super().__init__(layout._keyfn, layout._ban_pattern, layout.server_time)
        self.client = client
        self._owns = owns_client
        self._src, self._sha = lua_script()

    async def run(
        self, reqs: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """One EVALSHA deciding every request atomically."""
        rex = require("redis.exceptions", extra="redis")
        keys, args = self.script_call(reqs, now, commit, policy)
        try:
            try:
                reply = await self.client.evalsha(self._sha, len(keys), *keys, *args)
            except rex.NoScriptError:
                await self.client.script_load(self._src)
                reply = await self.client.evalsha(self._sha, len(keys), *keys, *args)
        except rex.RedisError as exc:
            raise _wrap(exc, "decision") from exc
        return self.result(reqs, reply)

    async def run_each(self, batches: list[list[Request]], now: int | None) -> list[Result]:
        """Independent decisions for many keys in one pipelined round trip."""
        rex = require("redis.exceptions", extra="redis")
        calls = [self.script_call(reqs, now, True, None) for reqs in batches]
        for attempt in range(2):
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(self._sha, len(keys), *keys, *args)
            try:
                replies = await pipe.execute()
                return [self.result(r, rep) for r, rep in zip(batches, replies, strict=True)]
            except rex.NoScriptError:
                if attempt:
                    raise
                await self.client.script_load(self._src)
            except rex.RedisError as exc:
                raise _wrap(exc, "batch decision") from exc
        raise AssertionError("unreachable")

    async def time_us(self, clock_now: int) -> int:
        """Server time (µs), or the limiter's clock when ``server_time`` is off."""
        if not self.server_time:
            return clock_now
        try:
            sec, usec = await self.client.time()
        except require("redis.exceptions").RedisError as exc:
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
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "release") from exc
        return False

    async def reset(self, skeys: list[str]) -> None:
        """Delete the state (and sliding-log totals) of these keys."""
        if skeys:
            try:
                await self.client.delete(*skeys, *(k + ":n" for k in skeys))
            except require("redis.exceptions").RedisError as exc:
                raise _wrap(exc, "reset") from exc

    async def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``."""
        try:
            return _parse_ban(await self.client.get(self.ban_key(key)))
        except require("redis.exceptions").RedisError as exc:
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
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "ban") from exc

    async def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Bans in force (SCAN over the ban keys)."""
        out = []
        try:
            async for raw in self.client.scan_iter(match=self._ban_pattern, count=1000):
                ban = _parse_ban(await self.client.get(raw))
                if ban is not None and ban.until > now:
                    out.append((self.decode_ban_key(raw), ban))
        except require("redis.exceptions").RedisError as exc:
            raise _wrap(exc, "list bans") from exc
        return sorted(out)

    async def aclose(self) -> None:
        """Close the client if this backend opened it."""
        if self._owns:
            await self.client.aclose()


def redis_backend_from_store(
    store: Any, *, prefix: str, asynchronous: bool
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
        return AsyncRedisBackend(client, layout)
    return RedisBackend(client, layout)


def redis_backend_from_url(
    url: str, *, prefix: str, asynchronous: bool
) -> RedisBackend | AsyncRedisBackend:
    """Open a client for ``url`` owned (and closed) by the backend."""
    redis = require("redis", extra="redis", purpose="the Redis rate limiter")
    if asynchronous:
        require("redis.asyncio", extra="redis")
        client = redis.asyncio.Redis.from_url(url)
        return AsyncRedisBackend(client, _layout_for(None, client, prefix, True), owns_client=True)
    client = redis.Redis.from_url(url)
    return RedisBackend(client, _layout_for(None, client, prefix, True), owns_client=True)
