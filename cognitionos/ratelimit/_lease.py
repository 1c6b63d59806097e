"""Leased quotas: decide most hits in process, one Redis round trip per slice of quota.

``RateLimiter(url, lease=LeasePolicy())`` keeps, per (limit, key), a *slice* of the key's
quota taken from Redis by ``lua/lease.lua``. The script charges the slice to the key's
current window exactly as that many hits would be charged, records the lease (holder,
window, size) with an expiry, and answers; the process then admits hits from the slice
without asking Redis until it is spent, its lease expires or its window ends. Unused parts
go back (to the bucket they were charged to) with the next request for the key, in a sweep
of expired slices piggybacked on any round trip, on ``close()`` and at interpreter exit::

    limiter = RateLimiter("redis://localhost:6379/0", lease=LeasePolicy(ttl=10.0))
    limiter.hit(Limit.parse("10000/minute"), "tenant:acme")   # mostly no round trip

Guarantee (see docs/ratelimit.md, "Leased quotas"): a slice is charged before any of it is
used, so what a window admits never exceeds what it was charged, which never exceeds the
limit: leasing never over-admits, crashed holders included. It can under-admit: a slice
held by an idle or crashed holder is charged but unused until it is returned (live holders:
with their next round trip once it is a ``ttl`` past its expiry) or its window rolls
(crashed holders). Each slice
is at most ``remaining / (share x holders)``, and below ``min_slice`` every hit is decided on
the server, exactly as without leasing.
"""

from __future__ import annotations

import atexit
import itertools
import math
import os
import secrets
import threading
import time
import weakref
from typing import Any

import attrs

from cognitionos._fork import reset_after_fork
from cognitionos.clock import SystemClock
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.ratelimit._batch import Request, Spec
from cognitionos.ratelimit._keys import check_key, encode_key
from cognitionos.ratelimit.models import Algorithm, Decision

__all__ = [
    "LEASABLE",
    "AsyncLeasedHits",
    "LeasePolicy",
    "LeasedHits",
    "SliceBook",
    "check_leasable",
    "lease_records",
    "lease_script",
    "leased_hits",
]

US = 1_000_000
#: algorithm -> the script's code. A slice is charged to one window or bucket and used only
#: inside it, so these stay exact; the others are refused (see :func:`check_leasable`).
LEASABLE = {Algorithm.FIXED_WINDOW: 1, Algorithm.SLIDING_WINDOW: 3}
_WHY_NOT = {
    Algorithm.FIXED_WINDOW_ANCHORED: "its window opens at the key's first hit, so a slice "
    "cannot be tied to a window known in advance",
    Algorithm.SLIDING_LOG: "it must timestamp every admitted hit on the server",
    Algorithm.TOKEN_BUCKET: "tokens refill continuously, so a returned slice would not fit "
    "the bucket it came from",
    Algorithm.GCRA: "tokens refill continuously, so a returned slice would not fit the "
    "bucket it came from",
    Algorithm.CONCURRENCY: "each lease is already one in-flight request",
}
_new_tuple = tuple.__new__
_STRIPES = 64


def _positive(name: str, value: Any, kind: type = int) -> None:
    ok = not isinstance(value, bool) and isinstance(value, int | float if kind is float else int)
    if not ok or not math.isfinite(value) or value <= 0:
        what = "a positive number" if kind is float else "a positive integer"
        raise ConfigurationError(f"LeasePolicy {name} must be {what}, got {value!r}")


