"""Warehouse-native statistics: one query per metric in the database equals in-process ingestion."""

from __future__ import annotations

import math
import random
import uuid
from typing import Any

import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.experiments import ExperimentEngine, summaries_from_sql

from ._reference import assert_matches, reference_sums

METRICS = {
    "conv": {"name": "conv", "kind": "binomial"},
    "revenue": {"name": "revenue", "kind": "continuous", "cap_upper": 80.0},
    "per_visit": {"name": "per_visit", "kind": "ratio", "denominator_cap_upper": 3.0},
}


def _tables(conn: Any, suffix: str) -> tuple[str, str]:
    import sqlalchemy as sa

    x, e = f"wh_exposures_{suffix}", f"wh_events_{suffix}"
    conn.execute(
        sa.text(
            f"CREATE TABLE {x} (experiment VARCHAR(50), unit_id VARCHAR(50), "
            "variant VARCHAR(50), timestamp BIGINT)"
        )
    )
    conn.execute(
        sa.text(
            f"CREATE TABLE {e} (unit_id VARCHAR(50), metric VARCHAR(50), value DOUBLE PRECISION, "
            "denominator DOUBLE PRECISION, event_id VARCHAR(50), timestamp BIGINT)"
        )
    )
    return x, e


def _log(rng: random.Random) -> list[tuple[Any, ...]]:
    """(ts, item) rows: exposures and events, with true duplicates (same id, same row)."""
    rows: list[tuple[Any, ...]] = []
    for i in range(300):
        unit = f"u{rng.randint(0, 59)}"
        if rng.random() < 0.2:
            rows.append((i, ("x", unit, rng.choice(["a", "b"]))))
            continue
        metric = rng.choice(list(METRICS))
        value = float(rng.random() < 0.4) if metric == "conv" else round(rng.uniform(0, 100), 2)
        den = float(rng.randint(0, 5)) if metric == "per_visit" else 0.0
        item = ("m", unit, f"e{i}", metric, value, den, None)
        rows.append((i, item))
        if rng.random() < 0.1:
            rows.append((i + rng.randint(0, 30), item))
    rows.sort(key=lambda r: (r[0], r[1][0] != "x"))
    return rows


def _load(conn: Any, x: str, e: str, rows: list[tuple[Any, ...]], experiment: str) -> None:
    import sqlalchemy as sa

    exposures = [
        {"experiment": experiment, "unit_id": it[1], "variant": it[2], "timestamp": ts}
        for ts, it in rows
        if it[0] == "x"
    ]
    events = [
        {
            "unit_id": it[1],
            "event_id": it[2],
            "metric": it[3],
            "value": it[4],
            "denominator": it[5],
            "timestamp": ts,
        }
        for ts, it in rows
        if it[0] == "m"
    ]
    conn.execute(
        sa.text(
            f"INSERT INTO {x} (experiment, unit_id, variant, timestamp) "
            "VALUES (:experiment, :unit_id, :variant, :timestamp)"
        ),
        exposures,
    )
    if not events:
        return
    conn.execute(
        sa.text(
            f"INSERT INTO {e} (unit_id, event_id, metric, value, denominator, timestamp) "
            "VALUES (:unit_id, :event_id, :metric, :value, :denominator, :timestamp)"
        ),
        events,
    )


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_sqlite_group_by_equals_the_naive_reference(tmp_path, seed):
    import sqlalchemy as sa

    rng = random.Random(seed)
    rows = _log(rng)
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.begin() as conn:
        x, e = _tables(conn, "t")
        _load(conn, x, e, rows, "exp1")
        _load(conn, x, e, [(0, ("x", "u0", "zzz"))], "another-experiment")
    got = summaries_from_sql(
        engine, x, e, experiment="exp1", metrics=list(METRICS.values()), arms=["a", "b"]
    )
    assert {s.arm for s in got} == {"a", "b"}
    assert_matches(got, reference_sums([it for _, it in rows], METRICS))


