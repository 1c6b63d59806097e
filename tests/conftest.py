"""Fixtures shared by every test: shared conformance data and backend stores."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from cognitionos.testing import SharedDataMissing, shared_data

REQUIRE_SERVICES = os.environ.get("COGNITIONOS_REQUIRE_SERVICES") == "1"

#: every skip for absent conformance data starts with this, so the run can count them
MISSING_DATA = "conformance data missing"
#: shared-data top folder -> the suite named in the end-of-run summary
SUITES = {"flags": "growthbook", "ratelimit": "ratelimit vectors", "waf": "waf corpora"}


def missing_data_reason(relative: str, detail: str = "") -> str:
    """The skip reason for a test whose data file ``relative`` is not on this machine."""
    suite = SUITES.get(relative.split("/", 1)[0], relative.split("/", 1)[0])
    tail = f": {detail}" if detail else ""
    return f"{MISSING_DATA} [{suite}]: {relative}{tail}; see docs/development.md"


def skip_or_fail(reason: str) -> None:
    """Skip with ``reason``, or fail when COGNITIONOS_REQUIRE_SERVICES=1 (CI) demands services."""
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
            skip_or_fail(missing_data_reason(relative, str(exc)))
            raise  # unreachable: skip_or_fail raises

    return find


POSTGRES_URL = os.environ.get(
    "COGNITIONOS_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("COGNITIONOS_REDIS_URL", "redis://127.0.0.1:6379/1")


def _reachable(url: str) -> str | None:
    """None when a store at ``url`` opens, else the reason it does not."""
    from cognitionos.errors import CognitionError
    from cognitionos.storage import open_store

    try:
        open_store(url).close()
    except (CognitionError, ImportError) as exc:
        return f"{url.split('://')[0]} not reachable: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL database; skips (or fails under CI) when it is down."""
    reason = _reachable(POSTGRES_URL)
    if reason:
        skip_or_fail(reason)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis database; skips (or fails under CI) when it is down."""
    reason = _reachable(REDIS_URL)
    if reason:
        skip_or_fail(reason)
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster() -> Any:
    """A 6-node Redis Cluster (3 primaries, 3 replicas) on free loopback ports, for the session.

    Started on first use and stopped at the end; skips (fails under CI) without redis-server.
    """
    from tests._cluster import ClusterUnavailable, LocalCluster

    try:
        cluster = LocalCluster().start()
    except ClusterUnavailable as exc:
        skip_or_fail(f"Redis Cluster not available: {exc}")
        raise  # unreachable: skip_or_fail raises
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: Any) -> str:
    """``redis+cluster://127.0.0.1:p1,127.0.0.1:p2/`` of the session's local Redis Cluster."""
    return str(redis_cluster.url)


@pytest.fixture
def clock():
    """A ManualClock at a realistic epoch."""
    from cognitionos.clock import ManualClock

    return ManualClock(start=1_700_000_000)


BACKENDS = [
    pytest.param("memory", marks=pytest.mark.memory, id="memory"),
    pytest.param("sqlite", marks=pytest.mark.sqlite, id="sqlite"),
    pytest.param("postgresql", marks=pytest.mark.postgresql, id="postgresql"),
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("cluster", marks=pytest.mark.cluster, id="cluster"),
]


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path) -> str:
    """A URL for each built-in backend (memory, SQLite file, PostgreSQL, Redis, Redis Cluster)."""
    kind = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    if kind == "postgresql":
        return request.getfixturevalue("postgres_url")
    if kind == "cluster":
        return request.getfixturevalue("redis_cluster_url")
    return request.getfixturevalue("redis_url")


@pytest.fixture
def store(store_url, clock):
    """An open store of every backend; memory and SQL run on the ManualClock ``clock``."""
    from cognitionos.storage import open_store

    s = (
        open_store(store_url)
        if store_url.startswith("redis")
        else open_store(store_url, clock=clock)
    )
    yield s
    s.close()


@pytest.fixture
def advance(store_url, clock):
    """``advance(seconds)``: time passes for the store (ManualClock, or real time on Redis)."""
    import time

    if store_url.startswith("redis"):
        return time.sleep
    return clock.advance


# -- end-of-run report of the tests the missing conformance data kept from running ----------

_MISSING_SUITE = re.compile(re.escape(MISSING_DATA) + r" \[([^\]]+)\]")
_not_run: dict[str, int] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the tests skipped because their conformance data is absent, per suite."""
    if not report.skipped or report.when not in ("setup", "call"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    found = _MISSING_SUITE.search(reason)
    if found:
        _not_run[found.group(1)] = _not_run.get(found.group(1), 0) + 1


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Any:
    """One line saying how many tests did not run for want of the conformance data.

    Written after pytest's own summary (a wrapper resumes last), just above the final counts.
    """
    result = yield
    if _not_run:
        total = sum(_not_run.values())
        suites = ", ".join(sorted(_not_run))
        terminalreporter.write_line(
            f"{MISSING_DATA}: {total} tests not run ({suites}); see docs/development.md",
            yellow=True,
            bold=True,
        )
    return result
