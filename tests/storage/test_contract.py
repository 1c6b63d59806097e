"""The storage contract, run unchanged against every built-in backend."""

from __future__ import annotations

import pytest

from cognitionos.testing.contract import (
    ChangeFeedContract,
    ConcurrencyContract,
    CounterContract,
    EventLogContract,
    KeyValueContract,
)


class TestStoreContract(KeyValueContract, CounterContract, EventLogContract, ChangeFeedContract):
    """store / advance / store_url fixtures come from tests/conftest.py, one param per backend."""


@pytest.mark.slow
class TestConcurrency(ConcurrencyContract):
    """4 processes x 4 threads x 25 increments (memory: 8 threads in one process)."""

    @pytest.fixture(autouse=True)
    def _memory_is_single_process(self, store_url, monkeypatch):
        if store_url.startswith("memory"):
            monkeypatch.setattr(self, "processes", 0)
            monkeypatch.setattr(self, "threads", 8)
