"""RFM summaries computed inside the database, for logs too large to load (SQLAlchemy Core).

Same conventions and output as :func:`~cognitionos.pricing.rfm_summary`: purchases of one
customer in the same ``aggregate`` period merge (spend adds up), ``frequency`` counts repeat
purchases, ``recency``/``T`` are measured from the first purchase in ``time_unit``, the
optional ``calibration_end`` splits off holdout columns. One SQL statement does the work:
an inner ``GROUP BY customer, period`` merges purchases (with ``min(period) OVER
(PARTITION BY customer)`` marking the first), an outer ``GROUP BY customer`` returns one row
per customer. Two tiny checks run first (missing values; the latest timestamp when
``observation_end`` is not given). Works on PostgreSQL and SQLite (3.25+ for the window).

    s = rfm_summary_sql("postgresql+psycopg://...", "orders", customer="customer_id",
                        timestamp="ordered_at", amount="total",
                        calibration_end="2024-06-30", observation_end="2024-12-31",
                        time_unit="W")
    BetaGeoModel().fit(s)
"""

from __future__ import annotations

from typing import Any

from cognitionos.errors import ConfigurationError
from cognitionos.pricing._rfm import UNITS, RFMSummary, _point

__all__ = ["rfm_summary_sql"]

_NUMERIC = ("INTEGER", "BIGINT", "SMALLINT", "FLOAT", "REAL", "DOUBLE", "NUMERIC", "DECIMAL")


def _engine(engine_or_url: Any) -> tuple[Any, bool]:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import Engine

    if isinstance(engine_or_url, Engine):
        return engine_or_url, False
    if isinstance(engine_or_url, str):
        try:
            return create_engine(engine_or_url), True
        except Exception as exc:  # bad URL or missing driver: say which
            raise ConfigurationError(f"cannot open {engine_or_url!r}: {exc}") from None
    raise ConfigurationError("engine_or_url must be an SQLAlchemy Engine or a database URL")


def _floor(expr: Any) -> Any:
    """floor() for PostgreSQL (CAST rounds) and SQLite (CAST truncates, floor() optional)."""
    from sqlalchemy import BigInteger, case, cast

    c = cast(expr, BigInteger)
    return c - case((expr < c, 1), else_=0)


def _epoch_seconds(col: Any, dialect: str) -> Any:
    """Seconds since 1970-01-01 as a float. SQLite: whole seconds from strftime('%s') (exact
    integers, so a midnight never floors to the day before as julianday arithmetic can)."""
    from sqlalchemy import BigInteger, Float, cast, func

    if dialect == "sqlite":
        return cast(cast(func.strftime("%s", col), BigInteger), Float)
    if dialect == "postgresql":
        return cast(func.date_part("epoch", col), Float)
    raise ConfigurationError(
        f"rfm_summary_sql supports PostgreSQL and SQLite date columns, not {dialect!r}"
    )