def test_lookback_limit_drops_older_exposures_and_events(tmp_path):
    import sqlalchemy as sa

    rows = [
        (0, ("x", "old", "a")),
        (1, ("m", "old", "e1", "revenue", 5.0, 0.0, None)),
        (10, ("x", "new", "a")),
        (11, ("m", "new", "e2", "revenue", 7.0, 0.0, None)),
        (12, ("m", "old", "e3", "revenue", 9.0, 0.0, None)),
    ]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.begin() as conn:
        x, e = _tables(conn, "t")
        _load(conn, x, e, rows, "exp1")
    everything = summaries_from_sql(engine, x, e, metrics=["revenue"])
    assert [(s.arm, s.n, s.sum) for s in everything] == [("a", 2, 21.0)]
    recent = summaries_from_sql(engine, x, e, metrics=["revenue"], since=5)
    # "old" was exposed before the lookback window: it is not in the analysis at all
    assert [(s.arm, s.n, s.sum, s.sum_sq) for s in recent] == [("a", 1, 7.0, 49.0)]
    until = summaries_from_sql(engine, x, e, metrics=["revenue"], until=11)
    assert [(s.arm, s.n, s.sum) for s in until] == [("a", 2, 5.0)]


def test_bad_arguments_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigurationError, match="at least one metric"):
        summaries_from_sql(f"sqlite:///{tmp_path / 'x.db'}", "x", "e", metrics=[])
    with pytest.raises(ConfigurationError, match="unknown column roles"):
        summaries_from_sql(
            f"sqlite:///{tmp_path / 'x.db'}", "x", "e", metrics=["m"], columns={"user": "u"}
        )
    with pytest.raises(ConfigurationError, match="kind"):
        summaries_from_sql(
            f"sqlite:///{tmp_path / 'x.db'}", "x", "e", metrics=[{"name": "m", "kind": "avg"}]
        )


@pytest.mark.postgresql
def test_postgresql_million_rows_match_in_process_ingestion(postgres_url):
    """~1,000,000 rows generated with generate_series; the database's answer equals replaying
    the same rows through ExperimentEngine's in-process (memory) ingestion."""
    import sqlalchemy as sa

    suffix = uuid.uuid4().hex[:8]
    engine = sa.create_engine(postgres_url)
    x = e = ""
    try:
        with engine.begin() as conn:
            x, e = _tables(conn, suffix)
            conn.execute(
                sa.text(
                    f"INSERT INTO {x} SELECT 'big', 'u' || g, "
                    "(ARRAY['control','blue','green'])[1 + g % 3], (g * 37) % 1000 "
                    "FROM generate_series(1, 200000) AS g"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {x} SELECT 'other', 'u' || g, 'control', 0 "
                    "FROM generate_series(1, 5000) AS g"
                )
            )
            conn.execute(
                sa.text(
                    f"INSERT INTO {e} SELECT 'u' || (1 + (g * 7919) % 200000), "
                    "(ARRAY['conv','revenue','per_visit'])[1 + g % 3], "
                    "CASE g % 3 WHEN 0 THEN (g % 5 = 0)::int WHEN 1 THEN ((g * 13) % 1000) / 10.0 "
                    "ELSE g % 7 END, "
                    "CASE WHEN g % 3 = 2 THEN (g % 4) + 1 ELSE 0 END, "
                    "'e' || g, (g * 53) % 1500 "
                    "FROM generate_series(1::bigint, 780000::bigint) AS g"
                )
            )
            # true duplicates (a retried delivery): same row, a later timestamp
            conn.execute(
                sa.text(
                    f"INSERT INTO {e} SELECT unit_id, metric, value, denominator, event_id, "
                    f"timestamp + 7 FROM {e} WHERE (substr(event_id, 2)::int) % 50 = 0"
                )
            )
            # a warehouse keeps planner statistics (autovacuum would, given time)
            conn.execute(sa.text(f"ANALYZE {x}"))
            conn.execute(sa.text(f"ANALYZE {e}"))
            total = conn.execute(
                sa.text(f"SELECT (SELECT count(*) FROM {x}) + (SELECT count(*) FROM {e})")
            ).scalar_one()
            assert total >= 1_000_000
        got = summaries_from_sql(
            engine, x, e, experiment="big", metrics=list(METRICS.values()), since=0
        )
        with engine.connect() as conn:
            exposures = conn.execute(
                sa.text(f"SELECT unit_id, variant, timestamp FROM {x} WHERE experiment = 'big'")
            ).all()
            events = conn.execute(
                sa.text(f"SELECT unit_id, event_id, metric, value, denominator, timestamp FROM {e}")
            ).all()
    finally:
        with engine.begin() as conn:
            for t in (x, e):
                if t:
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
        engine.dispose()
    # replay in time order (an exposure before the events of the same instant)
    timeline: list[tuple[int, int, Any]] = [(r[2], 0, (r[0], r[1])) for r in exposures]
    timeline += [(r[5], 1, r[:5]) for r in events]
    timeline.sort(key=lambda t: (t[0], t[1]))
    with ExperimentEngine(log_events=False) as mem:
        mem.create(
            {
                "key": "big",
                "arms": [{"key": "control"}, {"key": "blue"}, {"key": "green"}],
                "metrics": list(METRICS.values()),
                "status": "running",
            }
        )
        batch: list[tuple[Any, ...]] = []
        for _ts, kind, row in timeline:
            if kind == 0:
                if batch:
                    mem.track_many("big", batch)
                    batch = []
                mem.track_exposures("big", [row])
            else:
                unit, eid, metric, value, den = row
                batch.append((unit, metric, float(value), eid, float(den)))
        if batch:
            mem.track_many("big", batch)
        expected = mem.summary("big")
    by_key = {(s.arm, s.metric): s for s in got}
    assert len(expected) == 9 and set(by_key) == {(s.arm, s.metric) for s in expected}
    for want in expected:
        have = by_key[(want.arm, want.metric)]
        assert have.n == want.n > 60_000
        for field in ("sum", "sum_sq", "denom_sum", "denom_sum_sq", "num_denom_sum"):
            a, b = getattr(have, field), getattr(want, field)
            assert a == pytest.approx(b, rel=1e-9, abs=1e-6), (want.arm, want.metric, field)
    assert any(s.sum > 0 for s in expected if s.metric == "per_visit")