@attrs.frozen(slots=True)
class LeasePolicy:
    """How a process leases slices of a key's quota from Redis (``RateLimiter(lease=...)``).

    ``ttl``: seconds a slice may be used (never past the window it was charged to).
    ``share``: a slice is at most ``remaining / (share x live leaseholders)`` of the key.
    ``min_slice``: below this, hits are decided one round trip each, exactly.
    ``max_slice`` / ``initial_slice``: bounds of the slice the process asks for; it asks
    for what it used per ``ttl`` (at most 16x its previous slice)::

        RateLimiter("redis://cache:6379/0", lease=LeasePolicy(ttl=1.0, share=2.0))
    """

    ttl: float = 10.0
    share: float = 2.0
    min_slice: int = 2
    max_slice: int = 10_000
    initial_slice: int = 4

    def __attrs_post_init__(self) -> None:
        _positive("ttl", self.ttl, float)
        if self.ttl > 86400:
            raise ConfigurationError(f"LeasePolicy ttl {self.ttl!r} is longer than a day")
        _positive("share", self.share, float)
        if self.share < 1:
            raise ConfigurationError(
                f"LeasePolicy share must be >= 1 (a holder takes at most remaining/share), "
                f"got {self.share!r}"
            )
        for name in ("min_slice", "max_slice", "initial_slice"):
            _positive(name, getattr(self, name))
        if self.max_slice < self.min_slice:
            raise ConfigurationError(
                f"LeasePolicy max_slice {self.max_slice} is below min_slice {self.min_slice}"
            )


def check_leasable(
    policy: Any, algorithm: Algorithm, backend: Any, ban_policy: Any, shadow: bool
) -> None:
    """Refuse ``lease=`` where leasing is unsound or pointless, naming the fix."""
    if not isinstance(policy, LeasePolicy):
        raise ConfigurationError(f"lease must be a LeasePolicy, got {policy!r}")
    if algorithm not in LEASABLE:
        raise ConfigurationError(
            f"lease= supports the fixed_window and sliding_window algorithms, not "
            f"{algorithm.value}: {_WHY_NOT[algorithm]}; use one of those or drop lease="
        )
    name = getattr(backend, "name", "?")
    if name != "redis":
        raise ConfigurationError(
            f"lease= needs a Redis store (it exists to cut Redis round trips); the {name} "
            "backend decides without them: drop lease= or use a redis:// URL"
        )
    if ban_policy is not None:
        raise ConfigurationError(
            "lease= cannot be combined with ban_policy: auto-block counts refusals per hit "
            "on the server; drop one of them (manual bans still apply with lease=)"
        )
    if shadow:
        raise ConfigurationError("lease= cannot be combined with shadow=True: drop one of them")


def lease_script() -> tuple[str, str]:
    """(source, sha1) of ``lua/lease.lua``."""
    import hashlib
    from importlib import resources

    src = resources.files("cognitionos.ratelimit").joinpath("lua/lease.lua").read_text("utf-8")
    return src, hashlib.sha1(src.encode()).hexdigest()


class _Slice:
    """One leased slice (lease id ``lease``): ``left`` of ``grant`` unused, valid until
    ``deadline`` (local ns)."""

    __slots__ = (
        "deadline",
        "grant",
        "granted_at",
        "key",
        "lease",
        "left",
        "remaining",
        "spec",
        "wend",
    )

    def __init__(
        self,
        spec: Any,
        key: str,
        grant: int,
        lease: int,
        deadline: int,
        wend: int,
        remaining: int,
        now: int,
    ) -> None:
        self.spec = spec
        self.key = key
        self.grant = grant
        self.left = grant
        self.lease = lease
        self.deadline = deadline
        self.wend = wend
        self.remaining = remaining
        self.granted_at = now


#: What goes back to the server: (spec, caller key, lease id, unused amount).
Return = tuple[Any, str, int, int]


