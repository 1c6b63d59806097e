"""AsyncExperimentEngine: the request path as coroutines gives the same statistics as the
synchronous engine on every backend (Redis natively through redis.asyncio)."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ExperimentEngine
from cognitionos.experiments.aio import AsyncExperimentEngine

from ._reference import assert_matches, reference_sums
from .test_ingest import ARMS, METRICS, _definition, _random_log


def test_async_engine_folds_the_same_statistics_as_the_reference(store_url):
    rng = random.Random(7)
    log = _random_log(rng, units=30, events=300)
    key = f"async-{uuid.uuid4().hex[:10]}"

    async def scenario() -> list:
        async with AsyncExperimentEngine(store_url) as eng:
            eng.sync.create(_definition(key))
            try:
                a = await eng.assign(key, "user-1")
                assert a.in_experiment and a.variant in ARMS
                for item in log:
                    if item[0] == "x":
                        got = await eng.track_exposure(key, item[1], variant=item[2])
                        assert got.variant == item[2]
                    else:
                        _, unit, eid, metric, value, den, cov = item
                        status = await eng.track(
                            key, unit, metric, value, eid, denominator=den, covariate=cov
                        )
                        assert status in ("counted", "duplicate", "unexposed")
                counts = await eng.track_many(key, [("user-1", "pages", 1.0, "e-retry-x")] * 2)
                assert counts["duplicate"] >= 1
                return eng.sync.summary(key)
            finally:
                eng.sync.delete(key)

    summaries = asyncio.run(scenario())
    log.append(("m", "user-1", "e-retry-x", "pages", 1.0, 0.0, None))
    assert_matches(summaries, reference_sums(log, METRICS))


def test_async_and_sync_engines_share_one_store(store_url):
    key = f"share-{uuid.uuid4().hex[:10]}"

    async def scenario() -> tuple[str, str, dict]:
        async with AsyncExperimentEngine(store_url) as eng:
            eng.sync.create(_definition(key))
            try:
                await eng.track_exposures(key, [("u1", "blue"), ("u2", "control")])
                first = await eng.track(key, "u1", "revenue", 10.0, "o1")
                again = await eng.track(key, "u1", "revenue", 10.0, "o1")
                with pytest.raises(ConfigurationError, match="no arm"):
                    await eng.track_exposure(key, "u3", variant="nope")
                with pytest.raises(ConfigurationError, match="no experiment"):
                    await eng.track(key + "-missing", "u1", "revenue", 1.0)
                report = eng.sync.exposure_report(key)
                rev = {s.arm: s.sum for s in eng.sync.summary(key) if s.metric == "revenue"}
                return first, again, {"report": report, "rev": rev}
            finally:
                eng.sync.delete(key)

    first, again, seen = asyncio.run(scenario())
    assert (first, again) == ("counted", "duplicate")
    assert seen["report"]["units"] == {"control": 1, "blue": 1, "green": 0}
    assert seen["rev"] == {"control": 0.0, "blue": 10.0, "green": 0.0}


def test_async_engine_rejects_a_non_store():
    with pytest.raises(ConfigurationError, match="open_async_store"):
        AsyncExperimentEngine(object())
    # a sync engine still reads what it writes (sanity of the shared reference helpers)
    assert isinstance(ExperimentEngine(), ExperimentEngine)