def _cuped_reference(rows: list[tuple[Any, ...]], lookback: int) -> dict[tuple[str, str], dict]:
    """Per (arm, metric): n and the post/pre sums, straight from the raw rows (Python)."""
    first: dict[str, tuple[int, str]] = {}
    for ts, it in rows:
        if it[0] == "x" and (it[1] not in first or (ts, it[2]) < first[it[1]]):
            first[it[1]] = (ts, it[2])
    events: dict[tuple[str, str], tuple[int, Any]] = {}
    for ts, it in rows:  # de-duplicate by (unit, event id): the earliest copy
        if it[0] == "m" and ((it[1], it[2]) not in events or ts < events[(it[1], it[2])][0]):
            events[(it[1], it[2])] = (ts, it)
    out: dict[tuple[str, str], dict] = {}
    names = ("n", "y", "yy", "x", "xx", "xy", "e", "ee", "de", "xe", "ye", "xd")
    for metric, spec in METRICS.items():
        for unit, (t0, arm) in first.items():
            mine = [(ts, it) for ts, it in events.values() if it[1] == unit and it[3] == metric]
            post = [it for ts, it in mine if ts >= t0]
            pre = [it for ts, it in mine if t0 - lookback <= ts < t0]
            d = e = 0.0
            if spec["kind"] == "binomial":
                y, x = float(sum(it[4] for it in post) > 0), float(sum(it[4] for it in pre) > 0)
            else:
                cap = spec.get("cap_upper", math.inf)
                y = min(sum(it[4] for it in post), cap) if post else 0.0
                x = min(sum(it[4] for it in pre), cap)
            if spec["kind"] == "ratio":
                dcap = spec.get("denominator_cap_upper", math.inf)
                d = min(sum(it[5] for it in post), dcap)
                e = min(sum(it[5] for it in pre), dcap)
            acc = out.setdefault((arm, metric), dict.fromkeys(names, 0))
            values = (1, y, y * y, x, x * x, x * y, e, e * e, d * e, x * e, y * e, x * d)
            for k, v in zip(names, values, strict=True):
                acc[k] += v
    return out


