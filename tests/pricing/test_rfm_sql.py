"""rfm_summary_sql on the real PostgreSQL and on SQLite against the in-process rfm_summary.

Both read the same generated transactions (times of day, same-day repeats, purchases after
the calibration end and after the observation end, customers first seen in the holdout); the
in-process summary is the oracle, itself checked against the published CDNOW summary.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest

from cognitionos.errors import ConfigurationError
from cognitionos.pricing import rfm_summary, rfm_summary_sql

sqlalchemy = pytest.importorskip("sqlalchemy")


def _log(seed: int, customers: int = 300) -> list[dict]:
    rng = np.random.default_rng(seed)
    start = datetime(2023, 1, 1)
    rows = []
    for c in range(customers):
        first = rng.uniform(0, 300)  # days after start; some after the calibration end
        n = int(rng.integers(1, 12))
        times = np.sort(first + np.concatenate([[0.0], rng.exponential(25, n - 1).cumsum()]))
        for t in times:
            when = start + timedelta(days=float(t))
            rows.append({"cust": f"c{c:04d}", "ts": when, "amount": round(rng.gamma(2, 20), 2)})
            if rng.random() < 0.15:  # a second purchase the same day: merged with the first
                same = when.replace(hour=23, minute=59, second=59)
                rows.append({"cust": f"c{c:04d}", "ts": same, "amount": 1.25})
    # exactly at midnight (the floor must not drop it into the day before)
    rows.append({"cust": "c9999", "ts": datetime(2023, 3, 1), "amount": 5.0})
    rows.append({"cust": "c9999", "ts": datetime(2023, 3, 2), "amount": 7.0})
    return rows


def _load(url: str, rows: list[dict]):
    engine = sqlalchemy.create_engine(url)
    meta = sqlalchemy.MetaData()
    name = f"rfm_{uuid.uuid4().hex[:10]}"
    table = sqlalchemy.Table(
        name,
        meta,
        sqlalchemy.Column("cust", sqlalchemy.String(16)),
        sqlalchemy.Column("ts", sqlalchemy.DateTime),
        sqlalchemy.Column("amount", sqlalchemy.Float),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    return engine, table


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rfm.db'}"
    return request.getfixturevalue("postgres_url")


def _columns(rows):
    return {k: [r[k] for r in rows] for k in ("cust", "ts", "amount")}


def _same(a, b):
    assert list(a.customer) == list(b.customer)
    for key in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-9, err_msg=key)
    assert a.excluded_new_in_holdout == b.excluded_new_in_holdout
    if a.frequency_holdout is not None:
        np.testing.assert_array_equal(a.frequency_holdout, b.frequency_holdout)
        np.testing.assert_allclose(a.monetary_value_holdout, b.monetary_value_holdout, rtol=1e-12)
        assert a.duration_holdout == pytest.approx(b.duration_holdout)


@pytest.mark.parametrize("seed", [1, 2])
def test_sql_summary_equals_in_process_summary(db_url, seed):
    rows = _log(seed)
    engine, table = _load(db_url, rows)
    try:
        kwargs = {"customer": "cust", "timestamp": "ts", "amount": "amount", "time_unit": "W"}
        split = {"calibration_end": "2023-08-31", "observation_end": "2023-12-31"}
        ours = rfm_summary_sql(engine, table.name, **kwargs, **split)
        oracle = rfm_summary(_columns(rows), **kwargs, **split)
        assert ours.excluded_new_in_holdout > 0  # the split has something to exclude
        assert ours.frequency_holdout.sum() > 0
        _same(ours, oracle)
        # no split, no end given: the latest timestamp ends the observation
        _same(
            rfm_summary_sql(engine, table, **kwargs),
            rfm_summary(_columns(rows), **kwargs),
        )
        # weekly aggregation, days as the unit
        weekly = {"customer": "cust", "timestamp": "ts", "amount": "amount", "aggregate": "W"}
        _same(
            rfm_summary_sql(engine, table.name, **weekly, observation_end="2023-10-01"),
            rfm_summary(_columns(rows), **weekly, observation_end="2023-10-01"),
        )
        midnight = list(ours.customer).index("c9999")
        assert ours.frequency[midnight] == 1 and ours.recency[midnight] == pytest.approx(1 / 7)
    finally:
        table.drop(engine)
        engine.dispose()


def test_sql_summary_of_the_cdnow_log_gives_the_published_summary(
    tmp_path, cdnow_sample_log, cdnow_monetary
):
    rows = [
        {"cust": i, "ts": datetime.strptime(d, "%Y%m%d"), "amount": a}
        for i, d, a in zip(
            cdnow_sample_log["id"],
            cdnow_sample_log["date"],
            cdnow_sample_log["amount"],
            strict=True,
        )
    ]
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'cdnow.db'}")
    meta = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "cdnow",
        meta,
        sqlalchemy.Column("cust", sqlalchemy.Integer),
        sqlalchemy.Column("ts", sqlalchemy.Date),
        sqlalchemy.Column("amount", sqlalchemy.Float),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{**r, "ts": r["ts"].date()} for r in rows])
    s = rfm_summary_sql(
        engine,
        "cdnow",
        customer="cust",
        timestamp="ts",
        amount="amount",
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        time_unit="W",
    )
    engine.dispose()
    order = np.argsort(cdnow_monetary["ID"])
    assert np.array_equal(s.customer, cdnow_monetary["ID"][order].astype(int))
    np.testing.assert_array_equal(s.frequency, cdnow_monetary["x"][order])
    np.testing.assert_allclose(s.recency, cdnow_monetary["t_x"][order], atol=0.005)
    np.testing.assert_allclose(s.T, cdnow_monetary["T"][order], atol=0.005)
    np.testing.assert_allclose(s.monetary_value, cdnow_monetary["zbar"][order], atol=0.005)


def test_sql_summary_names_bad_input(tmp_path):
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    rows = [
        {"cust": "a", "ts": datetime(2024, 1, 1), "amount": 10.0},
        {"cust": "b", "ts": datetime(2024, 1, 2), "amount": -3.0},
    ]
    engine, table = _load(url, rows)
    with pytest.raises(ConfigurationError, match=r"'amount' is negative .* 'b'"):
        rfm_summary_sql(engine, table.name, customer="cust", timestamp="ts", amount="amount")
    with pytest.raises(ConfigurationError, match="no column 'price'"):
        rfm_summary_sql(engine, table.name, customer="cust", timestamp="ts", amount="price")
    with pytest.raises(ConfigurationError, match="no table 'nope'"):
        rfm_summary_sql(engine, "nope", customer="cust", timestamp="ts")
    with pytest.raises(ConfigurationError, match="calibration_end is after"):
        rfm_summary_sql(
            engine,
            table.name,
            customer="cust",
            timestamp="ts",
            calibration_end="2024-02-01",
            observation_end="2024-01-15",
        )
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"cust": "c", "ts": None, "amount": 1.0}])
    with pytest.raises(ConfigurationError, match="1 row"):
        rfm_summary_sql(engine, table.name, customer="cust", timestamp="ts")
    engine.dispose()


def test_sql_summary_with_numeric_times(tmp_path):
    # times already in the model's unit (weeks here): nothing is floored or merged by day
    rng = np.random.default_rng(7)
    rows = [
        {"cust": int(c), "week": float(w), "amount": float(a)}
        for c, w, a in zip(
            rng.integers(0, 40, 400),
            np.round(rng.uniform(0, 52, 400), 3),
            rng.gamma(2, 9, 400),
            strict=False,
        )
    ]
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'num.db'}")
    meta = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "weekly",
        meta,
        sqlalchemy.Column("cust", sqlalchemy.Integer),
        sqlalchemy.Column("week", sqlalchemy.Float),
        sqlalchemy.Column("amount", sqlalchemy.Float),
    )
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), rows)
    kwargs = {"customer": "cust", "timestamp": "week", "amount": "amount"}
    cols = {k: [r[k] for r in rows] for k in ("cust", "week", "amount")}
    _same(
        rfm_summary_sql(engine, "weekly", **kwargs, calibration_end=30.0, observation_end=50.0),
        rfm_summary(cols, **kwargs, calibration_end=30.0, observation_end=50.0),
    )
    engine.dispose()