class SliceBook:
    """Local accounting of leased slices, thread-safe; times are passed in (local ns).

    ``take`` admits from a live slice; ``detach`` removes a key's slice before a round trip
    (its unused part is what the server takes back) and says how much to ask for next;
    ``install`` records a new slice; ``expired``/``drain`` hand back slices to return.
    A unit is admitted from a slice at most once and returned at most once, never both.
    """

    def __init__(self, policy: LeasePolicy) -> None:
        self.policy = policy
        self.slices: dict[Any, _Slice] = {}
        self.rates: dict[Any, float] = {}
        self.lock = threading.Lock()
        self._ttl_ns = round(policy.ttl * 1e9)

    def take(self, k: Any, cost: int, now: int) -> _Slice | None:
        """Admit ``cost`` from ``k``'s slice if it is live and has enough; the slice or None."""
        with self.lock:
            sl = self.slices.get(k)
            if sl is not None and sl.left >= cost and now < sl.deadline:
                sl.left -= cost
                return sl
        return None

    def detach(self, k: Any, now: int) -> tuple[int, int, int]:
        """Remove ``k``'s slice: ``(lease id, unused, want)`` (id -1: nothing to return)."""
        p = self.policy
        with self.lock:
            sl = self.slices.pop(k, None)
            if sl is None:
                rate = self.rates.get(k)
                if rate is None:
                    return -1, 0, p.initial_slice
                return -1, 0, self._want(rate, p.initial_slice)
            used = sl.grant - sl.left
            age = max(now - sl.granted_at, 1_000_000)  # at least 1 ms: no rate from noise
            observed = used / age
            old = self.rates.get(k)
            rate = observed if old is None else (old + observed) / 2
            if len(self.rates) >= 100_000:
                self.rates.clear()
            self.rates[k] = rate
            unused = sl.left
            sl.left = 0  # a thread that fetched this slice before the pop must not use it
            return sl.lease, unused, self._want(rate, sl.grant)

    def _want(self, rate_per_ns: float, previous: int) -> int:
        p = self.policy
        want = math.ceil(rate_per_ns * self._ttl_ns)
        return max(p.min_slice, min(want, p.max_slice, max(16 * previous, p.initial_slice)))

    def install(
        self,
        k: Any,
        spec: Any,
        key: str,
        grant: int,
        cost: int,
        lease: int,
        deadline: int,
        wend: int,
        remaining: int,
        now: int,
    ) -> _Slice:
        """Record a new slice of ``grant`` and charge this hit's ``cost`` to it."""
        sl = _Slice(spec, key, grant, lease, deadline, wend, remaining, now)
        sl.left -= cost
        with self.lock:
            self.slices[k] = sl
        return sl

    def expired(self, now: int) -> list[Return]:
        """Remove slices whose lease ran out; those with unused quota, to hand back."""
        out: list[Return] = []
        with self.lock:
            dead = [k for k, sl in self.slices.items() if now >= sl.deadline]
            for k in dead:
                sl = self.slices.pop(k)
                if sl.left > 0:
                    out.append((sl.spec, sl.key, sl.lease, sl.left))
                    sl.left = 0
        return out

    def drain(self) -> list[Return]:
        """Remove every slice; those with unused quota, to hand back (close, exit)."""
        out: list[Return] = []
        with self.lock:
            for sl in self.slices.values():
                if sl.left > 0:
                    out.append((sl.spec, sl.key, sl.lease, sl.left))
                    sl.left = 0  # handed back: never admitted from again
            self.slices.clear()  # in place: the hot path holds this dict
        return out

    def held(self) -> int:
        """Quota held in unused slices right now."""
        with self.lock:
            return sum(sl.left for sl in self.slices.values())


STAT_NAMES = ("local", "round_trips", "slices", "per_hit", "plain", "returned", "return_calls")


