"""The synchronous rate limiter: :class:`RateLimiter`.

It turns ``(limit, key, cost)`` into storage requests, lets the backend decide
atomically, and answers with :class:`~cognitionos.ratelimit.models.Decision`::

    limiter = RateLimiter("memory://", algorithm="sliding_window")
    d = limiter.hit(Limit.parse("100/minute"), "tenant:acme")
    d.allowed, d.remaining, d.retry_after
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.metrics import CounterSet
from cognitionos.ratelimit._batch import BanState, Outcome, Request, Result, Spec, compile_spec
from cognitionos.ratelimit._keys import MAX_KEY_LENGTH, check_key
from cognitionos.ratelimit._memory import MemoryBackend
from cognitionos.ratelimit._timeouts import check_timeout
from cognitionos.ratelimit.models import Algorithm, Ban, BanPolicy, Decision, Limit, _seconds

if TYPE_CHECKING:
    from cognitionos.ratelimit._lease import LeasePolicy

__all__ = ["HitItem", "LimitLike", "OnBackendError", "RateLimiter"]

log = logging.getLogger("cognitionos.ratelimit")

#: What ``hit`` accepts: one Limit, several, or a rate string such as "10/second;1000/day".
LimitLike = Limit | Sequence[Limit] | str
#: One item of ``hit_many``/``hit_batch``: ``(limit, key)`` or ``(limit, key, cost)``.
HitItem = tuple[LimitLike, str] | tuple[LimitLike, str, int]
OnBackendError = Literal["raise", "open", "closed", "local"]
_ON_ERROR = ("raise", "open", "closed", "local")
US = 1_000_000
_new_tuple = tuple.__new__
COUNTER_HELP = {
    "allowed": "Decisions that admitted the request",
    "refused": "Decisions that refused the request (including banned keys)",
    "shadowed": "Shadow-mode decisions that would have refused",
    "banned": "Requests refused because a key was banned",
    "bans": "Bans imposed by the auto-block policy",
    "backend_errors": "Backend failures seen by the limiter",
    "fallbacks": "Decisions made by the on_backend_error policy instead of the backend",
}


class _Incrementers:
    """Bound ``next`` of each counter: the cheapest way to count on the hot path."""

    __slots__ = tuple(COUNTER_HELP)

    allowed: Callable[[], int]
    refused: Callable[[], int]
    shadowed: Callable[[], int]
    banned: Callable[[], int]
    bans: Callable[[], int]
    backend_errors: Callable[[], int]
    fallbacks: Callable[[], int]

    def __init__(self, counters: CounterSet) -> None:
        for name in COUNTER_HELP:
            setattr(self, name, counters.incrementer(name))


class _Shared:
    """Everything the sync and async limiters share: compiling, validating, assembling."""

    def __init__(
        self,
        backend: Any,
        *,
        algorithm: Algorithm | str,
        clock: Clock | None,
        ban_policy: BanPolicy | None,
        shadow: bool,
        on_backend_error: OnBackendError,
        retry_backend_after: float = 1.0,
    ) -> None:
        try:
            self.algorithm = Algorithm(algorithm)
        except ValueError:
            names = ", ".join(a.value for a in Algorithm)
            raise ConfigurationError(f"unknown algorithm {algorithm!r}; one of: {names}") from None
        if on_backend_error not in _ON_ERROR:
            raise ConfigurationError(
                f"on_backend_error must be one of {_ON_ERROR}, got {on_backend_error!r}"
            )
        if ban_policy is not None and not isinstance(ban_policy, BanPolicy):
            raise ConfigurationError(f"ban_policy must be a BanPolicy, got {ban_policy!r}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.ban_policy = ban_policy
        self.shadow = bool(shadow)
        self.on_backend_error: OnBackendError = on_backend_error
        if not retry_backend_after >= 0:
            raise ConfigurationError(
                f"retry_backend_after must be >= 0, got {retry_backend_after!r}"
            )
        self.retry_backend_after_us = round(retry_backend_after * US)
        #: while the clock is before this, a failed backend is not asked again (circuit open)
        self.backend_down_until = 0
        self.counters = CounterSet("ratelimit", COUNTER_HELP, help=COUNTER_HELP)
        self.count = _Incrementers(self.counters)
        self._backend = backend
        self._local: MemoryBackend | None = None
        self._specs: dict[Any, tuple[Spec, ...]] = {}
        #: limits that compile to exactly one spec (the memory fast path looks here)
        self._single: dict[Any, Spec] = {}
        #: (spec ident, key, cost) -> the Request of a plain one-limit hit_batch item
        self._reqs: dict[Any, Request] = {}
        self.fast = (
            isinstance(backend, MemoryBackend)
            and ban_policy is None
            and not self.shadow
            and self.algorithm is not Algorithm.CONCURRENCY
        )

    # -- compiling -------------------------------------------------------------------

    def specs(self, limit: LimitLike) -> tuple[Spec, ...]:
        try:
            return self._specs[limit]
        except (KeyError, TypeError):
            pass
        if isinstance(limit, Limit):
            limits: tuple[Limit, ...] = (limit,)
        elif isinstance(limit, str):
            limits = Limit.parse_many(limit)
        else:
            limits = tuple(limit)
            if not limits or not all(isinstance(x, Limit) for x in limits):
                raise ConfigurationError(
                    f"expected a Limit, limits or a rate string, got {limit!r}"
                )
        specs = tuple(compile_spec(x, self.algorithm) for x in limits)
        with contextlib.suppress(TypeError):
            if len(self._specs) < 4096:  # bounded: limits are few, but strings could be many
                self._specs[limit] = specs
                if len(specs) == 1:
                    self._single[limit] = specs[0]
        return specs

    def requests(self, items: Iterable[HitItem]) -> list[Request]:
        reqs: list[Request] = []
        for item in items:
            if len(item) == 3:
                limit, key, cost = item  # type: ignore[misc]
            else:
                (limit, key), cost = item, 1  # type: ignore[misc]
            reqs.extend(self._requests_for(limit, key, cost))
        if not reqs:
            raise ConfigurationError("hit_many needs at least one (limit, key) pair")
        if len({r.skey for r in reqs}) < len(reqs):
            # the same limit and key twice: charging the sum at once decides identically
            merged: dict[Any, Request] = {}
            for r in reqs:
                old = merged.get(r.skey)
                merged[r.skey] = r if old is None else attrs.evolve(old, cost=old.cost + r.cost)
            reqs = list(merged.values())
            for r in reqs:
                if r.cost > r.spec.burst:
                    raise ConfigurationError(
                        f"total cost {r.cost} for {r.key!r} exceeds what {r.spec.limit} can admit"
                    )
        return reqs

    def batch_requests(self, items: Iterable[HitItem]) -> list[list[Request]]:
        """``[requests([item]) for item in items]``, with plain one-limit items made inline."""
        single, skey, cache = self._single, self.skey, self._reqs
        out: list[list[Request]] = []
        for item in items:
            if len(item) == 2:
                (limit, key), cost = item, 1
            else:
                limit, key, cost = item  # type: ignore[misc]
            try:
                spec = single.get(limit)
            except TypeError:  # unhashable: a list of limits
                spec = None
            if (
                spec is not None
                and spec.code != 7
                and type(key) is str
                and key
                and type(cost) is int
                and 0 <= cost <= spec.burst
            ):
                # a Request is immutable: one per (limit, key, cost), reused (bounded)
                ck = (spec.ident, key, cost)
                req = cache.get(ck)
                if req is None:
                    req = Request(spec, key, skey(spec, key), cost, None)
                    if len(key) <= MAX_KEY_LENGTH:  # bounded in bytes: no 1 MB key cached
                        if len(cache) >= 4096:
                            cache.clear()
                        cache[ck] = req
                out.append([req])
            else:
                out.append(self.requests([item]))  # validates and explains
        return out

    def _requests_for(self, limit: LimitLike, key: str, cost: int) -> list[Request]:
        check_key(key)
        specs = self.specs(limit)
        if isinstance(cost, bool) or not isinstance(cost, int) or cost < 0:
            raise ConfigurationError(f"cost must be a non-negative integer, got {cost!r}")
        out = []
        for spec in specs:
            if cost > spec.burst:
                raise ConfigurationError(
                    f"cost {cost} exceeds what {spec.limit} can ever admit ({spec.burst})"
                )
            lease = secrets.token_hex(8) if spec.code == 7 else None
            out.append(Request(spec, key, self.skey(spec, key), cost, lease))
        return out

    def skey(self, spec: Spec, key: str) -> Any:
        return self._backend.storage_key(spec, key)

    def now_us(self) -> int:
        return self.clock.time_ns() // 1000

    # -- assembling ------------------------------------------------------------------

    def decision(self, req: Request, out: Outcome, commit: bool = True) -> Decision:
        allowed, remaining, reset, retry, banned = out
        spec = req.spec
        # tuple.__new__ skips the named tuple's Python-level __new__ (defaults handling)
        return _new_tuple(
            Decision,
            (
                allowed,
                spec.burst,
                remaining,
                reset / US,
                None if allowed or retry < 0 else retry / US,
                req.key,
                spec.limit,
                banned,
                False,
                req.lease if allowed and commit else None,
                (),
            ),
        )

    def one(self, req: Request, out: Outcome, commit: bool = True, new_bans: int = 0) -> Decision:
        """The decision of one limit (the common case): :meth:`combine` minus its lists."""
        top = self.decision(req, out, commit)
        if commit:
            c = self.count
            if out[0]:
                c.allowed()
            elif self.shadow:
                c.shadowed()
            else:
                c.refused()
            if out[4]:
                c.banned()
            for _ in range(new_bans):
                c.bans()
        if not out[0] and self.shadow:
            top = _evolve(top, allowed=True, shadowed=True, retry_after=None)
        return top

    def lean_decisions(self, flat: list[Request], outcomes: list[Outcome]) -> list[Decision]:
        """``[one(r, o) for ...]`` of a committed batch: one loop, counters added at the end."""
        if self.shadow:
            one = self.one
            return [one(r, o) for r, o in zip(flat, outcomes, strict=True)]
        out: list[Decision] = []
        append = out.append
        admitted = banned = 0
        for r, (allowed, remaining, reset, retry, ban) in zip(flat, outcomes, strict=True):
            spec = r.spec
            if ban:
                banned += 1
            if allowed:
                admitted += 1
                append(
                    _new_tuple(
                        Decision,
                        (
                            True,
                            spec.burst,
                            remaining,
                            reset / US,
                            None,
                            r.key,
                            spec.limit,
                            ban,
                            False,
                            r.lease,
                            (),
                        ),
                    )
                )
            else:
                append(
                    _new_tuple(
                        Decision,
                        (
                            False,
                            spec.burst,
                            remaining,
                            reset / US,
                            None if retry < 0 else retry / US,
                            r.key,
                            spec.limit,
                            ban,
                            False,
                            None,
                            (),
                        ),
                    )
                )
        c = self.count
        for _ in range(admitted):
            c.allowed()
        for _ in range(len(out) - admitted):
            c.refused()
        for _ in range(banned):
            c.banned()
        return out

    def single_requests(self, batches: list[list[Request]]) -> list[Request] | None:
        """The requests of a batch whose items are one string-state limit each, else None."""
        flat = [reqs[0] for reqs in batches if len(reqs) == 1]
        if len(flat) != len(batches) or any(r.spec.code in (4, 7) for r in flat):
            return None
        return flat

    def combine(self, reqs: list[Request], result: Result, commit: bool) -> Decision:
        outs = result.outcomes
        if len(reqs) == 1:
            return self.one(reqs[0], outs[0], commit, result.new_bans)
        if len(outs) > 1 and not all(o[0] for o in outs):
            # nothing was charged: admitted limits report what they still have
            outs = [
                (True, o[1] + r.cost, o[2], o[3], o[4]) if o[0] else o
                for r, o in zip(reqs, outs, strict=True)
            ]
        decisions = [self.decision(r, o, commit) for r, o in zip(reqs, outs, strict=True)]
        allowed = all(d.allowed for d in decisions)
        if len(decisions) == 1:
            top = decisions[0]
        elif allowed:
            top = min(decisions, key=lambda d: (d.remaining, -d.reset_after))
        else:
            refused = [d for d in decisions if not d.allowed]
            top = max(refused, key=lambda d: (d.banned, d.retry_after or 0.0))
        if len(decisions) > 1:
            top = _new_tuple(Decision, (*top[:10], tuple(decisions)))
        if commit:
            c = self.count
            if allowed:
                c.allowed()
            elif self.shadow:
                c.shadowed()
            else:
                c.refused()
            if any(d.banned for d in decisions):
                c.banned()
            for _ in range(result.new_bans):
                c.bans()
        if not allowed and self.shadow:
            top = _evolve(top, allowed=True, shadowed=True, retry_after=None)
        return top

    def breaker_open(self) -> bool:
        return self.backend_down_until != 0 and self.now_us() < self.backend_down_until

    def fallback(self, exc: StorageError | None, reqs: list[Request], commit: bool) -> Decision:
        mode = self.on_backend_error
        if exc is not None:
            self.count.backend_errors()
            if mode == "raise":
                raise exc
            log.warning(
                "rate-limit backend failed (%s); failing %s for %.1f s",
                exc,
                mode,
                self.retry_backend_after_us / US,
            )
            self.backend_down_until = self.now_us() + self.retry_backend_after_us
        self.count.fallbacks()
        if mode == "local":
            if self._local is None:
                self._local = MemoryBackend()
            local = self._local
            local_reqs = [
                Request(r.spec, r.key, local.storage_key(r.spec, r.key), r.cost, r.lease)
                for r in reqs
            ]
            result = local.run(local_reqs, self.now_us(), commit, None)
            return self.combine(local_reqs, result, commit)
        allowed = mode == "open"
        first = reqs[0]
        spec = first.spec
        period = spec.period / US
        return Decision(
            allowed,
            spec.burst,
            spec.burst if allowed else 0,
            0.0 if allowed else period,
            None if allowed else period,
            first.key,
            spec.limit,
        )

    def ban_record(self, key: str, seconds: float, old: BanState | None, now: int) -> BanState:
        _seconds("ban duration", seconds)
        offenses = (old.offenses if old is not None and old.keep_until > now else 0) + 1
        until = now + round(seconds * US)
        forget = round((self.ban_policy.forget_after if self.ban_policy else 0) * US)
        return BanState(until, offenses, max(until, now + forget), manual=True)


def _evolve(d: Decision, **changes: Any) -> Decision:
    return d._replace(**changes)


def _time_ns(clock: Clock) -> Callable[[], int]:
    """The clock's ``time_ns``; for the system clock, the C function itself (one call less)."""
    return time.time_ns if type(clock) is SystemClock else clock.time_ns


