"""Ingestion: exactly-once events folded into per-arm sums, identical on every backend."""

from __future__ import annotations

import math
import random
import threading
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ArmSummary, ExperimentEngine

from ._reference import assert_matches, reference_sums

ARMS = ["control", "blue", "green"]
METRICS = {
    "conv": {"name": "conv", "kind": "binomial"},
    "revenue": {"name": "revenue", "kind": "continuous", "cap_lower": -5.0, "cap_upper": 50.0},
    "pages": {"name": "pages", "kind": "count"},
    "per_session": {
        "name": "per_session",
        "kind": "ratio",
        "cap_upper": 40.0,
        "denominator_cap_upper": 6.0,
    },
}


def _definition(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "arms": [{"key": a} for a in ARMS],
        "metrics": list(METRICS.values()),
        "status": "running",
    }


def _random_log(rng: random.Random, units: int = 40, events: int = 400) -> list[tuple[Any, ...]]:
    log: list[tuple[Any, ...]] = []
    ids = [f"user-{i}" for i in range(units)]
    used_ids: list[tuple[str, str]] = []
    for i in range(events):
        r = rng.random()
        unit = rng.choice(ids)
        if r < 0.15:
            # mostly the unit's own arm; sometimes another one (a multiple exposure)
            arm = ARMS[int(unit.split("-")[1]) % 3] if rng.random() < 0.8 else rng.choice(ARMS)
            log.append(("x", unit, arm))
            continue
        if r < 0.22 and used_ids:
            # a retried event: same unit, same event id, maybe another value (must not count)
            u, eid = rng.choice(used_ids)
            log.append(("m", u, eid, rng.choice(list(METRICS)), rng.uniform(-9, 90), 1.0, None))
            continue
        metric = rng.choice(list(METRICS))
        eid = f"e{i}"
        used_ids.append((unit, eid))
        value = (
            rng.choice([0.0, 1.0, 2.0])
            if metric in ("conv", "pages")
            else round(rng.uniform(-10, 60), 3)
        )
        den = float(rng.randint(0, 4)) if metric == "per_session" else 0.0
        cov = round(rng.uniform(0, 30), 2) if rng.random() < 0.2 else None
        log.append(("m", unit, eid, metric, value, den, cov))
    return log


def _replay(engine: ExperimentEngine, key: str, log: list[tuple[Any, ...]], rng: random.Random):
    """Feed the log in order, mixing single calls and batches of random sizes."""
    i = 0
    while i < len(log):
        item = log[i]
        if item[0] == "x":
            j = i
            while j < len(log) and log[j][0] == "x" and j - i < rng.randint(1, 4):
                j += 1
            engine.track_exposures(key, [(u, a) for _, u, a in log[i:j]])
            i = j
            continue
        if rng.random() < 0.3:
            _, unit, eid, metric, value, den, cov = item
            engine.track(key, unit, metric, value, eid, denominator=den, covariate=cov)
            i += 1
            continue
        j = i
        size = rng.randint(1, 25)
        while j < len(log) and log[j][0] == "m" and j - i < size:
            j += 1
        batch = [
            {
                "unit_id": u,
                "event_id": eid,
                "metric": m,
                "value": v,
                "denominator": d,
                "covariate": c,
            }
            for _, u, eid, m, v, d, c in log[i:j]
        ]
        engine.track_many(key, batch)
        i = j


@pytest.fixture
def engine(store):
    eng = ExperimentEngine(store=store)
    yield eng
    eng.close()


@pytest.fixture
def key(engine):
    k = f"ingest-{uuid.uuid4().hex[:10]}"
    engine.create(_definition(k))
    yield k
    engine.delete(k)


@pytest.mark.parametrize("seed", [1, 2])
def test_sums_equal_a_naive_recomputation_on_every_backend(engine, key, seed):
    rng = random.Random(seed)
    log = _random_log(rng)
    _replay(engine, key, log, rng)
    summaries = engine.summary(key)
    assert {(s.arm, s.metric) for s in summaries} == {(a, m) for a in ARMS for m in METRICS}
    assert all(s.kind == METRICS[s.metric]["kind"] for s in summaries)
    assert_matches(summaries, reference_sums(log, METRICS))


