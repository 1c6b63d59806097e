"""Memory backend specifics: LRU cap, lazy expiry, no background threads."""

from __future__ import annotations

import threading

from cognitionos.clock import ManualClock
from cognitionos.storage import open_store


def test_key_cap_evicts_least_recently_used():
    store = open_store("memory://?max_keys=3")
    for name in "abc":
        store.set(name, b"x")
    store.get("a")  # a is now the most recently used
    store.set("d", b"x")
    assert store.get("b") is None
    assert [e.key for e in store.scan()] == ["a", "c", "d"]
    assert store.evictions == 1
    assert len(store) == 3


def test_rotating_client_ids_cannot_grow_memory():
    store = open_store("memory://?max_keys=100")
    for i in range(10_000):
        store.incr(f"client:{i}", ttl=60)
    assert len(store) == 100
    assert store.get_counter("client:9999") == 1
    assert store.get_counter("client:0") == 0


def test_expiry_is_lazy_and_uses_injected_clock():
    clock = ManualClock(start=50)
    store = open_store("memory://", clock=clock)
    store.set("k", b"v", ttl=10)
    clock.advance(9.999)
    assert store.get("k") is not None
    clock.advance(0.001)
    assert store.get("k") is None
    assert len(store) == 0  # dropped when touched


def test_no_background_threads():
    before = threading.active_count()
    store = open_store("memory://")
    store.set("k", b"v", ttl=1)
    store.subscribe("k", lambda change: None)
    store.incr("c", ttl=1)
    assert threading.active_count() == before


def test_event_log_cap_keeps_newest_with_continuing_seq():
    store = open_store("memory://?max_events_per_stream=3")
    store.append_many("s", [b"1", b"2", b"3", b"4", b"5"])
    assert [(e.seq, e.payload) for e in store.read("s")] == [(3, b"3"), (4, b"4"), (5, b"5")]
    assert [e.seq for e in store.read("s", after=4)] == [5]
    assert store.append("s", b"6").seq == 6
