"""Fixtures shared by every test: shared conformance data and backend stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cognitionos.testing import SharedDataMissing, shared_data

REQUIRE_SERVICES = os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when CI demands every service (COGNITIONOS_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (COGNITIONOS_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_file():
    """``data_file("waf/payloads_dev.jsonl")`` -> Path, or skip when the shared data is absent."""

    def find(relative: str) -> Path:
        try:
            return shared_data(relative)
        except SharedDataMissing as exc:
            skip_or_fail(str(exc))
            raise  # unreachable: skip_or_fail raises

    return find
