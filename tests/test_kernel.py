"""Kernel: the error tree, clocks and lazy optional imports."""

from __future__ import annotations

import time

import pytest

from cognitionos import errors
from cognitionos._optional import require
from cognitionos.clock import Clock, ManualClock, SystemClock


def test_error_tree():
    assert issubclass(errors.ConfigurationError, errors.CognitionError)
    assert issubclass(errors.ConfigurationError, ValueError)
    assert issubclass(errors.UnsupportedCapability, errors.ConfigurationError)
    assert issubclass(errors.StorageError, errors.CognitionError)
    assert issubclass(errors.BackendUnavailable, errors.StorageError)
    assert issubclass(errors.MissingDependency, ImportError)
    assert not issubclass(errors.StorageError, ValueError)


def test_error_tree_is_drawn_in_module_docstring():
    for name in errors.__all__:
        assert name in errors.__doc__


def test_unsupported_capability_names_backend_and_capability():
    exc = errors.UnsupportedCapability("memcached", "event_log", "Experiments")
    assert "memcached" in str(exc) and "event_log" in str(exc) and "Experiments" in str(exc)


def test_store_require_raises_unsupported_capability():
    from cognitionos.storage._base import BaseStore
    from cognitionos.storage._types import Capability

    class CountersOnly(BaseStore):
        backend = "countersonly"
        capabilities = frozenset({Capability.COUNTERS})

    store = CountersOnly()
    store.require("counters")
    expected = r"countersonly.*change_feed.*FlagEngine"
    with pytest.raises(errors.UnsupportedCapability, match=expected):
        store.require(Capability.COUNTERS, "change_feed", needed_by="FlagEngine")
    with pytest.raises(ValueError, match="teleportation"):
        store.require("teleportation")


def test_manual_clock_is_exact_integer_nanoseconds():
    clock = ManualClock(start=100)
    for _ in range(10):
        clock.advance(0.1)
    assert clock.time_ns() == 101_000_000_000
    clock.advance(ns=7)
    assert clock.time_ns() == 101_000_000_007
    clock.advance(-1)  # a backwards jump, as NTP can cause
    assert clock.time() == pytest.approx(100.000000007)
    clock.set(5)
    assert clock.time_ns() == 5_000_000_000
    clock.set(ns=3)
    assert clock.time_ns() == 3
    with pytest.raises(TypeError):
        clock.set()


def test_system_clock_tracks_wall_time():
    clock = SystemClock()
    assert isinstance(clock, Clock) and isinstance(ManualClock(), Clock)
    assert abs(clock.time() - time.time()) < 1
    assert abs(clock.time_ns() - time.time_ns()) < 1_000_000_000


def test_require_names_the_extra():
    with pytest.raises(errors.MissingDependency, match=r"cognitionos\[server\]"):
        require("fastapi_that_does_not_exist", extra="server")
    assert require("json").dumps([1]) == "[1]"