def rfm_summary_sql(
    engine_or_url: Any,
    table: Any,
    *,
    customer: str = "customer",
    timestamp: str = "timestamp",
    amount: str | None = None,
    observation_end: Any = None,
    calibration_end: Any = None,
    time_unit: str = "D",
    aggregate: str = "D",
    schema: str | None = None,
) -> RFMSummary:
    """Summarise a transaction table per customer in the database (see the module docstring).

    ``table`` is a table name (reflected, optionally in ``schema``) or an SQLAlchemy
    ``Table``. ``timestamp`` is a date/time column, or a numeric one already in
    ``time_unit`` (then nothing is aggregated, as in :func:`rfm_summary`).
    """
    import numpy as np
    from sqlalchemy import Float, MetaData, Table, and_, case, cast, func, literal, or_, select
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    if time_unit not in UNITS:
        raise ConfigurationError(f"time_unit must be one of {sorted(UNITS)}, got {time_unit!r}")
    if aggregate not in UNITS:
        raise ConfigurationError(f"aggregate must be one of {sorted(UNITS)}, got {aggregate!r}")
    engine, owned = _engine(engine_or_url)
    try:
        if isinstance(table, Table):
            tbl = table
        else:
            try:
                tbl = Table(str(table), MetaData(), schema=schema, autoload_with=engine)
            except NoSuchTableError:
                raise ConfigurationError(f"no table {table!r} in the database") from None
        for name in (customer, timestamp, amount):
            if name is not None and name not in tbl.c:
                raise ConfigurationError(f"table {tbl.name!r} has no column {name!r}")
        cust, ts = tbl.c[customer], tbl.c[timestamp]
        spend = cast(tbl.c[amount], Float) if amount else None
        dated = not any(k in str(ts.type).upper() for k in _NUMERIC)
        dialect = engine.dialect.name

        with engine.connect() as conn:
            missing = select(
                func.count().label("n"),
                func.sum(case((or_(cust.is_(None), ts.is_(None)), 1), else_=0)),
            ).select_from(tbl)
            total, n_missing = conn.execute(missing).one()
            if not total:
                raise ConfigurationError(f"table {tbl.name!r} is empty")
            if n_missing:
                raise ConfigurationError(
                    f"{n_missing} row(s) of {tbl.name!r} have no {customer!r} or {timestamp!r}"
                )
            if dated:
                step_days = UNITS[aggregate]
                seconds = _epoch_seconds(ts, dialect)
                period = _floor(seconds / (step_days * 86400.0))
                unit = UNITS[time_unit]
            else:
                step_days = 1.0
                period = cast(ts, Float)
                unit = 1.0

            def as_days(value: Any, name: str) -> float:
                if isinstance(value, int | float) and not dated:
                    return float(value)
                return _point(value, name, dated, None)

            if observation_end is None:
                # the latest timestamp itself (not its epoch in SQL): exact to the microsecond
                latest = conn.execute(select(func.max(ts))).scalar()
                end = as_days(latest, "the latest timestamp")
            else:
                end = as_days(observation_end, "observation_end")
            cal_end = (
                end if calibration_end is None else as_days(calibration_end, "calibration_end")
            )
            if cal_end > end:
                raise ConfigurationError("calibration_end is after observation_end")
            # period p (an integer count of aggregate steps for dates) is in a window when
            # p * step <= limit, i.e. p <= floor(limit / step)
            end_p = float(np.floor(end / step_days)) if dated else end
            cal_p = float(np.floor(cal_end / step_days)) if dated else cal_end

            bad_spend = (
                case((or_(tbl.c[amount].is_(None), tbl.c[amount] < 0), 1), else_=0)
                if amount
                else None
            )
            merged = (
                select(
                    cust.label("c"),
                    period.label("p"),
                    (func.sum(spend) if spend is not None else literal(0.0, Float)).label("s"),
                    (func.sum(bad_spend) if bad_spend is not None else literal(0)).label("bad"),
                )
                .where(period <= end_p)
                .group_by(cust, period)
                .subquery("merged")
            )
            marked = select(
                merged.c.c,
                merged.c.p,
                merged.c.s,
                merged.c.bad,
                func.min(merged.c.p).over(partition_by=merged.c.c).label("f"),
            ).subquery("marked")
            m = marked.c
            in_cal = m.p <= cal_p
            summary = select(
                m.c,
                func.min(m.f),
                func.sum(case((in_cal, 1), else_=0)),
                func.max(case((in_cal, m.p), else_=None)),
                func.sum(case((and_(in_cal, m.p > m.f), m.s), else_=0.0)),
                func.sum(case((m.p > cal_p, 1), else_=0)),
                func.sum(case((m.p > cal_p, m.s), else_=0.0)),
                func.sum(m.bad),
            ).group_by(m.c)
            rows = conn.execute(summary).all()
    except SQLAlchemyError as exc:
        raise ConfigurationError(f"RFM query failed: {exc.__class__.__name__}: {exc}") from None
    finally:
        if owned:
            engine.dispose()

    if not rows:
        raise ConfigurationError("no transaction on or before observation_end")
    ids = np.array([r[0] for r in rows])
    num = np.array([[np.nan if v is None else float(v) for v in r[1:]] for r in rows])
    first, n_cal, last, spend_rep, n_hold, spend_hold, bad = num.T
    if amount and np.any(bad > 0):
        shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in ids[bad > 0][:5])
        raise ConfigurationError(
            f"column {amount!r} is negative or missing for customer(s) {shown}"
        )
    order = np.argsort(ids, kind="stable")  # the order of rfm_summary (sorted ids)
    ids, first, n_cal, last = ids[order], first[order], n_cal[order], last[order]
    spend_rep, n_hold, spend_hold = spend_rep[order], n_hold[order], spend_hold[order]
    known = n_cal > 0  # first purchase inside the calibration period
    first_days, last_days = first * step_days, last * step_days
    freq = np.where(known, n_cal - 1, 0.0)
    recency = np.where(known, (last_days - first_days) / unit, 0.0)
    T = np.where(known, (cal_end - first_days) / unit, 0.0)
    monetary = np.where(freq > 0, spend_rep / np.maximum(freq, 1), 0.0) if amount else 0 * freq
    holdout: dict[str, Any] = {}
    if calibration_end is not None:
        holdout = {
            "frequency_holdout": n_hold[known],
            "monetary_value_holdout": (
                np.where(n_hold > 0, spend_hold / np.maximum(n_hold, 1), 0.0)[known]
            ),
            "duration_holdout": (end - cal_end) / unit,
        }
    return RFMSummary(
        customer=ids[known],
        frequency=freq[known],
        recency=np.round(recency[known], 12),
        T=np.round(T[known], 12),
        monetary_value=monetary[known],
        time_unit=time_unit,
        excluded_new_in_holdout=int(np.count_nonzero(~known)),
        **holdout,
    )
