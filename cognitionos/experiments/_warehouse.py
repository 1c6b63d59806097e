"""Warehouse-native statistics: per-arm sums computed inside the user's database.

Events stay where they are; one query per metric returns ``arms`` rows. The semantics are
the ingestion path's (:mod:`cognitionos.experiments._ingest`), so both give the same numbers
for the same events:

- a unit's arm is the variant of its first exposure (earliest timestamp; ties broken by
  the smallest variant name), within ``[since, until)``;
- metric rows are de-duplicated by ``(unit, event id)`` inside the SQL (the copy with the
  earliest timestamp counts; event ids must not be NULL);
- a metric row counts when its timestamp is at or after the unit's first exposure;
- per unit, values are summed and turned into y (0/1 for binomial, capped total
  otherwise) and d (capped denominator total, ratio metrics); the final ``GROUP BY
  variant`` returns COUNT, SUM(y), SUM(y*y), SUM(d), SUM(d*d), SUM(y*d). Units without
  metric rows count with y = d = 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cognitionos._optional import require
from cognitionos.errors import ConfigurationError, StorageError
from cognitionos.experiments._summary import ArmSummary
from cognitionos.experiments.models import Metric

__all__ = ["DEFAULT_COLUMNS", "summaries_from_sql"]

#: logical column -> column name used when ``columns`` does not say otherwise
DEFAULT_COLUMNS = {
    "unit_id": "unit_id",
    "variant": "variant",
    "timestamp": "timestamp",
    "experiment": "experiment",
    "metric": "metric",
    "value": "value",
    "event_id": "event_id",
    "denominator": "denominator",
}


def _metric(m: Metric | Mapping[str, Any] | str) -> Metric:
    if isinstance(m, Metric):
        return m
    from pydantic import ValidationError

    try:
        return Metric.model_validate({"name": m} if isinstance(m, str) else m)
    except ValidationError as exc:
        raise ConfigurationError(f"metric {m!r:.80}: {exc.errors()[0]['msg']}") from None


def _clip(sa: Any, expr: Any, lo: float | None, hi: float | None) -> Any:
    whens = []
    if lo is not None:
        whens.append((expr < lo, sa.literal(float(lo))))
    if hi is not None:
        whens.append((expr > hi, sa.literal(float(hi))))
    return sa.case(*whens, else_=expr) if whens else expr


def summaries_from_sql(
    engine_or_url: Any,
    exposures_table: str,
    events_table: str,
    *,
    metrics: Sequence[Metric | Mapping[str, Any] | str],
    experiment: str | None = None,
    arms: Sequence[str] | None = None,
    since: Any = None,
    until: Any = None,
    columns: Mapping[str, str] | None = None,
    schema: str | None = None,
) -> list[ArmSummary]:
    """Per-arm, per-metric :class:`ArmSummary` computed by the database (SQLAlchemy Core).

    ``exposures_table`` has unit id, variant and timestamp columns (and an experiment
    column when ``experiment`` is given); ``events_table`` has unit id, metric, value,
    event id and timestamp (and denominator for ratio metrics). Column names default to
    :data:`DEFAULT_COLUMNS`; ``columns`` renames any of them. ``since`` is the lookback
    limit and ``until`` the end (compared with the timestamp columns as they are: numbers,
    dates, ...). ``arms`` lists arms to report even when nobody saw them (with ``n=0``).
    Any SQLAlchemy dialect works; PostgreSQL and SQLite are tested::

        summaries_from_sql("postgresql+psycopg://wh/db", "exposures", "events",
                           experiment="checkout-v2", metrics=["revenue"], since=t0)
    """
    sa = require("sqlalchemy", extra="sql", purpose="warehouse-native experiment statistics")
    specs = [_metric(m) for m in metrics]
    if not specs:
        raise ConfigurationError("summaries_from_sql needs at least one metric")
    cols = {**DEFAULT_COLUMNS, **dict(columns or {})}
    unknown = set(columns or {}) - set(DEFAULT_COLUMNS)
    if unknown:
        raise ConfigurationError(
            f"unknown column roles {sorted(unknown)}; roles are {sorted(DEFAULT_COLUMNS)}"
        )
    owned = isinstance(engine_or_url, str)
    if owned:
        url = engine_or_url
        for bare in ("postgresql://", "postgres://"):
            if url.startswith(bare):
                url = "postgresql+psycopg://" + url[len(bare) :]
        try:
            engine = sa.create_engine(url)
        except (ValueError, ModuleNotFoundError, sa.exc.ArgumentError) as exc:
            raise ConfigurationError(f"cannot open warehouse URL: {exc}") from None
    else:
        engine = engine_or_url
    exp_cols = [cols["unit_id"], cols["variant"], cols["timestamp"]]
    if experiment is not None:
        exp_cols.append(cols["experiment"])
    ev_cols = [cols["unit_id"], cols["metric"], cols["value"], cols["event_id"], cols["timestamp"]]
    if any(m.kind == "ratio" for m in specs):
        ev_cols.append(cols["denominator"])
    x = sa.table(exposures_table, *(sa.column(c) for c in exp_cols), schema=schema)
    e = sa.table(events_table, *(sa.column(c) for c in ev_cols), schema=schema)
    xu, xv, xt = x.c[cols["unit_id"]], x.c[cols["variant"]], x.c[cols["timestamp"]]

    def window(ts: Any) -> list[Any]:
        out = []
        if since is not None:
            out.append(ts >= since)
        if until is not None:
            out.append(ts < until)
        return out

    x_where = window(xt)
    if experiment is not None:
        x_where.append(x.c[cols["experiment"]] == experiment)
    first = (
        sa.select(xu.label("unit_id"), sa.func.min(xt).label("first_ts"))
        .where(*x_where)
        .group_by(xu)
        .subquery("first_exposure")
    )
    arm = (
        sa.select(xu.label("unit_id"), sa.func.min(xv).label("variant"), first.c.first_ts)
        .join_from(x, first, sa.and_(xu == first.c.unit_id, xt == first.c.first_ts))
        .where(*x_where)
        .group_by(xu, first.c.first_ts)
        .subquery("arm")
    )
    eu, et, em = e.c[cols["unit_id"]], e.c[cols["timestamp"]], e.c[cols["metric"]]
    ratio = any(m.kind == "ratio" for m in specs)
    value = sa.cast(e.c[cols["value"]], sa.Float)
    den = sa.cast(e.c[cols["denominator"]], sa.Float) if ratio else sa.literal(0.0)
    dedup = (
        sa.select(
            eu.label("unit_id"),
            em.label("metric"),
            sa.func.min(value).label("v"),
            sa.func.min(den).label("d"),
            sa.func.min(et).label("ts"),
        )
        .where(em.in_([m.name for m in specs]), *window(et))
        .group_by(eu, em, e.c[cols["event_id"]])
        .subquery("dedup")
    )
    unit_tot = (
        sa.select(
            arm.c.unit_id,
            arm.c.variant,
            dedup.c.metric,
            sa.func.sum(dedup.c.v).label("num"),
            sa.func.sum(dedup.c.d).label("den"),
        )
        .join_from(
            arm,
            dedup,
            sa.and_(dedup.c.unit_id == arm.c.unit_id, dedup.c.ts >= arm.c.first_ts),
        )
        .group_by(arm.c.unit_id, arm.c.variant, dedup.c.metric)
        .subquery("unit_total")
    )
    # y and d per unit, by the metric's kind and caps (one CASE arm per metric)
    num, dsum = unit_tot.c.num, unit_tot.c.den
    y_cases, d_cases = [], []
    for m in specs:
        is_m = unit_tot.c.metric == m.name
        if m.kind == "binomial":
            y_cases.append((is_m, sa.case((num > 0, sa.literal(1.0)), else_=sa.literal(0.0))))
        else:
            y_cases.append((is_m, _clip(sa, num, m.cap_lower, m.cap_upper)))
        if m.kind == "ratio":
            d_cases.append(
                (is_m, _clip(sa, dsum, m.denominator_cap_lower, m.denominator_cap_upper))
            )
    y = sa.case(*y_cases, else_=sa.literal(0.0))
    d = sa.case(*d_cases, else_=sa.literal(0.0)) if d_cases else sa.literal(0.0)
    per_unit = sa.select(
        unit_tot.c.variant, unit_tot.c.metric, y.label("y"), d.label("d")
    ).subquery("per_unit")
    py, pd = per_unit.c.y, per_unit.c.d
    # one GROUP BY over (arm, metric) for the sums; units without rows add 0 (caps hold 0)
    sums_q = sa.select(
        per_unit.c.variant,
        per_unit.c.metric,
        sa.func.sum(py),
        sa.func.sum(py * py),
        sa.func.sum(pd),
        sa.func.sum(pd * pd),
        sa.func.sum(py * pd),
    ).group_by(per_unit.c.variant, per_unit.c.metric)
    units_q = sa.select(arm.c.variant, sa.func.count()).group_by(arm.c.variant)
    try:
        with engine.connect() as conn:
            n_by_arm = {str(r[0]): int(r[1]) for r in conn.execute(units_q)}
            sums = {(str(r[0]), str(r[1])): r[2:] for r in conn.execute(sums_q)}
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"warehouse query failed: {getattr(exc, 'orig', exc)}") from exc
    finally:
        if owned:
            engine.dispose()
    names = list(arms) if arms is not None else []
    names += sorted(k for k in n_by_arm if k not in names)
    out: list[ArmSummary] = []
    for m in specs:
        for name in names:
            r = sums.get((name, m.name)) or (0.0, 0.0, 0.0, 0.0, 0.0)
            out.append(
                ArmSummary(
                    arm=name,
                    metric=m.name,
                    n=n_by_arm.get(name, 0),
                    kind=m.kind,
                    sum=float(r[0] or 0.0),
                    sum_sq=float(r[1] or 0.0),
                    denom_sum=float(r[2] or 0.0),
                    denom_sum_sq=float(r[3] or 0.0),
                    num_denom_sum=float(r[4] or 0.0),
                )
            )
    return out
