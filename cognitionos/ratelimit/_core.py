"""Sans-I/O rate-limit algorithms: pure functions of (state, now, params) -> step.

All times are integer microseconds (Redis ``TIME`` resolution; exact in a Lua
double for the next few centuries), all quantities integers, so every backend
that runs these rules gets bit-identical answers.

Every decision function returns a :data:`Step`, a plain tuple (cheap on the hot path)::

    (allowed, remaining, reset_after_us, retry_after_us, new_state)

``retry_after_us`` is ``-1`` when allowed, and also when a refused request can
never fit (cost larger than the limit). ``reset_after_us`` is the time until the
key is back to its fresh state, so it doubles as the storage TTL. ``new_state``
is what to store if the request is charged; refusals never change state.

State shapes (``None`` means fresh):

==========================  =================================================
fixed window (both kinds)   ``(window_start, count)``
sliding window counter      ``(bucket_start, current, previous)``
token bucket                ``(level, last)``: ``level`` is tokens x period_us
gcra                        ``(tat, tat_frac)``: theoretical arrival time
                            ``tat + tat_frac / amount``
sliding log                 :class:`SlidingLog` (mutable; see its docstring)
concurrency                 tuple of ``(expires, lease_id, cost)``
==========================  =================================================
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any

__all__ = [
    "NEVER",
    "SlidingLog",
    "Step",
    "concurrency_acquire",
    "concurrency_release",
    "fixed_window",
    "fixed_window_anchored",
    "gcra",
    "gcra_step",
    "sliding_log",
    "sliding_log_commit",
    "sliding_window",
    "token_bucket",
    "token_bucket_step",
    "token_bucket_reserve",
    "token_bucket_tokens",
]

#: retry_after_us of a refusal that no amount of waiting can turn into an admission.
NEVER = -1

Step = tuple[bool, int, int, int, Any]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def fixed_window(
    state: tuple[int, int] | None, now: int, period: int, amount: int, cost: int
) -> Step:
    """Counter per clock-aligned window ``[k*period, (k+1)*period)``."""
    start = now - now % period
    count = state[1] if state is not None and state[0] == start else 0
    reset = start + period - now
    used = count + cost
    if used <= amount:
        return (True, amount - used, reset, NEVER, (start, used))
    return (False, amount - count, reset, reset if cost <= amount else NEVER, None)


def fixed_window_anchored(
    state: tuple[int, int] | None, now: int, period: int, amount: int, cost: int
) -> Step:
    """Counter per window that opens at the first hit after the previous one closed."""
    if state is None or now >= state[0] + period:
        start, count = now, 0
    else:
        start, count = state
    reset = start + period - now
    used = count + cost
    if used <= amount:
        return (True, amount - used, reset, NEVER, (start, used))
    return (False, amount - count, reset if count else 0, reset if cost <= amount else NEVER, None)


def _roll(state: tuple[int, int, int] | None, start: int, period: int) -> tuple[int, int]:
    if state is None:
        return 0, 0
    s, cur, prev = state
    if s == start:
        return cur, prev
    if s == start - period:
        return 0, cur
    if s > start:  # the clock went backwards: keep counting what we saw
        return cur, prev
    return 0, 0


def sliding_window(
    state: tuple[int, int, int] | None, now: int, period: int, amount: int, cost: int
) -> Step:
    """Sliding-window counter: ``floor(prev * (period - elapsed) / period) + current``.

    Buckets are clock aligned; the previous bucket's count is weighted by how much
    of it the sliding window still covers.
    """
    start = now - now % period
    cur, prev = _roll(state, start, period)
    elapsed = now - start
    weighted = prev * (period - elapsed) // period + cur
    if weighted + cost <= amount:
        cur += cost
        if cur:
            reset = start + 2 * period - now
        elif prev:
            reset = start + period - now
        else:
            reset = 0
        return (True, amount - weighted - cost, reset, NEVER, (start, cur, prev))
    reset = start + (2 * period if cur else period) - now
    if cost > amount:
        return (False, max(0, amount - weighted), reset, NEVER, None)
    if cur + cost <= amount:
        # Wait inside this bucket until the previous bucket's weight has decayed enough.
        room = amount - cost - cur
        at = period - ((room + 1) * period - 1) // prev
        retry = start + at - now
    else:
        # Wait into the next bucket, where this bucket's count becomes the weighted one.
        room = amount - cost
        at = max(0, period - ((room + 1) * period - 1) // cur)
        retry = start + period + at - now
    return (False, max(0, amount - weighted), reset, max(1, retry), None)


def token_bucket_refill(
    state: tuple[int, int] | None, now: int, period: int, amount: int, burst: int
) -> tuple[int, int]:
    """``(level, last)`` at ``now``: refilled at ``amount`` tokens per ``period``.

    A clock that jumps backwards creates no tokens; ``last`` follows it back (as
    golang.org/x/time/rate does) so later refills count from the earlier time.
    """
    cap = burst * period
    if state is None:
        return cap, now
    level, last = state
    if now > last and level < cap:
        gain = (now - last) * amount
        level = cap if gain >= cap - level else level + gain
    return level, now


def token_bucket(
    state: tuple[int, int] | None, now: int, period: int, amount: int, burst: int, cost: int
) -> Step:
    """Token bucket of ``burst`` tokens refilled continuously at ``amount/period``."""
    return token_bucket_step(period, amount, burst)(state, now, cost)


def token_bucket_step(period: int, amount: int, burst: int) -> Callable[[Any, int, int], Step]:
    """:func:`token_bucket` with the limit's integers bound (what a compiled limit calls).

    The refill of :func:`token_bucket_refill` is inlined: on the memory fast path one
    Python call less is a measurable part of a hit.
    """
    cap = burst * period

    def step(state: tuple[int, int] | None, now: int, cost: int) -> Step:
        if state is None:
            level, last = cap, now
        else:
            level = state[0]
            if now > state[1] and level < cap:
                gain = (now - state[1]) * amount
                level = cap if gain >= cap - level else level + gain
            last = now
        need = cost * period
        if level >= need:
            level -= need
            return (True, level // period, -((level - cap) // amount), NEVER, (level, last))
        reset = -((level - cap) // amount)
        retry = NEVER if cost > burst else -((level - need) // amount)
        return (False, max(0, level // period), reset, retry, None)

    return step


def token_bucket_tokens(
    state: tuple[int, int] | None, now: int, period: int, amount: int, burst: int
) -> float:
    """Tokens available at ``now`` (may be negative after reservations)."""
    return token_bucket_refill(state, now, period, amount, burst)[0] / period


def token_bucket_reserve(
    state: tuple[int, int] | None, now: int, period: int, amount: int, burst: int, cost: int
) -> tuple[bool, int, tuple[int, int] | None]:
    """Reserve ``cost`` tokens, going into debt: ``(ok, wait_us, new_state)``.

    The caller may act after ``wait_us``. Refused (``ok`` False) only when ``cost``
    exceeds ``burst``.
    """
    if cost > burst:
        return False, NEVER, None
    level, last = token_bucket_refill(state, now, period, amount, burst)
    level -= cost * period
    wait = _ceil_div(-level, amount) if level < 0 else 0
    return True, wait, (level, last)


def gcra(
    state: tuple[int, int] | None, now: int, period: int, amount: int, burst: int, cost: int
) -> Step:
    """GCRA with burst: admit while the theoretical arrival time stays within tolerance.

    The emission interval is ``period/amount``; the tolerance is ``burst`` intervals.
    Arithmetic is scaled by ``amount`` relative to ``now`` so nothing is rounded.
    Semantics (remaining, reset, retry) follow redis-cell's ``CL.THROTTLE``.
    """
    return gcra_step(period, amount, burst)(state, now, cost)


def gcra_step(period: int, amount: int, burst: int) -> Callable[[Any, int, int], Step]:
    """:func:`gcra` with the limit's integers bound (what a compiled limit calls per hit)."""
    limit = burst * period

    def step(state: tuple[int, int] | None, now: int, cost: int) -> Step:
        # used: how far the TAT is ahead of now, in 1/amount microseconds.
        if state is None or state[0] < now or (state[0] == now and state[1] == 0):
            used = 0
        else:
            used = (state[0] - now) * amount + state[1]
        new_used = used + cost * period
        if new_used <= limit:
            tat, frac = divmod(new_used, amount)
            return (
                True,
                (limit - new_used) // period,
                -(-new_used // amount),
                NEVER,
                (now + tat, frac),
            )
        retry = NEVER if cost > burst else -((limit - new_used) // amount)
        return (False, (limit - used) // period, -(-used // amount), retry, None)

    return step


class SlidingLog:
    """Timestamps of admitted hits with running cost totals: 16 bytes per entry.

    ``ts[i]`` is a hit time, ``cum[i]`` the total cost up to and including it; entries
    before ``head`` have expired. Counting a window is two bisections, so a decision
    costs O(log n) however many entries the window holds.
    """

    __slots__ = ("cum", "head", "ts")

    def __init__(self) -> None:
        self.ts = array("q")
        self.cum = array("q")
        self.head = 0

    def __len__(self) -> int:
        return len(self.ts) - self.head

    def entries(self) -> list[tuple[int, int]]:
        """Live ``(timestamp, cost)`` pairs, oldest first (for serialisation and tests)."""
        out: list[tuple[int, int]] = []
        before = self.cum[self.head - 1] if self.head else 0
        for i in range(self.head, len(self.ts)):
            out.append((self.ts[i], self.cum[i] - before))
            before = self.cum[i]
        return out

    @classmethod
    def from_entries(cls, entries: list[tuple[int, int]]) -> SlidingLog:
        """Rebuild a log from ``(timestamp, cost)`` pairs in time order."""
        log = cls()
        total = 0
        for ts, cost in entries:
            total += cost
            log.ts.append(ts)
            log.cum.append(total)
        return log


def sliding_log(log: SlidingLog | None, now: int, period: int, amount: int, cost: int) -> Step:
    """Exact sliding window ``(now - period, now]``; never more than ``amount`` in any window.

    Reads only; on admission call :func:`sliding_log_commit` with the returned state.
    """
    count = 0
    if log is not None and len(log.ts) > log.head:
        ts, cum = log.ts, log.cum
        cut = bisect_right(ts, now - period, log.head)
        base = cum[cut - 1] if cut else 0
        count = cum[-1] - base
    if count == 0:
        if cost <= amount:
            return (True, amount - cost, period if cost else 0, NEVER, log)
        return (False, amount, 0, NEVER, None)
    newest = ts[-1] if ts[-1] > now else now
    if count + cost <= amount:
        reset = newest + period - now if cost else (ts[-1] + period - now if count else 0)
        return (True, amount - count - cost, reset, NEVER, log)
    reset = ts[-1] + period - now
    if cost > amount:
        return (False, max(0, amount - count), reset, NEVER, None)
    j = bisect_left(cum, base + count + cost - amount, cut)
    return (False, max(0, amount - count), reset, max(1, ts[j] + period - now), None)


def sliding_log_commit(log: SlidingLog | None, now: int, period: int, cost: int) -> SlidingLog:
    """Record an admitted hit of ``cost`` at ``now`` and drop expired entries."""
    if log is None:
        log = SlidingLog()
    ts, cum = log.ts, log.cum
    if log.head < len(ts):
        log.head = bisect_right(ts, now - period, log.head)
    if log.head and log.head >= len(ts) // 2:
        # Compact once half the entries are dead: amortised O(1) per hit.
        if log.head == len(ts):
            del ts[:], cum[:]
        else:
            # cum holds running totals: rebase them so the survivors count from zero again
            dead = cum[log.head - 1]
            del ts[: log.head], cum[: log.head]
            for i in range(len(cum)):
                cum[i] -= dead
        log.head = 0
    if not cost:
        return log
    if ts and ts[-1] >= now:
        # Same microsecond (or a clock that went back): merge into the newest entry so
        # timestamps stay sorted; it then expires a little later, which errs safe.
        cum[-1] += cost
    else:
        ts.append(now)
        cum.append((cum[-1] if cum else 0) + cost)
    return log


def concurrency_acquire(
    state: tuple[tuple[int, str, int], ...] | None,
    now: int,
    ttl: int,
    amount: int,
    cost: int,
    lease_id: str,
) -> Step:
    """Take ``cost`` of ``amount`` in-flight slots as lease ``lease_id`` expiring after ``ttl``."""
    live = tuple(lease for lease in state or () if lease[0] > now)
    used = sum(lease[2] for lease in live)
    if used + cost <= amount:
        new = tuple(sorted((*live, (now + ttl, lease_id, cost))))
        return (True, amount - used - cost, new[-1][0] - now, NEVER, new)
    reset = max((lease[0] for lease in live), default=now) - now
    if cost > amount:
        return (False, amount - used, reset, NEVER, None)
    freed = 0
    retry = reset
    for expires, _, lease_cost in sorted(live):
        freed += lease_cost
        if used - freed + cost <= amount:
            retry = expires - now
            break
    return (False, amount - used, reset, retry, None)


def concurrency_release(
    state: tuple[tuple[int, str, int], ...] | None, now: int, lease_id: str
) -> tuple[bool, tuple[tuple[int, str, int], ...]]:
    """Drop lease ``lease_id`` (and expired ones): ``(was_live, new_state)``."""
    live = tuple(lease for lease in state or () if lease[0] > now)
    kept = tuple(lease for lease in live if lease[1] != lease_id)
    return len(kept) != len(live), kept