@pytest.mark.parametrize("seed", [6, 7])
def test_cuped_covariates_are_the_pre_exposure_values_of_each_unit(tmp_path, seed):
    import sqlalchemy as sa

    rows = _log(random.Random(seed))
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wh.db'}")
    with engine.begin() as conn:
        x, e = _tables(conn, "c")
        _load(conn, x, e, rows, "exp1")
    got = summaries_from_sql(
        engine, x, e, experiment="exp1", metrics=list(METRICS.values()), cuped_lookback=40
    )
    ref = _cuped_reference(rows, 40)
    plain = {(s.arm, s.metric): s for s in summaries_from_sql(
        engine, x, e, experiment="exp1", metrics=list(METRICS.values()))}  # fmt: skip
    assert any(v["x"] > 0 for v in ref.values())
    for s in got:
        base = plain[(s.arm, s.metric)]
        assert (s.n, s.sum, s.sum_sq) == (
            base.n,
            pytest.approx(base.sum),
            pytest.approx(base.sum_sq),
        )
        want = ref[(s.arm, s.metric)]
        assert s.n == want["n"]
        assert s.sum == pytest.approx(want["y"], abs=1e-9)
        assert s.pre_sum == pytest.approx(want["x"], abs=1e-9)
        assert s.pre_sum_sq == pytest.approx(want["xx"], abs=1e-9)
        assert s.cross_sum == pytest.approx(want["xy"], abs=1e-9)
        if s.metric == "per_visit":  # ratio CUPED: the pre-period denominator and its products
            keys = ("e", "ee", "de", "xe", "ye", "xd")
            assert s.ratio_pre == pytest.approx([want[k] for k in keys], abs=1e-9)
        else:
            assert s.ratio_pre == ()
    assert any(v["e"] > 0 for (_, m), v in ref.items() if m == "per_visit")


def _refresh_case(engine: Any, suffix: str, seed: int) -> None:
    """Load the log in three parts (timestamps are the watermark); a snapshot refreshed after
    each part equals a full recomputation and the naive reference."""
    import sqlalchemy as sa

    from cognitionos.experiments import warehouse_snapshot

    rows = _log(random.Random(seed))
    parts = [
        [r for r in rows if lo <= r[0] < hi] for lo, hi in ((0, 100), (100, 200), (200, 10**6))
    ]
    x = e = ""
    try:
        with engine.begin() as conn:
            x, e = _tables(conn, suffix)
            _load(conn, x, e, parts[0], "exp1")
        metrics = list(METRICS.values())
        snap = warehouse_snapshot(
            engine, x, e, experiment="exp1", metrics=metrics, cuped_lookback=25
        )
        first_wm = snap.watermark
        assert snap.refresh(engine) is snap  # nothing new
        for k, part in enumerate(parts[1:], 2):
            with engine.begin() as conn:
                _load(conn, x, e, part, "exp1")
            snap = snap.refresh(engine)
            full = summaries_from_sql(engine, x, e, experiment="exp1", metrics=metrics,
                                      cuped_lookback=25)  # fmt: skip
            assert [(s.arm, s.metric, s.n) for s in snap.summaries] == [
                (s.arm, s.metric, s.n) for s in full
            ]
            for a, b in zip(snap.summaries, full, strict=True):
                for f in ("sum", "sum_sq", "denom_sum", "denom_sum_sq", "num_denom_sum",
                          "pre_sum", "pre_sum_sq", "cross_sum"):  # fmt: skip
                    assert getattr(a, f) == pytest.approx(getattr(b, f), rel=1e-9, abs=1e-6)
            seen = [it for part_rows in parts[:k] for _, it in part_rows]
            assert_matches(
                [attrs_evolve_no_cov(s) for s in snap.summaries], reference_sums(seen, METRICS)
            )
        assert snap.watermark > first_wm
    finally:
        with engine.begin() as conn:
            for t in (x, e):
                if t:
                    conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))


def attrs_evolve_no_cov(s: Any) -> Any:
    """The summary without CUPED sums (the naive reference has no pre-period)."""
    import attrs

    return attrs.evolve(s, pre_sum=0.0, pre_sum_sq=0.0, cross_sum=0.0)


@pytest.mark.parametrize("seed", [8, 9])
def test_incremental_refresh_equals_full_recomputation_sqlite(tmp_path, seed):
    import sqlalchemy as sa

    _refresh_case(sa.create_engine(f"sqlite:///{tmp_path / 'wh.db'}"), "r", seed)


@pytest.mark.postgresql
def test_incremental_refresh_equals_full_recomputation_postgresql(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    try:
        _refresh_case(engine, uuid.uuid4().hex[:8], 10)
    finally:
        engine.dispose()