def test_exactly_once_and_the_outcome_of_each_event(engine, key):
    assert engine.track(key, "u1", "revenue", 5.0, event_id="a") == "unexposed"
    engine.track_exposure(key, "u1", variant="blue")
    # the id was seen before the exposure: a retry still does not count
    assert engine.track(key, "u1", "revenue", 5.0, event_id="a") == "duplicate"
    assert engine.track(key, "u1", "revenue", 7.0, event_id="b") == "counted"
    assert engine.track(key, "u1", "revenue", 7.0, event_id="b") == "duplicate"
    # the same event id for another unit is another event
    engine.track_exposure(key, "u2", variant="blue")
    assert engine.track(key, "u2", "revenue", 1.0, event_id="b") == "counted"
    counts = engine.track_many(
        key,
        [("u1", "revenue", 1.0, "c"), ("u1", "revenue", 1.0, "c"), ("zz", "revenue", 1.0, "d")],
    )
    assert (counts["counted"], counts["duplicate"], counts["unexposed"]) == (1, 1, 1)
    # the engine's counters: the outcomes listed above, summed (variant given: no assign)
    totals = engine.counters.snapshot()
    assert (totals["events"], totals["events_duplicate"], totals["events_unexposed"]) == (3, 3, 2)
    assert (totals["exposures"], totals["exposures_repeated"], totals["assignments"]) == (2, 0, 0)
    blue = next(s for s in engine.summary(key) if s.arm == "blue" and s.metric == "revenue")
    # u1 total 8, u2 total 1
    assert (blue.n, blue.sum, blue.sum_sq) == (2, 9.0, 65.0)
    logged = [e for e in engine.events(key) if e["type"] == "metric"]
    assert sorted((e["unit"], e["event_id"]) for e in logged) == [
        ("u1", "b"),
        ("u1", "c"),
        ("u2", "b"),
    ]


def test_first_exposure_fixes_the_arm_and_multiple_exposures_are_counted(engine, key):
    assert engine.track_exposures(key, [("u1", "blue"), ("u2", "green"), ("u1", "blue")]) == 2
    assert engine.track_exposures(key, [("u1", "green"), ("u1", "control"), ("u2", "green")]) == 0
    report = engine.exposure_report(key)
    assert report["units"] == {"control": 0, "blue": 1, "green": 1}
    assert report["multiple_exposures"] == 1
    # created running: one phase, equal weights, its first exposures counted in it
    (phase,) = report["phases"]
    assert phase["units"] == {"control": 0, "blue": 1, "green": 1}
    assert phase["weights"] == pytest.approx({"control": 1 / 3, "blue": 1 / 3, "green": 1 / 3})
    totals = engine.counters.snapshot()
    assert (totals["exposures"], totals["exposures_repeated"]) == (2, 4)
    exposures = [e for e in engine.events(key) if e["type"] == "exposure"]
    assert [(e["unit"], e["arm"]) for e in exposures] == [("u1", "blue"), ("u2", "green")]


def test_caps_binomial_ratio_and_covariate_by_hand(engine, key):
    engine.track_exposures(key, [("a", "control"), ("b", "control"), ("c", "control")])
    engine.track(key, "a", "revenue", 30.0)
    engine.track(key, "a", "revenue", 30.0)  # total 60, capped at 50
    engine.track(key, "b", "revenue", -8.0)  # capped at -5
    engine.track(key, "b", "revenue", 0.0, covariate=4.0)
    engine.track(key, "a", "conv", 1.0)
    engine.track(key, "a", "conv", 1.0)  # still one conversion
    engine.track(key, "c", "per_session", 10.0, denominator=5.0)
    engine.track(key, "c", "per_session", 50.0, denominator=3.0)  # num 60 -> 40, den 8 -> 6
    got = {s.metric: s for s in engine.summary(key) if s.arm == "control"}
    rev = got["revenue"]
    assert (rev.n, rev.sum, rev.sum_sq) == (3, 45.0, 2525.0)
    assert (rev.pre_sum, rev.pre_sum_sq, rev.cross_sum) == (4.0, 16.0, -20.0)
    assert (got["conv"].sum, got["conv"].sum_sq) == (1.0, 1.0)
    r = got["per_session"]
    assert (r.sum, r.denom_sum, r.denom_sum_sq, r.num_denom_sum) == (40.0, 6.0, 36.0, 240.0)


