"""Sans-I/O evaluation of a batch of hits: the all-or-nothing rule, bans and violations.

The memory and SQL backends load the states a batch needs, call :func:`evaluate`,
and store what it returns; the Redis Lua script implements the same rules.
Nothing here reads a clock or touches storage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from cognitionos.ratelimit import _core
from cognitionos.ratelimit._keys import encode_name
from cognitionos.ratelimit.models import Algorithm, BanPolicy, Limit

__all__ = ["BanState", "Outcome", "Request", "Result", "Spec", "compile_spec", "evaluate"]

_CODES = {
    Algorithm.FIXED_WINDOW: 1,
    Algorithm.FIXED_WINDOW_ANCHORED: 2,
    Algorithm.SLIDING_WINDOW: 3,
    Algorithm.SLIDING_LOG: 4,
    Algorithm.TOKEN_BUCKET: 5,
    Algorithm.GCRA: 6,
    Algorithm.CONCURRENCY: 7,
}


@attrs.frozen(slots=True)
class Spec:
    """A limit compiled for one algorithm: integer parameters and a storage id."""

    limit: Limit
    algorithm: Algorithm
    code: int
    period: int
    amount: int
    burst: int
    ident: str
    step: Callable[[Any, int, int], _core.Step]


def compile_spec(limit: Limit, algorithm: Algorithm) -> Spec:
    """Bind ``limit``'s integers into a step function for ``algorithm``."""
    period, amount, burst = limit.period_us, limit.amount, limit.capacity
    step: Callable[[Any, int, int], _core.Step]
    if algorithm is Algorithm.FIXED_WINDOW:

        def step(s: Any, now: int, cost: int) -> _core.Step:
            return _core.fixed_window(s, now, period, amount, cost)
    elif algorithm is Algorithm.FIXED_WINDOW_ANCHORED:

        def step(s: Any, now: int, cost: int) -> _core.Step:
            return _core.fixed_window_anchored(s, now, period, amount, cost)
    elif algorithm is Algorithm.SLIDING_WINDOW:

        def step(s: Any, now: int, cost: int) -> _core.Step:
            return _core.sliding_window(s, now, period, amount, cost)
    elif algorithm is Algorithm.SLIDING_LOG:

        def step(s: Any, now: int, cost: int) -> _core.Step:
            return _core.sliding_log(s, now, period, amount, cost)
    elif algorithm is Algorithm.TOKEN_BUCKET:
        step = _core.token_bucket_step(period, amount, burst)
    elif algorithm is Algorithm.GCRA:
        step = _core.gcra_step(period, amount, burst)
    else:

        def step(s: Any, now: int, cost: int) -> _core.Step:
            raise AssertionError("concurrency leases are evaluated by evaluate()")

    cap = burst if algorithm in (Algorithm.TOKEN_BUCKET, Algorithm.GCRA) else amount
    ident = f"{_CODES[algorithm]}:{amount}:{period}" + (
        f":{burst}" if algorithm in (Algorithm.TOKEN_BUCKET, Algorithm.GCRA) else ""
    )
    if limit.name:
        # a named policy keeps its own counters, even beside an identical unnamed one
        ident += ":" + encode_name(limit.name)
    return Spec(limit, algorithm, _CODES[algorithm], period, amount, cap, ident, step)


@attrs.frozen(slots=True)
class Request:
    """One hit of a batch: a compiled limit, the caller's key, its storage key and cost."""

    spec: Spec
    key: str
    skey: str
    cost: int
    lease: str | None = None


@attrs.frozen(slots=True)
class BanState:
    """A key's ban record; it outlives the ban (``keep_until``) to remember repeat offenders."""

    until: int
    offenses: int
    keep_until: int
    manual: bool = False


#: (allowed, remaining, reset_after_us, retry_after_us, banned)
Outcome = tuple[bool, int, int, int, bool]


@attrs.define(slots=True)
class Result:
    """What :func:`evaluate` decided and what the backend must store."""

    outcomes: list[Outcome]
    charged: bool
    #: skey -> (new state, ttl_us); only filled when ``charged``
    states: dict[str, tuple[Any, int]] = attrs.field(factory=dict)
    #: key -> new violation timestamps (``None`` deletes)
    violations: dict[str, tuple[int, ...] | None] = attrs.field(factory=dict)
    #: key -> new ban record
    bans: dict[str, BanState] = attrs.field(factory=dict)
    #: how many bans this batch imposed
    new_bans: int = 0