class LeasedHits:
    """The leasing front of one limiter: local decisions, and the script's round trips.

    ``hit`` is what ``RateLimiter.hit`` becomes with ``lease=``; hits of several limits,
    ``hit_many``, ``hit_batch``, ``test`` and ``stats`` keep their one round trip each and
    read or charge the same counters, so mixing them with leasing stays exact. The I/O is
    :meth:`send` here and in :class:`AsyncLeasedHits`; everything else is shared.
    """

    def __init__(self, shared: Any, backend: Any, policy: LeasePolicy, slow: Any) -> None:
        self.s = shared
        self.backend = backend
        self.policy = policy
        self.book = SliceBook(policy)
        self._slow = slow
        self._src, self._sha = lease_script()
        self.holder = f"{os.getpid()}-{secrets.token_hex(6)}"
        clock = shared.clock
        self.mono = time.monotonic_ns if type(clock) is SystemClock else clock.time_ns
        self._pending: list[Return] = []  # returns whose send failed: sent with the next call
        self._plock = threading.Lock()
        self._seq = itertools.count(1)  # lease ids of this holder
        #: (ident, key) -> local time until which hits go per hit (no slice could be granted)
        self.near: dict[Any, int] = {}
        self._keys: dict[Any, tuple[str, str, str]] = {}
        self._next_sweep = 0
        self._sweep_ns = round(policy.ttl * 1e9)
        self._counts = {n: itertools.count() for n in STAT_NAMES}
        self._local = self._counts["local"].__next__
        self._closed = False
        self._new_locks()
        reset_after_fork(self)
        ref = weakref.ref(self)

        def at_exit() -> None:
            me = ref()
            if me is not None:
                me.close()

        self._at_exit = at_exit
        atexit.register(at_exit)

    def _new_locks(self) -> None:
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def _after_fork_in_child(self) -> None:
        """A forked child must not use (or return) its parent's slices: it starts empty."""
        self.book.slices.clear()
        self.near.clear()
        self.book.lock = threading.Lock()
        self._new_locks()
        self._pending = []
        self._plock = threading.Lock()
        self.holder = f"{os.getpid()}-{secrets.token_hex(6)}"

    # -- keys and arguments ------------------------------------------------------------

    def keys(self, spec: Spec, key: str) -> tuple[str, str, str]:
        """KEYS of ``lua/lease.lua``: state, ban record, lease set (one hash tag)."""
        ck = (spec.ident, key)
        keys = self._keys.get(ck)
        if keys is None:
            skey = self.s.skey(spec, key)
            head = skey[: len(skey) - len(spec.ident)]
            lease_key = self.backend._keyfn(encode_key(key), spec.ident, "lease")
            keys = (skey, head + "ban", lease_key)
            if len(self._keys) >= 4096:
                self._keys.clear()
            if len(key) <= 200:  # bounded in bytes too
                self._keys[ck] = keys
        return keys

    def _command(
        self,
        op: str,
        spec: Spec,
        key: str,
        want: int,
        cost: int,
        rid: int,
        ramt: int,
        now: int | None,
        lid: int = 0,
    ) -> tuple[str, ...]:
        p = self.policy
        t = -1 if now is None else now
        floor_ms = 0 if now is None else 3_600_000
        arg = (
            f"{t} {op} {LEASABLE[spec.algorithm]} {spec.period} {spec.amount} {self.holder} "
            f"{want} {cost} {float(p.share)!r} {p.min_slice} {round(p.ttl * US)} {rid} "
            f"{ramt} {floor_ms} {lid}"
        )
        return ("EVALSHA", self._sha, "3", *self.keys(spec, key), arg)

    # -- the hot path --------------------------------------------------------------------

    def make_hit(self, renew: Any) -> Any:
        """The limiter's ``hit``: a closure over what each local decision reads.

        ``renew(spec, key, cost)`` is the round trip (sync, or a coroutine function).
        """
        single = self.s._single
        specs = self.s.specs
        book = self.book
        slices = book.slices
        near = self.near
        mono = self.mono
        local = self._local
        plain = self._counts["plain"].__next__
        allowed = self.s.count.allowed
        slow = self._slow

        def hit(limit: Any, key: str, cost: int = 1) -> Any:
            try:
                spec = single.get(limit)
            except TypeError:
                spec = None
            if spec is None:
                found = specs(limit)
                if len(found) != 1:
                    return slow(limit, key, cost)
                spec = found[0]
            if type(key) is not str or not key or type(cost) is not int or cost <= 0:
                return slow(limit, key, cost)  # validates, explains, or looks (cost 0)
            sl = slices.get((spec.ident, key))
            if sl is not None:
                now = mono()
                with book.lock:
                    ok = sl.left >= cost and now < sl.deadline
                    if ok:
                        sl.left -= cost
                        left = sl.left
                if ok:
                    local()
                    allowed()
                    return _new_tuple(
                        Decision,
                        (
                            True,
                            spec.amount,
                            sl.remaining + left,
                            (sl.wend - now) / 1e9,
                            None,
                            key,
                            spec.limit,
                            False,
                            False,
                            None,
                            (),
                        ),
                    )
            elif near:
                until = near.get((spec.ident, key))
                if until is not None and mono() < until:
                    # near its limit: decided per hit by the plain script (decide.lua, the
                    # limiter's own cached path) until the mark ages out after one ttl
                    plain()
                    return slow(limit, key, cost)
            return renew(spec, key, cost)

        return hit

    # -- round trips (sans I/O: plan, then finish with the replies) ----------------------

    def plan(self, spec: Spec, key: str, cost: int) -> Decision | tuple[Any, ...]:
        """Before a round trip: a local admission (another thread renewed meanwhile), or
        ``(request, commands, (returns, returns to resend if it fails), sent_at, lease id)``."""
        if cost > spec.burst:
            raise ConfigurationError(
                f"cost {cost} exceeds what {spec.limit} can ever admit ({spec.burst})"
            )
        check_key(key)
        s = self.s
        bk = (spec.ident, key)
        now = self.mono()
        sl = self.book.take(bk, cost, now)
        if sl is not None:
            self._local()
            s.count.allowed()
            return _new_tuple(
                Decision,
                (
                    True,
                    spec.amount,
                    sl.remaining + sl.left,
                    (sl.wend - now) / 1e9,
                    None,
                    key,
                    spec.limit,
                    False,
                    False,
                    None,
                    (),
                ),
            )
        rid, ramt, want = self.book.detach(bk, now)
        want = max(want, cost)
        server_now = None if self.backend.server_time else s.now_us()
        with self._plock:
            returns, self._pending = self._pending, []
            if now >= self._next_sweep:
                # slices expired at least one ttl ago: a key still in use hands its slice
                # back with its own next round trip instead (one script call, not two)
                self._next_sweep = now + self._sweep_ns
                returns += self.book.expired(now - self._sweep_ns)
        # returns first: the server applies them before this key's new slice is decided
        cmds = [self._command("r", sp, ky, 0, 0, w, a, server_now) for sp, ky, w, a in returns]
        lid = next(self._seq)
        cmds.append(self._command("a", spec, key, want, cost, rid, ramt, server_now, lid))
        req = Request(spec, key, self.keys(spec, key)[0], cost, None)
        # if the round trip fails, this slice's return is sent again later (named by its id)
        returns_if_failed = [*returns, (spec, key, rid, ramt)] if ramt > 0 else returns
        return req, cmds, (returns, returns_if_failed), now, lid

    def finish(
        self,
        req: Request,
        replies: list[Any],
        returns: list[Return],
        sent_at: int,
        lid: int,
    ) -> Decision:
        """Apply the replies of :meth:`plan`'s commands; the hit's decision."""
        s = self.s
        for ret, rep in zip(returns, replies, strict=False):
            if isinstance(rep, Exception):
                self._requeue([ret])
            else:
                self._count_return(rep)
        reply = replies[-1]
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        status, rem, reset, retry, grant, _window, expiry, _, back = text.split()
        for _ in range(int(back)):
            next(self._counts["returned"])
        spec = req.spec
        remaining, reset_us = int(rem), int(reset)
        next(self._counts["round_trips"])
        if status == "L":
            self.near.pop((spec.ident, req.key), None)
            next(self._counts["slices"])
            sl = self.book.install(
                (spec.ident, req.key),
                spec,
                req.key,
                int(grant),
                req.cost,
                lid,
                sent_at + int(expiry) * 1000,
                sent_at + reset_us * 1000,
                remaining,
                sent_at,
            )
            s.count.allowed()
            return _new_tuple(
                Decision,
                (
                    True,
                    spec.amount,
                    remaining + sl.left,
                    reset_us / US,
                    None,
                    req.key,
                    spec.limit,
                    False,
                    False,
                    None,
                    (),
                ),
            )
        next(self._counts["per_hit"])
        near = self.near
        if len(near) >= 100_000:
            near.clear()
        near[(spec.ident, req.key)] = sent_at + self._sweep_ns
        ok, banned, r = status == "A", status == "B", int(retry)
        if ok:
            s.count.allowed()
        else:
            s.count.refused()
            if banned:
                s.count.banned()
        return _new_tuple(
            Decision,
            (
                ok,
                spec.amount,
                remaining,
                reset_us / US,
                None if ok or r < 0 else r / US,
                req.key,
                spec.limit,
                banned,
                False,
                None,
                (),
            ),
        )

    def _count_return(self, rep: Any) -> None:
        next(self._counts["return_calls"])
        for _ in range(int(rep)):
            next(self._counts["returned"])

    def _requeue(self, returns: list[Return]) -> None:
        # a return names its lease, so sending it again after a lost reply changes nothing
        with self._plock:
            if len(self._pending) < 10_000:  # bounded: a long outage only under-admits
                self._pending += returns

    def failed(self, returns: list[Return]) -> None:
        """The round trip failed: keep its returns for the next one."""
        self._requeue(returns)

    def drained(self) -> tuple[list[Return], list[tuple[str, ...]]]:
        """Every unused slice and pending return, and the commands handing them back."""
        items = self.book.drain()
        with self._plock:
            items += self._pending
            self._pending = []
        server_now = None if self.backend.server_time else self.s.now_us()
        return items, [self._command("r", sp, ky, 0, 0, w, a, server_now) for sp, ky, w, a in items]

    def lease_sets(self, specs: Any, key: str) -> list[str]:
        """``reset(limit, key)``: drop this process's slices of ``key``; the lease sets to
        delete with the state (so no late return of another holder lands in the fresh
        count: a return applies only while its lease is recorded)."""
        with self.book.lock:
            for spec in specs:
                sl = self.book.slices.pop((spec.ident, key), None)
                if sl is not None:
                    sl.left = 0
                self.near.pop((spec.ident, key), None)
        return [self.keys(spec, key)[2] for spec in specs if spec.algorithm in LEASABLE]

    def forget(self, specs: Any, key: str) -> None:
        """:meth:`lease_sets`, deleted."""
        from cognitionos.ratelimit._redis import _wrap

        names = self.lease_sets(specs, key)
        if names:
            try:
                self.backend.client.delete(*names)
            except self.backend._rex.RedisError as exc:
                raise _wrap(exc, "reset") from exc

    def stats(self) -> dict[str, int]:
        """This process's leasing: local decisions, lease round trips, slices taken, hits the
        lease script decided alone, hits near the limit sent to the plain script, units
        returned, return calls, and quota held unused right now."""
        out = {n: int(c.__reduce__()[1][0]) for n, c in self._counts.items()}
        out["held"] = self.book.held()
        return out

    # -- sync I/O ----------------------------------------------------------------------

    def renew(self, spec: Spec, key: str, cost: int) -> Decision:
        """A round trip for ``key``; one thread per key stripe at a time (the others wait,
        then find the new slice)."""
        s = self.s
        with self._stripes[hash((spec.ident, key)) & (_STRIPES - 1)]:
            planned = self.plan(spec, key, cost)
            if isinstance(planned, Decision):
                return planned
            req, cmds, (returns, if_failed), sent_at, lid = planned
            if s.backend_down_until and s.breaker_open():
                self.failed(if_failed)
                return s.fallback(None, [req], True)  # type: ignore[no-any-return]
            try:
                replies = self.send(cmds)
            except StorageError as exc:
                self.failed(if_failed)
                return s.fallback(exc, [req], True)  # type: ignore[no-any-return]
            s.backend_down_until = 0
            return self.finish(req, replies, returns, sent_at, lid)

    def send(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        """The commands in one round trip (direct channel; on a cluster, direct channels to
        the nodes routed by slot; else the client's pipeline); NOSCRIPT loads the script and
        resends. Errors of the last command raise; earlier ones come back as exceptions."""
        from cognitionos.ratelimit._redis import _wrap, pack_command

        backend = self.backend
        rex = backend._rex
        channel = backend._channel
        routed = getattr(backend, "_routed", None)
        try:
            if channel is not None:
                try:
                    enc = channel.encoding
                    packed = b"".join([pack_command(c, enc) for c in cmds])
                    replies = channel.pipeline(packed, len(cmds))
                    if any(isinstance(r, rex.NoScriptError) for r in replies):
                        backend.client.script_load(self._src)
                        replies = channel.pipeline(packed, len(cmds))
                    return _checked(replies)
                except rex.ConnectionError:
                    pass  # once more through redis-py, with the client's retry policy
            elif routed is not None:
                try:
                    replies = routed.pipeline(cmds)
                    if any(isinstance(r, rex.NoScriptError) for r in replies):
                        # a promoted replica may lack it: load on every primary, resend
                        backend.client.script_load(self._src)
                        replies = routed.pipeline(cmds)
                    return _checked(replies)
                except rex.ConnectionError:
                    pass  # once more through RedisCluster: its retry refreshes the slot map
            replies = self._pipeline(cmds)
            if any(isinstance(r, rex.NoScriptError) for r in replies):
                backend.client.script_load(self._src)
                replies = self._pipeline(cmds)
            return _checked(replies)
        except backend._errs as exc:
            raise _wrap(exc, "lease") from exc

    def _pipeline(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        pipe = self.backend.client.pipeline(transaction=False)
        for c in cmds:
            pipe.execute_command(*c)
        return list(pipe.execute(raise_on_error=False))

    def give_back(self) -> int:
        """Return every unused slice now, in one round trip; the amount taken back."""
        items, cmds = self.drained()
        if not cmds:
            return 0
        try:
            replies = self.send(cmds)
        except StorageError:
            self.failed(items)
            raise
        total = 0
        for ret, rep in zip(items, replies, strict=True):
            if isinstance(rep, Exception):
                self.failed([ret])
            else:
                self._count_return(rep)
                total += int(rep)
        return total

    def close(self) -> None:
        """Hand back unused slices (best effort: a failure only under-admits)."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        try:
            self.give_back()
        except (StorageError, OSError, ValueError):
            pass  # they expire with their window: under-admission only


def _checked(replies: list[Any]) -> list[Any]:
    last = replies[-1]
    if isinstance(last, Exception):
        raise last
    return replies


class AsyncLeasedHits(LeasedHits):
    """:class:`LeasedHits` over ``redis.asyncio``: the same local decisions, awaited trips."""

    def _new_locks(self) -> None:
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._astripes: list[Any] = [None] * _STRIPES
        self._loop: Any = None

    def _astripe(self, i: int) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # locks of another, finished loop cannot be awaited here
            self._astripes = [None] * _STRIPES
            self._loop = loop
        lock = self._astripes[i]
        if lock is None:
            lock = self._astripes[i] = asyncio.Lock()
        return lock

    async def arenew(self, spec: Spec, key: str, cost: int) -> Decision:
        """The async round trip for ``key`` (see :meth:`LeasedHits.renew`)."""
        s = self.s
        async with self._astripe(hash((spec.ident, key)) & (_STRIPES - 1)):
            planned = self.plan(spec, key, cost)
            if isinstance(planned, Decision):
                return planned
            req, cmds, (returns, if_failed), sent_at, lid = planned
            if s.backend_down_until and s.breaker_open():
                self.failed(if_failed)
                return s.fallback(None, [req], True)  # type: ignore[no-any-return]
            try:
                replies = await self.asend(cmds)
            except StorageError as exc:
                self.failed(if_failed)
                return s.fallback(exc, [req], True)  # type: ignore[no-any-return]
            s.backend_down_until = 0
            return self.finish(req, replies, returns, sent_at, lid)

    async def asend(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        """:meth:`LeasedHits.send` over the async channel or client."""
        from cognitionos.ratelimit._redis import _wrap, pack_command

        backend = self.backend
        rex = backend._rex
        channel = backend._channel
        routed = getattr(backend, "_routed", None)
        try:
            if channel is not None:
                try:
                    packed = b"".join([pack_command(c, channel.encoding) for c in cmds])
                    replies = await channel.pipeline(packed, len(cmds))
                    if any(isinstance(r, rex.NoScriptError) for r in replies):
                        await backend.client.script_load(self._src)
                        replies = await channel.pipeline(packed, len(cmds))
                    return _checked(replies)
                except rex.ConnectionError:
                    pass  # once more through redis-py, with the client's retry policy
            elif routed is not None:
                try:
                    replies = await routed.pipeline(cmds)
                    if any(isinstance(r, rex.NoScriptError) for r in replies):
                        await backend.client.script_load(self._src)
                        replies = await routed.pipeline(cmds)
                    return _checked(replies)
                except rex.ConnectionError:
                    pass  # once more through RedisCluster: its retry refreshes the slot map
            replies = await self._apipeline(cmds)
            if any(isinstance(r, rex.NoScriptError) for r in replies):
                await backend.client.script_load(self._src)
                replies = await self._apipeline(cmds)
            return _checked(replies)
        except backend._errs as exc:
            raise _wrap(exc, "lease") from exc

    async def _apipeline(self, cmds: list[tuple[str, ...]]) -> list[Any]:
        pipe = self.backend.client.pipeline(transaction=False)
        for c in cmds:
            pipe.execute_command(*c)
        return list(await pipe.execute(raise_on_error=False))

    async def agive_back(self) -> int:
        """Return every unused slice now, in one round trip; the amount taken back."""
        items, cmds = self.drained()
        if not cmds:
            return 0
        try:
            replies = await self.asend(cmds)
        except StorageError:
            self.failed(items)
            raise
        total = 0
        for ret, rep in zip(items, replies, strict=True):
            if isinstance(rep, Exception):
                self.failed([ret])
            else:
                self._count_return(rep)
                total += int(rep)
        return total

    async def aforget(self, specs: Any, key: str) -> None:
        """:meth:`LeasedHits.forget`, awaited."""
        from cognitionos.ratelimit._redis import _wrap

        names = self.lease_sets(specs, key)
        if names:
            try:
                await self.backend.client.delete(*names)
            except self.backend._rex.RedisError as exc:
                raise _wrap(exc, "reset") from exc

    async def aclose(self) -> None:
        """Hand back unused slices (best effort), as :meth:`LeasedHits.close`."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._at_exit)
        try:
            await self.agive_back()
        except (StorageError, OSError, ValueError):
            pass

    def close(self) -> None:
        """At exit without a loop: the slices expire with their window (under-admission)."""
        self._closed = True
        atexit.unregister(self._at_exit)


def leased_hits(
    shared: Any, backend: Any, policy: Any, slow: Any, *, asynchronous: bool
) -> LeasedHits:
    """Check that ``lease=`` fits this limiter, then its leasing front (sync or async)."""
    check_leasable(policy, shared.algorithm, backend, shared.ban_policy, shared.shadow)
    cls = AsyncLeasedHits if asynchronous else LeasedHits
    return cls(shared, backend, policy, slow)


def lease_records(client: Any, pattern: str) -> list[dict[str, Any]]:
    """Leases recorded in a Redis database (SCAN over lease sets matching ``pattern``).

    Each: lease set key, holder, window start (µs), slice size, seconds until the lease
    expires (negative: expired, still taking back its unused part until its window ends).
    """
    sec, usec = client.time()
    now = int(sec) * US + int(usec)
    out = []
    for raw in client.scan_iter(match=pattern, count=1000):
        name = raw.decode() if isinstance(raw, bytes) else raw
        for member in client.zrangebyscore(name, f"({now}", "+inf"):
            text = member.decode() if isinstance(member, bytes) else member
            holder, window, grant, expiry, lease = text.split()
            out.append(
                {
                    "lease_set": name,
                    "holder": holder,
                    "lease": int(lease),
                    "window": int(window),
                    "grant": int(grant),
                    "expires_in": (int(expiry) - now) / US,
                }
            )
    return sorted(out, key=lambda r: (r["lease_set"], r["holder"]))
