"""The storage contract as pytest test classes; a backend subclasses them to prove itself.

The fsspec pattern: each capability is one abstract class whose tests use two
fixtures the subclass provides:

- ``store`` - an open store of the backend under test (closed after the test);
- ``advance`` - a callable ``advance(seconds)`` that makes that much time pass
  for the backend's TTLs (move a ManualClock; for server-clocked backends, wait).

``ConcurrencyContract`` also needs ``store_url`` (a URL every worker process can
open) and runs ``processes`` x ``threads`` workers; set ``processes = 0`` for a
backend that lives in one process only.

Example for a third-party backend (``clock`` is shipped in :mod:`cognitionos.testing.fixtures`)::

    from cognitionos.testing.contract import KeyValueContract, CounterContract
    from cognitionos.testing.fixtures import clock

    class TestMyBackend(KeyValueContract, CounterContract):
        @pytest.fixture
        def store(self, clock):
            s = MyStore(clock=clock); yield s; s.close()

        @pytest.fixture
        def advance(self, clock):
            return clock.advance

Every test uses keys under a fresh random namespace, so a shared server needs no cleanup.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.storage import Capability, Change, open_store

__all__ = [
    "ChangeFeedContract",
    "ConcurrencyContract",
    "CounterContract",
    "EventLogContract",
    "KeyValueContract",
    "concurrency_worker",
    "concurrency_worker_on",
]


class _Base:
    @pytest.fixture
    def ns(self) -> str:
        return f"t{uuid.uuid4().hex[:12]}:"


class KeyValueContract(_Base):
    """Key-value with TTL and compare-and-set on a version."""

    def test_declares_kv(self, store: Any) -> None:
        assert Capability.KV in store.capabilities
        store.require("kv", needed_by="contract")

    def test_missing_key_is_none(self, store: Any, ns: str) -> None:
        assert store.get(ns + "absent") is None

    def test_set_then_get_roundtrips_bytes(self, store: Any, ns: str) -> None:
        payload = bytes(range(256))
        assert store.set(ns + "a", payload) == 1
        entry = store.get(ns + "a")
        assert entry is not None
        assert (entry.key, entry.value, entry.version) == (ns + "a", payload, 1)

    def test_set_increments_version(self, store: Any, ns: str) -> None:
        assert [store.set(ns + "a", b"%d" % i) for i in range(3)] == [1, 2, 3]
        assert store.get(ns + "a").value == b"2"

    def test_empty_value_is_a_value(self, store: Any, ns: str) -> None:
        store.set(ns + "e", b"")
        entry = store.get(ns + "e")
        assert entry is not None and entry.value == b""

    def test_cas_creates_only_when_absent(self, store: Any, ns: str) -> None:
        assert store.compare_and_set(ns + "c", b"one", version=0) == 1
        assert store.compare_and_set(ns + "c", b"two", version=0) is None
        assert store.get(ns + "c").value == b"one"

    def test_cas_rejects_stale_version(self, store: Any, ns: str) -> None:
        store.set(ns + "c", b"v1")
        store.set(ns + "c", b"v2")
        assert store.compare_and_set(ns + "c", b"late", version=1) is None
        assert store.compare_and_set(ns + "c", b"v3", version=2) == 3
        assert store.get(ns + "c").value == b"v3"

    def test_cas_on_absent_key_with_version_fails(self, store: Any, ns: str) -> None:
        assert store.compare_and_set(ns + "nope", b"x", version=4) is None
        assert store.get(ns + "nope") is None

    def test_negative_version_is_misuse(self, store: Any, ns: str) -> None:
        with pytest.raises(ConfigurationError):
            store.compare_and_set(ns + "c", b"x", version=-1)

    def test_ttl_expires(self, store: Any, ns: str, advance: Callable[[float], None]) -> None:
        store.set(ns + "t", b"x", ttl=0.2)
        assert store.get(ns + "t") is not None
        advance(0.4)
        assert store.get(ns + "t") is None
        # an expired key is absent for compare-and-set too, and its version starts again
        assert store.compare_and_set(ns + "t", b"y", version=0) == 1

    def test_set_without_ttl_clears_previous_ttl(
        self, store: Any, ns: str, advance: Callable[[float], None]
    ) -> None:
        store.set(ns + "t", b"x", ttl=0.2)
        store.set(ns + "t", b"y")
        advance(0.4)
        entry = store.get(ns + "t")
        assert entry is not None and entry.value == b"y"

    def test_ttl_reported(self, store: Any, ns: str) -> None:
        store.set(ns + "t", b"x", ttl=100)
        assert store.get(ns + "t").expires_at_ns is not None
        store.set(ns + "u", b"x")
        assert store.get(ns + "u").expires_at_ns is None

    def test_delete(self, store: Any, ns: str) -> None:
        store.set(ns + "d", b"x")
        assert store.delete(ns + "d") is True
        assert store.get(ns + "d") is None
        assert store.delete(ns + "d") is False

    def test_scan_prefix_ordered_and_limited(self, store: Any, ns: str) -> None:
        for name in ("b", "a", "c", "a%", "a_"):
            store.set(f"{ns}p:{name}", name.encode())
        store.set(f"{ns}q:z", b"other")
        keys = [e.key for e in store.scan(ns + "p:")]
        assert keys == sorted(f"{ns}p:{n}" for n in ("b", "a", "c", "a%", "a_"))
        assert [e.key for e in store.scan(ns + "p:a")] == [f"{ns}p:a", f"{ns}p:a%", f"{ns}p:a_"]
        assert [e.key for e in store.scan(ns + "p:a%")] == [f"{ns}p:a%"]
        assert len(store.scan(ns + "p:", limit=2)) == 2

    def test_scan_skips_expired(
        self, store: Any, ns: str, advance: Callable[[float], None]
    ) -> None:
        store.set(ns + "s:1", b"x", ttl=0.2)
        store.set(ns + "s:2", b"y")
        advance(0.4)
        assert [e.key for e in store.scan(ns + "s:")] == [ns + "s:2"]

    @pytest.mark.parametrize("bad", ["", "k" * 513])
    def test_bad_keys_rejected(self, store: Any, bad: str) -> None:
        with pytest.raises(ConfigurationError):
            store.set(bad, b"x")

    def test_non_bytes_value_rejected(self, store: Any, ns: str) -> None:
        with pytest.raises(ConfigurationError):
            store.set(ns + "x", "text")

    @pytest.mark.parametrize("ttl", [0, -1, float("nan")])
    def test_bad_ttl_rejected(self, store: Any, ns: str, ttl: float) -> None:
        with pytest.raises(ConfigurationError):
            store.set(ns + "x", b"v", ttl=ttl)

    def test_unicode_keys(self, store: Any, ns: str) -> None:
        key = ns + "ключ:🔑"
        store.set(key, b"x")
        assert store.get(key).value == b"x"
        assert [e.key for e in store.scan(ns + "ключ")] == [key]


class CounterContract(_Base):
    """Atomic counters with TTL set on first write."""

    def test_declares_counters(self, store: Any) -> None:
        assert Capability.COUNTERS in store.capabilities

    def test_incr_returns_new_value(self, store: Any, ns: str) -> None:
        assert store.incr(ns + "c") == 1
        assert store.incr(ns + "c", 5) == 6
        assert store.incr(ns + "c", -2) == 4
        assert store.get_counter(ns + "c") == 4

    def test_absent_counter_is_zero(self, store: Any, ns: str) -> None:
        assert store.get_counter(ns + "none") == 0

    def test_counter_ttl_from_first_write(
        self, store: Any, ns: str, advance: Callable[[float], None]
    ) -> None:
        store.incr(ns + "w", ttl=0.3)
        advance(0.2)
        store.incr(ns + "w", ttl=0.3)  # does not extend the window
        advance(0.2)
        assert store.get_counter(ns + "w") == 0
        assert store.incr(ns + "w", ttl=0.3) == 1

    def test_counter_and_kv_namespaces_are_separate(self, store: Any, ns: str) -> None:
        if Capability.KV not in store.capabilities:
            pytest.skip("backend has no key-value capability")
        store.set(ns + "same", b"kv")
        assert store.incr(ns + "same") == 1
        assert store.get(ns + "same").value == b"kv"

    def test_reset(self, store: Any, ns: str) -> None:
        store.incr(ns + "r", 3)
        store.reset_counter(ns + "r")
        assert store.get_counter(ns + "r") == 0

    def test_large_values(self, store: Any, ns: str) -> None:
        assert store.incr(ns + "big", 2**40) == 2**40
        assert store.incr(ns + "big", 2**40) == 2**41


class EventLogContract(_Base):
    """Append-only streams read back in order."""

    def test_declares_event_log(self, store: Any) -> None:
        assert Capability.EVENT_LOG in store.capabilities

    def test_sequence_numbers_are_gapless(self, store: Any, ns: str) -> None:
        events = [store.append(ns + "s", b"%d" % i) for i in range(5)]
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert [e.payload for e in store.read(ns + "s")] == [b"0", b"1", b"2", b"3", b"4"]

    def test_read_after_and_limit(self, store: Any, ns: str) -> None:
        store.append_many(ns + "s", [b"a", b"b", b"c", b"d"])
        assert [e.payload for e in store.read(ns + "s", after=2)] == [b"c", b"d"]
        assert [e.seq for e in store.read(ns + "s", after=1, limit=2)] == [2, 3]
        assert store.read(ns + "s", after=4) == []

    def test_streams_are_independent(self, store: Any, ns: str) -> None:
        store.append(ns + "x", b"1")
        assert store.append(ns + "y", b"1").seq == 1
        assert store.read(ns + "missing") == []

    def test_append_many_is_ordered_and_atomic(self, store: Any, ns: str) -> None:
        events = store.append_many(ns + "m", [b"p%d" % i for i in range(50)])
        assert [e.seq for e in events] == list(range(1, 51))
        assert len({e.timestamp_ns for e in events}) == 1
        assert store.append_many(ns + "m", []) == []

    def test_time_range(self, store: Any, ns: str, advance: Callable[[float], None]) -> None:
        first = store.append(ns + "t", b"early")
        advance(0.2)
        second = store.append(ns + "t", b"late")
        assert second.timestamp_ns > first.timestamp_ns
        late = store.read(ns + "t", since_ns=second.timestamp_ns)
        assert [e.payload for e in late] == [b"late"]
        early = store.read(ns + "t", until_ns=second.timestamp_ns)
        assert [e.payload for e in early] == [b"early"]

    def test_payload_bytes_preserved(self, store: Any, ns: str) -> None:
        blob = bytes(range(256)) * 4
        store.append(ns + "b", blob)
        assert store.read(ns + "b")[0].payload == blob


class ChangeFeedContract(_Base):
    """Subscribers hear about key-value changes under their prefix."""

    #: how long to wait for delivery (backends with polling or pub/sub are asynchronous)
    feed_timeout = 5.0

    def _wait(self, seen: list[Change], count: int) -> None:
        deadline = time.monotonic() + self.feed_timeout
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def test_declares_change_feed(self, store: Any) -> None:
        assert Capability.CHANGE_FEED in store.capabilities

    def test_changes_under_prefix_are_delivered_in_order(self, store: Any, ns: str) -> None:
        seen: list[Change] = []
        lock = threading.Lock()

        def on_change(change: Change) -> None:
            with lock:
                seen.append(change)

        sub = store.subscribe(ns + "flags:", on_change)
        try:
            store.set(ns + "flags:a", b"1")
            store.set(ns + "other", b"x")
            store.compare_and_set(ns + "flags:a", b"2", version=1)
            store.delete(ns + "flags:a")
            self._wait(seen, 3)
        finally:
            sub.close()
        assert seen == [
            Change(ns + "flags:a", 1),
            Change(ns + "flags:a", 2),
            Change(ns + "flags:a", 2, deleted=True),
        ]

    def test_failed_cas_publishes_nothing_and_close_stops(self, store: Any, ns: str) -> None:
        seen: list[Change] = []
        sub = store.subscribe(ns, seen.append)
        store.compare_and_set(ns + "k", b"x", version=7)
        store.set(ns + "k", b"marker")
        self._wait(seen, 1)
        sub.close()
        store.set(ns + "k", b"after-close")
        time.sleep(0.3 if self.feed_timeout > 0.1 else 0)
        assert seen == [Change(ns + "k", 1)]

    def test_callback_errors_do_not_break_writers(self, store: Any, ns: str) -> None:
        seen: list[Change] = []

        def broken(change: Change) -> None:
            raise RuntimeError("subscriber bug")

        bad = store.subscribe(ns, broken)
        good = store.subscribe(ns, seen.append)
        try:
            assert store.set(ns + "k", b"x") == 1
            self._wait(seen, 1)
        finally:
            bad.close()
            good.close()
        assert seen == [Change(ns + "k", 1)]


def concurrency_worker(url: str, key: str, threads: int, increments: int) -> int:
    """Worker-process entry: open ``url`` and run :func:`concurrency_worker_on`."""
    store = open_store(url)
    try:
        return concurrency_worker_on(store, key, threads, increments)
    finally:
        store.close()


class ConcurrencyContract(_Base):
    """N threads x M processes of increments and compare-and-set lose no update."""

    processes = 4
    threads = 4
    increments = 25

    def test_no_lost_updates(self, store: Any, store_url: str, ns: str) -> None:
        key = ns + "race:"
        if self.processes == 0:
            total_workers = self.threads
            retries = concurrency_worker_on(store, key, self.threads, self.increments)
        else:
            total_workers = self.processes * self.threads
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(self.processes) as pool:
                results = [
                    pool.apply_async(
                        concurrency_worker, (store_url, key, self.threads, self.increments)
                    )
                    for _ in range(self.processes)
                ]
                retries = sum(r.get(timeout=600) for r in results)
        expected = total_workers * self.increments
        counter = store.get_counter(key + "ctr")
        kv = int(store.get(key + "kv").value)
        # printed so the closing note can quote real figures (pytest -s shows it)
        print(
            f"\n[concurrency] backend={store.backend} processes={self.processes} "
            f"threads={self.threads} "
            f"increments={self.increments} expected={expected} counter={counter} cas={kv} "
            f"cas_retries={retries} lost={expected - counter + expected - kv}"
        )
        assert counter == expected
        assert kv == expected


def concurrency_worker_on(store: Any, key: str, threads: int, increments: int) -> int:
    """``threads`` threads each add 1 to a counter and, by compare-and-set retry loops,
    to a KV-held integer, ``increments`` times. Returns the CAS retries (races that
    were retried, not lost updates)."""
    retries = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal retries
        mine = 0
        for _ in range(increments):
            store.incr(key + "ctr")
            while True:
                entry = store.get(key + "kv")
                current = 0 if entry is None else int(entry.value)
                if store.compare_and_set(
                    key + "kv", b"%d" % (current + 1), version=0 if entry is None else entry.version
                ):
                    break
                mine += 1
        with lock:
            retries += mine

    with ThreadPoolExecutor(threads) as pool:
        for f in [pool.submit(work) for _ in range(threads)]:
            f.result()
    return retries
