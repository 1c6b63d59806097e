"""The asynchronous twin: :class:`AsyncRateLimiter`, same methods as coroutines.

Redis runs the same Lua script through ``redis.asyncio``; the memory backend is
called inline (it never blocks on I/O); SQL runs its transaction in a worker
thread so the event loop never waits on the database driver::

    limiter = AsyncRateLimiter("redis://localhost:6379/0", algorithm="gcra")
    d = await limiter.hit(Limit.parse("100/minute"), "tenant:acme")
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from cognitionos.clock import Clock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.metrics import CounterSet
from cognitionos.ratelimit._batch import Request
from cognitionos.ratelimit._keys import check_key
from cognitionos.ratelimit._memory import MemoryBackend
from cognitionos.ratelimit.engine import (
    HitItem,
    LimitLike,
    OnBackendError,
    _Shared,
    _time_ns,
    resolve_backend,
    to_ban,
)
from cognitionos.ratelimit.models import Algorithm, Ban, BanPolicy, Decision

if TYPE_CHECKING:
    from cognitionos.ratelimit._lease import LeasePolicy

__all__ = ["AsyncRateLimiter"]

_SLOW = object()


def _slow(limit: Any, key: Any, cost: Any) -> Any:
    """The memory fast path hands back this marker when the general path must decide."""
    return _SLOW


class AsyncRateLimiter:
    """Async twin of :class:`~cognitionos.ratelimit.RateLimiter`; see it for the arguments::

    limiter = AsyncRateLimiter("memory://", algorithm="token_bucket")
    d = await limiter.hit(Limit(amount=10, period=1), "ip:1.2.3.4")
    """

    def __init__(
        self,
        store: Any = "memory://",
        *,
        algorithm: Algorithm | str = Algorithm.FIXED_WINDOW,
        clock: Clock | None = None,
        ban_policy: BanPolicy | None = None,
        shadow: bool = False,
        on_backend_error: OnBackendError = "raise",
        retry_backend_after: float = 1.0,
        prefix: str = "rl",
        server_time: bool = True,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        lease: LeasePolicy | None = None,
    ) -> None:
        backend = resolve_backend(
            store,
            prefix=prefix,
            asynchronous=True,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        if hasattr(backend, "server_time") and not isinstance(backend, MemoryBackend):
            backend.server_time = backend.server_time and server_time
        self._s = _Shared(
            backend,
            algorithm=algorithm,
            clock=clock,
            ban_policy=ban_policy,
            shadow=shadow,
            on_backend_error=on_backend_error,
            retry_backend_after=retry_backend_after,
        )
        self._backend = backend
        self._fast_hit = (
            backend.fast_hit(
                self._s._single,
                _time_ns(self._s.clock),
                self._s.count.allowed,
                self._s.count.refused,
                _slow,
            )
            if self._s.fast
            else None
        )
        self._inline = isinstance(backend, MemoryBackend)
        self._native = bool(getattr(backend, "is_async", False))
        self._lease: Any = None
        self._lease_hit: Any = None
        if lease is not None:  # leased quotas: see cognitionos/ratelimit/_lease.py
            from cognitionos.ratelimit._lease import leased_hits

            self._lease = leased_hits(self._s, backend, lease, self._slow_hit, asynchronous=True)
            self._lease_hit = self._lease.make_hit(self._lease.arenew)

    @property
    def algorithm(self) -> Algorithm:
        """The algorithm every limit of this limiter is enforced with."""
        return self._s.algorithm

    @property
    def clock(self) -> Clock:
        """The clock decisions are made with (also used for epoch headers)."""
        return self._s.clock

    @property
    def backend(self) -> str:
        """Backend name: ``memory``, ``redis``, ``sqlite`` or ``postgresql``."""
        return str(self._backend.name)

    @property
    def counters(self) -> CounterSet:
        """Totals of decisions, refusals, bans and backend errors (read at scrape time)."""
        return self._s.counters

    async def _call(self, method: str, *args: Any) -> Any:
        fn = getattr(self._backend, method)
        if self._inline:
            return fn(*args)
        if self._native:
            return await fn(*args)
        anyio = __import__("anyio")
        return await anyio.to_thread.run_sync(functools.partial(fn, *args))

    async def _run(self, reqs: list[Request], *, commit: bool) -> Decision:
        s = self._s
        if s.backend_down_until and s.breaker_open():
            return s.fallback(None, reqs, commit)
        backend = self._backend
        now = None if backend.server_time else s.now_us()
        policy = s.ban_policy if commit else None
        try:
            if self._native:
                result = await backend.run(reqs, now, commit, policy)
            else:
                result = await self._call("run", reqs, now, commit, policy)
        except StorageError as exc:
            return s.fallback(exc, reqs, commit)
        s.backend_down_until = 0
        return s.combine(reqs, result, commit)

    async def hit(self, limit: LimitLike, key: str, cost: int = 1) -> Decision:
        """Charge ``cost`` against ``limit`` for ``key`` if it fits; say whether it did."""
        if self._lease_hit is not None:
            d = self._lease_hit(limit, key, cost)
            return d if type(d) is Decision else await d  # type: ignore[no-any-return]
        fast = self._fast_hit
        if fast is not None:
            decision = fast(limit, key, cost)
            if decision is not _SLOW:
                return decision  # type: ignore[no-any-return]
        return await self._run(self._s._requests_for(limit, key, cost), commit=True)

    async def _slow_hit(self, limit: LimitLike, key: str, cost: int) -> Decision:
        return await self._run(self._s._requests_for(limit, key, cost), commit=True)

    async def hit_many(self, items: Iterable[HitItem]) -> Decision:
        """Charge every ``(limit, key[, cost])`` or none of them; one atomic backend call."""
        return await self._run(self._s.requests(items), commit=True)

    async def hit_batch(self, items: Iterable[HitItem]) -> list[Decision]:
        """Independent hits for many keys; on Redis one pipelined round trip for all of them."""
        s = self._s
        batches = s.batch_requests(items)
        if not batches:
            return []
        if not self._native or s.ban_policy is not None or s.breaker_open():
            return [await self._run(reqs, commit=True) for reqs in batches]
        backend = self._backend
        now = None if backend.server_time else s.now_us()
        try:
            lean = getattr(backend, "run_single_each", None)
            flat = s.single_requests(batches) if lean is not None else None
            if lean is not None and flat is not None:
                outcomes = await lean(flat, now)
                if outcomes is not None:
                    return s.lean_decisions(flat, outcomes)
            results = await backend.run_each(batches, now)
        except StorageError as exc:
            return [
                s.fallback(exc if i == 0 else None, reqs, True) for i, reqs in enumerate(batches)
            ]
        return [s.combine(reqs, r, True) for reqs, r in zip(batches, results, strict=True)]

    async def test(self, limit: LimitLike, key: str, cost: int = 1) -> Decision:
        """Would ``hit`` admit this now? Charges nothing and records no violation."""
        return await self._run(self._s._requests_for(limit, key, cost), commit=False)

    async def stats(self, limit: LimitLike, key: str) -> Decision:
        """Current usage of ``key`` under ``limit`` (a zero-cost look)."""
        return await self._run(self._s._requests_for(limit, key, 0), commit=False)

    async def reset(self, limit: LimitLike, key: str) -> None:
        """Forget ``key``'s usage under ``limit``."""
        s = self._s
        check_key(key)
        if self._lease is not None:
            await self._lease.aforget(s.specs(limit), key)
        await self._call("reset", [s.skey(spec, key) for spec in s.specs(limit)])

    async def release(self, decision: Decision) -> bool:
        """Give back a concurrency lease taken by :meth:`hit`; False if it had expired."""
        if decision.lease is None or decision.policy is None:
            return False
        spec = self._s.specs(decision.policy)[0]
        if spec.code != 7:
            raise ConfigurationError("release() applies to the concurrency algorithm only")
        return bool(
            await self._call("release", spec, decision.key, decision.lease, self._s.now_us())
        )

    @contextlib.asynccontextmanager
    async def lease(self, limit: LimitLike, key: str, cost: int = 1) -> AsyncIterator[Decision]:
        """Hold a concurrency lease for the ``async with`` block."""
        decision = await self.hit(limit, key, cost)
        try:
            yield decision
        finally:
            if decision.allowed and decision.lease is not None:
                await self.release(decision)

    async def ban(self, key: str, seconds: float) -> Ban:
        """Ban ``key`` for ``seconds`` on every host sharing the store."""
        check_key(key)
        now = await self._call("time_us", self._s.now_us())
        record = self._s.ban_record(key, seconds, await self._call("get_ban", key), now)
        await self._call("set_ban", key, record, now)
        return to_ban(key, record, now)

    async def unban(self, key: str) -> bool:
        """Lift ``key``'s ban and forget its violations; True if it was banned."""
        check_key(key)
        now = await self._call("time_us", self._s.now_us())
        old = await self._call("get_ban", key)
        await self._call("set_ban", key, None, now)
        return old is not None and bool(old.until > now)

    async def bans(self) -> list[Ban]:
        """Keys banned right now, with time remaining and offense count."""
        now = await self._call("time_us", self._s.now_us())
        return [to_ban(k, b, now) for k, b in await self._call("list_bans", now)]

    def lease_stats(self) -> dict[str, int]:
        """With ``lease=``: this process's local decisions, round trips, slices, returns
        and quota held unused; empty without leasing."""
        return self._lease.stats() if self._lease is not None else {}

    async def aclose(self) -> None:
        """Hand back unused leased slices, then release backend connections."""
        if self._lease is not None:
            await self._lease.aclose()
        if self._native:
            await self._backend.aclose()
        else:
            self._backend.close()

    async def __aenter__(self) -> AsyncRateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