def test_concurrent_writers_lose_no_update(store, engine, key):
    units = [f"u{i}" for i in range(30)]
    engine.track_exposures(key, [(u, ARMS[i % 3]) for i, u in enumerate(units)])
    rng = random.Random(7)
    plans = [
        [(rng.choice(units), "revenue", float(rng.randint(1, 9)), f"t{t}-{i}") for i in range(60)]
        for t in range(4)
    ]
    errors: list[BaseException] = []

    def work(plan: list[tuple[str, str, float, str]]) -> None:
        try:
            with ExperimentEngine(store=store) as mine:
                for i in range(0, len(plan), 6):
                    mine.track_many(key, plan[i : i + 6])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    log: list[tuple[Any, ...]] = [("x", u, ARMS[i % 3]) for i, u in enumerate(units)]
    log += [("m", u, e, m, v, 0.0, None) for plan in plans for (u, m, v, e) in plan]
    assert_matches(engine.summary(key), reference_sums(log, METRICS))


def test_definitions_follow_the_store(store, engine, key):
    other = ExperimentEngine(store=store)
    try:
        engine.update(key, {"coverage": 0.5})
        if "change_feed" not in {str(c) for c in store.capabilities}:
            other.reload()
        import time

        deadline = time.monotonic() + 10
        while other.get(key).coverage != 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert other.get(key).coverage == 0.5
    finally:
        other.close()


def test_concurrent_updates_use_compare_and_set(store, engine, key):
    engine.update(key, {"description": "one"})
    # a write based on a stale version is refused by the store itself
    entry = store.get(f"experiments/def/{key}")
    assert store.compare_and_set(entry.key, entry.value, version=entry.version - 1) is None
    assert engine.get(key).description == "one"


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda e, k: e.track(k, "u1", "nope", 1.0), "no metric 'nope'"),
        (lambda e, k: e.track(k, "u1", "revenue", math.nan), "finite"),
        (lambda e, k: e.track(k, "u1", "revenue", math.inf), "finite"),
        (lambda e, k: e.track(k, "u1", "revenue", "12"), "must be a number"),
        (lambda e, k: e.track(k, "", "revenue", 1.0), "unit id"),
        (lambda e, k: e.track("missing-exp", "u1", "revenue", 1.0), "no experiment"),
        (lambda e, k: e.track_exposure(k, "u1", variant="purple"), "no arm 'purple'"),
        (lambda e, k: e.track_many(k, [42]), "mapping or a tuple"),
        (lambda e, k: e.create(_definition(k)), "already exists"),
        (lambda e, k: e.update(k, {"key": "other"}), "renamed"),
        (lambda e, k: e.summary("missing-exp"), "no experiment"),
    ],
)
def test_bad_input_raises_configuration_errors(engine, key, call, needle):
    with pytest.raises(ConfigurationError) as info:
        call(engine, key)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("unit", "needle"),
    [
        ("u\x00x", "NUL"),
        ("\ud800x", "lone surrogate"),
        ("u" * 301, "at most 300"),
    ],
)
def test_ids_no_backend_can_store_are_refused_on_every_backend(engine, key, unit, needle):
    # a NUL cannot go into PostgreSQL text, a lone surrogate into UTF-8: the same refusal
    # everywhere, naming the problem, instead of a driver's UnicodeEncodeError
    with pytest.raises(ConfigurationError, match=needle):
        engine.track_exposure(key, unit, variant="control")
    with pytest.raises(ConfigurationError, match=needle):
        engine.track(key, unit, "revenue", 1.0)
    with pytest.raises(ConfigurationError, match=needle):
        engine.track(key, "u1", "revenue", 1.0, event_id=unit)
    # nothing was stored, and valid ids at the limits still work on this backend
    odd = "ü🙂" + "v" * (300 - 2)
    engine.track_exposure(key, odd, variant="blue")
    assert engine.track(key, odd, "revenue", 2.0, event_id="é" * 300) == "counted"
    sums = {(s.arm, s.metric): s for s in engine.summary(key)}
    assert sums[("blue", "revenue")].n == 1 and sums[("blue", "revenue")].sum == 2.0
    assert sums[("control", "revenue")].n == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), units=st.integers(1, 30), events=st.integers(0, 300))