def _step(req: Request, state: Any, now: int) -> _core.Step:
    spec = req.spec
    if spec.code == 7:
        return _core.concurrency_acquire(
            state, now, spec.period, spec.amount, req.cost, req.lease or ""
        )
    return spec.step(state, now, req.cost)


def _copy_state(state: Any) -> Any:
    if isinstance(state, _core.SlidingLog):
        return _core.SlidingLog.from_entries(state.entries())
    return state


def evaluate(
    requests: Sequence[Request],
    states: Mapping[str, Any],
    now: int,
    *,
    commit: bool,
    policy: BanPolicy | None = None,
    bans: Mapping[str, BanState | None] | None = None,
    violations: Mapping[str, tuple[int, ...] | None] | None = None,
) -> Result:
    """Decide every request at ``now``; charge all of them only if all are admitted.

    Banned keys refuse the whole batch without touching counters. A refusal with
    ``commit`` and a ``policy`` records one violation per refused key, and bans a
    key that reaches ``max_violations`` within ``find_window``.
    """
    outcomes: list[Outcome] = []
    result = Result(outcomes, False)
    if bans:
        banned = False
        for req in requests:
            ban = bans.get(req.key)
            if ban is not None and ban.until > now:
                banned = True
                wait = ban.until - now
                outcomes.append((False, 0, wait, wait, True))
            else:
                outcomes.append((True, 0, 0, _core.NEVER, False))
        if banned:
            for i, req in enumerate(requests):
                if not outcomes[i][4]:
                    step = _step(req, states.get(req.skey), now)
                    outcomes[i] = (step[0], step[1], step[2], step[3], False)
            return result
        outcomes.clear()

    # Decide everything before changing anything: a sliding log is mutable and must not
    # be charged unless the whole batch is admitted.
    repeated = len(requests) > 1 and len({r.skey for r in requests}) < len(requests)
    pending: dict[str, Any] = {}
    steps: list[_core.Step] = []
    all_ok = True
    for req in requests:
        state = pending[req.skey] if req.skey in pending else states.get(req.skey)
        step = _step(req, state, now)
        steps.append(step)
        outcomes.append((step[0], step[1], step[2], step[3], False))
        if not step[0]:
            all_ok = False
        elif repeated:
            # a later request on the same key must see this one charged (on a copy)
            new = step[4]
            if req.spec.code == 4:
                new = _core.sliding_log_commit(_copy_state(new), now, req.spec.period, req.cost)
            pending[req.skey] = new
    if all_ok:
        if commit:
            result.charged = True
            for req, step in zip(requests, steps, strict=True):
                if repeated:
                    new = pending[req.skey]
                elif req.spec.code == 4:
                    new = _core.sliding_log_commit(step[4], now, req.spec.period, req.cost)
                else:
                    new = step[4]
                result.states[req.skey] = (new, max(1, step[2]))
        return result
    result.states.clear()
    if commit and policy is not None:
        _record_violations(requests, outcomes, now, policy, bans or {}, violations or {}, result)
    return result


def _record_violations(
    requests: Sequence[Request],
    outcomes: list[Outcome],
    now: int,
    policy: BanPolicy,
    bans: Mapping[str, BanState | None],
    violations: Mapping[str, tuple[int, ...] | None],
    result: Result,
) -> None:
    window = round(policy.find_window * 1_000_000)
    seen: set[str] = set()
    for req, outcome in zip(requests, outcomes, strict=True):
        key = req.key
        if outcome[0] or key in seen or key in policy.allow_list:
            continue
        seen.add(key)
        times = tuple(t for t in violations.get(key) or () if t > now - window)
        times = (*times, now)[-policy.max_violations :]
        if len(times) >= policy.max_violations:
            old = bans.get(key)
            offenses = (old.offenses if old is not None and old.keep_until > now else 0) + 1
            until = now + policy.ban_duration_us(offenses)
            keep = max(until, now + round(policy.forget_after * 1_000_000))
            result.bans[key] = BanState(until, offenses, keep)
            result.new_bans += 1
            result.violations[key] = None
        else:
            result.violations[key] = times
