"""Time, injected.

Engines never read the system clock directly: they take a :class:`Clock`.
Production code uses :class:`SystemClock`; tests use :class:`ManualClock`,
whose integer-nanosecond time only moves when the test says so::

    clock = ManualClock(start=1_700_000_000)
    limiter = RateLimiter("memory://", clock=clock)
    clock.advance(1.5)
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ManualClock", "SystemClock", "NS_PER_SECOND"]

NS_PER_SECOND = 1_000_000_000


@runtime_checkable
class Clock(Protocol):
    """Source of wall-clock time as integer nanoseconds since the Unix epoch."""

    def time_ns(self) -> int:
        """Current time in integer nanoseconds since the epoch."""
        ...

    def time(self) -> float:
        """Current time in float seconds since the epoch."""
        ...


class SystemClock:
    """The host's wall clock (``time.time_ns``)."""

    __slots__ = ()

    def time_ns(self) -> int:
        """Current time in integer nanoseconds since the epoch."""
        return _time.time_ns()

    def time(self) -> float:
        """Current time in float seconds since the epoch."""
        return _time.time()

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to; deterministic tests use it.

    Time is kept as integer nanoseconds so repeated ``advance`` calls never
    accumulate float error::

        clock = ManualClock(start=100)
        clock.advance(0.25)
        assert clock.time_ns() == 100_250_000_000
    """

    __slots__ = ("_lock", "_now_ns")

    def __init__(self, start: float = 0.0, *, start_ns: int | None = None) -> None:
        self._now_ns = start_ns if start_ns is not None else round(start * NS_PER_SECOND)
        self._lock = threading.Lock()

    def time_ns(self) -> int:
        """Current time in integer nanoseconds."""
        return self._now_ns

    def time(self) -> float:
        """Current time in float seconds."""
        return self._now_ns / NS_PER_SECOND

    def advance(self, seconds: float = 0.0, *, ns: int = 0) -> None:
        """Move time forward (or backward, with a negative amount, to simulate a clock jump)."""
        with self._lock:
            self._now_ns += round(seconds * NS_PER_SECOND) + ns

    def set(self, seconds: float | None = None, *, ns: int | None = None) -> None:
        """Jump to an absolute time given in seconds or nanoseconds."""
        if (seconds is None) == (ns is None):
            raise TypeError("pass exactly one of seconds or ns")
        with self._lock:
            self._now_ns = ns if ns is not None else round(seconds * NS_PER_SECOND)  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"ManualClock(start_ns={self._now_ns})"