def test_memory_path_matches_the_reference_for_any_log(seed, units, events):
    rng = random.Random(seed)
    log = _random_log(rng, units, events)
    with ExperimentEngine() as engine:
        engine.create(_definition("prop"))
        _replay(engine, "prop", log, rng)
        summaries = engine.summary("prop")
    assert all(isinstance(s, ArmSummary) for s in summaries)
    assert_matches(summaries, reference_sums(log, METRICS))


_garbage = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=_garbage, event=_garbage, value=_garbage)
@example(definition={}, event=["0", []], value=0)  # an unhashable metric name (was TypeError)
def test_garbage_raises_only_cognition_errors(definition, event, value):
    from cognitionos.errors import CognitionError

    with ExperimentEngine() as engine:
        engine.create(_definition("g"))
        for call in (
            lambda: engine.create(definition),
            lambda: engine.update("g", definition if isinstance(definition, dict) else {}),
            lambda: engine.track_many("g", [event]),
            lambda: engine.track("g", "u1", "revenue", value),
            lambda: engine.assign("g", "u1", event),
        ):
            try:
                call()
            except CognitionError:
                pass


def test_event_ids_expire_after_the_dedupe_window_on_every_backend(store):
    """The exactly-once record is bounded: ids older than the window are forgotten (so a
    retry that late counts again), younger ones still de-duplicate."""
    from cognitionos.clock import ManualClock

    clock = ManualClock(start=1_000_000)
    eng = ExperimentEngine(store=store, clock=clock, dedupe_window=100)
    k = f"ttl-{uuid.uuid4().hex[:10]}"
    eng.create(_definition(k))
    try:
        eng.track_exposures(k, [("u1", "control")])
        assert eng.track(k, "u1", "pages", 1.0, "e1") == "counted"
        assert eng.track(k, "u1", "pages", 1.0, "e1") == "duplicate"
        clock.advance(50)
        assert eng.track(k, "u1", "pages", 1.0, "e2") == "counted"
        clock.advance(60)  # e1 is 110 s old, e2 50 s
        assert eng.prune_dedupe(k) == 1
        assert eng.track(k, "u1", "pages", 1.0, "e2") == "duplicate"
        assert eng.track(k, "u1", "pages", 1.0, "e1") == "counted"  # past the window
        clock.advance(500)  # tracking prunes by itself (at most 24 times per window)
        assert eng.track(k, "u1", "pages", 1.0, "e3") == "counted"
        assert eng.track(k, "u1", "pages", 1.0, "e2") == "counted"
        assert eng.prune_dedupe(k, older_than=0) == 0  # seen this very second: not older
        clock.advance(1)
        assert eng.prune_dedupe(k, older_than=0) == 2  # e3 and e2 (e1 went with the auto-prune)
        pages = {s.arm: s for s in eng.summary(k) if s.metric == "pages"}
        assert pages["control"].sum == 5.0  # e1, e2, e1, e3, e2: one unit's total
        with pytest.raises(ConfigurationError, match="older_than"):
            eng.prune_dedupe(k, older_than=-1)
    finally:
        eng.delete(k)
        eng.close()


def test_dedupe_window_must_be_positive():
    with pytest.raises(ConfigurationError, match="dedupe_window"):
        ExperimentEngine(dedupe_window=0)
    eng = ExperimentEngine(dedupe_window=None)
    eng.create(_definition("forever"))
    with pytest.raises(ConfigurationError, match="keeps ids forever"):
        eng.prune_dedupe("forever")
