"""The in-process backend: one lock, lazy expiry on access, a hard cap on keys.

No background thread ever runs: an expired key is dropped when it is next
touched, and once ``max_keys`` is reached the least recently used key is
evicted, so rotating client ids cannot grow memory without bound.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from cognitionos._fork import reset_after_fork
from cognitionos.clock import Clock, SystemClock
from cognitionos.errors import ConfigurationError
from cognitionos.storage._base import (
    BaseStore,
    FeedSubscription,
    Subscribers,
    check_key,
    check_payload,
    ttl_to_ns,
)
from cognitionos.storage._types import Capability, Change, Entry, Event

__all__ = ["MemoryStore"]

DEFAULT_MAX_KEYS = 1_000_000
DEFAULT_MAX_EVENTS = 1_000_000

_KV = "k:"
_CTR = "c:"


class MemoryStore(BaseStore):
    """Key-value, counters, event log and change feed in this process.

    ``MemoryStore(clock=ManualClock(), max_keys=10_000)`` or ``open_store("memory://?max_keys=10000")``.
    Thread-safe; not shared between processes.
    """

    backend = "memory"
    capabilities = frozenset(Capability)

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_events_per_stream: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        if max_keys < 1 or max_events_per_stream < 1:
            raise ConfigurationError("max_keys and max_events_per_stream must be >= 1")
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        # one LRU map for KV and counters so the key cap covers both. KV slots are the
        # immutable Entry itself (get() allocates nothing); counters are [count, expires_at_ns]
        self._data: OrderedDict[str, Any] = OrderedDict()
        self._logs: dict[str, tuple[list[Event], list[int]]] = {}
        self._subs = Subscribers()
        self.max_keys = max_keys
        self.max_events_per_stream = max_events_per_stream
        #: number of keys evicted because the cap was reached
        self.evictions = 0
        reset_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks; the data is the child's own copy from here on."""
        self._lock = threading.Lock()
        self._subs.after_fork()

    # -- internals (callers hold the lock) -------------------------------------------------

    def _live_entry(self, k: str, now: int) -> Entry | None:
        entry: Entry | None = self._data.get(k)
        if entry is None:
            return None
        if entry.expires_at_ns is not None and entry.expires_at_ns <= now:
            del self._data[k]
            return None
        self._data.move_to_end(k)
        return entry

    def _live_counter(self, k: str, now: int) -> list[int] | None:
        slot: list[int] | None = self._data.get(k)
        if slot is None:
            return None
        if slot[1] is not None and slot[1] <= now:
            del self._data[k]
            return None
        self._data.move_to_end(k)
        return slot

    def _insert(self, k: str, slot: Any) -> None:
        self._data[k] = slot
        if len(self._data) > self.max_keys:
            self._data.popitem(last=False)
            self.evictions += 1

    # -- key-value -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """The live entry under ``key``, or None."""
        check_key(key)
        with self._lock:
            return self._live_entry(_KV + key, self._clock.time_ns())

    def set(self, key: str, value: bytes, *, ttl: float | None = None) -> int:
        """Write unconditionally; returns the new version."""
        check_key(key)
        value = check_payload(value)
        ttl_ns = ttl_to_ns(ttl)
        with self._lock:
            now = self._clock.time_ns()
            old = self._live_entry(_KV + key, now)
            version = 1 if old is None else old.version + 1
            self._insert(
                _KV + key, Entry(key, value, version, None if ttl_ns is None else now + ttl_ns)
            )
        if self._subs:
            self._subs.dispatch(Change(key, version))
        return version

    def compare_and_set(
        self, key: str, value: bytes, *, version: int, ttl: float | None = None
    ) -> int | None:
        """Write only if the current version is ``version`` (0 = absent); new version or None."""
        check_key(key)
        value = check_payload(value)
        ttl_ns = ttl_to_ns(ttl)
        if version < 0:
            raise ConfigurationError(f"version must be >= 0, got {version}")
        with self._lock:
            now = self._clock.time_ns()
            old = self._live_entry(_KV + key, now)
            current = 0 if old is None else old.version
            if current != version:
                return None
            new_version = current + 1
            expires = None if ttl_ns is None else now + ttl_ns
            self._insert(_KV + key, Entry(key, value, new_version, expires))
        if self._subs:
            self._subs.dispatch(Change(key, new_version))
        return new_version

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it existed."""
        check_key(key)
        with self._lock:
            old = self._live_entry(_KV + key, self._clock.time_ns())
            if old is None:
                return False
            del self._data[_KV + key]
        self._subs.dispatch(Change(key, old.version, deleted=True))
        return True

    def scan(self, prefix: str = "", *, limit: int = 1000) -> list[Entry]:
        """Live entries under ``prefix``, ordered by key."""
        with self._lock:
            now = self._clock.time_ns()
            start = _KV + prefix
            found = [
                e
                for k, e in self._data.items()
                if k.startswith(start) and (e.expires_at_ns is None or e.expires_at_ns > now)
            ]
        found.sort(key=lambda e: e.key)
        return found[:limit]

    # -- counters --------------------------------------------------------------------------

    def incr(self, key: str, amount: int = 1, *, ttl: float | None = None) -> int:
        """Add ``amount``; the TTL is set when the counter is created."""
        check_key(key)
        ttl_ns = ttl_to_ns(ttl)
        with self._lock:
            now = self._clock.time_ns()
            slot = self._live_counter(_CTR + key, now)
            if slot is None:
                self._insert(_CTR + key, [amount, None if ttl_ns is None else now + ttl_ns])
                return amount
            slot[0] += amount
            return int(slot[0])

    def get_counter(self, key: str) -> int:
        """Current value, 0 if absent or expired."""
        check_key(key)
        with self._lock:
            slot = self._live_counter(_CTR + key, self._clock.time_ns())
            return 0 if slot is None else int(slot[0])

    def reset_counter(self, key: str) -> None:
        """Remove the counter."""
        check_key(key)
        with self._lock:
            self._data.pop(_CTR + key, None)

    # -- event log -------------------------------------------------------------------------

    def append(self, stream: str, payload: bytes) -> Event:
        """Append one event."""
        return self.append_many(stream, [payload])[0]

    def append_many(self, stream: str, payloads: Sequence[bytes]) -> list[Event]:
        """Append events atomically, in order."""
        check_key(stream, "stream")
        checked = [check_payload(p) for p in payloads]
        with self._lock:
            events, last = self._logs.setdefault(stream, ([], [0]))
            now = self._clock.time_ns()
            out = []
            for p in checked:
                last[0] += 1
                out.append(Event(stream, last[0], now, p))
            events.extend(out)
            overflow = len(events) - self.max_events_per_stream
            if overflow > 0:
                del events[:overflow]
        return out

    def read(
        self,
        stream: str,
        *,
        after: int = 0,
        limit: int = 1000,
        since_ns: int | None = None,
        until_ns: int | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` within the time bounds, oldest first."""
        check_key(stream, "stream")
        with self._lock:
            events = self._logs.get(stream, ([], [0]))[0]
            if not events:
                return []
            # seqs are contiguous inside the retained window: index arithmetic, no search
            start = max(0, after - events[0].seq + 1)
            out: list[Event] = []
            for ev in events[start:]:
                if since_ns is not None and ev.timestamp_ns < since_ns:
                    continue
                if until_ns is not None and ev.timestamp_ns >= until_ns:
                    continue
                out.append(ev)
                if len(out) >= limit:
                    break
            return out

    # -- change feed -----------------------------------------------------------------------

    def subscribe(self, prefix: str, callback: Callable[[Change], None]) -> FeedSubscription:
        """Call ``callback`` synchronously, in the writer's thread, after each matching change."""
        return self._subs.add(prefix, callback)

    # -- lifecycle -------------------------------------------------------------------------

    def ping(self) -> float:
        """Time one lock round trip."""
        t0 = time.perf_counter()
        with self._lock:
            pass
        return time.perf_counter() - t0

    def close(self) -> None:
        """Drop subscriptions (the data stays until the object is garbage collected)."""
        self._subs.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)}, max_keys={self.max_keys})"