def to_ban(key: str, ban: BanState, now: int) -> Ban:
    return Ban(key, (ban.until - now) / US, ban.offenses, ban.manual)


def resolve_backend(
    store: Any,
    *,
    prefix: str,
    asynchronous: bool,
    timeout: float | None = None,
    connect_timeout: float | None = None,
) -> Any:
    """Pick the backend for a URL, a cognitionos store, a redis client or an SQLAlchemy engine.

    ``timeout`` / ``connect_timeout`` bound the backend's own connections (see
    :mod:`cognitionos.ratelimit._timeouts`); None takes the client's setting or the default.
    """
    timeout = check_timeout("timeout", timeout)
    connect_timeout = check_timeout("connect_timeout", connect_timeout)
    bounds = {"timeout": timeout, "connect_timeout": connect_timeout}
    if store is None or isinstance(store, MemoryBackend):
        return store if store is not None else MemoryBackend()
    if isinstance(store, str):
        from cognitionos.storage._open import check_url

        # the same URL checks as open_store (unknown options, Redis db, SQLite host, ...)
        parsed = check_url(store)
        if "prefix" in parsed.query and parsed.base_scheme in ("redis", "rediss"):
            raise ConfigurationError(
                f"malformed storage URL {parsed.masked!r}: the rate limiter takes its key "
                "prefix as RateLimiter(..., prefix=...), not in the URL"
            )
        scheme = store.split(":", 1)[0].lower()
        if scheme == "memory":
            return MemoryBackend()
        if scheme in ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster"):
            from cognitionos.ratelimit._redis import redis_backend_from_url

            return redis_backend_from_url(store, prefix=prefix, asynchronous=asynchronous, **bounds)
        if scheme.startswith(("sqlite", "postgresql")):
            from cognitionos.ratelimit._sql import sql_backend_from_url

            return sql_backend_from_url(
                store, prefix=prefix, busy_timeout=timeout, connect_timeout=connect_timeout
            )
        raise ConfigurationError(f"unsupported storage URL scheme {scheme!r} for the rate limiter")
    kind = getattr(store, "backend", None)
    module = type(store).__module__
    if kind == "memory":
        return MemoryBackend()
    if kind == "redis" or module.startswith("redis"):
        from cognitionos.ratelimit._redis import redis_backend_from_store

        return redis_backend_from_store(store, prefix=prefix, asynchronous=asynchronous, **bounds)
    if kind in ("sqlite", "postgresql") or module.startswith("sqlalchemy"):
        from cognitionos.ratelimit._sql import SqlBackend

        sync_store = getattr(store, "sync", store)  # the async adapter wraps a sync store
        engine = getattr(sync_store, "engine", sync_store)
        return SqlBackend(
            engine, prefix=prefix, busy_timeout=timeout, connect_timeout=connect_timeout
        )
    raise ConfigurationError(f"cannot rate-limit with storage {store!r}")


