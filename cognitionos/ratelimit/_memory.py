"""In-process backend: dicts behind one lock, lazy expiry, no background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos.ratelimit import _core
from cognitionos.ratelimit._batch import BanState, Request, Result, Spec, evaluate
from cognitionos.ratelimit.models import BanPolicy, Decision

__all__ = ["MemoryBackend"]


class MemoryBackend:
    """State of one limiter (or of the limiters sharing this object) in process memory.

    Entries carry their expiry and are dropped when read after it; a sweep runs
    whenever the table has doubled since the last one, so memory stays bounded by
    the live keys without a timer thread.
    """

    name = "memory"
    server_time = False

    __slots__ = ("__weakref__", "_bans", "_lock", "_states", "_sweep_at", "_violations", "_window")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[Any, tuple[Any, int]] = {}
        self._bans: dict[str, BanState] = {}
        self._violations: dict[str, tuple[int, ...]] = {}
        self._sweep_at = 1024
        self._window = 0
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """Free the lock in a forked child; the state is the child's own copy from here on.

        Released, not replaced: ``fast_hit`` closures hold this lock's bound methods, and a
        new lock would leave them excluding nothing against the general path.
        """
        if self._lock.locked():  # held at the fork by a thread that does not exist here
            self._lock.release()

    def storage_key(self, spec: Spec, key: str) -> Any:
        """Memory keys are tuples: no encoding cost on the hot path."""
        return (spec.ident, key)

    def hit_one(self, spec: Spec, key: str, cost: int, now: int, commit: bool) -> _core.Step:
        """Fast path for one rate limit with no bans in force: one lock, one dict probe."""
        skey = (spec.ident, key)
        states = self._states
        with self._lock:
            entry = states.get(skey)
            state = entry[0] if entry is not None and entry[1] > now else None
            step = spec.step(state, now, cost)
            if step[0] and commit:
                new = step[4]
                if spec.code == 4:
                    new = _core.sliding_log_commit(new, now, spec.period, cost)
                if entry is None and len(states) >= self._sweep_at:
                    self._sweep(now)
                states[skey] = (new, now + (step[2] or 1))
        return step

    def fast_hit(
        self,
        single: dict[Any, Spec],
        time_ns: Callable[[], int],
        count_allowed: Callable[[], int],
        count_refused: Callable[[], int],
        slow: Callable[[Any, Any, Any], Any],
    ) -> Callable[..., Any]:
        """``RateLimiter.hit`` for the memory backend, as one closure.

        Everything it touches is bound once, so a hit is one Python call. Anything
        unusual (an uncompiled or multiple limit, bans in force, odd arguments) goes to
        ``slow``, the general path, which validates and explains.
        """
        states = self._states
        get = states.get
        acquire, release = self._lock.acquire, self._lock.release
        bans = self._bans
        new = tuple.__new__
        commit_log = _core.sliding_log_commit

        def hit(limit: Any, key: Any, cost: Any = 1) -> Any:
            try:
                spec = single.get(limit)
            except TypeError:  # unhashable: a list of limits
                return slow(limit, key, cost)
            if (
                spec is None
                or bans
                or type(key) is not str
                or not key
                or type(cost) is not int
                or not 0 <= cost <= spec.burst
            ):
                return slow(limit, key, cost)
            now = time_ns() // 1000
            skey = (spec.ident, key)
            # acquire/release rather than ``with``: half the cost on this path
            acquire()
            try:
                entry = get(skey)
                allowed, remaining, reset, retry, state = spec.step(
                    entry[0] if entry is not None and entry[1] > now else None, now, cost
                )
                if allowed:
                    if spec.code == 4:
                        state = commit_log(state, now, spec.period, cost)
                    if entry is None and len(states) >= self._sweep_at:
                        self._sweep(now)
                    states[skey] = (state, now + (reset or 1))
            finally:
                release()
            if allowed:
                count_allowed()
                return new(
                    Decision,
                    (
                        True,
                        spec.burst,
                        remaining,
                        reset / 1e6,
                        None,
                        key,
                        spec.limit,
                        False,
                        False,
                        None,
                        (),
                    ),
                )
            count_refused()
            return new(
                Decision,
                (
                    False,
                    spec.burst,
                    remaining,
                    reset / 1e6,
                    None if retry < 0 else retry / 1e6,
                    key,
                    spec.limit,
                    False,
                    False,
                    None,
                    (),
                ),
            )

        return hit

    def has_bans(self) -> bool:
        """True when some ban record exists (then hits take the general path)."""
        return bool(self._bans)

    def run(
        self, requests: list[Request], now: int | None, commit: bool, policy: BanPolicy | None
    ) -> Result:
        """Evaluate a batch atomically under the lock and store its effects."""
        assert now is not None
        with self._lock:
            if policy is not None:
                self._window = round(policy.find_window * 1_000_000)
            states = {}
            for req in requests:
                entry = self._states.get(req.skey)
                if entry is not None and entry[1] > now:
                    states[req.skey] = entry[0]
            bans = {r.key: self._bans.get(r.key) for r in requests} if self._bans else None
            violations = {r.key: self._violations.get(r.key) for r in requests} if policy else None
            result = evaluate(
                requests,
                states,
                now,
                commit=commit,
                policy=policy,
                bans=bans,
                violations=violations,
            )
            if len(self._states) >= self._sweep_at:
                self._sweep(now)
            for skey, (state, ttl) in result.states.items():
                self._states[skey] = (state, now + ttl)
            for key, times in result.violations.items():
                if times is None:
                    self._violations.pop(key, None)
                else:
                    self._violations[key] = times
            self._bans.update(result.bans)
        return result

    def release(self, spec: Spec, key: str, lease: str, now: int) -> bool:
        """Return a concurrency lease; False if it had already expired or was unknown."""
        skey = (spec.ident, key)
        with self._lock:
            entry = self._states.get(skey)
            if entry is None:
                return False
            live, kept = _core.concurrency_release(entry[0], now, lease)
            if kept:
                self._states[skey] = (kept, kept[-1][0])
            else:
                del self._states[skey]
            return live

    def peek_state(self, skey: Any, now: int) -> Any:
        """The live state under ``skey`` (tests and stats)."""
        with self._lock:
            entry = self._states.get(skey)
            return entry[0] if entry is not None and entry[1] > now else None

    def reset(self, skeys: list[Any]) -> None:
        """Forget the state of these storage keys."""
        with self._lock:
            for skey in skeys:
                self._states.pop(skey, None)

    def set_ban(self, key: str, ban: BanState | None, now: int) -> None:
        """Write (or with ``None`` remove) a ban record, and forget violations."""
        with self._lock:
            self._violations.pop(key, None)
            if ban is None:
                self._bans.pop(key, None)
            else:
                self._bans[key] = ban

    def get_ban(self, key: str) -> BanState | None:
        """The ban record of ``key``, if any."""
        with self._lock:
            return self._bans.get(key)

    def list_bans(self, now: int) -> list[tuple[str, BanState]]:
        """Ban records still in force, by key."""
        with self._lock:
            for key in [k for k, b in self._bans.items() if b.keep_until <= now]:
                del self._bans[key]
            return sorted((k, b) for k, b in self._bans.items() if b.until > now)

    def time_us(self, clock_now: int) -> int:
        """The decision time: the limiter's clock."""
        return clock_now

    def close(self) -> None:
        """Nothing to release."""

    def _sweep(self, now: int) -> None:
        states = self._states
        for skey in [k for k, (_, exp) in states.items() if exp <= now]:
            del states[skey]
        self._sweep_at = max(1024, 2 * len(states))
        cutoff = now - self._window
        for key in [k for k, t in self._violations.items() if not t or t[-1] <= cutoff]:
            del self._violations[key]