class RateLimiter:
    """Decide whether callers may proceed, against a store shared by every process using it.

    ``store`` is a URL (``memory://``, ``sqlite:///rl.db``, ``postgresql+psycopg://…``,
    ``redis://…``), a store from :func:`cognitionos.storage.open_store`, a ``redis.Redis``
    client or an SQLAlchemy engine. On Redis, time is the server's ``TIME`` unless
    ``server_time=False``; elsewhere it is ``clock``::

        limiter = RateLimiter("redis://localhost:6379/0", algorithm="gcra")
        d = limiter.hit(Limit(amount=100, period=60, burst=20), "key:k1")
        limiter.hit_many([(per_ip, "ip:1.2.3.4"), (per_tenant, "tenant:acme")])

    ``timeout`` bounds one request on the limiter's own Redis connections and its SQLite
    busy wait; ``connect_timeout`` bounds opening a Redis connection. ``None`` (default)
    takes the client's ``socket_timeout`` / ``socket_connect_timeout`` when it sets them,
    else 1 s each (5 s for the SQLite busy wait). After a timeout, ``on_backend_error``
    decides.
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
            asynchronous=False,
            timeout=timeout,
            connect_timeout=connect_timeout,
        )
        if not isinstance(backend, MemoryBackend):
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
        self._lease: Any = None
        if lease is not None:  # leased quotas: see cognitionos/ratelimit/_lease.py
            from cognitionos.ratelimit._lease import leased_hits

            self._lease = leased_hits(self._s, backend, lease, self._hit, asynchronous=False)
            self.hit = self._lease.make_hit(self._lease.renew)  # type: ignore[method-assign]
            self.hit.__doc__ = RateLimiter.hit.__doc__
        if self._s.fast:
            # memory backend: the instance's ``hit`` becomes one closure (see fast_hit)
            self.hit = backend.fast_hit(  # type: ignore[method-assign]
                self._s._single,
                _time_ns(self._s.clock),
                self._s.count.allowed,
                self._s.count.refused,
                self._hit,
            )
            self.hit.__doc__ = RateLimiter.hit.__doc__

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
        """Totals of decisions, refusals, bans and backend errors (read at scrape time).

        ``registry.register(EngineCollector(limiter.counters))`` exposes them to Prometheus.
        """
        return self._s.counters

    def hit(self, limit: LimitLike, key: str, cost: int = 1) -> Decision:
        """Charge ``cost`` against ``limit`` for ``key`` if it fits; say whether it did.

        Several limits (a sequence or ``"10/second;1000/day"``) are charged all or none.
        """
        return self._hit(limit, key, cost)

    def _hit(self, limit: LimitLike, key: str, cost: int) -> Decision:
        return self._run(self._s._requests_for(limit, key, cost), commit=True)

    def hit_many(self, items: Iterable[HitItem]) -> Decision:
        """Charge every ``(limit, key[, cost])`` or none of them; one atomic backend call."""
        return self._run(self._s.requests(items), commit=True)

    def hit_batch(self, items: Iterable[HitItem]) -> list[Decision]:
        """Independent hits for many keys; on Redis one pipelined round trip for all of them.

        Unlike :meth:`hit_many`, each item is admitted or refused on its own.
        """
        s = self._s
        batches = s.batch_requests(items)
        if not batches:
            return []
        backend = self._backend
        run_each = getattr(backend, "run_each", None)
        if run_each is None or s.ban_policy is not None or s.breaker_open():
            return [self._run(reqs, commit=True) for reqs in batches]
        now = None if backend.server_time else s.now_us()
        try:
            lean = getattr(backend, "run_single_each", None)
            flat = s.single_requests(batches) if lean is not None else None
            if lean is not None and flat is not None:
                outcomes = lean(flat, now)
                if outcomes is not None:
                    return s.lean_decisions(flat, outcomes)
            results = run_each(batches, now)
        except StorageError as exc:
            return [
                s.fallback(exc if i == 0 else None, reqs, True) for i, reqs in enumerate(batches)
            ]
        return [s.combine(reqs, r, True) for reqs, r in zip(batches, results, strict=True)]

    def test(self, limit: LimitLike, key: str, cost: int = 1) -> Decision:
        """Would ``hit`` admit this now? Charges nothing and records no violation."""
        return self._run(self._s._requests_for(limit, key, cost), commit=False)

    def stats(self, limit: LimitLike, key: str) -> Decision:
        """Current usage of ``key`` under ``limit`` (a zero-cost look)."""
        return self._run(self._s._requests_for(limit, key, 0), commit=False)

    def reset(self, limit: LimitLike, key: str) -> None:
        """Forget ``key``'s usage under ``limit`` (bans are separate: see :meth:`unban`)."""
        s = self._s
        check_key(key)
        try:
            if self._lease is not None:
                self._lease.forget(s.specs(limit), key)
            self._backend.reset([s.skey(spec, key) for spec in s.specs(limit)])
        except StorageError:
            s.count.backend_errors()
            raise

    def release(self, decision: Decision) -> bool:
        """Give back a concurrency lease taken by :meth:`hit`; False if it had expired."""
        if decision.lease is None or decision.policy is None:
            return False
        spec = self._s.specs(decision.policy)[0]
        if spec.code != 7:
            raise ConfigurationError("release() applies to the concurrency algorithm only")
        return bool(self._backend.release(spec, decision.key, decision.lease, self._s.now_us()))

    @contextlib.contextmanager
    def lease(self, limit: LimitLike, key: str, cost: int = 1) -> Iterator[Decision]:
        """Hold a concurrency lease for the ``with`` block (check ``allowed`` inside)::

        with limiter.lease(Limit(amount=10, period=30), "tenant:acme") as d:
            if d.allowed:
                run_job()
        """
        decision = self.hit(limit, key, cost)
        try:
            yield decision
        finally:
            if decision.allowed and decision.lease is not None:
                self.release(decision)

    def ban(self, key: str, seconds: float) -> Ban:
        """Ban ``key`` for ``seconds`` on every host sharing the store."""
        check_key(key)
        backend = self._backend
        now = backend.time_us(self._s.now_us())
        record = self._s.ban_record(key, seconds, backend.get_ban(key), now)
        backend.set_ban(key, record, now)
        return to_ban(key, record, now)

    def unban(self, key: str) -> bool:
        """Lift ``key``'s ban and forget its violations; True if it was banned."""
        check_key(key)
        backend = self._backend
        now = backend.time_us(self._s.now_us())
        old = backend.get_ban(key)
        backend.set_ban(key, None, now)
        return old is not None and bool(old.until > now)

    def bans(self) -> list[Ban]:
        """Keys banned right now, with time remaining and offense count."""
        backend = self._backend
        now = backend.time_us(self._s.now_us())
        return [to_ban(k, b, now) for k, b in backend.list_bans(now)]

    def lease_stats(self) -> dict[str, int]:
        """With ``lease=``: this process's local decisions, round trips, slices, returns
        and quota held unused; empty without leasing."""
        return self._lease.stats() if self._lease is not None else {}

    def close(self) -> None:
        """Hand back unused leased slices, then release backend connections."""
        if self._lease is not None:
            self._lease.close()
        self._backend.close()

    def __enter__(self) -> RateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, reqs: list[Request], *, commit: bool) -> Decision:
        s = self._s
        if s.backend_down_until and s.breaker_open():
            return s.fallback(None, reqs, commit)
        backend = self._backend
        now = None if backend.server_time else s.now_us()
        try:
            result = backend.run(reqs, now, commit, s.ban_policy if commit else None)
        except StorageError as exc:
            return s.fallback(exc, reqs, commit)
        s.backend_down_until = 0
        return s.combine(reqs, result, commit)
